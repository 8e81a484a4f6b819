//! Background mode: a flusher thread and a compactor thread, as a real
//! deployment runs them (kv_engine's flusher and compaction tasks).
//!
//! - The **flusher** waits on the store's condition variable until
//!   mutations are queued, then commits the whole queue as one flush. The
//!   store lock is only *tried* ([`Error::Busy`] while compaction holds it
//!   for its final catch-up round and switch); on Busy the flusher goes
//!   back to waiting and is woken when the compactor releases the lock, as
//!   kv_engine's flusher reschedules itself instead of blocking a thread.
//! - The **compactor** waits for a request ([`Background::request_compaction`])
//!   or for [`BackgroundConfig::compact_every_commits`] commits, then runs
//!   one compaction step by step, waking the flusher after every step (a
//!   step may have released the store lock).
//! - Nothing polls or sleeps: every wait is on `Inner::changed`, which the
//!   store notifies on every change a waiter may wait for.
//! - A panic in either thread is caught at the thread's top: the store is
//!   poisoned for good (every call then returns [`Error::Poisoned`]), every
//!   waiter is woken, and [`Background::shutdown`] reports it. Nothing hangs.
//! - [`Background::shutdown`] stops the compactor first (a running
//!   compaction is finished), then lets the flusher drain the queue to
//!   empty, then joins both: after an `Ok` the queue is empty (the
//!   `ep_queue_size` stuck at 10 of the seed's CI is the bug this rules out).
//!
//! Seeded bugs are per thread ([`crate::mutants`]): the threads run with the
//! one on in the thread that started them.
//!
//! With the `shuttle` feature every primitive used here comes from shuttle
//! ([`crate::sync`]), so shuttle's schedulers explore the interleavings of
//! flusher, compactor and writers.

use crate::control::Control;
use crate::error::{Error, Result};
use crate::mutants::{self, Mutant};
use crate::store::Store;
use crate::sync::{thread, Arc};
use crate::types::{
    BackgroundEvent, BackgroundReport, CompactionOptions, CompactionReport, FlushStart,
    ObserverHandle, Phase, Progress,
};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Called by the compactor thread between two steps of a compaction (and
/// right after its start), with the phase it is in. The store lock is free
/// there (unless a seeded bug holds it): a test may pause the compactor
/// here and check that the flusher still commits.
pub type StepHook = Arc<dyn Fn(&Store, Phase) + Send + Sync>;

/// How the background threads behave.
#[derive(Clone, Default)]
pub struct BackgroundConfig {
    /// Start a compaction after this many commits since the last one began
    /// (None: only on [`Background::request_compaction`]).
    pub compact_every_commits: Option<u64>,
    /// Options of every compaction the compactor runs.
    pub compaction: CompactionOptions,
    /// Keep a log of [`BackgroundEvent`]s (for tests and the oracle).
    pub record_events: bool,
    /// See [`StepHook`].
    pub between_steps: Option<StepHook>,
    /// See [`BackgroundObserver`](crate::BackgroundObserver).
    pub observer: Option<ObserverHandle>,
}

impl fmt::Debug for BackgroundConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundConfig")
            .field("compact_every_commits", &self.compact_every_commits)
            .field("compaction", &self.compaction)
            .field("record_events", &self.record_events)
            .field("between_steps", &self.between_steps.is_some())
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// The running flusher and compactor threads of a store. Dropping it shuts
/// them down as [`Background::shutdown`] does, ignoring errors.
#[derive(Debug)]
pub struct Background {
    store: Store,
    flusher: Option<thread::JoinHandle<Result<()>>>,
    compactor: Option<thread::JoinHandle<Result<()>>>,
}

impl Store {
    /// Start a flusher thread and a compactor thread on this store. From
    /// now on mutations become durable without calls to [`Store::flush`]
    /// (call [`Store::wait_durable`] to wait for one). At most one
    /// [`Background`] per store.
    pub fn start_background(&self, config: BackgroundConfig) -> Result<Background> {
        {
            let mut st = self.inner.lock()?;
            st.check_writable()?;
            if st.bg.flusher_alive || st.bg.compactor_alive {
                return Err(Error::Invalid("background threads already running".into()));
            }
            st.bg = Control {
                flusher_alive: true,
                compactor_alive: true,
                record_events: config.record_events,
                observer: config.observer.clone(),
                commits_at_last_compaction: st.stats.commits,
                ..Control::default()
            };
        }
        let mut bg = Background {
            store: self.clone(),
            flusher: None,
            compactor: None,
        };
        bg.flusher = Some(spawn(self, "flusher", Role::Flusher, flusher_loop)?);
        bg.compactor = Some(spawn(self, "compactor", Role::Compactor, move |s| {
            compactor_loop(s, &config)
        })?);
        Ok(bg)
    }

    /// Wait until the mutation with `seqno` is durable (the committed
    /// update_seq reached it); returns that update_seq. Errors if the store
    /// is poisoned or no background flusher is running to commit it.
    pub fn wait_durable(&self, seqno: u64) -> Result<u64> {
        let mut st = self.inner.lock()?;
        loop {
            if st.header.update_seq >= seqno {
                return Ok(st.header.update_seq);
            }
            st.check_writable()?;
            if !st.bg.flusher_alive {
                return Err(Error::Invalid(format!(
                    "seqno {seqno} is not durable and no background flusher is running"
                )));
            }
            st = self.inner.wait(st)?;
        }
    }
}

impl Background {
    /// The store the threads work on.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Ask for one more compaction. Returns a ticket for
    /// [`Background::wait_compactions`]: the number of compactions that
    /// will have ended once this one has.
    pub fn request_compaction(&self) -> Result<u64> {
        let mut st = self.store.inner.lock()?;
        st.check_writable()?;
        st.bg.requested += 1;
        let ticket =
            st.bg.compactions_ended() + u64::from(st.bg.compaction_running) + st.bg.requested;
        drop(st);
        self.store.inner.notify();
        Ok(ticket)
    }

    /// Wait until `n` compactions have ended (finished or failed) since
    /// the threads started; returns how many finished. Errors if the store
    /// is poisoned or the compactor thread is gone first.
    pub fn wait_compactions(&self, n: u64) -> Result<u64> {
        let inner = &self.store.inner;
        let mut st = inner.lock()?;
        loop {
            if st.bg.compactions_ended() >= n {
                return Ok(st.bg.report.compactions);
            }
            st.check_writable()?;
            if !st.bg.compactor_alive {
                return Err(Error::Invalid(
                    "the compactor thread stopped before the compactions waited for".into(),
                ));
            }
            st = inner.wait(st)?;
        }
    }

    /// What the threads did so far.
    pub fn report(&self) -> Result<BackgroundReport> {
        Ok(self.store.inner.lock()?.bg.report.clone())
    }

    /// Stop the compactor (finishing a running compaction), let the flusher
    /// drain the queue, join both. Ok means the queue was empty when the
    /// flusher left; mutations queued after that stay queued. The first
    /// error of either thread is returned (a panic as [`Error::Poisoned`]).
    pub fn shutdown(mut self) -> Result<BackgroundReport> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<BackgroundReport> {
        let inner = &self.store.inner;
        inner.lock_anyway().bg.stop_compactor = true;
        inner.notify();
        let compactor = join(self.compactor.take());
        inner.lock_anyway().bg.stop_flusher = true;
        inner.notify();
        let flusher = join(self.flusher.take());
        let st = inner.lock_anyway();
        if let Some(why) = &st.bg.panicked {
            return Err(Error::Poisoned(why.clone()));
        }
        let report = st.bg.report.clone();
        drop(st);
        flusher.and(compactor).map(|()| report)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.flusher.is_some() || self.compactor.is_some() {
            let _ = self.stop_and_join();
        }
    }
}

#[derive(Clone, Copy)]
enum Role {
    Flusher,
    Compactor,
}

fn join(handle: Option<thread::JoinHandle<Result<()>>>) -> Result<()> {
    match handle.map(thread::JoinHandle::join) {
        None => Ok(()),
        Some(Ok(result)) => result,
        // Every body runs under catch_unwind; this is a panic in the
        // wrapper itself.
        Some(Err(_)) => Err(Error::Poisoned("a background thread panicked".into())),
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a non-string payload".into())
}

/// Spawn `body` on a thread with this thread's seeded bug; a panic poisons
/// the store; at exit the thread is marked gone and every waiter woken.
fn spawn(
    store: &Store,
    name: &'static str,
    role: Role,
    body: impl FnOnce(&Store) -> Result<()> + Send + 'static,
) -> Result<thread::JoinHandle<Result<()>>> {
    let store = store.clone();
    let mutant = mutants::current();
    let run = move || {
        mutants::set(mutant);
        let result = match catch_unwind(AssertUnwindSafe(|| body(&store))) {
            Ok(result) => result,
            Err(payload) => {
                let why = format!("the {name} thread panicked: {}", panic_text(&*payload));
                let mut st = store.inner.lock_anyway();
                st.bg.panicked.get_or_insert_with(|| why.clone());
                st.poisoned.get_or_insert_with(|| why.clone());
                Err(Error::Poisoned(why))
            }
        };
        let mut st = store.inner.lock_anyway();
        match role {
            Role::Flusher => st.bg.flusher_alive = false,
            Role::Compactor => st.bg.compactor_alive = false,
        }
        drop(st);
        store.inner.notify();
        result
    };
    thread::Builder::new()
        .name(format!("crashfuzz-{name}"))
        .spawn(run)
        .map_err(Error::io("spawn background thread"))
}

fn flusher_loop(store: &Store) -> Result<()> {
    let inner = &store.inner;
    let mut st = inner.lock()?;
    loop {
        st.check_writable()?;
        if st.queue.is_empty() && st.local_queue.is_empty() {
            if st.bg.stop_flusher {
                drop(st);
                // A last chance for unlinks deferred by readers since.
                store.retry_pending_deletions()?;
                return Ok(());
            }
            if mutants::active(Mutant::FlusherLostWakeup) {
                // Idle: a good moment for unlinks deferred by readers.
                drop(st);
                store.retry_pending_deletions()?;
                st = inner.lock()?;
            }
            st = inner.wait(st)?;
            continue;
        }
        let compacting = st.compaction_running;
        // One clock reading for the observer and the commit.
        let now = store.inner.config.clock.now_secs();
        if let Some(observer) = &st.bg.observer {
            // Only a flush that will really start (flush_locked_at refuses
            // a poisoned store and a held store lock before writing).
            if st.poisoned.is_none() && !st.lock_held_by_compactor {
                observer.0.flush_starting(&FlushStart {
                    batch: &st.queue,
                    locals: &st.local_queue,
                    timestamp: now.max(st.header.timestamp),
                    rev: st.rev,
                    tip_update_seq: st.header.update_seq,
                });
            }
        }
        match store.flush_locked_at(&mut st, now) {
            Ok(Some(info)) => {
                st.bg.retrying_after_busy = false;
                st.bg.report.commits += 1;
                if compacting {
                    st.bg.report.commits_while_compacting += 1;
                }
                st.bg.log(BackgroundEvent::Flushed(info));
            }
            Ok(None) => {}
            Err(Error::Busy) => {
                // Compaction holds the store lock: come back when it
                // releases it (its next step notifies), do not block.
                st.bg.report.busy_retries += 1;
                st.bg.retrying_after_busy = true;
                st = inner.wait(st)?;
                continue;
            }
            Err(e) => {
                drop(st);
                inner.notify();
                return Err(e);
            }
        }
        let deletions = !st.pending_deletions.is_empty();
        drop(st);
        inner.notify();
        if deletions {
            let done = store.retry_pending_deletions()?;
            inner.lock()?.bg.report.deferred_unlinks_done += done as u64;
        }
        st = inner.lock()?;
    }
}

fn compactor_loop(store: &Store, config: &BackgroundConfig) -> Result<()> {
    let inner = &store.inner;
    loop {
        let mut st = inner.lock()?;
        loop {
            if st.bg.stop_compactor {
                return Ok(());
            }
            st.check_writable()?;
            let due = config
                .compact_every_commits
                .is_some_and(|n| st.stats.commits >= st.bg.commits_at_last_compaction + n.max(1));
            if st.bg.requested > 0 || due {
                st.bg.requested = st.bg.requested.saturating_sub(1);
                st.bg.commits_at_last_compaction = st.stats.commits;
                st.bg.compaction_running = true;
                break;
            }
            st = inner.wait(st)?;
        }
        drop(st);
        let ended = store
            .retry_pending_deletions()
            .and_then(|_| compact_once(store, config));
        // The compaction ends for request_compaction's tickets and for
        // wait_compactions in one critical section: counted as ended and no
        // longer running at once.
        let mut st = inner.lock()?;
        st.bg.compaction_running = false;
        if let Ok(ended) = &ended {
            st.bg.record(ended);
        }
        drop(st);
        inner.notify();
        ended?;
    }
}

/// How one compaction attempt ended.
enum Ended {
    Finished {
        report: CompactionReport,
        steps: u64,
    },
    Failed {
        switched: bool,
        error: Error,
    },
    /// Nothing committed yet to compact.
    Skipped,
}

impl Control {
    fn record(&mut self, ended: &Ended) {
        match ended {
            Ended::Finished { report, steps } => {
                let r = &mut self.report;
                r.compactions += 1;
                r.max_catchup_rounds = r.max_catchup_rounds.max(report.catchup_rounds);
                r.max_compaction_steps = r.max_compaction_steps.max(*steps);
                self.log(BackgroundEvent::CompactionFinished(report.clone()));
            }
            Ended::Failed { switched, error } => {
                self.report.compactions_failed += 1;
                self.log(BackgroundEvent::CompactionFailed {
                    switched: *switched,
                    error: error.to_string(),
                });
            }
            Ended::Skipped => self.report.compactions_skipped += 1,
        }
    }
}

/// One compaction, start to end. Errors only when the store is poisoned.
fn compact_once(store: &Store, config: &BackgroundConfig) -> Result<Ended> {
    let inner = &store.inner;
    let mut c = match store.start_compaction(config.compaction) {
        Ok(c) => c,
        // Nothing committed yet to compact.
        Err(Error::Invalid(_)) => return Ok(Ended::Skipped),
        Err(e) => return failed(store, false, e),
    };
    inner.lock()?.bg.log(BackgroundEvent::CompactionStarted {
        h0_update_seq: c.h0_update_seq(),
        purge_upto: c.purge_upto(),
        started_at_secs: c.started_at_secs(),
    });
    let hook = |phase| {
        if let Some(hook) = &config.between_steps {
            hook(store, phase);
        }
    };
    hook(c.phase());
    let mut steps = 0u64;
    loop {
        let before = c.phase();
        let progress = c.step();
        steps += 1;
        let switched = matches!(before, Phase::Copy | Phase::CatchUp)
            && matches!(c.phase(), Phase::Unlink | Phase::Done);
        if switched {
            inner.lock()?.bg.log(BackgroundEvent::CompactionSwitched {
                update_seq: c.report().final_update_seq,
                new_rev: c.report().new_rev,
            });
        }
        // The step may have released the store lock: wake the flusher.
        inner.notify();
        match progress {
            Ok(Progress::Running(phase)) => {
                if store.poisoned()?.is_some() {
                    // A failed flush poisoned the store: stop here (dropping
                    // an unswitched compaction removes its `.compact` file).
                    let switched = matches!(phase, Phase::Unlink);
                    drop(c);
                    return failed(store, switched, Error::Aborted);
                }
                hook(phase);
            }
            Ok(Progress::Done(report)) => return Ok(Ended::Finished { report, steps }),
            Err(e) => {
                let switched = matches!(c.phase(), Phase::Unlink | Phase::Done);
                drop(c);
                return failed(store, switched, e);
            }
        }
    }
}

/// A compaction that did not finish: Err if the store is poisoned (the
/// compactor stops), else how it ended.
fn failed(store: &Store, switched: bool, error: Error) -> Result<Ended> {
    store.inner.lock()?.check_writable()?;
    Ok(Ended::Failed { switched, error })
}
