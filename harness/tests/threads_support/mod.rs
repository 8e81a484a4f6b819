//! Shared by the real-thread, shuttle and Windows-mode tests: a journal of
//! the mutations writers made, and the reconstruction of the oracle's event
//! sequence from it and the background threads' event log.
//!
//! The oracle's [`Model`] wants events in the order the engine linearized
//! them. Writers and the flusher run on different threads, so the order is
//! recovered from seqnos instead of from wall-clock order: a flush took the
//! whole queue, so the commit with update_seq `U` holds exactly the
//! mutations with seqnos after the previous commit's and up to `U`; a
//! compaction event carries the tip it happened at (H0 at the start, the
//! final update_seq at the switch), so it goes after the commit of that tip
//! and before the next one.
#![allow(dead_code)]

use engine::{BackgroundEvent, Config, Store};
use failpoints::SimVfs;
use oracle::{CompactionParams, Model, Pitr};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;

/// One accepted mutation.
#[derive(Clone, Debug)]
pub struct Mutation {
    pub seqno: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub deleted: bool,
}

/// Every mutation the test made, from any thread. A std mutex even under
/// shuttle: it is a leaf lock held for a push, never across a scheduling
/// point, so shuttle never has to see it.
#[derive(Debug, Default)]
pub struct Journal {
    mutations: Mutex<Vec<Mutation>>,
}

impl Journal {
    pub fn set(&self, store: &Store, key: &[u8], value: &[u8]) -> engine::Result<u64> {
        let seqno = store.set(key, value)?;
        self.push(seqno, key, value, false);
        Ok(seqno)
    }

    pub fn delete(&self, store: &Store, key: &[u8]) -> engine::Result<u64> {
        let seqno = store.delete(key)?;
        self.push(seqno, key, &[], true);
        Ok(seqno)
    }

    fn push(&self, seqno: u64, key: &[u8], value: &[u8], deleted: bool) {
        self.mutations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Mutation {
                seqno,
                key: key.to_vec(),
                value: value.to_vec(),
                deleted,
            });
    }

    pub fn mutations(&self) -> Vec<Mutation> {
        self.mutations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// What a compaction event does to the model, keyed by the tip it happened at.
enum Step {
    Started(CompactionParams),
    Switched,
    Aborted,
}

/// Feed `model` (fresh, or in step with the store so far) the mutations
/// and the background log, in the engine's linearization order. Err: the
/// log cannot be linearized, or the oracle refused an acknowledged header.
pub fn feed(
    model: &mut Model,
    mutations: &[Mutation],
    events: &[BackgroundEvent],
    pitr: Option<Pitr>,
) -> Result<(), String> {
    let mut mutations = mutations.to_vec();
    mutations.sort_by_key(|m| m.seqno);
    let first = model.next_seqno();
    for (i, m) in mutations.iter().enumerate() {
        if m.seqno != first + i as u64 {
            return Err(format!(
                "seqnos are not contiguous: #{i} is {} (expected {})",
                m.seqno,
                first + i as u64
            ));
        }
    }
    let compaction_steps = compaction_steps(events, pitr)?;
    let mut compaction_steps: VecDeque<(u64, Step)> = compaction_steps.into();
    let mut queue: VecDeque<Mutation> = mutations.into();
    for event in events {
        let BackgroundEvent::Flushed(info) = event else {
            continue;
        };
        while compaction_steps
            .front()
            .is_some_and(|(tip, _)| *tip < info.update_seq)
        {
            let (_, step) = compaction_steps.pop_front().expect("just peeked");
            apply(model, step);
        }
        let mut batch = 0;
        while queue.front().is_some_and(|m| m.seqno <= info.update_seq) {
            let m = queue.pop_front().expect("just peeked");
            enqueue(model, &m)?;
            batch += 1;
        }
        if batch == 0 {
            return Err(format!("commit {info:?} holds no mutation"));
        }
        model.flush_started(info.timestamp);
        model
            .flush_acked(info.update_seq, info.timestamp)
            .map_err(|d| format!("DIVERGENCE at an acknowledged flush:\n{d}"))?;
    }
    for (_, step) in compaction_steps {
        apply(model, step);
    }
    for m in queue {
        enqueue(model, &m)?;
    }
    Ok(())
}

fn enqueue(model: &mut Model, m: &Mutation) -> Result<(), String> {
    let got = if m.deleted {
        model.delete(&m.key)
    } else {
        model.set(&m.key, &m.value)
    };
    if got != m.seqno {
        return Err(format!(
            "the model gave seqno {got} to engine seqno {}",
            m.seqno
        ));
    }
    Ok(())
}

fn apply(model: &mut Model, step: Step) {
    match step {
        Step::Started(params) => model.compaction_started(params),
        Step::Switched => model.compaction_switched(),
        Step::Aborted => model.compaction_aborted(),
    }
}

/// The compaction events as model steps with the tips they belong after,
/// in order. An abort has no tip of its own: it goes as late as possible
/// (before the next start), which the model cannot tell apart.
fn compaction_steps(
    events: &[BackgroundEvent],
    pitr: Option<Pitr>,
) -> Result<Vec<(u64, Step)>, String> {
    let mut out: Vec<(Option<u64>, Step)> = Vec::new();
    for event in events {
        match event {
            BackgroundEvent::CompactionStarted {
                h0_update_seq,
                purge_upto,
                started_at_secs,
            } => {
                let params = CompactionParams {
                    purge_upto: *purge_upto,
                    pitr,
                    now_secs: *started_at_secs,
                };
                out.push((Some(*h0_update_seq), Step::Started(params)));
            }
            BackgroundEvent::CompactionSwitched { update_seq, .. } => {
                out.push((Some(*update_seq), Step::Switched));
            }
            BackgroundEvent::CompactionFailed {
                switched: false, ..
            } => {
                // Only a compaction that started can abort (a start refused
                // logs nothing).
                if matches!(out.last(), Some((_, Step::Started(_)))) {
                    out.push((None, Step::Aborted));
                }
            }
            BackgroundEvent::CompactionFailed {
                switched: true,
                error,
            } => return Err(format!("a compaction failed after its switch: {error}")),
            BackgroundEvent::Flushed(_) | BackgroundEvent::CompactionFinished(_) => {}
        }
    }
    // Resolve abort tips backwards: the next event's tip, or the end.
    let mut next = u64::MAX;
    let mut resolved = Vec::with_capacity(out.len());
    for (tip, step) in out.into_iter().rev() {
        let tip = tip.unwrap_or(next);
        next = tip;
        resolved.push((tip, step));
    }
    resolved.reverse();
    Ok(resolved)
}

/// Check the running store, then crash the disk, reopen and check again.
/// Returns the reopened store.
pub fn check_live_then_crash(
    model: &mut Model,
    store: Store,
    sim: &SimVfs,
    config: &Config,
) -> Result<Store, String> {
    let live = harness::runner::extract(&store, sim, false).map_err(|e| e.to_string())?;
    model
        .check_live(&live)
        .map_err(|d| format!("DIVERGENCE (live check):\n{d}"))?;
    sim.crash();
    drop(store);
    sim.reboot();
    model.crash();
    let store = Store::open(
        sim.as_vfs(),
        harness::runner::DB_DIR,
        harness::runner::DB_NAME,
        config.clone(),
    )
    .map_err(|e| format!("reopen after the crash failed: {e}"))?;
    store.verify_all().map_err(|e| format!("verify: {e}"))?;
    let recovered = harness::runner::extract(&store, sim, true).map_err(|e| e.to_string())?;
    model
        .check(&recovered)
        .map_err(|d| format!("DIVERGENCE (after the crash):\n{d}"))?;
    Ok(store)
}

/// Check a store on the real file system: live, then closed and reopened
/// (a clean close: nothing is lost, the queue is empty).
pub fn check_live_then_reopen(
    model: &mut Model,
    store: Store,
    dir: &Path,
    name: &str,
    config: &Config,
) -> Result<Store, String> {
    // `extract` lists files only through a SimVfs; the real directory is
    // listed here instead.
    let unused = SimVfs::new(0);
    let live = harness::runner::extract(&store, &unused, false).map_err(|e| e.to_string())?;
    model
        .check_live(&live)
        .map_err(|d| format!("DIVERGENCE (live check):\n{d}"))?;
    drop(store);
    model.crash();
    let vfs: std::sync::Arc<dyn engine::Vfs> = std::sync::Arc::new(engine::StdVfs);
    let store = Store::open(vfs.clone(), dir, name, config.clone())
        .map_err(|e| format!("reopen failed: {e}"))?;
    store.verify_all().map_err(|e| format!("verify: {e}"))?;
    let mut recovered =
        harness::runner::extract(&store, &unused, false).map_err(|e| e.to_string())?;
    recovered.files = Some(vfs.list(dir).map_err(|e| e.to_string())?);
    model
        .check(&recovered)
        .map_err(|d| format!("DIVERGENCE (after reopen):\n{d}"))?;
    Ok(store)
}
