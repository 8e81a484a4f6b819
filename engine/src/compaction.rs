//! Concurrent compaction: copy without the lock, catch up, switch files.
//!
//! [`Compaction`] is a resumable state machine; each [`Compaction::step`] does
//! a bounded amount of work, so a test or the harness can interleave flushes
//! between steps deterministically. The phases:
//!
//! 1. **Start** (under the store lock): refuse a second compaction, fix H0
//!    (the newest header) and open the old file for reading.
//! 2. **Copy** (no lock): replay the *targets* chosen from the old file's
//!    headers as of H0 into `<name>.couch.<rev+1>.compact`, at most
//!    `copy_batch_docs` documents per step, one commit per target, each with
//!    its source header's update_seq and timestamp. Without PiTR the only
//!    target is H0; with PiTR it is one header per closed window.
//!    Tombstones at or below the purge bound are purged.
//! 3. **Catch-up** (no lock, bounded rounds): replay the headers the flusher
//!    committed meanwhile, the same way; then one final round under the lock.
//! 4. **Switch** (under the lock, same step as the final round): fsync the new
//!    file, rename it to `<name>.couch.<rev+1>`, fsync the directory, point
//!    the flusher at it.
//! 5. **Unlink** (no lock): remove the old file and fsync the directory.
//!
//! Any error before the rename, or [`Compaction::abort`], removes the
//! `.compact` file and leaves the old file authoritative.
//!
//! # Which headers are replayed (targets)
//! Without PiTR: the newest header of each round (one commit per round).
//! With PiTR (granularity G, history age A, `now` fixed at start): of the old
//! file's headers, keep the newest one with timestamp <= now - A (or the
//! oldest, if none is that old) and every newer one; group them by window
//! `timestamp / G` and keep the last of each window. A window is replayed
//! only once it is closed (a later window has a header) or in the final
//! locked round, so no window ever gets two headers.

use crate::btree;
use crate::commit::{self, Committer, LocalChanges};
use crate::config::PitrConfig;
use crate::doc::{self, DocInfo, SeqValue, COUNTERS_DOC};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::files::{compact_file_name, file_name};
use crate::format::{self, AppendFile, Header};
use crate::mutants::{self, Mutant};
use crate::snapshot::Snapshot;
use crate::store::{State, Store};
use crate::sync::{Arc, MutexGuard};
use crate::types::{CompactionOptions, CompactionReport, HeaderInfo, Phase, Progress};
use crate::vfs::{is_file_busy, OpenMode, VfsFile};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::path::PathBuf;

/// A replay in progress: the documents of `target` changed after `since`.
#[derive(Debug)]
struct Job {
    target: HeaderInfo,
    snapshot: Snapshot,
    cursor: u64,
}

/// A running compaction. Dropping it unfinished aborts it.
#[derive(Debug)]
pub struct Compaction {
    store: Store,
    options: CompactionOptions,
    pitr: Option<PitrConfig>,
    now: u64,
    phase: Phase,
    old_rev: u64,
    new_rev: u64,
    compact_path: PathBuf,
    final_path: PathBuf,
    /// The old file, open for reading until the switch.
    source: Option<Arc<dyn VfsFile>>,
    h0: HeaderInfo,
    /// The new file, open until the switch (closed before the rename, as
    /// Windows cannot rename an open file).
    out: Option<AppendFile>,
    /// PiTR: no header older than this update_seq is replayed.
    floor_seq: u64,
    /// The newest header committed to the new file (or the empty header).
    new_header: Header,
    new_tip: Option<u64>,
    /// update_seq of the last source header fully replayed.
    replayed_seq: u64,
    /// purge_seq of the last source header fully replayed.
    replayed_purge_seq: u64,
    targets: VecDeque<HeaderInfo>,
    job: Option<Job>,
    unlocked_rounds: usize,
    report: CompactionReport,
}

impl Store {
    /// Start a compaction (phase 1, under the store lock).
    pub fn start_compaction(&self, options: CompactionOptions) -> Result<Compaction> {
        let inner = &self.inner;
        let mut st = inner.lock()?;
        st.check_writable()?;
        if st.compaction_running {
            return Err(Error::CompactionRunning);
        }
        failpoint!("compact::start");
        let Some(h0_pos) = st.tip_pos else {
            return Err(Error::Invalid("nothing committed yet to compact".into()));
        };
        let old_rev = st.rev;
        let new_rev = old_rev + 1;
        let source = inner
            .vfs
            .open(
                &inner.path(&file_name(&inner.name, old_rev)),
                OpenMode::Read,
            )
            .map_err(Error::io("open old file for compaction"))?;
        let compact_path = inner.path(&compact_file_name(&inner.name, new_rev));
        let new_file = inner
            .vfs
            .open(&compact_path, OpenMode::Create)
            .map_err(Error::io("create .compact file"))?;
        new_file
            .set_len(0)
            .map_err(Error::io("reset .compact file"))?;
        let h0 = HeaderInfo {
            pos: h0_pos,
            header: st.header.clone(),
        };
        st.compaction_running = true;
        st.lock_held_by_compactor = mutants::active(Mutant::LockThroughCopy);
        drop(st);
        let mut options = options;
        options.purge_upto = options.purge_upto.map(|p| p.min(h0.header.update_seq));
        let mut c = Compaction {
            store: self.clone(),
            options,
            pitr: inner.config.pitr,
            now: inner.config.clock.now_secs(),
            phase: Phase::Copy,
            old_rev,
            new_rev,
            compact_path,
            final_path: inner.path(&file_name(&inner.name, new_rev)),
            source: Some(source),
            out: Some(AppendFile::new(new_file, 0)),
            floor_seq: 0,
            new_header: Header::empty(),
            new_tip: None,
            replayed_seq: 0,
            replayed_purge_seq: 0,
            targets: VecDeque::new(),
            job: None,
            unlocked_rounds: 0,
            report: CompactionReport {
                new_rev,
                h0_update_seq: h0.header.update_seq,
                ..CompactionReport::default()
            },
            h0,
        };
        let h0 = c.h0.clone();
        let candidates = match c.pitr {
            None => vec![h0],
            Some(_) => c.initial_candidates(c.source_headers_after(0, &h0)?),
        };
        c.floor_seq = candidates.first().map_or(0, |h| h.header.update_seq);
        c.targets = c.select(candidates, false).into();
        Ok(c)
    }
}

impl Compaction {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// H0's update_seq.
    pub fn h0_update_seq(&self) -> u64 {
        self.h0.header.update_seq
    }

    /// What the compaction did so far (`final_update_seq` is set at the
    /// switch).
    pub fn report(&self) -> &CompactionReport {
        &self.report
    }

    /// The purge bound in force (clamped to H0).
    pub fn purge_upto(&self) -> Option<u64> {
        self.options.purge_upto
    }

    /// The clock reading when the compaction started (PiTR's `now`).
    pub fn started_at_secs(&self) -> u64 {
        self.now
    }

    /// Run every remaining step.
    pub fn run(mut self) -> Result<CompactionReport> {
        loop {
            if let Progress::Done(report) = self.step()? {
                return Ok(report);
            }
        }
    }

    /// Do one bounded piece of work. On an error before the switch the
    /// compaction is aborted (the `.compact` file removed) and the error
    /// returned; the old file stays authoritative.
    pub fn step(&mut self) -> Result<Progress> {
        match self.phase {
            Phase::Done => return Ok(Progress::Done(self.report.clone())),
            Phase::Aborted => return Err(Error::Aborted),
            _ => {}
        }
        self.report.steps += 1;
        let result = match self.phase {
            Phase::Unlink => self.unlink_old(),
            _ if self.options.stop_the_world => self.stop_the_world(),
            _ => self.copy_or_catch_up(),
        };
        match result {
            Ok(()) if self.phase == Phase::Done => Ok(Progress::Done(self.report.clone())),
            Ok(()) => Ok(Progress::Running(self.phase)),
            Err(e) => {
                if matches!(self.phase, Phase::Copy | Phase::CatchUp) {
                    let _ = self.cleanup();
                }
                Err(e)
            }
        }
    }

    /// Abort: remove the `.compact` file; the old file stays authoritative.
    /// After the switch an abort is too late and returns an error.
    pub fn abort(mut self) -> Result<()> {
        if !matches!(self.phase, Phase::Copy | Phase::CatchUp) {
            return Err(Error::Invalid(
                "compaction already switched or ended".into(),
            ));
        }
        failpoint!("compact::abort");
        self.cleanup()
    }

    fn cleanup(&mut self) -> Result<()> {
        self.phase = Phase::Aborted;
        // Close our handles first: Windows refuses to remove an open file.
        self.job = None;
        self.out = None;
        self.source = None;
        if let Ok(mut st) = self.store.inner.lock() {
            st.compaction_running = false;
            st.lock_held_by_compactor = false;
        }
        self.store.inner.notify();
        let inner = &self.store.inner;
        if inner
            .vfs
            .exists(&self.compact_path)
            .map_err(Error::io("stat .compact"))?
        {
            inner
                .vfs
                .remove(&self.compact_path)
                .map_err(Error::io("remove .compact"))?;
            inner
                .vfs
                .sync_dir(&inner.dir)
                .map_err(Error::io("fsync dir after abort"))?;
        }
        Ok(())
    }

    fn source(&self) -> Result<&Arc<dyn VfsFile>> {
        self.source
            .as_ref()
            .ok_or_else(|| Error::Invalid("compaction already switched".into()))
    }

    fn out(&mut self) -> Result<&mut AppendFile> {
        self.out
            .as_mut()
            .ok_or_else(|| Error::Invalid("compaction already switched".into()))
    }

    /// Headers of the old file after update_seq `after` (and not below the
    /// PiTR floor), up to `tip`, oldest first.
    fn source_headers_after(&self, after: u64, tip: &HeaderInfo) -> Result<Vec<HeaderInfo>> {
        let after = after.max(self.floor_seq.saturating_sub(1));
        let source = self.source()?;
        let mut out = Vec::new();
        let mut cur = Some(tip.clone());
        while let Some(h) = cur {
            if h.header.update_seq <= after {
                break;
            }
            cur = match h.header.prev_header {
                Some(prev) => Some(HeaderInfo {
                    pos: prev,
                    header: format::read_header(source.as_ref(), prev, true)?,
                }),
                None => None,
            };
            out.push(h);
        }
        out.reverse();
        Ok(out)
    }

    /// PiTR: the newest header older than now - age (strictly), and
    /// everything newer. Headers the flusher writes during the compaction
    /// are never older than the cutoff (the clock does not go back), so the
    /// base chosen here stays the base.
    fn initial_candidates(&self, history: Vec<HeaderInfo>) -> Vec<HeaderInfo> {
        let Some(pitr) = self.pitr else {
            return history;
        };
        let cutoff = self.now.saturating_sub(pitr.max_history_age_secs);
        let base = history
            .iter()
            .rposition(|h| h.header.timestamp < cutoff)
            .unwrap_or(0);
        history.into_iter().skip(base).collect()
    }

    /// Which of `headers` (oldest first) to replay now.
    fn select(&self, headers: Vec<HeaderInfo>, final_round: bool) -> Vec<HeaderInfo> {
        let pitr = self.pitr.filter(|_| !mutants::active(Mutant::PitrOnlyTip));
        let Some(pitr) = pitr else {
            return headers.last().cloned().into_iter().collect();
        };
        let g = pitr.granularity_secs.max(1);
        let window = |h: &HeaderInfo| h.header.timestamp / g;
        let two_per_window = mutants::active(Mutant::PitrTwoPerWindow);
        let n = headers.len();
        let mut out = Vec::new();
        for i in 0..n {
            let w = window(&headers[i]);
            let last_of_window = i + 1 == n || window(&headers[i + 1]) != w;
            let first_of_window = i == 0 || window(&headers[i - 1]) != w;
            let open = i + 1 == n && !final_round;
            let keep = last_of_window || (two_per_window && first_of_window);
            if keep && !open {
                out.push(headers[i].clone());
            }
        }
        out
    }

    fn copy_or_catch_up(&mut self) -> Result<()> {
        if self.job.is_some() || !self.targets.is_empty() {
            return self.replay_batch(false);
        }
        if self.phase == Phase::Copy {
            self.phase = Phase::CatchUp;
        }
        let tip = self.old_tip()?;
        let fresh = tip.header.update_seq > self.replayed_seq;
        let rounds_left =
            self.unlocked_rounds < self.store.inner.config.max_unlocked_catchup_rounds;
        if fresh && rounds_left && !mutants::active(Mutant::CatchupOnlyToH0) {
            failpoint!("compact::catchup_unlocked");
            self.unlocked_rounds += 1;
            self.report.catchup_rounds += 1;
            let mut headers = self.source_headers_after(self.replayed_seq, &tip)?;
            if mutants::active(Mutant::CatchupSkipsNewest) {
                headers.pop();
            }
            self.targets = self.select(headers, false).into();
            return Ok(());
        }
        if fresh && !rounds_left && mutants::active(Mutant::CatchupGivesUp) {
            // Out of unlocked rounds and the flusher is still ahead: taking
            // the lock now would stall it, so back off and let the caller
            // retry the compaction later.
            return Err(Error::Busy);
        }
        self.final_round_and_switch(tip)
    }

    fn old_tip(&self) -> Result<HeaderInfo> {
        let st = self.store.inner.lock()?;
        self.old_tip_locked(&st)
    }

    fn old_tip_locked(&self, st: &State) -> Result<HeaderInfo> {
        match st.tip_pos {
            Some(pos) if st.rev == self.old_rev => Ok(HeaderInfo {
                pos,
                header: st.header.clone(),
            }),
            _ => Err(Error::Invalid(
                "the store moved off the file being compacted".into(),
            )),
        }
    }

    /// Replay one batch of the current job (all of it when `whole`).
    fn replay_batch(&mut self, whole: bool) -> Result<()> {
        let job = match self.job.take() {
            Some(job) => job,
            None => {
                let Some(target) = self.targets.pop_front() else {
                    return Ok(());
                };
                let snapshot = Snapshot {
                    file: self.source()?.clone(),
                    header: target.header.clone(),
                    pos: Some(target.pos),
                    trees: self.store.inner.trees,
                };
                self.apply_purges_between(&snapshot)?;
                Job {
                    cursor: self.replayed_seq,
                    target,
                    snapshot,
                }
            }
        };
        let limit = if whole {
            usize::MAX
        } else {
            self.store.inner.config.copy_batch_docs.max(1)
        };
        let docs = job.snapshot.changed_docs_range(job.cursor, limit)?;
        let done = docs.len() < limit;
        let cursor = docs.last().map_or(job.cursor, |d| d.seqno);
        self.report.docs_written += docs.len() as u64;
        if self.phase == Phase::Copy {
            failpoint!("compact::copy_step");
        }
        let locals = if done {
            self.locals_of(&job.snapshot)?
        } else {
            LocalChanges::default()
        };
        self.apply(docs, locals)?;
        if done {
            self.commit_target(&job.target)?;
        } else {
            self.job = Some(Job { cursor, ..job });
        }
        Ok(())
    }

    /// A purge in the source history between the last replayed header and
    /// `target` removed keys outright, so "changes since" cannot show them:
    /// remove from the new file every key at or below the target's purge_seq
    /// that the target no longer has. Without this, a key that was live in an
    /// older retained PiTR header and whose tombstone was purged later would
    /// come back to life.
    fn apply_purges_between(&mut self, target: &Snapshot) -> Result<()> {
        let purge_seq = target.header.purge_seq;
        if self.new_tip.is_none() || purge_seq <= self.replayed_purge_seq {
            return Ok(());
        }
        let hi = doc::seq_key(purge_seq);
        let mut old: Vec<(u64, Vec<u8>)> = Vec::new();
        let root = self.new_header.by_seq;
        btree::range(
            self.out()?,
            root,
            Bound::Unbounded,
            Bound::Included(&hi),
            &mut |k, v| {
                old.push((doc::seq_from_key(k)?, SeqValue::decode(v)?.key));
                Ok(true)
            },
        )?;
        let mut gone = Vec::new();
        for (seqno, key) in old {
            if target.get(&key)?.is_none() {
                gone.push(DocInfo {
                    key,
                    seqno,
                    deleted: true,
                    value: Vec::new(),
                });
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        self.apply_with(gone, LocalChanges::default(), Some(u64::MAX))
    }

    /// Local docs as of the target: all but the counters, which are
    /// recomputed from the new trees (the purge changes them). A catch-up
    /// round also removes the documents the new file holds (copied from an
    /// older source header) that the target no longer has: local documents
    /// have no tombstones, so "changes since" cannot carry their removal.
    fn locals_of(&mut self, snapshot: &Snapshot) -> Result<LocalChanges> {
        let stale =
            self.phase == Phase::CatchUp && mutants::active(Mutant::StaleCountersAfterCatchup);
        let mut docs: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        if self.new_tip.is_some() && !mutants::active(Mutant::LocalRemovalsNotCarried) {
            let root = self.new_header.local;
            btree::range(
                self.out()?,
                root,
                Bound::Unbounded,
                Bound::Unbounded,
                &mut |k, _| {
                    if k != COUNTERS_DOC {
                        docs.insert(k.to_vec(), None);
                    }
                    Ok(true)
                },
            )?;
        }
        for (k, v) in snapshot.locals()? {
            if stale || k.as_slice() != COUNTERS_DOC {
                docs.insert(k, Some(v));
            }
        }
        Ok(LocalChanges {
            docs: docs.into_iter().collect(),
            recount: !stale,
        })
    }

    fn apply(&mut self, docs: Vec<DocInfo>, locals: LocalChanges) -> Result<()> {
        let purge = if mutants::active(Mutant::PurgeAboveBound) && self.options.purge_upto.is_some()
        {
            Some(u64::MAX)
        } else {
            self.options.purge_upto
        };
        self.apply_with(docs, locals, purge)
    }

    /// Lay `docs` out on top of the new file's current header, purging
    /// tombstones up to `purge`, and keep the highest purged seqno.
    fn apply_with(
        &mut self,
        docs: Vec<DocInfo>,
        locals: LocalChanges,
        purge: Option<u64>,
    ) -> Result<()> {
        let trees = self.store.inner.trees;
        let base = self.new_header.clone();
        let out = self.out()?;
        let applied = commit::apply(
            out,
            &trees,
            &base,
            docs,
            locals,
            purge,
            Committer::Compactor,
        )?;
        self.new_header = Header {
            purge_seq: base.purge_seq.max(applied.max_purged.unwrap_or(0)),
            ..applied.header
        };
        // Spill laid-out nodes so the next step can read them from the file.
        self.out()?.write_out()
    }

    fn commit_target(&mut self, target: &HeaderInfo) -> Result<()> {
        if self.phase == Phase::CatchUp {
            failpoint!("compact::replay_header");
        }
        let header = Header {
            update_seq: target.header.update_seq,
            timestamp: target.header.timestamp,
            purge_seq: self.new_header.purge_seq.max(target.header.purge_seq),
            prev_header: self.new_tip,
            ..self.new_header.clone()
        };
        failpoint!("compact::before_commit");
        let pos = commit::commit(self.out()?, &header, Committer::Compactor)?;
        failpoint!("compact::after_commit");
        self.new_header = header;
        self.new_tip = Some(pos);
        self.replayed_seq = target.header.update_seq;
        self.replayed_purge_seq = target.header.purge_seq;
        self.report.headers_written += 1;
        self.report.purge_seq = self.new_header.purge_seq;
        Ok(())
    }

    /// [`CompactionOptions::stop_the_world`]: copy, catch up and switch in
    /// one go under the memory lock. The flusher blocks on the mutex (it
    /// does not see [`Error::Busy`]), so it just waits, as it would have
    /// before MB-38428.
    fn stop_the_world(&mut self) -> Result<()> {
        let inner = self.store.inner.clone();
        let mut st = inner.lock()?;
        let result = self.copy_all_then_switch_locked(&mut st);
        if let Err(e) = &result {
            if self.phase == Phase::Unlink {
                st.poison(e);
            }
        }
        result
    }

    fn copy_all_then_switch_locked(&mut self, st: &mut MutexGuard<'_, State>) -> Result<()> {
        while self.job.is_some() || !self.targets.is_empty() {
            self.replay_batch(false)?;
        }
        self.phase = Phase::CatchUp;
        self.final_round_locked(st)
    }

    /// The final catch-up round and the switch, under the store lock. The
    /// memory lock is held only to take the store lock (fixing the final
    /// tip: no flush is half-way, as a flush holds the memory lock) and to
    /// point the flusher at the new file; meanwhile writers keep queueing,
    /// readers keep reading, and a flush returns [`Error::Busy`] at once.
    ///
    /// `seen` is the tip the caller read before, without the store lock: the
    /// flusher may have committed since, so it is read again under the lock.
    fn final_round_and_switch(&mut self, seen: HeaderInfo) -> Result<()> {
        failpoint!("compact::before_store_lock");
        let inner = self.store.inner.clone();
        let tip = {
            let mut st = inner.lock()?;
            st.lock_held_by_compactor = true;
            if mutants::active(Mutant::CatchupTipReadBeforeLock) {
                // Nothing was replayed since `seen` was read: reuse it.
                Ok(seen)
            } else {
                self.old_tip_locked(&st)
            }
        };
        let result = tip
            .and_then(|tip| self.final_round(&tip))
            .and_then(|()| self.switch_files())
            .and_then(|new_file| {
                let mut st = inner.lock()?;
                self.install(&mut st, new_file);
                Ok(())
            });
        if let Ok(mut st) = inner.lock() {
            st.lock_held_by_compactor = false;
            if let Err(e) = &result {
                if self.phase == Phase::Unlink {
                    // The rename happened but was not made durable: nothing
                    // may be assumed; the store must be reopened.
                    st.poison(e);
                }
            }
        }
        inner.notify();
        result
    }

    /// [`Compaction::final_round_and_switch`] with the memory lock held
    /// throughout (stop-the-world).
    fn final_round_locked(&mut self, st: &mut MutexGuard<'_, State>) -> Result<()> {
        let tip = self.old_tip_locked(st)?;
        self.final_round(&tip)?;
        let new_file = self.switch_files()?;
        self.install(st, new_file);
        Ok(())
    }

    /// Replay everything up to `tip`, the old file's final tip.
    fn final_round(&mut self, tip: &HeaderInfo) -> Result<()> {
        failpoint!("compact::catchup_locked");
        self.report.catchup_rounds += 1;
        let before = self.report.docs_written;
        if tip.header.update_seq > self.replayed_seq && !mutants::active(Mutant::CatchupOnlyToH0) {
            let mut headers = self.source_headers_after(self.replayed_seq, tip)?;
            if mutants::active(Mutant::CatchupSkipsNewest) && headers.len() > 1 {
                headers.pop();
            }
            self.targets = self.select(headers, true).into();
            while self.job.is_some() || !self.targets.is_empty() {
                self.replay_batch(true)?;
            }
        }
        if self.new_tip.is_none() {
            // Nothing at all was replayed (only possible under a seeded bug
            // or an empty selection): commit H0 so the new file has a header.
            let h0 = self.h0.clone();
            self.targets.push_back(h0);
            self.replay_batch(true)?;
        }
        self.report.locked_replay_docs = self.report.docs_written - before;
        Ok(())
    }

    /// Make the new file durable under its final name and open it for the
    /// flusher (None under the flusher-writes-old-file seeded bug).
    fn switch_files(&mut self) -> Result<Option<AppendFile>> {
        let inner = self.store.inner.clone();
        failpoint!("compact::before_new_sync");
        self.out()?
            .file()
            .sync()
            .map_err(Error::io("fsync new file"))?;
        failpoint!("compact::after_new_sync");
        // Close both files before renaming and unlinking: Windows refuses to
        // rename or remove a file that is open.
        let end = self.out()?.end();
        self.out = None;
        self.source = None;
        failpoint!("compact::before_rename");
        inner
            .vfs
            .rename(&self.compact_path, &self.final_path)
            .map_err(Error::io("rename .compact"))?;
        self.phase = Phase::Unlink;
        failpoint!("compact::after_rename");
        failpoint!("compact::before_rename_dir_sync");
        if !mutants::active(Mutant::NoDirSyncAfterRename) {
            inner
                .vfs
                .sync_dir(&inner.dir)
                .map_err(Error::io("fsync dir after rename"))?;
        }
        failpoint!("compact::after_rename_dir_sync");
        if mutants::active(Mutant::FlusherWritesOldFile) {
            return Ok(None);
        }
        let file = inner
            .vfs
            .open(&self.final_path, OpenMode::ReadWrite)
            .map_err(Error::io("reopen new file"))?;
        Ok(Some(AppendFile::new(file, end)))
    }

    /// Point the flusher at the new file and release the store lock, in
    /// one critical section of the memory lock.
    fn install(&mut self, st: &mut State, new_file: Option<AppendFile>) {
        if let Some(out) = new_file {
            st.out = out;
            st.header = self.new_header.clone();
            st.tip_pos = self.new_tip;
            st.rev = self.new_rev;
        }
        st.lock_held_by_compactor = false;
        st.stats.compactions += 1;
        st.stats.last_locked_replay = self.report.locked_replay_docs;
        st.stats.last_catchup_rounds = self.report.catchup_rounds;
        self.report.final_update_seq = self.new_header.update_seq;
    }

    fn unlink_old(&mut self) -> Result<()> {
        let inner = self.store.inner.clone();
        let old_path = inner.path(&file_name(&inner.name, self.old_rev));
        failpoint!("compact::before_unlink");
        match inner.vfs.remove(&old_path) {
            Ok(()) => {
                failpoint!("compact::after_unlink");
                failpoint!("compact::before_unlink_dir_sync");
                inner
                    .vfs
                    .sync_dir(&inner.dir)
                    .map_err(Error::io("fsync dir after unlink"))?;
                failpoint!("compact::after_unlink_dir_sync");
            }
            Err(e) if is_file_busy(&e) => {
                // Windows: the old file is still open somewhere (a reader's
                // snapshot). It is no longer authoritative (the higher
                // revision wins on open), so its removal is retried later
                // (Store::retry_pending_deletions), as kv_engine's pending
                // deletions are, and at the latest by the next open.
                self.report.unlink_deferred = true;
                let deferred = if mutants::active(Mutant::DeferredUnlinkBareName) {
                    PathBuf::from(file_name(&inner.name, self.old_rev))
                } else {
                    old_path
                };
                inner.lock()?.pending_deletions.push(deferred);
            }
            Err(e) => return Err(Error::io("unlink old file")(e)),
        }
        self.phase = Phase::Done;
        let mut st = inner.lock()?;
        st.compaction_running = false;
        Ok(())
    }
}

impl Drop for Compaction {
    fn drop(&mut self) {
        if matches!(self.phase, Phase::Copy | Phase::CatchUp) {
            let _ = self.cleanup();
        } else if self.phase == Phase::Unlink {
            if let Ok(mut st) = self.store.inner.lock() {
                st.compaction_running = false;
            }
        }
    }
}
