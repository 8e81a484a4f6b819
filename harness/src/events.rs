//! The runner's typed event stream and its one sink.
//!
//! The runner does not feed the oracle's model, write trace lines or hash a
//! digest by hand: it says what happened as an [`Event`] and hands it to the
//! [`Journal`]. The journal
//!
//! - feeds the model the events it needs (queued mutations, flush started /
//!   acknowledged / failed, compaction started / switched / aborted, crash),
//!   so the model cannot miss one that the trace shows, nor see one the
//!   trace does not;
//! - keeps the events that make the trace, and renders them to lines only
//!   when somebody reads them (a failure, `keep_trace`, `--echo`): a passing
//!   run formats nothing;
//! - hashes the rendered trace into the run's digest when the trace is kept.
//!
//! The `recover_corrupt` target writes its damage and judgement into the same
//! journal, so its trace reads like any other.

use crate::extract::{oracle_value, ORACLE_VALUE_INLINE_BYTES};
use crate::failure::{Check, Failure, FailureKind, Op};
use crate::reach::{phase_index, Reached, State};
use crate::scenario::{Damage, Scenario, Step, SwarmConfig};
use engine::layout;
use failpoints::{CrashMode, CrashRecord};

/// Blocks recovery reads in its first backward scan for a header.
const RECOVERY_FIRST_SCAN_BLOCKS: u64 = 64;
use oracle::{CompactionParams, Divergence, Model};
use sha2::{Digest, Sha256};
use std::fmt;

/// Why an engine error is allowed (see `runner::Runner::explain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The disk crashed during the call.
    Crash,
    /// The disk injected a fault (EIO, busy) during the call and the engine
    /// reported an I/O error (or poisoned itself because of it).
    Fault,
    /// The store was poisoned by an earlier explained fault.
    Poisoned,
}

/// Something that happened in a run, in the order it happened.
#[derive(Clone, Debug)]
pub enum Event {
    /// The run's swarm configuration.
    Config(SwarmConfig),
    /// Scenario step `index` begins.
    Step {
        /// Its index in the scenario.
        index: usize,
        /// The step.
        step: Step,
        /// Where the compactor is paused while the step runs, if it is.
        paused_at: Option<String>,
    },
    /// A compaction step paused at a preemption point: the next steps run
    /// while it is paused.
    Paused {
        /// The point (a failpoint, or a disk call).
        at: String,
        /// Whether the compactor holds the store lock there.
        locked: bool,
    },
    /// The paused compaction step goes on.
    Resumed,
    /// A preemption point was reached while the compaction step held the
    /// memory lock: nothing else can run there, so it did not pause.
    PauseDeclined {
        /// The point.
        at: String,
    },
    /// The final crash every run ends with.
    FinalCrash,
    /// The store accepted a set (`Some(value)`) or delete (`None`).
    Queued {
        /// The key.
        key: Vec<u8>,
        /// The value, `None` for a delete.
        value: Option<Vec<u8>>,
    },
    /// The store accepted a local-document change: a set (`Some(value)`)
    /// or a removal (`None`).
    LocalQueued {
        /// The document's name.
        name: Vec<u8>,
        /// The value, `None` for a removal.
        value: Option<Vec<u8>>,
    },
    /// A set or delete was refused, explained.
    Refused {
        /// Which.
        op: Op,
        /// The engine's error.
        error: String,
    },
    /// A flush of a non-empty queue begins; its header gets this timestamp.
    FlushStarted {
        /// The clock at the start.
        timestamp_secs: u64,
    },
    /// The flush was acknowledged with this header.
    FlushAcked {
        /// The header's update_seq.
        update_seq: u64,
        /// The header's timestamp.
        timestamp_secs: u64,
        /// Where the commit's data ended (before its header's padding).
        data_end: u64,
    },
    /// The flush failed with an explained fault; the store is poisoned.
    FlushFailed {
        /// The engine's error.
        error: String,
    },
    /// The flush was cut by a crash.
    FlushCut {
        /// The engine's error.
        error: String,
    },
    /// A compaction started.
    CompactionStarted {
        /// Its H0's update_seq.
        h0_update_seq: u64,
        /// What the model needs to know of it.
        params: CompactionParams,
    },
    /// A compaction start was refused, explained.
    CompactionNotStarted {
        /// The engine's error.
        error: String,
    },
    /// The compaction switched files.
    CompactionSwitched {
        /// The phase after the switch.
        phase: engine::Phase,
    },
    /// The compaction finished.
    CompactionDone {
        /// Catch-up rounds it ran.
        rounds: u64,
        /// Mutations the locked final round replayed.
        locked_replay_docs: u64,
        /// Headers it wrote.
        headers: u64,
        /// The old file's unlink was deferred (a reader held it).
        unlink_deferred: bool,
    },
    /// The compaction ended before its switch: aborted on request
    /// (`error` says if the abort's own cleanup failed) or by a fault.
    CompactionAborted {
        /// Requested by the scenario rather than caused by a fault.
        requested: bool,
        /// The error, if any.
        error: Option<String>,
    },
    /// The compaction failed after its switch (the store is poisoned).
    CompactionFailedAfterSwitch {
        /// The engine's error.
        error: String,
    },
    /// An abort after the switch was refused (documented).
    AbortRefused {
        /// The engine's error.
        error: String,
    },
    /// The compaction was cut by a crash.
    CompactionCut {
        /// The engine's error.
        error: String,
    },
    /// The machine (or the process) crashed; the post-crash image is taken.
    Crash {
        /// What the disk did.
        record: CrashRecord,
        /// The compaction's phase when it struck, if one was running.
        phase: Option<engine::Phase>,
        /// The largest file end the run had written so far.
        largest_file: u64,
    },
    /// A crash struck during recovery; recovery starts over.
    CrashedInRecovery {
        /// What the disk did.
        record: CrashRecord,
    },
    /// The process restarted without a power loss.
    ProcessRestart,
    /// The store opened.
    Opened {
        /// The revision opened.
        rev: u64,
        /// Files recovery removed.
        removed: Vec<String>,
        /// Bytes of tail recovery cut.
        truncated_bytes: u64,
        /// Damaged header blocks recovery skipped.
        damaged_headers: usize,
    },
    /// Strict recovery refused a damaged tail (explained); one tolerant open
    /// follows.
    StrictRefused {
        /// The engine's error.
        error: String,
    },
    /// An open failed with an injected fault; the operator retries.
    OpenFailedInjected {
        /// The engine's error.
        error: String,
    },
    /// The oracle accepted what the store showed.
    Checked {
        /// The recovered tip's update_seq.
        tip: u64,
        /// Headers read.
        headers: usize,
        /// The oracle's report (which allowed outcome it saw).
        report: String,
        /// The flush in flight at the crash landed.
        landed: bool,
        /// A compaction cut by the crash: its file won.
        new_file_won: bool,
    },
    /// A read was cut short, explained.
    ReadCut {
        /// What explained it.
        cause: Cause,
        /// The engine's error.
        error: String,
    },
    /// A crash trigger could not be armed.
    NotArmed {
        /// Why.
        error: String,
    },
    /// One damage of the `recover_corrupt` target, applied to the image.
    Damaged {
        /// Its index in the damage plan.
        index: usize,
        /// The damage.
        damage: Damage,
        /// Where it landed, or why nowhere.
        what: String,
    },
    /// Something the `recover_corrupt` target observed on the damaged store.
    Observed(String),
    /// The run failed.
    Failed {
        /// How.
        kind: FailureKind,
        /// Which check.
        check: Check,
        /// The message's first line.
        message: String,
    },
}

impl Event {
    /// Whether the event has a trace line ([`Event::Queued`] and
    /// [`Event::FlushStarted`] feed only the model: the step line says them).
    fn traced(&self) -> bool {
        !matches!(
            self,
            Event::Queued { .. } | Event::LocalQueued { .. } | Event::FlushStarted { .. }
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Config(c) => write!(f, "config {c:?}"),
            Event::Step {
                index,
                step,
                paused_at: None,
            } => write!(f, "#{index} {step}"),
            Event::Step {
                index,
                step,
                paused_at: Some(at),
            } => write!(f, "#{index} {step}, while the compactor is paused at {at}"),
            Event::Paused { at, locked } => write!(
                f,
                "   the compactor pauses at {at}{}",
                if *locked {
                    " (holding the store lock)"
                } else {
                    ""
                }
            ),
            Event::Resumed => write!(f, "   the compactor resumes"),
            Event::PauseDeclined { at } => write!(
                f,
                "   the compactor reached {at} holding the memory lock: no pause"
            ),
            Event::FinalCrash => write!(f, "# final crash"),
            Event::Queued { key, value } => write!(
                f,
                "   queued {} {}",
                if value.is_some() { "set" } else { "delete" },
                String::from_utf8_lossy(key)
            ),
            Event::LocalQueued { name, value } => write!(
                f,
                "   queued {} {}",
                if value.is_some() {
                    "local set"
                } else {
                    "local removal"
                },
                String::from_utf8_lossy(name)
            ),
            Event::Refused { op, error } => write!(f, "   {} refused: {error}", op.name()),
            Event::FlushStarted { timestamp_secs } => {
                write!(f, "   flush started ts={timestamp_secs}")
            }
            Event::FlushAcked {
                update_seq,
                timestamp_secs,
                ..
            } => write!(f, "   acked update_seq={update_seq} ts={timestamp_secs}"),
            Event::FlushFailed { error } => write!(f, "   flush failed: {error}"),
            Event::FlushCut { error } => write!(f, "   flush cut by crash: {error}"),
            Event::CompactionStarted {
                h0_update_seq,
                params,
            } => write!(
                f,
                "   started: h0={h0_update_seq} purge_upto={:?}",
                params.purge_upto
            ),
            Event::CompactionNotStarted { error } => write!(f, "   not started: {error}"),
            Event::CompactionSwitched { phase } => write!(f, "   switched ({phase:?})"),
            Event::CompactionDone {
                rounds,
                locked_replay_docs,
                headers,
                ..
            } => write!(
                f,
                "   compaction done: rounds={rounds} locked_replay={locked_replay_docs} \
                 headers={headers}"
            ),
            Event::CompactionAborted {
                requested: true,
                error: None,
            } => write!(f, "   aborted"),
            Event::CompactionAborted {
                requested: true,
                error: Some(e),
            } => write!(f, "   abort failed: {e}"),
            Event::CompactionAborted {
                requested: false,
                error,
            } => write!(
                f,
                "   compaction failed: {}",
                error.as_deref().unwrap_or("")
            ),
            Event::CompactionFailedAfterSwitch { error } => {
                write!(f, "   compaction failed after its switch: {error}")
            }
            Event::AbortRefused { error } => write!(f, "   abort refused: {error}"),
            Event::CompactionCut { error } => write!(f, "   compaction cut by crash: {error}"),
            Event::Crash { record, .. } => write!(f, "   {record}"),
            Event::CrashedInRecovery { record } => {
                write!(f, "   crashed during recovery: {record}")
            }
            Event::ProcessRestart => write!(f, "   process restart"),
            Event::Opened {
                rev,
                removed,
                truncated_bytes,
                ..
            } => write!(
                f,
                "   opened rev {rev} (removed {removed:?}, truncated {truncated_bytes} bytes)"
            ),
            Event::StrictRefused { error } => {
                write!(
                    f,
                    "   strict open refused: {error}; reopening tolerant once"
                )
            }
            Event::OpenFailedInjected { error } => {
                write!(f, "   open failed with injected EIO, retrying: {error}")
            }
            Event::Checked {
                tip,
                headers,
                report,
                ..
            } => write!(f, "   check ok: tip={tip} headers={headers} {report}"),
            Event::ReadCut { cause, error } => write!(f, "   read cut ({cause:?}): {error}"),
            Event::NotArmed { error } => write!(f, "   not armed: {error}"),
            Event::Damaged {
                index,
                damage,
                what,
            } => write!(f, "damage #{index}: {damage}: {what}"),
            Event::Observed(what) => write!(f, "   {what}"),
            Event::Failed {
                kind,
                check,
                message,
            } => write!(f, "!! {kind} [{check}]: {message}"),
        }
    }
}

/// A queued value as the model keeps it ([`oracle_value`]), without a copy
/// for the short values kept as they are.
fn model_value(v: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if v.len() <= ORACLE_VALUE_INLINE_BYTES {
        std::borrow::Cow::Borrowed(v)
    } else {
        std::borrow::Cow::Owned(oracle_value(v.to_vec()))
    }
}

/// The one sink of a run's events: the model, the trace, the digest.
pub struct Journal {
    /// The oracle's model, fed by [`Journal::emit`]; read it for checks.
    pub model: Model,
    /// The rare states the events showed (see [`crate::reach`]).
    pub reached: Reached,
    events: Vec<Event>,
    echo: bool,
    /// The longest value queued since the last flush started.
    queued_max_value: usize,
    /// The longest value of the flush in flight.
    in_flight_max_value: usize,
    /// The store's file revision, as far as the events tell.
    rev: u64,
    /// Compactions switched since the last crash or restart.
    switches_since_crash: u32,
    /// A local-document change was queued since the last flush started.
    queued_locals: bool,
    /// The flush in flight carries local-document changes.
    in_flight_locals: bool,
    /// A compaction runs, and whether a flush with local-document changes
    /// was acknowledged since it started.
    compacting: Option<bool>,
}

impl Journal {
    /// A journal feeding `model`; with `echo`, each trace line goes to
    /// stderr as it happens.
    pub fn new(model: Model, echo: bool) -> Journal {
        Journal {
            model,
            reached: Reached::default(),
            events: Vec::new(),
            echo,
            queued_max_value: 0,
            in_flight_max_value: 0,
            rev: 0,
            switches_since_crash: 0,
            queued_locals: false,
            in_flight_locals: false,
            compacting: None,
        }
    }

    /// Record `event`: feed the model what it needs, keep the trace. The
    /// only model event that can diverge is an acknowledged flush whose
    /// header the model did not predict.
    pub fn emit(&mut self, event: Event) -> Result<(), Box<Divergence>> {
        self.reach(&event);
        let result = match &event {
            Event::Queued {
                key,
                value: Some(v),
            } => {
                self.model.set(key, &model_value(v));
                Ok(())
            }
            Event::Queued { key, value: None } => {
                self.model.delete(key);
                Ok(())
            }
            Event::LocalQueued {
                name,
                value: Some(v),
            } => {
                self.model.set_local(name, &model_value(v));
                Ok(())
            }
            Event::LocalQueued { name, value: None } => {
                self.model.delete_local(name);
                Ok(())
            }
            Event::FlushStarted { timestamp_secs } => {
                self.model.flush_started(*timestamp_secs);
                Ok(())
            }
            Event::FlushAcked {
                update_seq,
                timestamp_secs,
                ..
            } => self
                .model
                .flush_acked(*update_seq, *timestamp_secs)
                .map_err(Box::new),
            Event::FlushFailed { .. } => {
                self.model.flush_failed();
                Ok(())
            }
            Event::CompactionStarted { params, .. } => {
                self.model.compaction_started(*params);
                Ok(())
            }
            Event::CompactionSwitched { .. } => {
                self.model.compaction_switched();
                Ok(())
            }
            Event::CompactionAborted { .. } => {
                self.model.compaction_aborted();
                Ok(())
            }
            Event::Crash { .. } | Event::ProcessRestart => {
                self.model.crash();
                Ok(())
            }
            _ => Ok(()),
        };
        if event.traced() {
            if self.echo {
                eprintln!("{event}");
            }
            self.events.push(event);
        }
        result
    }

    /// Mark the rare states `event` shows.
    fn reach(&mut self, event: &Event) {
        let block = layout::BLOCK_BYTES;
        match event {
            Event::Queued { value: Some(v), .. } => {
                self.queued_max_value = self.queued_max_value.max(v.len())
            }
            Event::LocalQueued { .. } => self.queued_locals = true,
            Event::FlushStarted { .. } => {
                self.in_flight_max_value = std::mem::take(&mut self.queued_max_value);
                self.in_flight_locals = std::mem::take(&mut self.queued_locals);
            }
            Event::FlushAcked { data_end, .. } => {
                if self.in_flight_locals {
                    if let Some(changed) = &mut self.compacting {
                        *changed = true;
                    }
                }
                match data_end % block {
                    0 => self.reached.mark(State::CommitOnBlockBoundary),
                    r if r == block - 1 => self.reached.mark(State::CommitOneByteBeforeBoundary),
                    // One data byte after the block's marker.
                    2 => self.reached.mark(State::CommitOneByteIntoBlock),
                    _ => {}
                }
                // A value chunk of two blocks or more crosses at least two
                // boundaries wherever it starts.
                if self.in_flight_max_value as u64 >= 2 * block {
                    self.reached.mark(State::ChunkSpansTwoBoundaries);
                }
            }
            Event::CompactionStarted { params, .. } => {
                self.compacting = Some(false);
                if params.purge_upto.is_some_and(|p| p > 0) && params.pitr.is_some() {
                    self.reached.mark(State::PurgeWithPitr);
                }
            }
            Event::CompactionAborted { .. } => self.compacting = None,
            Event::CompactionSwitched { .. } => {
                if self.compacting.take() == Some(true) {
                    self.reached.mark(State::LocalChangeCaughtUp);
                }
                self.switches_since_crash += 1;
                self.rev += 1;
                if self.switches_since_crash >= 2 {
                    self.reached.mark(State::TwoSwitchesWithoutCrash);
                }
                if self.rev >= 3 {
                    self.reached.mark(State::RevisionThreePlus);
                }
            }
            Event::CompactionDone {
                rounds,
                unlink_deferred,
                ..
            } => {
                if *rounds >= 2 {
                    self.reached.mark(State::CatchupTwoRounds);
                }
                if *unlink_deferred {
                    self.reached.mark(State::DeferredUnlink);
                }
            }
            Event::Crash {
                record,
                phase,
                largest_file,
            } => {
                self.switches_since_crash = 0;
                self.queued_max_value = 0;
                self.queued_locals = false;
                self.compacting = None;
                if let Some(mode) = record.mode {
                    let mode = CrashMode::ALL.iter().position(|m| *m == mode).unwrap_or(0);
                    self.reached.mark(State::CrashIn {
                        mode: mode as u8,
                        phase: phase_index(*phase),
                    });
                }
                if *largest_file > RECOVERY_FIRST_SCAN_BLOCKS * block {
                    self.reached.mark(State::FileBeyondFirstScanWindow);
                }
            }
            Event::ProcessRestart => {
                self.switches_since_crash = 0;
                self.queued_max_value = 0;
                self.queued_locals = false;
                self.compacting = None;
            }
            Event::Opened {
                rev,
                damaged_headers,
                ..
            } => {
                self.rev = *rev;
                if *rev >= 3 {
                    self.reached.mark(State::RevisionThreePlus);
                }
                if *damaged_headers > 0 {
                    self.reached.mark(State::RecoveryFellBack);
                }
            }
            Event::Checked {
                landed,
                new_file_won,
                ..
            } => {
                if *landed {
                    self.reached.mark(State::InFlightCommitLanded);
                }
                if *new_file_won {
                    self.reached.mark(State::CompactionNewFileWon);
                }
            }
            _ => {}
        }
    }

    /// Record a trace-only event (one the model does not take).
    pub fn note(&mut self, event: Event) {
        // Trace-only events never diverge.
        let _ = self.emit(event);
    }

    /// The run failed at `step` of `scenario`: record it in the trace and
    /// make the failure, carrying the trace up to and including it.
    pub fn fail(
        &mut self,
        kind: FailureKind,
        check: Check,
        message: String,
        scenario: &Scenario,
        step: usize,
    ) -> Failure {
        self.note(Event::Failed {
            kind,
            check,
            message: message.lines().next().unwrap_or("").to_string(),
        });
        let mut failure = Failure::new(kind, check, message, scenario);
        failure.step = step;
        failure.trace = self.lines();
        failure
    }

    /// The trace so far, rendered.
    pub fn lines(&self) -> Vec<String> {
        self.events.iter().map(|e| e.to_string()).collect()
    }

    /// SHA-256 over the rendered trace, one line each (equal for equal runs).
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for event in &self.events {
            hasher.update(event.to_string().as_bytes());
            hasher.update(b"\n");
        }
        hex::encode(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(journal: &mut Journal, key: &str) {
        journal
            .emit(Event::Queued {
                key: key.as_bytes().to_vec(),
                value: Some(b"v".to_vec()),
            })
            .expect("queueing never diverges");
    }

    #[test]
    fn the_journal_feeds_the_model_what_the_trace_shows() {
        let mut journal = Journal::new(Model::new(), false);
        queue(&mut journal, "a");
        queue(&mut journal, "b");
        journal
            .emit(Event::FlushStarted { timestamp_secs: 7 })
            .unwrap();
        journal
            .emit(Event::FlushAcked {
                update_seq: 2,
                timestamp_secs: 7,
                data_end: 8192,
            })
            .expect("the model predicted update_seq 2");
        assert_eq!(journal.model.tip_update_seq(), 2);
        assert_eq!(journal.model.expected_get(b"a"), Some(&b"v"[..]));
        // Model-only events leave no line; the acknowledgement does.
        assert_eq!(journal.lines(), vec!["   acked update_seq=2 ts=7"]);
        // Its data ended on a block boundary: a rare state, marked.
        assert!(journal.reached.has(State::CommitOnBlockBoundary));
        assert!(!journal.reached.has(State::ChunkSpansTwoBoundaries));
    }

    #[test]
    fn an_unpredicted_acknowledgement_diverges() {
        let mut journal = Journal::new(Model::new(), false);
        queue(&mut journal, "a");
        journal
            .emit(Event::FlushStarted { timestamp_secs: 1 })
            .unwrap();
        let d = journal
            .emit(Event::FlushAcked {
                update_seq: 5,
                timestamp_secs: 1,
                data_end: 100,
            })
            .expect_err("one mutation cannot commit update_seq 5");
        assert_eq!(d.invariant, oracle::Invariant::SeqnoAssignment);
    }

    #[test]
    fn equal_traces_have_equal_digests() {
        let make = |n: usize| {
            let mut j = Journal::new(Model::new(), false);
            j.note(Event::FinalCrash);
            for i in 0..n {
                j.note(Event::Observed(format!("line {i}")));
            }
            j.digest()
        };
        assert_eq!(make(3), make(3));
        assert_ne!(make(3), make(4));
    }
}
