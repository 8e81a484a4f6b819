//! The model: the events the harness saw go in, the states and header lists
//! a correct store may show come out.

use std::collections::BTreeMap;
use std::fmt;

use crate::checks::{self, Tip};
use crate::divergence::{Divergence, HeaderRef};
use crate::expect::{Commit, Expectation, Origin, Slot};
use crate::types::{CompactionParams, Doc, Locals, Pitr, RecoveredHeader, RecoveredStore, State};

/// The authoritative file as the model knows it.
#[derive(Clone, Debug)]
struct FileModel {
    slots: Vec<Slot>,
    /// The newest header's purge_seq lies in `purge_low..=purge_high`: exact
    /// after a check, a range after a switch whose purges are unknown.
    purge_low: u64,
    purge_high: u64,
}

/// A compaction between its start and its switch or abort.
#[derive(Clone, Copy, Debug)]
struct Running {
    /// H0: the tip when it started.
    h0_update_seq: u64,
    /// The highest purge_seq its purges may reach.
    purge_high: u64,
    pitr: Option<Pitr>,
    now_secs: u64,
}

/// What happened to the flush that was in flight at the crash or failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InFlight {
    /// No flush was in flight.
    Nothing,
    /// The in-flight commit is the recovered tip.
    Landed { update_seq: u64 },
    /// The in-flight commit is not there: the last acknowledged one is.
    Lost { update_seq: u64 },
}

/// Which file a store reopened on while a compaction was cut by the crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactionOutcome {
    /// No compaction was running.
    NotRunning,
    /// The old file: the compaction never happened.
    OldFile,
    /// The compaction's output: the switch was durable.
    NewFile,
}

/// What `Model::check` accepted: which of the allowed outcomes it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckReport {
    pub tip_update_seq: u64,
    pub in_flight: InFlight,
    pub compaction: CompactionOutcome,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recovered update_seq {}", self.tip_update_seq)?;
        match self.in_flight {
            InFlight::Nothing => write!(f, "; no flush in flight")?,
            InFlight::Landed { update_seq } => {
                write!(f, "; the in-flight commit {update_seq} landed")?
            }
            InFlight::Lost { update_seq } => {
                write!(f, "; the in-flight commit {update_seq} was lost")?
            }
        }
        match self.compaction {
            CompactionOutcome::NotRunning => Ok(()),
            CompactionOutcome::OldFile => write!(f, "; the cut compaction left the old file"),
            CompactionOutcome::NewFile => write!(f, "; the cut compaction's file won"),
        }
    }
}

/// The reference model. See the crate documentation for the event order.
///
/// Methods that take events panic on a sequence no harness should produce
/// (a flush of an empty queue, an event after a crash before `check`): that
/// is a harness bug, not a divergence.
#[derive(Clone, Debug)]
pub struct Model {
    /// Every committed state, strictly rising update_seq; `[0]` is the empty
    /// state of the fresh store. Entries after `acked` are in flight.
    history: Vec<Commit>,
    /// The last commit known durable: acknowledged, or adopted by a check.
    acked: usize,
    /// Mutations not yet taken by a flush, with their seqnos.
    queue: Vec<(Vec<u8>, Doc)>,
    /// Local-document changes not yet taken by a flush: name, value (`None`
    /// removes), seqno.
    local_queue: Vec<(Vec<u8>, Option<Vec<u8>>, u64)>,
    next_seqno: u64,
    /// After a crash or a failed flush: only `crash` and `check` are allowed.
    needs_check: bool,
    file: FileModel,
    compaction: Option<Running>,
    /// The authoritative revision seen last, if the harness lists files.
    revision: Option<u64>,
    /// Switches since `revision` was seen.
    switches_since_seen: u64,
}

impl Default for Model {
    fn default() -> Model {
        Model::new()
    }
}

impl Model {
    /// A fresh store whose file holds no header yet.
    pub fn new() -> Model {
        let genesis = Commit {
            update_seq: 0,
            timestamp_secs: None,
            docs: State::new(),
            locals: Locals::new(),
        };
        Model {
            history: vec![genesis],
            acked: 0,
            queue: Vec::new(),
            local_queue: Vec::new(),
            next_seqno: 1,
            needs_check: false,
            file: FileModel {
                slots: Vec::new(),
                purge_low: 0,
                purge_high: 0,
            },
            compaction: None,
            revision: None,
            switches_since_seen: 0,
        }
    }

    /// A fresh store that wrote an empty header (update_seq 0) at creation,
    /// with this timestamp.
    pub fn with_initial_header(timestamp_secs: u64) -> Model {
        let mut model = Model::new();
        model.history[0].timestamp_secs = Some(timestamp_secs);
        model.file.slots.push(Slot {
            update_seq: 0,
            timestamp_secs: Some(timestamp_secs),
            required: true,
            origin: Origin::Flush,
        });
        model
    }

    // -----------------------------------------------------------------------
    // Events
    // -----------------------------------------------------------------------

    /// The store accepted `set(key, value)`. Returns the seqno it got.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> u64 {
        self.enqueue(key, |seqno| Doc::live(value, seqno))
    }

    /// The store accepted `delete(key)`. Returns the seqno of the tombstone.
    pub fn delete(&mut self, key: &[u8]) -> u64 {
        self.enqueue(key, Doc::tombstone)
    }

    /// The store accepted `set_local(name, value)`. Returns the seqno the
    /// change took: local documents are in no index, but each change raises
    /// its commit's update_seq.
    pub fn set_local(&mut self, name: &[u8], value: &[u8]) -> u64 {
        self.enqueue_local(name, Some(value))
    }

    /// The store accepted `delete_local(name)`. Returns its seqno.
    pub fn delete_local(&mut self, name: &[u8]) -> u64 {
        self.enqueue_local(name, None)
    }

    fn enqueue_local(&mut self, name: &[u8], value: Option<&[u8]>) -> u64 {
        self.assert_usable("a local-document change");
        let seqno = self.next_seqno;
        self.next_seqno += 1;
        self.local_queue
            .push((name.to_vec(), value.map(<[u8]>::to_vec), seqno));
        seqno
    }

    fn enqueue(&mut self, key: &[u8], doc: impl FnOnce(u64) -> Doc) -> u64 {
        self.assert_usable("a mutation");
        let seqno = self.next_seqno;
        self.next_seqno += 1;
        self.queue.push((key.to_vec(), doc(seqno)));
        seqno
    }

    /// A flush of the non-empty queue begins; its header will carry this
    /// timestamp. Mutations queued from now on belong to the next flush.
    pub fn flush_started(&mut self, timestamp_secs: u64) {
        self.assert_usable("flush_started");
        assert!(
            !self.in_flight(),
            "oracle misuse: a flush is already in flight"
        );
        assert!(
            !self.queue.is_empty() || !self.local_queue.is_empty(),
            "oracle misuse: flush of an empty queue commits nothing"
        );
        let tip = &self.history[self.acked];
        if let Some(previous) = tip.timestamp_secs {
            assert!(
                timestamp_secs >= previous,
                "oracle misuse: timestamp {timestamp_secs} before the tip's {previous}"
            );
        }
        let mut docs = tip.docs.clone();
        let mut locals = tip.locals.clone();
        let mut update_seq = tip.update_seq;
        for (key, doc) in self.queue.drain(..) {
            update_seq = update_seq.max(doc.seqno);
            docs.insert(key, doc);
        }
        for (name, value, seqno) in self.local_queue.drain(..) {
            update_seq = update_seq.max(seqno);
            match value {
                Some(value) => locals.insert(name, value),
                None => locals.remove(&name),
            };
        }
        self.history.push(Commit {
            update_seq,
            timestamp_secs: Some(timestamp_secs),
            docs,
            locals,
        });
    }

    /// The flush returned Ok: its commit is durable. Checks the header the
    /// engine reports against the model's prediction; the commit is recorded
    /// as acknowledged either way.
    pub fn flush_acked(&mut self, update_seq: u64, timestamp_secs: u64) -> Result<(), Divergence> {
        self.assert_usable("flush_acked");
        assert!(
            self.in_flight(),
            "oracle misuse: flush_acked without flush_started"
        );
        let previous_tip_seq = self.history[self.acked].update_seq;
        self.acked = self.history.len() - 1;
        let commit = &self.history[self.acked];
        self.file.slots.push(Slot {
            update_seq: commit.update_seq,
            timestamp_secs: commit.timestamp_secs,
            required: true,
            origin: Origin::Flush,
        });
        checks::check_acked_header(commit, previous_tip_seq, update_seq, timestamp_secs)
    }

    /// The flush returned an error: its commit may or may not be on disk,
    /// and the store is poisoned. Next: `check` after the reopen.
    pub fn flush_failed(&mut self) {
        self.assert_usable("flush_failed");
        assert!(
            self.in_flight(),
            "oracle misuse: flush_failed without flush_started"
        );
        self.needs_check = true;
    }

    /// A compaction starts; the current tip is its H0.
    pub fn compaction_started(&mut self, params: CompactionParams) {
        self.assert_usable("compaction_started");
        assert!(
            !self.in_flight(),
            "oracle misuse: compaction_started during a flush"
        );
        assert!(
            self.compaction.is_none(),
            "oracle misuse: a compaction is already running"
        );
        if let Some(pitr) = params.pitr {
            assert!(
                pitr.granularity_secs > 0,
                "oracle misuse: PiTR granularity 0"
            );
        }
        let h0_update_seq = self.history[self.acked].update_seq;
        self.compaction = Some(Running {
            h0_update_seq,
            purge_high: params.purge_upto.map_or(0, |upto| upto.min(h0_update_seq)),
            pitr: params.pitr,
            now_secs: params.now_secs,
        });
    }

    /// The compaction switched: its file is now the authoritative one.
    pub fn compaction_switched(&mut self) {
        self.assert_usable("compaction_switched");
        assert!(
            !self.in_flight(),
            "oracle misuse: compaction_switched during a flush"
        );
        let running = self
            .compaction
            .take()
            .expect("oracle misuse: no compaction is running");
        let new_file = self.new_file(self.acked, &running);
        self.file = FileModel {
            slots: new_file.slots,
            purge_low: new_file.purge_low,
            purge_high: new_file.purge_high,
        };
        self.switches_since_seen += 1;
    }

    /// The compaction gave up; the old file stays.
    pub fn compaction_aborted(&mut self) {
        self.assert_usable("compaction_aborted");
        assert!(
            self.compaction.take().is_some(),
            "oracle misuse: no compaction is running"
        );
    }

    /// The machine crashed: queued mutations are gone; a flush or a
    /// compaction under way is cut. Next: `check` after the reopen.
    pub fn crash(&mut self) {
        self.queue.clear();
        self.local_queue.clear();
        self.needs_check = true;
    }

    // -----------------------------------------------------------------------
    // Checks
    // -----------------------------------------------------------------------

    /// Decides a reopened store (after `crash`, `flush_failed`, or a clean
    /// close). On success adopts what it found: the recovered tip becomes the
    /// acknowledged state (newer history is dropped, seqnos restart after
    /// it), its header list and purge_seq become the file's, a cut compaction
    /// is over. The report says which allowed outcome it saw.
    ///
    /// Order: each header on its own (index agreement, counters, ordering),
    /// the directory, the tip's update_seq, then for each file recovery may
    /// have opened (the old one; the new one if a compaction was cut): the
    /// tip's state, its purge_seq, the header list, older headers' history.
    /// If no file fits, the divergence of the one that matched longest.
    pub fn check(&mut self, store: &RecoveredStore) -> Result<CheckReport, Divergence> {
        checks::check_structure(store)?;
        let running = self.compaction;
        let (old_allowed, new_allowed, revision) = self.check_files(store, true)?;
        let tip = Tip::of(store);
        let index = checks::check_tip_update_seq(&tip, &self.history, self.acked)?;
        let mut expectations = Vec::new();
        if old_allowed {
            expectations.push(self.old_file(index));
        }
        if let Some(running) = running.filter(|_| new_allowed) {
            expectations.push(self.new_file(index, &running));
        }
        let mut closest: Option<((u8, usize), Divergence)> = None;
        for expectation in &expectations {
            match self.check_against(store, &tip, index, expectation) {
                Ok(origins) => {
                    let report = self.report(index, expectation);
                    self.adopt_tip(index);
                    self.adopt_file(store, expectation, &origins, revision);
                    return Ok(report);
                }
                Err((score, divergence)) => match &closest {
                    Some((best, _)) if *best >= score => {}
                    _ => closest = Some((score, divergence)),
                },
            }
        }
        Err(closest
            .expect("the old or the new file is always allowed")
            .1)
    }

    /// Decides a running store, with no crash: the tip must be the last
    /// acknowledged state exactly and the file the one the model expects.
    /// Adopts the header list it found (resolving headers that were optional,
    /// such as the catch-up rounds of a PiTR-off compaction); call it after a
    /// switch to keep the next PiTR compaction's expectation exact.
    pub fn check_live(&mut self, store: &RecoveredStore) -> Result<(), Divergence> {
        assert!(
            !self.needs_check,
            "oracle misuse: check_live after a crash or failed flush"
        );
        assert!(
            !self.in_flight(),
            "oracle misuse: check_live during a flush"
        );
        checks::check_structure(store)?;
        let (_, _, revision) = self.check_files(store, false)?;
        let tip = Tip::of(store);
        let index = checks::check_tip_update_seq(&tip, &self.history, self.acked)?;
        let expectation = self.old_file(index);
        let origins = self
            .check_against(store, &tip, index, &expectation)
            .map_err(|(_, divergence)| divergence)?;
        self.adopt_file(store, &expectation, &origins, revision);
        Ok(())
    }

    /// Decides one header read from a damaged copy of the store (the
    /// `recover_corrupt` target), at `position` of `count` headers found: if
    /// it verifies, it is exactly an acknowledged committed state (see
    /// `checks::check_committed_header`). Adopts nothing.
    pub fn check_committed_header(
        &self,
        header: &RecoveredHeader,
        position: usize,
        count: usize,
    ) -> Result<(), Divergence> {
        let at = HeaderRef::of(header, position, count);
        checks::check_committed_header(header, at, &self.history[..=self.acked])
    }

    /// Decides a read of the running store (no crash since the last check,
    /// no flush in flight): `found` is what `get` or `scan` returned for the
    /// keys `in_range` selects (tombstones included) from a header whose
    /// purge_seq is `purge_seq`. It must be the last acknowledged state on
    /// those keys; a tombstone at or below `purge_seq` may be missing.
    pub fn check_read(
        &self,
        what: &str,
        in_range: impl Fn(&[u8]) -> bool,
        found: &State,
        purge_seq: u64,
    ) -> Result<(), Divergence> {
        let expected: State = self
            .expected_state()
            .iter()
            .filter(|(k, _)| in_range(k))
            .map(|(k, d)| (k.clone(), d.clone()))
            .collect();
        checks::check_read(what, &expected, found, purge_seq)
    }

    /// Decides a read of local documents of the running store: `found` is
    /// what the reads of the names `in_range` selects returned. It must be
    /// the last acknowledged local documents on those names.
    pub fn check_local_read(
        &self,
        what: &str,
        in_range: impl Fn(&[u8]) -> bool,
        found: &Locals,
    ) -> Result<(), Divergence> {
        let expected: Locals = self
            .expected_locals()
            .iter()
            .filter(|(name, _)| in_range(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        checks::check_local_read(what, &expected, found)
    }

    /// Decides `changes_since(since)` of the running store: the by-seq
    /// entries with seqno > `since` of the last acknowledged state, in
    /// seqno order, tombstones at or below `purge_seq` optional.
    pub fn check_changes_since(
        &self,
        since: u64,
        found: &[crate::types::BySeqEntry],
        purge_seq: u64,
    ) -> Result<(), Divergence> {
        checks::check_changes_since(since, self.expected_state(), found, purge_seq)
    }

    // -----------------------------------------------------------------------
    // What the harness may read
    // -----------------------------------------------------------------------

    /// The value a read of `key` must return now: the last acknowledged
    /// state. While a flush is in flight a read may also see its commit;
    /// queued mutations are never visible.
    pub fn expected_get(&self, key: &[u8]) -> Option<&[u8]> {
        self.expected_state()
            .get(key)
            .filter(|doc| !doc.deleted)
            .map(|doc| doc.value.as_slice())
    }

    /// The last acknowledged state, tombstones included.
    pub fn expected_state(&self) -> &State {
        &self.history[self.acked].docs
    }

    /// The user local documents of the last acknowledged state.
    pub fn expected_locals(&self) -> &Locals {
        &self.history[self.acked].locals
    }

    /// The update_seq of the last acknowledged state.
    pub fn tip_update_seq(&self) -> u64 {
        self.history[self.acked].update_seq
    }

    /// The seqno the next mutation gets.
    pub fn next_seqno(&self) -> u64 {
        self.next_seqno
    }

    // -----------------------------------------------------------------------
    // Internals
    // -----------------------------------------------------------------------

    fn in_flight(&self) -> bool {
        self.history.len() > self.acked + 1
    }

    fn assert_usable(&self, what: &str) {
        assert!(
            !self.needs_check,
            "oracle misuse: {what} after a crash or failed flush, before check"
        );
    }

    fn commit_at(&self, update_seq: u64) -> &Commit {
        let index = self
            .history
            .binary_search_by_key(&update_seq, |commit| commit.update_seq)
            .expect("the model keeps every committed state up to the tip");
        &self.history[index]
    }

    /// The current file if `history[index]` is the tip: every header it has,
    /// plus the in-flight commit's if that is the tip.
    fn old_file(&self, index: usize) -> Expectation {
        let mut slots = self.file.slots.clone();
        if index > self.acked {
            let commit = &self.history[index];
            slots.push(Slot {
                update_seq: commit.update_seq,
                timestamp_secs: commit.timestamp_secs,
                required: true,
                origin: Origin::Flush,
            });
        }
        Expectation {
            slots,
            purge_low: self.file.purge_low,
            purge_high: self.file.purge_high,
            new_file: false,
        }
    }

    /// What `running` writes if it switches while `history[index]` is the
    /// tip of the old file.
    fn new_file(&self, index: usize, running: &Running) -> Expectation {
        let old = self.old_file(index).slots;
        let tip_seq = self.history[index].update_seq;
        let h0 = self.commit_at(running.h0_update_seq);
        let h0_slot = Slot {
            update_seq: h0.update_seq,
            timestamp_secs: h0.timestamp_secs,
            required: false,
            origin: Origin::Compaction,
        };
        let mut slots = match running.pitr {
            Some(pitr) => pitr_slots(&old, pitr, running.now_secs),
            None => plain_slots(&old, running.h0_update_seq, tip_seq),
        };
        // H0 of a fresh store created without a header has none in the old
        // file; the compaction may or may not write one.
        let h0_has_header = old.iter().any(|s| s.update_seq == h0.update_seq);
        if !h0_has_header && (running.pitr.is_none() || slots.is_empty()) {
            slots.insert(0, h0_slot);
        }
        Expectation {
            slots,
            purge_low: self.file.purge_low,
            purge_high: self.file.purge_high.max(running.purge_high),
            new_file: true,
        }
    }

    fn check_against(
        &self,
        store: &RecoveredStore,
        tip: &Tip,
        index: usize,
        expectation: &Expectation,
    ) -> Result<Vec<Origin>, ((u8, usize), Divergence)> {
        let acked_seq = self.history[self.acked].update_seq;
        let compacted = expectation
            .slots
            .last()
            .is_some_and(|slot| slot.origin != Origin::Flush);
        checks::check_tip_state(tip, &self.history[index], acked_seq, compacted)
            .map_err(|d| ((0, 0), d))?;
        checks::check_purge_range(tip, expectation.purge_low, expectation.purge_high)
            .map_err(|d| ((1, 0), d))?;
        let origins =
            checks::check_header_list(store, expectation).map_err(|(m, d)| ((2, m), d))?;
        checks::check_header_history(store, &origins, &self.history)
            .map_err(|(m, d)| ((3, m), d))?;
        Ok(origins)
    }

    /// Checks the directory. Returns whether the old and the new file of a
    /// cut compaction may be the one opened, and the revision found.
    fn check_files(
        &self,
        store: &RecoveredStore,
        reopened: bool,
    ) -> Result<(bool, bool, Option<u64>), Divergence> {
        let running = self.compaction.is_some();
        let Some(files) = &store.files else {
            return Ok((true, true, None));
        };
        let revision = checks::check_single_authority(files, running && !reopened)?;
        let Some(seen) = self.revision else {
            return Ok((true, true, Some(revision)));
        };
        let expected = seen + self.switches_since_seen;
        let allowed: &[u64] = if running && reopened {
            &[expected, expected + 1]
        } else {
            &[expected]
        };
        checks::check_revision(revision, allowed)?;
        Ok((revision == expected, revision != expected, Some(revision)))
    }

    fn report(&self, index: usize, expectation: &Expectation) -> CheckReport {
        let in_flight = if self.in_flight() {
            let last = self.history.len() - 1;
            let update_seq = self.history[last].update_seq;
            if index == last {
                InFlight::Landed { update_seq }
            } else {
                InFlight::Lost { update_seq }
            }
        } else {
            InFlight::Nothing
        };
        let compaction = match (self.compaction, expectation.new_file) {
            (None, _) => CompactionOutcome::NotRunning,
            (Some(_), false) => CompactionOutcome::OldFile,
            (Some(_), true) => CompactionOutcome::NewFile,
        };
        CheckReport {
            tip_update_seq: self.history[index].update_seq,
            in_flight,
            compaction,
        }
    }

    /// `history[index]` is the recovered tip: it is durable from now on.
    fn adopt_tip(&mut self, index: usize) {
        self.history.truncate(index + 1);
        self.acked = index;
        self.queue.clear();
        self.local_queue.clear();
        self.next_seqno = self.history[index].update_seq + 1;
        self.compaction = None;
        self.needs_check = false;
    }

    /// The checked header list is the file's from now on.
    fn adopt_file(
        &mut self,
        store: &RecoveredStore,
        expectation: &Expectation,
        origins: &[Origin],
        revision: Option<u64>,
    ) {
        let slots = store
            .headers
            .iter()
            .zip(origins)
            .rev()
            .map(|(header, origin)| Slot {
                update_seq: header.update_seq,
                timestamp_secs: Some(header.timestamp_secs),
                required: true,
                origin: *origin,
            })
            .collect();
        let purge_seq = store
            .headers
            .first()
            .map_or(expectation.purge_low, |header| header.purge_seq);
        self.file = FileModel {
            slots,
            purge_low: purge_seq,
            purge_high: purge_seq,
        };
        let switches = self.switches_since_seen + u64::from(expectation.new_file);
        self.revision = revision.or(self.revision.map(|seen| seen + switches));
        self.switches_since_seen = 0;
    }
}

/// A PiTR-off compaction's file: H0, then any of the old file's later
/// headers (one per catch-up round, which the model cannot predict), then
/// the tip.
fn plain_slots(old: &[Slot], h0_update_seq: u64, tip_seq: u64) -> Vec<Slot> {
    old.iter()
        .filter(|slot| slot.update_seq >= h0_update_seq)
        .map(|slot| Slot {
            required: slot.update_seq == h0_update_seq || slot.update_seq == tip_seq,
            origin: Origin::Compaction,
            ..*slot
        })
        .collect()
}

/// A PiTR compaction's file, from the old file's list `old` at the switch.
/// When that list is not known exactly (it holds optional headers, from a
/// PiTR-off compaction that switched with no check since), any of its
/// headers may be kept and only the tip is required: the exact choice of
/// windows is then not checked.
fn pitr_slots(old: &[Slot], pitr: Pitr, now_secs: u64) -> Vec<Slot> {
    let exact = old
        .iter()
        .all(|slot| slot.required && slot.timestamp_secs.is_some());
    let kept = if exact {
        pitr_keep(old, pitr, now_secs)
    } else {
        old.to_vec()
    };
    let tip_seq = old.last().map(|slot| slot.update_seq);
    kept.into_iter()
        .map(|slot| Slot {
            required: exact || Some(slot.update_seq) == tip_seq,
            origin: Origin::PitrCompaction,
            ..slot
        })
        .collect()
}

/// The PiTR policy: base is the newest header older than the cutoff
/// (`now - max_age`, strictly: SPEC's "older than"), or the oldest if none
/// is; the candidates are base and every header at or after the cutoff
/// (which includes every header written during the compaction, as the clock
/// never goes back); of each window (`timestamp / granularity`)
/// the last candidate is kept. Every slot of `old` has a timestamp.
fn pitr_keep(old: &[Slot], pitr: Pitr, now_secs: u64) -> Vec<Slot> {
    let timestamp = |slot: &Slot| slot.timestamp_secs.unwrap_or_default();
    let cutoff = now_secs.saturating_sub(pitr.max_age_secs);
    let base = old
        .iter()
        .rposition(|slot| timestamp(slot) < cutoff)
        .unwrap_or(0);
    let mut last_of_window: BTreeMap<u64, Slot> = BTreeMap::new();
    for (index, slot) in old.iter().enumerate() {
        if index == base || timestamp(slot) >= cutoff {
            last_of_window.insert(timestamp(slot) / pitr.granularity_secs, *slot);
        }
    }
    let mut kept: Vec<Slot> = last_of_window.into_values().collect();
    kept.sort_by_key(|slot| slot.update_seq);
    kept
}
