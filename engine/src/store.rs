//! The store: open a directory, queue mutations, flush them as commits, read.
//!
//! # Locking
//! `Inner::state` is the memory lock: held briefly by every call. The *store
//! lock* of SPEC.md (the one compaction takes for start, the final catch-up
//! round and the switch) is a separate flag in the state,
//! [`State::lock_held_by_compactor`]: while it is set a flush returns
//! [`Error::Busy`] instead of committing. A compaction step takes and
//! releases it within one call, so between steps it is always free — unless
//! the lock-through-copy seeded bug is on, and then the flusher starves.
//!
//! `Inner::changed` is the condition variable of the memory lock: notified
//! whenever something a waiter may be waiting for happened (a mutation was
//! queued, a flush committed or failed, the store lock was released, a
//! background thread stopped or panicked). The background flusher and
//! compactor ([`crate::background`]) and [`Store::wait_durable`] wait on it;
//! nobody polls.
//!
//! A panic in a background thread poisons the store for good: from then on
//! every call that takes the memory lock returns [`Error::Poisoned`].

use crate::commit::{self, Committer, LocalChanges, Trees};
use crate::config::Config;
use crate::control::Control;
use crate::doc::{DocInfo, COUNTERS_DOC};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::files::{classify, file_name, FileKind};
use crate::format::{self, AppendFile, Header};
use crate::mutants::{self, Mutant};
use crate::recovery::{self, Recovered};
use crate::snapshot::Snapshot;
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use crate::types::{CommitInfo, HeaderInfo, LocalChange, OpenReport, Stats};
use crate::vfs::{is_file_busy, FileVersion, OpenMode, Vfs};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct State {
    pub rev: u64,
    pub out: AppendFile,
    pub tip_pos: Option<u64>,
    pub header: Header,
    pub queue: Vec<DocInfo>,
    /// Local-document changes waiting for the next flush, oldest first.
    pub local_queue: Vec<LocalChange>,
    pub next_seqno: u64,
    pub poisoned: Option<String>,
    pub compaction_running: bool,
    pub lock_held_by_compactor: bool,
    pub stats: Stats,
    /// Old revisions whose unlink failed because a handle was still open
    /// (Windows), to be retried ([`Store::retry_pending_deletions`]).
    pub pending_deletions: Vec<PathBuf>,
    /// The background threads' shared state.
    pub bg: Control,
}

impl State {
    pub(crate) fn check_writable(&self) -> Result<()> {
        match &self.poisoned {
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn poison(&mut self, e: &Error) {
        if self.poisoned.is_none() {
            self.poisoned = Some(e.to_string());
        }
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub vfs: Arc<dyn Vfs>,
    pub dir: PathBuf,
    pub name: String,
    pub config: Config,
    pub trees: Trees,
    pub state: Mutex<State>,
    /// Notified on every change a waiter may wait for (see the module doc).
    pub changed: Condvar,
    /// Threads inside [`Inner::wait`]. Counted under the memory lock, before
    /// the wait releases it; a notifier changed the state under that lock
    /// first, so it sees every waiter that could have missed the change.
    /// With none, `notify` skips the futex wake (a system call per queued
    /// mutation on a store without background threads).
    pub waiters: std::sync::atomic::AtomicUsize,
}

fn mutex_poisoned<T>(_: PoisonError<T>) -> Error {
    Error::Poisoned("a thread panicked while holding the store".into())
}

/// Refuse the guard if a background thread panicked.
fn refuse_if_panicked(st: MutexGuard<'_, State>) -> Result<MutexGuard<'_, State>> {
    match &st.bg.panicked {
        Some(why) => Err(Error::Poisoned(why.clone())),
        None => Ok(st),
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, State>> {
        refuse_if_panicked(self.state.lock().map_err(mutex_poisoned)?)
    }

    /// The memory lock even if a thread panicked (to record the panic, to
    /// stop the background threads).
    pub(crate) fn lock_anyway(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait for a notification of `changed`, then take the lock back.
    pub(crate) fn wait<'a>(&self, st: MutexGuard<'a, State>) -> Result<MutexGuard<'a, State>> {
        use std::sync::atomic::Ordering::SeqCst;
        self.waiters.fetch_add(1, SeqCst);
        let woken = self.changed.wait(st);
        self.waiters.fetch_sub(1, SeqCst);
        refuse_if_panicked(woken.map_err(mutex_poisoned)?)
    }

    /// Wake every waiter of `changed` (call it after changing the state
    /// under the memory lock).
    pub(crate) fn notify(&self) {
        if self.waiters.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.changed.notify_all();
        }
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

/// An open store. Cheap to clone; clones share everything.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl Store {
    /// Open (or create) store `name` in `dir`. The highest complete revision
    /// wins; `.compact` leftovers and lower revisions are removed durably;
    /// the chosen file is recovered per the configured [`RecoveryPolicy`](crate::RecoveryPolicy).
    pub fn open(
        vfs: Arc<dyn Vfs>,
        dir: impl AsRef<Path>,
        name: &str,
        config: Config,
    ) -> Result<Store> {
        Self::open_with_report(vfs, dir, name, config).map(|(s, _)| s)
    }

    /// [`Store::open`], also saying what recovery did.
    pub fn open_with_report(
        vfs: Arc<dyn Vfs>,
        dir: impl AsRef<Path>,
        name: &str,
        config: Config,
    ) -> Result<(Store, OpenReport)> {
        let dir = dir.as_ref().to_path_buf();
        if name.is_empty() || name.contains('/') {
            return Err(Error::Invalid(format!("store name {name:?}")));
        }
        if config.fanout > MAX_FANOUT {
            return Err(Error::Invalid(format!(
                "fanout {} (at most {MAX_FANOUT})",
                config.fanout
            )));
        }
        vfs.create_dir_all(&dir).map_err(Error::io("create dir"))?;
        if !mutants::active(Mutant::StoreDirNotSynced) {
            // A directory is an entry of its parent, durable only once the
            // parent is fsynced; `create_dir_all` may have created several
            // levels, and the open cannot tell which, so every ancestor is
            // fsynced (cheap, and only at open).
            for ancestor in dir.ancestors().skip(1) {
                if !ancestor.as_os_str().is_empty() {
                    vfs.sync_dir(ancestor)
                        .map_err(Error::io("fsync parent of store dir"))?;
                }
            }
        }
        let names = vfs.list(&dir).map_err(Error::io("list dir"))?;
        let mut revs = Vec::new();
        let mut others = Vec::new();
        for file in &names {
            match classify(name, file) {
                Some(FileKind::Revision(rev)) => revs.push((rev, file.clone())),
                Some(FileKind::Compact(rev))
                    if mutants::active(Mutant::CompactFileAuthoritative) =>
                {
                    revs.push((rev, file.clone()))
                }
                Some(FileKind::Compact(_)) => others.push(file.clone()),
                None => {}
            }
        }
        revs.sort();
        let (rev, file_name_chosen, created) = match revs.pop() {
            Some((rev, file)) => (rev, file, false),
            None => (1, file_name(name, 1), true),
        };
        others.extend(revs.into_iter().map(|(_, f)| f));

        let path = dir.join(&file_name_chosen);
        let file = vfs
            .open(
                &path,
                if created {
                    OpenMode::Create
                } else {
                    OpenMode::ReadWrite
                },
            )
            .map_err(Error::io("open store file"))?;
        let mut report = OpenReport {
            rev,
            ..OpenReport::default()
        };
        let cleanup = |report: &mut OpenReport| -> Result<()> {
            failpoint!("recovery::before_cleanup");
            for other in &others {
                vfs.remove(&dir.join(other))
                    .map_err(Error::io("remove stale file"))?;
            }
            vfs.sync_dir(&dir)
                .map_err(Error::io("fsync dir after cleanup"))?;
            failpoint!("recovery::after_cleanup");
            report.removed = others.clone();
            Ok(())
        };
        let early_cleanup = mutants::active(Mutant::LowerRevDeletedEarly) && !others.is_empty();
        if early_cleanup {
            cleanup(&mut report)?;
        } else {
            // The chosen file's name (just created, or renamed by a
            // compaction whose process crashed) may be only in the page
            // cache: make it durable before anyone reads through it.
            vfs.sync_dir(&dir)
                .map_err(Error::io("fsync dir after open"))?;
        }
        // Recover (and verify) the chosen revision before any lower one is
        // removed: if it cannot be read, the open fails and every lower
        // revision is still there.
        let Recovered {
            header,
            pos,
            end,
            truncated_bytes,
            damaged_headers,
        } = recovery::recover(&file, config.recovery)?;
        if !early_cleanup && !others.is_empty() {
            cleanup(&mut report)?;
        }
        report.truncated_bytes = truncated_bytes;
        report.damaged_headers = damaged_headers;
        let next_seqno = if mutants::active(Mutant::SeqnoReused) {
            header.update_seq.max(1)
        } else {
            // Header::decode refuses u64::MAX, so this cannot overflow; be
            // explicit anyway rather than trust bytes from disk.
            header
                .update_seq
                .checked_add(1)
                .ok_or_else(|| Error::Corrupted {
                    offset: pos.unwrap_or(0),
                    what: "update_seq at its maximum".into(),
                })?
        };
        let state = State {
            rev,
            out: AppendFile::new(file, end),
            tip_pos: pos,
            header,
            queue: Vec::new(),
            local_queue: Vec::new(),
            next_seqno,
            poisoned: None,
            compaction_running: false,
            lock_held_by_compactor: false,
            stats: Stats::default(),
            pending_deletions: Vec::new(),
            bg: Control::default(),
        };
        let trees = Trees::new(config.fanout);
        let inner = Inner {
            vfs,
            dir,
            name: name.to_string(),
            config,
            trees,
            state: Mutex::new(state),
            changed: Condvar::new(),
            waiters: std::sync::atomic::AtomicUsize::new(0),
        };
        Ok((
            Store {
                inner: Arc::new(inner),
            },
            report,
        ))
    }

    fn queue(&self, key: &[u8], value: &[u8], deleted: bool) -> Result<u64> {
        check_document(key, value)?;
        let mut st = self.inner.lock()?;
        st.check_writable()?;
        let seqno = st.next_seqno;
        st.next_seqno += 1;
        st.queue.push(DocInfo {
            key: key.to_vec(),
            seqno,
            deleted,
            value: value.to_vec(),
        });
        drop(st);
        self.inner.notify();
        Ok(seqno)
    }

    /// Queue a set; returns the seqno it will carry. Not durable until a
    /// flush that includes it returns Ok.
    pub fn set(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        self.queue(key, value, false)
    }

    /// Queue a delete (a tombstone); returns its seqno.
    pub fn delete(&self, key: &[u8]) -> Result<u64> {
        self.queue(key, &[], true)
    }

    /// Queue a local document (couchstore's `_local/` documents: metadata
    /// such as a replication checkpoint) for the next flush. Local documents
    /// live in their own tree, not in by-id or by-seq, and no reader of
    /// "changes since" sees them. The change still takes a seqno from the
    /// store's sequence, returned here: it raises the commit's update_seq,
    /// so a commit that changed only local documents is a new state that
    /// recovery, PiTR and compaction's catch-up (which all follow
    /// update_seq) tell apart from its predecessor.
    ///
    /// The name must start with [`LOCAL_PREFIX`], be at most
    /// [`MAX_LOCAL_NAME`] bytes, and not be the store's own
    /// [`COUNTERS_DOC`].
    pub fn set_local(&self, name: &[u8], value: &[u8]) -> Result<u64> {
        self.queue_local(name, Some(value))
    }

    /// Queue the removal of a local document (whether or not it exists).
    /// Returns its seqno, as [`Store::set_local`] does.
    pub fn delete_local(&self, name: &[u8]) -> Result<u64> {
        self.queue_local(name, None)
    }

    fn queue_local(&self, name: &[u8], value: Option<&[u8]>) -> Result<u64> {
        check_local_name(name)?;
        if let Some(value) = value.filter(|v| v.len() > MAX_LOCAL_VALUE) {
            return Err(Error::Invalid(format!(
                "local document value of {} bytes (at most {MAX_LOCAL_VALUE})",
                value.len()
            )));
        }
        let mut st = self.inner.lock()?;
        st.check_writable()?;
        let seqno = st.next_seqno;
        st.next_seqno += 1;
        st.local_queue.push(LocalChange {
            name: name.to_vec(),
            value: value.map(<[u8]>::to_vec),
            seqno,
        });
        drop(st);
        self.inner.notify();
        Ok(seqno)
    }

    /// The newest committed version of the local document `name`.
    pub fn get_local(&self, name: &[u8]) -> Result<Option<Vec<u8>>> {
        self.snapshot()?.local(name)
    }

    /// Whether the memory lock is free right now. For a single-threaded
    /// harness that pauses an engine call part-way (at a failpoint or a disk
    /// call, see `failpoints::SimVfs::arm_pause`): another call on the same
    /// thread would wait for a lock the paused call holds. Never blocks.
    pub fn memory_lock_free(&self) -> bool {
        crate::sync::mutex_is_free(&self.inner.state)
    }

    /// Mutations and local-document changes waiting for a flush.
    pub fn queue_len(&self) -> Result<usize> {
        let st = self.inner.lock()?;
        Ok(st.queue.len() + st.local_queue.len())
    }

    /// The mutations queued for the next flush, oldest first (with the
    /// seqnos they got): for tools that predict what a commit will write.
    pub fn queued(&self) -> Result<Vec<DocInfo>> {
        Ok(self.inner.lock()?.queue.clone())
    }

    /// The local-document changes queued for the next flush, oldest first.
    pub fn queued_locals(&self) -> Result<Vec<LocalChange>> {
        Ok(self.inner.lock()?.local_queue.clone())
    }

    /// Persist the queue as one commit. Ok(None) if the queue was empty.
    /// On any failure the store is poisoned: the batch may or may not be
    /// durable, and nothing more is written until the store is reopened.
    pub fn flush(&self) -> Result<Option<CommitInfo>> {
        let mut st = self.inner.lock()?;
        let result = self.flush_locked(&mut st);
        drop(st);
        if !matches!(result, Ok(None) | Err(Error::Busy)) {
            self.inner.notify();
        }
        result
    }

    /// [`Store::flush`] with the memory lock already held. The store lock
    /// is only *tried*: if compaction holds it this returns
    /// [`Error::Busy`] at once, and the background flusher comes back when
    /// it is released (as kv_engine's flusher does), instead of blocking.
    pub(crate) fn flush_locked(
        &self,
        st: &mut MutexGuard<'_, State>,
    ) -> Result<Option<CommitInfo>> {
        let now = self.inner.config.clock.now_secs();
        self.flush_locked_at(st, now)
    }

    /// [`Store::flush_locked`] with the clock already read (`now`; the
    /// header carries `now.max(tip's timestamp)`), so a caller can announce
    /// the timestamp before the commit (the background observer).
    pub(crate) fn flush_locked_at(
        &self,
        st: &mut MutexGuard<'_, State>,
        now: u64,
    ) -> Result<Option<CommitInfo>> {
        st.check_writable()?;
        // Woken after a Busy: the compactor's release is what wakes us.
        let released =
            st.bg.retrying_after_busy && mutants::active(Mutant::FlushDuringLockedSwitch);
        if st.lock_held_by_compactor && !released {
            st.stats.busy_flushes += 1;
            return Err(Error::Busy);
        }
        if st.queue.is_empty() && st.local_queue.is_empty() {
            return Ok(None);
        }
        let batch = std::mem::take(&mut st.queue);
        let locals = std::mem::take(&mut st.local_queue);
        let mutations = batch.len();
        let local_changes = locals.len();
        match self.commit_batch(st, batch, locals, now) {
            Ok((pos, data_end, header)) => {
                let info = CommitInfo {
                    update_seq: header.update_seq,
                    timestamp: header.timestamp,
                    header_pos: pos,
                    data_end,
                    mutations,
                    local_changes,
                    rev: st.rev,
                };
                st.header = header;
                st.tip_pos = Some(pos);
                st.stats.commits += 1;
                Ok(Some(info))
            }
            Err(e) => {
                st.poison(&e);
                Err(e)
            }
        }
    }

    fn commit_batch(
        &self,
        st: &mut State,
        batch: Vec<DocInfo>,
        local_queue: Vec<LocalChange>,
        timestamp: u64,
    ) -> Result<(u64, u64, Header)> {
        let base = st.header.clone();
        let local_seq = local_queue.iter().map(|c| c.seqno).max();
        // In queue order: for a name changed twice the later change wins.
        let locals = LocalChanges {
            docs: local_queue.into_iter().map(|c| (c.name, c.value)).collect(),
            recount: true,
        };
        let mut header = commit::apply(
            &mut st.out,
            &self.inner.trees,
            &base,
            batch,
            locals,
            None,
            Committer::Flusher,
        )?
        .header;
        header.update_seq = header.update_seq.max(local_seq.unwrap_or(0));
        header.timestamp = timestamp.max(base.timestamp);
        header.prev_header = st.tip_pos;
        let data_end = st.out.end();
        let pos = commit::commit(&mut st.out, &header, Committer::Flusher)?;
        Ok((pos, data_end, header))
    }

    /// A snapshot of the newest commit.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let st = self.inner.lock()?;
        Ok(Snapshot {
            file: st.out.file().clone(),
            header: st.header.clone(),
            pos: st.tip_pos,
            trees: self.inner.trees,
        })
    }

    /// The newest committed version of `key` (tombstones included).
    pub fn get(&self, key: &[u8]) -> Result<Option<DocInfo>> {
        self.snapshot()?.get(key)
    }

    /// Every header of the current file, newest first.
    pub fn headers(&self) -> Result<Vec<HeaderInfo>> {
        let snap = self.snapshot()?;
        let mut out = Vec::new();
        let mut next = snap.pos.map(|pos| (pos, snap.header.clone()));
        while let Some((pos, header)) = next {
            next = match header.prev_header {
                Some(prev) => Some((prev, format::read_header(snap.file.as_ref(), prev, true)?)),
                None => None,
            };
            out.push(HeaderInfo { pos, header });
        }
        Ok(out)
    }

    /// The current file's identity and change generation (see
    /// [`crate::vfs::FileVersion`]); `None` on a file system that cannot
    /// tell. For caches of what was read through [`Store::headers`] and
    /// [`Store::snapshot_at_header`].
    pub fn file_version(&self) -> Result<Option<FileVersion>> {
        Ok(self.inner.lock()?.out.file().version())
    }

    /// How many leading bytes of the current file are unchanged since
    /// `generation` of [`Store::file_version`]; `None` when unknown.
    pub fn unchanged_prefix(&self, generation: u64) -> Result<Option<u64>> {
        Ok(self.inner.lock()?.out.file().unchanged_prefix(generation))
    }

    /// A snapshot of the header at `pos` in the current file.
    pub fn snapshot_at_header(&self, pos: u64) -> Result<Snapshot> {
        let file = self.inner.lock()?.out.file().clone();
        let header = recovery::read_verified_header(&file, pos)?;
        Ok(Snapshot {
            file,
            header,
            pos: Some(pos),
            trees: self.inner.trees,
        })
    }

    fn snapshot_where(&self, pick: impl Fn(&Header) -> bool) -> Result<Option<Snapshot>> {
        let headers = self.headers()?;
        match headers.into_iter().find(|h| pick(&h.header)) {
            Some(h) => self.snapshot_at_header(h.pos).map(Some),
            None => Ok(None),
        }
    }

    /// The newest retained header with timestamp <= `timestamp` (PiTR).
    pub fn snapshot_at(&self, timestamp: u64) -> Result<Option<Snapshot>> {
        self.snapshot_where(|h| h.timestamp <= timestamp)
    }

    /// The newest retained header with update_seq <= `seqno` (PiTR).
    pub fn snapshot_at_seqno(&self, seqno: u64) -> Result<Option<Snapshot>> {
        self.snapshot_where(|h| h.update_seq <= seqno)
    }

    /// Verify the newest header's trees (see [`Snapshot::verify`]).
    pub fn verify(&self) -> Result<crate::snapshot::VerifyReport> {
        self.snapshot()?.verify()
    }

    /// Verify every header of the current file.
    pub fn verify_all(&self) -> Result<()> {
        for h in self.headers()? {
            self.snapshot_at_header(h.pos)?.verify()?;
        }
        Ok(())
    }

    /// The current file revision.
    pub fn rev(&self) -> Result<u64> {
        Ok(self.inner.lock()?.rev)
    }

    /// The path of the current file.
    pub fn current_path(&self) -> Result<PathBuf> {
        let rev = self.rev()?;
        Ok(self.inner.path(&file_name(&self.inner.name, rev)))
    }

    /// Old revisions whose unlink is still to be retried (see
    /// [`Store::retry_pending_deletions`]).
    pub fn pending_deletions(&self) -> Result<Vec<PathBuf>> {
        Ok(self.inner.lock()?.pending_deletions.clone())
    }

    /// Retry the unlinks compaction had to defer because the old file was
    /// still open (Windows refuses to remove an open file), as kv_engine
    /// retries its pending deletions. A file still open stays pending; one
    /// already gone is dropped from the list. Returns how many were
    /// removed; the removals are made durable with a directory fsync. The
    /// background flusher calls this after its commits and the compactor
    /// before each compaction; nothing is lost if it never succeeds, as the
    /// next open removes every lower revision.
    pub fn retry_pending_deletions(&self) -> Result<usize> {
        let paths = self.inner.lock()?.pending_deletions.clone();
        if paths.is_empty() {
            return Ok(0);
        }
        // The list stays as it is while we try (a concurrent caller may try
        // the same file: one of us gets NotFound, which counts as gone).
        let mut gone = Vec::new();
        let mut removed = 0;
        let mut first_error = None;
        for path in paths {
            match self.inner.vfs.remove(&path) {
                Ok(()) => {
                    removed += 1;
                    gone.push(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone.push(path),
                Err(e) if is_file_busy(&e) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        self.inner
            .lock()?
            .pending_deletions
            .retain(|p| !gone.contains(p));
        if let Some(e) = first_error {
            return Err(Error::io("retry deferred unlink")(e));
        }
        if removed > 0 {
            self.inner
                .vfs
                .sync_dir(&self.inner.dir)
                .map_err(Error::io("fsync dir after deferred unlink"))?;
        }
        Ok(removed)
    }

    /// What the store did so far.
    pub fn stats(&self) -> Result<Stats> {
        Ok(self.inner.lock()?.stats.clone())
    }

    /// Why the store refuses writes, if it does.
    pub fn poisoned(&self) -> Result<Option<String>> {
        Ok(self.inner.lock()?.poisoned.clone())
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }
}

/// Every user local document's name starts with this (couchstore's rule).
pub const LOCAL_PREFIX: &[u8] = b"_local/";

/// The longest local-document name [`Store::set_local`] takes.
pub const MAX_LOCAL_NAME: usize = 1024;

/// The longest local-document value [`Store::set_local`] takes. Local
/// documents live inline in their tree's leaves: a leaf of [`MAX_FANOUT`]
/// of the longest names and values must still be one readable chunk.
pub const MAX_LOCAL_VALUE: usize = 32 * 1024;

/// The longest key [`Store::set`] and [`Store::delete`] take (keys are in
/// the leaves of both trees and in interior nodes as separators).
pub const MAX_KEY_BYTES: usize = 4096;

/// The longest value [`Store::set`] takes. A value is stored as one chunk,
/// and every reader refuses a chunk longer than the format's limit: a
/// longer value would be acknowledged and then unreadable.
pub const MAX_VALUE_BYTES: usize = format::MAX_CHUNK_BYTES as usize;

/// The largest [`Config::fanout`] a store opens with: with it, a node of the
/// longest keys (or local documents) stays well under the chunk limit.
pub const MAX_FANOUT: usize = 1024;

// Nodes of MAX_FANOUT of the largest entries fit in one chunk, with room
// for their framing (lengths, positions, reduces).
const _: () = assert!(
    MAX_FANOUT * (MAX_LOCAL_NAME + MAX_LOCAL_VALUE + 64) <= format::MAX_CHUNK_BYTES as usize
);
const _: () = assert!(MAX_FANOUT * (MAX_KEY_BYTES + 64) <= format::MAX_CHUNK_BYTES as usize);

fn check_document(key: &[u8], value: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::Invalid(format!(
            "key of {} bytes (at most {MAX_KEY_BYTES})",
            key.len()
        )));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::Invalid(format!(
            "value of {} bytes (at most {MAX_VALUE_BYTES})",
            value.len()
        )));
    }
    Ok(())
}

fn check_local_name(name: &[u8]) -> Result<()> {
    if !name.starts_with(LOCAL_PREFIX) || name.len() == LOCAL_PREFIX.len() {
        return Err(Error::Invalid(format!(
            "local document name {:?} does not start with \"_local/\" followed by a name",
            String::from_utf8_lossy(name)
        )));
    }
    if name.len() > MAX_LOCAL_NAME {
        return Err(Error::Invalid(format!(
            "local document name of {} bytes (at most {MAX_LOCAL_NAME})",
            name.len()
        )));
    }
    if name == COUNTERS_DOC {
        return Err(Error::Invalid(
            "_local/counters is the store's own document".into(),
        ));
    }
    Ok(())
}
