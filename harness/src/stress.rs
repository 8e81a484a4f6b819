//! `crashfuzz stress`: crash the real thing. A driver process starts child
//! processes (the same binary, hidden subcommand `stress-child`) that open a
//! store in a real directory over [`engine::StdVfs`], run writers, the
//! background flusher and the background compactor (PiTR per the seed), and
//! stream every batch and every acknowledgment to the driver *before* a
//! writer can learn of it ([`engine::BackgroundObserver`]). The driver kills
//! the child with SIGKILL at a seeded moment, or the child dies at the Nth
//! hit of a failpoint the driver chose (`FAILPOINTS=<point>=<n>*off->panic`
//! in the child's environment; the child's panic hook ends the process right
//! there), then the next child reopens the directory, reads every header
//! back and reports it, and the driver judges it with the oracle
//! ([`oracle::Model`] fed the same sets, deletes, flushes and compactions in
//! the engine's order, then `crash`, then `check`).
//!
//! A process kill keeps the page cache: this checks the real code paths,
//! threads, syscalls and the recovery of a store cut anywhere, not power
//! loss (`crashfuzz replay-crashes` does that, see [`crate::crash_images`]).
//!
//! Everything chosen (store config, workload, kill moments, kill points)
//! comes from the seed and what earlier rounds reported; the only thing a
//! seed cannot pin down is the thread schedule, which is the point.

use crate::failure::{Check, HarnessCheck, Op};
use crate::realfs::{
    mix, mutant_from_env, mutant_prefix, open_and_report, ChildLines, Emitter, Msg, ProtocolError,
    RealFailure, WireMutation, EXIT_CHILD_STOPPED, STORE_NAME,
};
use crate::runner::FailureKind;
use engine::{
    BackgroundConfig, BackgroundEvent, BackgroundObserver, CompactionOptions, Config, FlushStart,
    ObserverHandle, PitrConfig, RecoveryPolicy, Store,
};
use oracle::{CompactionParams, Model, Pitr};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A child that has not reported its reopened store in this long hangs.
pub const OPEN_DEADLINE: Duration = Duration::from_secs(60);

/// The store configuration of a whole run (the directory keeps it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSpec {
    /// Tree fan-out.
    pub fanout: usize,
    /// Documents per compaction copy step.
    pub copy_batch_docs: usize,
    /// Unlocked catch-up rounds.
    pub catchup_rounds: usize,
    /// PiTR (granularity, max age), seconds.
    pub pitr: Option<(u64, u64)>,
    /// Strict recovery.
    pub strict: bool,
}

impl StoreSpec {
    /// The run's store configuration from its seed.
    pub fn from_seed(seed: u64) -> StoreSpec {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, u64::MAX));
        StoreSpec {
            fanout: rng.gen_range(3..=16),
            copy_batch_docs: rng.gen_range(1..=64),
            // At least one unlocked round, so `compact::catchup_unlocked` is
            // reachable in every run.
            catchup_rounds: rng.gen_range(1..=3),
            pitr: rng
                .gen_bool(0.5)
                .then(|| (rng.gen_range(1..=2), rng.gen_range(1..=6))),
            strict: rng.gen_bool(0.2),
        }
    }

    /// As an engine config (wall-clock timestamps).
    pub fn config(&self) -> Config {
        Config {
            fanout: self.fanout,
            recovery: if self.strict {
                RecoveryPolicy::Strict
            } else {
                RecoveryPolicy::TolerateCorruptTail
            },
            pitr: self.pitr.map(|(g, a)| PitrConfig {
                granularity_secs: g,
                max_history_age_secs: a,
            }),
            copy_batch_docs: self.copy_batch_docs,
            max_unlocked_catchup_rounds: self.catchup_rounds,
            ..Config::default()
        }
    }

    /// As the oracle's PiTR parameters.
    pub fn oracle_pitr(&self) -> Option<Pitr> {
        self.pitr.map(|(g, a)| Pitr {
            granularity_secs: g,
            max_age_secs: a,
        })
    }
}

/// Who compacts in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compactor {
    /// The background compactor, every `every` commits.
    Background {
        /// Commits between compactions.
        every: u64,
    },
    /// The child's own thread starts a compaction every `every`
    /// acknowledged flushes and aborts it (the background compactor idles).
    StartAndAbort {
        /// Acknowledged flushes between attempts.
        every: u64,
    },
}

/// What one child does (the driver decides, the child obeys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildPlan {
    /// The run's store configuration.
    pub store: StoreSpec,
    /// The seed of the child's own choices (keys, values).
    pub seed: u64,
    /// Writer threads.
    pub writers: usize,
    /// Keys `k000`..
    pub keys: u64,
    /// Percent of mutations that are deletes.
    pub delete_pct: u32,
    /// Longest value, bytes.
    pub max_value: usize,
    /// A writer waits for its write to be acknowledged every this many ops.
    pub sync_every: u64,
    /// Compaction.
    pub compactor: Compactor,
    /// Tombstones purged by compaction (everything allowed) or none.
    pub purge: bool,
}

/// How the driver ends a round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Kill {
    /// SIGKILL `delay_ms` after the child reported its open (or after the
    /// spawn, if `early`: a kill during exec or recovery).
    Time {
        /// Milliseconds.
        delay_ms: u64,
        /// Counted from the spawn rather than the open.
        early: bool,
    },
    /// The child dies at the `skip + 1`th hit of `point`; SIGKILL after
    /// `fallback_ms` if it never gets there.
    Failpoint {
        /// The failpoint.
        point: String,
        /// Hits let through first.
        skip: u64,
        /// Milliseconds after the open.
        fallback_ms: u64,
    },
}

impl Kill {
    /// The child's `FAILPOINTS`, if this kill sets one.
    pub fn failpoints_env(&self) -> Option<String> {
        match self {
            Kill::Failpoint { point, skip: 0, .. } => Some(format!("{point}=panic")),
            Kill::Failpoint { point, skip, .. } => Some(format!("{point}={skip}*off->panic")),
            Kill::Time { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------
// The child
// ---------------------------------------------------------------------------

/// What the child streams from the background threads, and the
/// acknowledged watermark writers wait on (so a writer learns of an
/// acknowledgment only after the driver was told).
struct Reporter {
    emitter: &'static Emitter,
    acked: Mutex<u64>,
    changed: Condvar,
}

impl Reporter {
    fn wait_acked(&self, seqno: u64) {
        let mut acked = self.acked.lock().unwrap_or_else(PoisonError::into_inner);
        while *acked < seqno {
            acked = self
                .changed
                .wait(acked)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn acked(&self) -> u64 {
        *self.acked.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BackgroundObserver for Reporter {
    fn flush_starting(&self, flush: &FlushStart<'_>) {
        self.emitter.emit(&Msg::FlushStarting {
            timestamp: flush.timestamp,
            rev: flush.rev,
            tip: flush.tip_update_seq,
            batch: flush.batch.iter().map(WireMutation::of).collect(),
        });
    }

    fn event(&self, event: &BackgroundEvent) {
        let msg = match event {
            BackgroundEvent::Flushed(info) => Msg::Flushed {
                update_seq: info.update_seq,
                timestamp: info.timestamp,
                rev: info.rev,
            },
            BackgroundEvent::CompactionStarted {
                h0_update_seq,
                purge_upto,
                started_at_secs,
            } => Msg::CompactionStarted {
                h0: *h0_update_seq,
                purge_upto: *purge_upto,
                started_at: *started_at_secs,
                manual: false,
            },
            BackgroundEvent::CompactionSwitched {
                update_seq,
                new_rev,
            } => Msg::CompactionSwitched {
                update_seq: *update_seq,
                new_rev: *new_rev,
            },
            BackgroundEvent::CompactionFinished(_) => Msg::CompactionFinished,
            BackgroundEvent::CompactionFailed { switched, error } => Msg::CompactionFailed {
                switched: *switched,
                error: error.clone(),
                manual: false,
            },
        };
        self.emitter.emit(&msg);
        if let BackgroundEvent::Flushed(info) = event {
            let mut acked = self.acked.lock().unwrap_or_else(PoisonError::into_inner);
            *acked = (*acked).max(info.update_seq);
            drop(acked);
            self.changed.notify_all();
        }
    }
}

fn stop(emitter: &Emitter, what: &str, e: &engine::Error) -> ! {
    emitter.emit(&Msg::Stopped {
        error: format!("{what}: {e}"),
    });
    std::process::exit(EXIT_CHILD_STOPPED)
}

/// The hidden `stress-child` subcommand: open `dir`, report it, and (unless
/// `check_only`) run the plan's workload until killed. Returns the exit code.
pub fn child_main(dir: &Path, plan: &ChildPlan, check_only: bool) -> i32 {
    let emitter: &'static Emitter = Box::leak(Box::default());
    crate::realfs::install_dying_panic_hook(emitter, None);
    // The fail crate's own interface: FAILPOINTS=name=actions;... (the
    // driver's kill point, or the user's). Nothing else configures
    // failpoints in this process.
    let _failpoints = fail::FailScenario::setup();
    let mutant = match mutant_from_env() {
        Ok(m) => m,
        Err(e) => {
            emitter.emit(&Msg::Stopped { error: e });
            return 2;
        }
    };
    engine::mutants::set(mutant);
    let config = plan.store.config();
    let store = match open_and_report(dir, &config, emitter) {
        Ok(store) => store,
        Err(code) => return code,
    };
    if check_only {
        return 0;
    }
    run_workload(&store, plan, emitter, mutant)
}

fn run_workload(
    store: &Store,
    plan: &ChildPlan,
    emitter: &'static Emitter,
    mutant: Option<engine::mutants::Mutant>,
) -> i32 {
    let reporter = Arc::new(Reporter {
        emitter,
        acked: Mutex::new(0),
        changed: Condvar::new(),
    });
    let purge_upto = plan.purge.then_some(u64::MAX);
    let background = store.start_background(BackgroundConfig {
        compact_every_commits: match plan.compactor {
            Compactor::Background { every } => Some(every),
            Compactor::StartAndAbort { .. } => None,
        },
        compaction: CompactionOptions {
            purge_upto,
            ..CompactionOptions::default()
        },
        record_events: false,
        between_steps: None,
        observer: Some(ObserverHandle(reporter.clone())),
    });
    let background = match background {
        Ok(bg) => bg,
        Err(e) => stop(emitter, "start background", &e),
    };
    if let Compactor::StartAndAbort { every } = plan.compactor {
        let (store, reporter) = (store.clone(), reporter.clone());
        std::thread::spawn(move || {
            engine::mutants::set(mutant);
            start_and_abort(&store, &reporter, every, purge_upto)
        });
    }
    let writers: Vec<_> = (0..plan.writers.max(1))
        .map(|w| {
            let (store, reporter, plan) = (store.clone(), reporter.clone(), plan.clone());
            std::thread::spawn(move || {
                engine::mutants::set(mutant);
                writer(&store, &reporter, &plan, w as u64)
            })
        })
        .collect();
    for w in writers {
        let _ = w.join();
    }
    drop(background);
    0
}

fn writer(store: &Store, reporter: &Reporter, plan: &ChildPlan, w: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(plan.seed, w));
    let mut value = Vec::new();
    for op in 1u64.. {
        let key = format!("k{:03}", rng.gen_range(0..plan.keys.max(1)));
        let result = if rng.gen_range(0..100) < plan.delete_pct {
            store.delete(key.as_bytes())
        } else {
            value.resize(rng.gen_range(0..=plan.max_value), 0);
            rng.fill_bytes(&mut value);
            store.set(key.as_bytes(), &value)
        };
        let seqno = match result {
            Ok(seqno) => seqno,
            Err(e) => stop(reporter.emitter, "write", &e),
        };
        if op % plan.sync_every.max(1) == 0 {
            reporter.wait_acked(seqno);
        }
    }
}

fn start_and_abort(store: &Store, reporter: &Reporter, every: u64, purge_upto: Option<u64>) {
    loop {
        // `every` more acknowledged flushes first (seqnos rise with them).
        for _ in 0..every.max(1) {
            let acked = reporter.acked();
            reporter.wait_acked(acked + 1);
        }
        let c = match store.start_compaction(CompactionOptions {
            purge_upto,
            ..CompactionOptions::default()
        }) {
            Ok(c) => c,
            Err(engine::Error::Invalid(_) | engine::Error::CompactionRunning) => continue,
            Err(e) => stop(reporter.emitter, "start compaction", &e),
        };
        reporter.emitter.emit(&Msg::CompactionStarted {
            h0: c.h0_update_seq(),
            purge_upto: c.purge_upto(),
            started_at: c.started_at_secs(),
            manual: true,
        });
        if let Err(e) = c.abort() {
            stop(reporter.emitter, "abort compaction", &e);
        }
        reporter.emitter.emit(&Msg::CompactionFailed {
            switched: false,
            error: "aborted".into(),
            manual: true,
        });
    }
}

// ---------------------------------------------------------------------------
// The judge: the oracle fed from the stream
// ---------------------------------------------------------------------------

/// A step of a compaction, at the tip it belongs after.
#[derive(Debug)]
enum CStep {
    Started(CompactionParams),
    Switched,
    Aborted,
}

#[derive(Debug)]
struct FlushRecord {
    timestamp: u64,
    batch: Vec<WireMutation>,
    acked: Option<(u64, u64)>,
}

/// Why a round was judged a failure: kind, invariant, message.
type Verdict = (FailureKind, Check, String);

fn verdict(kind: FailureKind, check: impl Into<Check>, message: impl Into<String>) -> Verdict {
    (kind, check.into(), message.into())
}

/// The oracle and what it needs to be fed across rounds.
#[derive(Debug)]
pub struct Judge {
    model: Model,
    pitr: Option<Pitr>,
    /// The revision the store is on, as far as the driver knows.
    rev: u64,
    /// Acknowledged flushes, all rounds.
    pub acked_commits: u64,
    /// Oracle checks passed.
    pub checks: u64,
}

impl Judge {
    /// A fresh store with this configuration.
    pub fn new(spec: &StoreSpec) -> Judge {
        Judge {
            model: Model::new(),
            pitr: spec.oracle_pitr(),
            rev: 1,
            acked_commits: 0,
            checks: 0,
        }
    }

    /// The store was reopened after a crash (or a clean close): check it.
    fn check_opened(
        &mut self,
        rev: u64,
        recovered: &oracle::RecoveredStore,
    ) -> Result<(), Verdict> {
        self.model.crash();
        let checked = catch_unwind(AssertUnwindSafe(|| {
            self.model.check(recovered).map(|_| ()).map_err(Box::new)
        }));
        match checked {
            Ok(Ok(_)) => {
                self.checks += 1;
                self.rev = rev;
                Ok(())
            }
            Ok(Err(d)) => Err(verdict(
                FailureKind::Divergence,
                d.invariant,
                format!("DIVERGENCE after the reopen:\n{d}"),
            )),
            Err(_) => Err(verdict(
                FailureKind::Divergence,
                HarnessCheck::EventOrder,
                "the oracle refused the event sequence (see the panic above)",
            )),
        }
    }

    /// Feed the model one round's stream (after the `opened` line), in the
    /// engine's linearization order: flushes in stream order (the flusher
    /// announces and acknowledges each under the store's memory lock), and
    /// compaction steps placed by the tip they happened at, as
    /// `tests/threads_support` does. A flush on a newer revision than the
    /// driver knows is a switch whose event the kill cut off.
    fn feed(&mut self, msgs: &[Msg]) -> Result<(), Verdict> {
        let mut flushes: Vec<FlushRecord> = Vec::new();
        let mut steps: Vec<(Option<u64>, CStep)> = Vec::new();
        let mut running: Option<bool> = None; // Some(manual) while running
        let mut switched_revs = BTreeSet::new();
        let mut rev = self.rev;
        for msg in msgs {
            match msg {
                Msg::FlushStarting {
                    timestamp,
                    rev: flush_rev,
                    tip,
                    batch,
                } => {
                    if flushes.last().is_some_and(|f| f.acked.is_none()) {
                        return Err(protocol("a flush started before the last one ended"));
                    }
                    if batch.is_empty() {
                        return Err(protocol("a flush of an empty batch was announced"));
                    }
                    if *flush_rev > rev {
                        if running.is_some() {
                            steps.push((Some(*tip), CStep::Switched));
                            running = None;
                        }
                        switched_revs.insert(*flush_rev);
                        rev = *flush_rev;
                    }
                    flushes.push(FlushRecord {
                        timestamp: *timestamp,
                        batch: batch.clone(),
                        acked: None,
                    });
                }
                Msg::Flushed {
                    update_seq,
                    timestamp,
                    ..
                } => match flushes.last_mut() {
                    Some(f) if f.acked.is_none() => f.acked = Some((*update_seq, *timestamp)),
                    _ => return Err(protocol("an acknowledgment without its flush")),
                },
                Msg::CompactionStarted {
                    h0,
                    purge_upto,
                    started_at,
                    manual,
                } => {
                    if running.is_some() {
                        return Err(protocol("a second compaction started"));
                    }
                    running = Some(*manual);
                    steps.push((
                        Some(*h0),
                        CStep::Started(CompactionParams {
                            purge_upto: *purge_upto,
                            pitr: self.pitr,
                            now_secs: *started_at,
                        }),
                    ));
                }
                Msg::CompactionSwitched {
                    update_seq,
                    new_rev,
                } => {
                    if !switched_revs.contains(new_rev) {
                        if running.is_none() {
                            return Err(protocol("a switch with no compaction running"));
                        }
                        steps.push((Some(*update_seq), CStep::Switched));
                        running = None;
                        switched_revs.insert(*new_rev);
                        rev = rev.max(*new_rev);
                    }
                }
                Msg::CompactionFinished => running = None,
                Msg::CompactionFailed {
                    switched: false,
                    manual,
                    ..
                } => {
                    if running == Some(*manual) {
                        steps.push((None, CStep::Aborted));
                        running = None;
                    }
                }
                Msg::CompactionFailed {
                    switched: true,
                    error,
                    ..
                } => {
                    return Err(verdict(
                        FailureKind::Divergence,
                        HarnessCheck::ExplainedError(Op::Background),
                        format!("a compaction failed after its switch: {error}"),
                    ))
                }
                Msg::Opened { .. }
                | Msg::OpenFailed { .. }
                | Msg::ReadFailed { .. }
                | Msg::Died { .. }
                | Msg::Stopped { .. } => {}
            }
        }
        // An abort happened before the next step's tip (or at the end).
        let mut next = u64::MAX;
        let mut resolved: Vec<(u64, CStep)> = Vec::with_capacity(steps.len());
        for (tip, step) in steps.into_iter().rev() {
            let tip = tip.unwrap_or(next);
            next = tip;
            resolved.push((tip, step));
        }
        resolved.reverse();
        let mut steps: VecDeque<(u64, CStep)> = resolved.into();
        let feed = catch_unwind(AssertUnwindSafe(|| {
            self.feed_in_order(&flushes, &mut steps)
        }));
        match feed {
            Ok(result) => {
                self.rev = rev;
                result
            }
            Err(_) => Err(verdict(
                FailureKind::Divergence,
                HarnessCheck::EventOrder,
                "the oracle refused the event sequence the child reported",
            )),
        }
    }

    fn feed_in_order(
        &mut self,
        flushes: &[FlushRecord],
        steps: &mut VecDeque<(u64, CStep)>,
    ) -> Result<(), Verdict> {
        let mut in_flight = false;
        for f in flushes {
            let Some(last) = f.batch.last() else {
                return Err(protocol("empty batch"));
            };
            let update_seq = last.seqno;
            while steps.front().is_some_and(|(tip, _)| *tip < update_seq) {
                if let Some((_, step)) = steps.pop_front() {
                    self.apply(step);
                }
            }
            for m in &f.batch {
                let (key, digest) = m.decode().map_err(|e| protocol(&e.0))?;
                let expected = self.model.next_seqno();
                let got = if m.deleted {
                    self.model.delete(&key)
                } else {
                    self.model.set(&key, &digest)
                };
                if got != m.seqno {
                    return Err(verdict(
                        FailureKind::Divergence,
                        HarnessCheck::SeqnoOrder,
                        format!(
                            "DIVERGENCE: the engine gave seqno {} to a mutation of key {} where \
                             the next seqno is {expected} (seqnos must rise past every \
                             recovered update_seq and never repeat)",
                            m.seqno, m.key
                        ),
                    ));
                }
            }
            self.model.flush_started(f.timestamp);
            match f.acked {
                Some((acked_seq, ts)) => {
                    if acked_seq != update_seq {
                        return Err(verdict(
                            FailureKind::Divergence,
                            HarnessCheck::AckedHeader,
                            format!(
                                "the flush of seqnos up to {update_seq} was acknowledged with \
                                 update_seq {acked_seq}"
                            ),
                        ));
                    }
                    self.acked_commits += 1;
                    self.model.flush_acked(acked_seq, ts).map_err(|d| {
                        verdict(
                            FailureKind::Divergence,
                            d.invariant,
                            format!("DIVERGENCE at an acknowledged flush:\n{d}"),
                        )
                    })?;
                }
                None => in_flight = true,
            }
        }
        for (_, step) in steps.drain(..) {
            if in_flight && !matches!(step, CStep::Aborted) {
                return Err(protocol("a compaction step after the flush in flight"));
            }
            self.apply(step);
        }
        Ok(())
    }

    fn apply(&mut self, step: CStep) {
        match step {
            CStep::Started(params) => self.model.compaction_started(params),
            CStep::Switched => self.model.compaction_switched(),
            CStep::Aborted => self.model.compaction_aborted(),
        }
    }
}

fn protocol(what: &str) -> Verdict {
    verdict(
        FailureKind::Divergence,
        HarnessCheck::EventOrder,
        format!("the child's stream cannot be linearized: {what}"),
    )
}

// ---------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------

/// `crashfuzz stress` options.
#[derive(Clone, Debug)]
pub struct StressOptions {
    /// The seed.
    pub seed: u64,
    /// Round budget.
    pub rounds: Option<u64>,
    /// Time budget.
    pub time: Option<Duration>,
    /// The directory (default: a fresh temporary one).
    pub dir: Option<PathBuf>,
    /// Where to show progress (the CLI draws a bar).
    pub progress: Option<crate::progress::ProgressSink>,
    /// The `crashfuzz` binary to start children from.
    pub exe: PathBuf,
    /// `FAILPOINTS` the user set for every child (the driver then chooses
    /// no kill points of its own).
    pub user_failpoints: Option<String>,
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StressReport {
    /// The seed.
    pub seed: u64,
    /// The store configuration the seed chose.
    pub store: Option<StoreSpec>,
    /// Rounds (children killed or dead, then reopened and checked).
    pub rounds: u64,
    /// Round ends by kind: `time` (SIGKILL after a delay), `time-early`
    /// (SIGKILL before the open was reported), `failpoint` (died at the
    /// driver's kill point), `user-failpoint` (died at a FAILPOINTS action
    /// the user set).
    pub kills: BTreeMap<String, u64>,
    /// Flushes acknowledged to writers, all rounds.
    pub acknowledged_commits: u64,
    /// Oracle checks of a reopened store that passed.
    pub checks: u64,
    /// Failpoints a child died at, with how often.
    pub failpoints_used: BTreeMap<String, u64>,
    /// How many catalog failpoints were used as kill points / exist.
    pub failpoints_used_count: usize,
    /// Catalog size.
    pub failpoints_total: usize,
    /// Catalog failpoints never used as a kill point.
    pub failpoints_unused: Vec<String>,
    /// Wall time, seconds.
    pub elapsed_secs: f64,
    /// Rounds per second.
    pub rounds_per_sec: f64,
    /// The failures (the run stops at the first).
    pub failures: Vec<RealFailure>,
}

impl StressReport {
    /// The exit code: the first failure's, else 0.
    pub fn exit_code(&self) -> u8 {
        self.failures
            .first()
            .map_or(0, |f| f.kind.exit_code() as u8)
    }
}

/// How a child's round ended.
#[derive(Debug)]
struct RoundEnd {
    msgs: Vec<Msg>,
    stderr: String,
    kill_kind: &'static str,
    died_at: Option<String>,
    hang: Option<String>,
    protocol: Option<ProtocolError>,
}

/// Spawn a child and collect its stream until it dies or is killed.
fn run_child(
    opts: &StressOptions,
    dir: &Path,
    plan: &ChildPlan,
    kill: Option<&Kill>,
) -> Result<RoundEnd, String> {
    let plan_json = serde_json::to_string(plan).map_err(|e| format!("plan: {e}"))?;
    let mut cmd = Command::new(&opts.exe);
    cmd.arg("stress-child")
        .arg("--dir")
        .arg(dir)
        .arg("--plan")
        .arg(&plan_json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match kill {
        None => {
            cmd.arg("--check-only").env_remove("FAILPOINTS");
        }
        Some(k) => match (&opts.user_failpoints, k.failpoints_env()) {
            (Some(user), _) => {
                cmd.env("FAILPOINTS", user);
            }
            (None, Some(ours)) => {
                cmd.env("FAILPOINTS", ours);
            }
            (None, None) => {
                cmd.env_remove("FAILPOINTS");
            }
        },
    }
    let spawned = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", opts.exe.display()))?;
    let lines = ChildLines::new(&mut child);
    let mut msgs = Vec::new();
    let mut opened_at: Option<Instant> = None;
    let mut protocol_error = None;
    let mut hang = None;
    let mut killed_by_us = false;
    loop {
        let now = Instant::now();
        let deadline = match (kill, opened_at) {
            (
                Some(Kill::Time {
                    delay_ms,
                    early: true,
                }),
                _,
            ) => spawned + Duration::from_millis(*delay_ms),
            (_, None) => spawned + OPEN_DEADLINE,
            (Some(Kill::Time { delay_ms, .. }), Some(t)) => t + Duration::from_millis(*delay_ms),
            (Some(Kill::Failpoint { fallback_ms, .. }), Some(t)) => {
                t + Duration::from_millis(*fallback_ms)
            }
            // A check-only child exits by itself once it reported.
            (None, Some(t)) => t + OPEN_DEADLINE,
        };
        match lines
            .rx
            .recv_timeout(deadline.saturating_duration_since(now))
        {
            Ok(Ok(msg)) => {
                if matches!(msg, Msg::Opened { .. }) {
                    opened_at = Some(Instant::now());
                }
                msgs.push(msg);
            }
            Ok(Err(e)) => {
                protocol_error = Some(e);
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                let early = matches!(kill, Some(Kill::Time { early: true, .. }));
                if opened_at.is_none() && !early {
                    hang = Some(format!(
                        "the child did not report its reopened store within {OPEN_DEADLINE:?}"
                    ));
                } else if kill.is_none() {
                    hang = Some(format!(
                        "the check-only child did not exit within {OPEN_DEADLINE:?}"
                    ));
                }
                killed_by_us = true;
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // SIGKILL (a no-op error if it already exited), then reap it.
    let _ = child.kill();
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the child: {e}"))?;
    let (rest, stderr) = lines.finish();
    for line in rest {
        match line {
            Ok(msg) => msgs.push(msg),
            Err(e) => {
                protocol_error.get_or_insert(e);
            }
        }
    }
    let died_at = msgs.iter().find_map(|m| match m {
        Msg::Died { point: Some(p), .. } => Some(p.clone()),
        _ => None,
    });
    let kill_kind = if died_at.is_some() {
        if opts.user_failpoints.is_some() {
            "user-failpoint"
        } else {
            "failpoint"
        }
    } else if killed_by_us && opened_at.is_none() {
        "time-early"
    } else if killed_by_us {
        "time"
    } else if status.success() {
        "exited"
    } else {
        "died"
    };
    Ok(RoundEnd {
        msgs,
        stderr,
        kill_kind,
        died_at,
        hang,
        protocol: protocol_error,
    })
}

/// Judge one child's stream: the reopen first, then what it did.
fn judge_round(judge: &mut Judge, end: &RoundEnd, check_only: bool) -> Result<(), Verdict> {
    if let Some(e) = &end.protocol {
        return Err(verdict(
            FailureKind::Divergence,
            HarnessCheck::PipeProtocol,
            e.to_string(),
        ));
    }
    if let Some(h) = &end.hang {
        return Err(verdict(
            FailureKind::Hang,
            HarnessCheck::ChildHang,
            h.clone(),
        ));
    }
    let mut opened = false;
    for msg in &end.msgs {
        match msg {
            Msg::Opened { rev, recovered } => {
                judge.check_opened(*rev, &recovered.to_recovered())?;
                opened = true;
            }
            Msg::OpenFailed { error } => {
                return Err(verdict(
                    FailureKind::RecoveryError,
                    HarnessCheck::Recoverable,
                    format!("the store did not reopen after a process kill: {error}"),
                ))
            }
            Msg::ReadFailed { error } => {
                return Err(verdict(
                    FailureKind::Divergence,
                    HarnessCheck::Verify,
                    format!("the reopened store does not read back: {error}"),
                ))
            }
            Msg::Died {
                point: None,
                message,
            } => {
                return Err(verdict(
                    FailureKind::Panic,
                    HarnessCheck::NoPanic,
                    format!("the engine panicked: {message}"),
                ))
            }
            Msg::Stopped { error } => {
                return Err(verdict(
                    FailureKind::Divergence,
                    HarnessCheck::ExplainedError(Op::Background),
                    format!("the engine returned an error no kill explains: {error}"),
                ))
            }
            _ => {}
        }
    }
    if opened {
        judge.feed(&end.msgs)?;
    } else if check_only {
        return Err(verdict(
            FailureKind::RecoveryError,
            HarnessCheck::Recoverable,
            format!(
                "the final check child ended ({}) without reporting",
                end.kill_kind
            ),
        ));
    }
    Ok(())
}

/// A kill point is preferred while unused for at most this many rounds.
const MAX_TRIES: u64 = 6;

/// The failpoints that need some state left by the previous round.
const CLEANUP_POINTS: [&str; 2] = ["recovery::before_cleanup", "recovery::after_cleanup"];
const TRUNCATE_POINTS: [&str; 2] = ["recovery::before_truncate", "recovery::after_truncate"];

/// Points whose kill leaves stale files for the next open to remove.
fn leaves_stale_files(point: &str) -> bool {
    point.starts_with("compact::")
        && !matches!(
            point,
            "compact::start"
                | "compact::after_unlink"
                | "compact::before_unlink_dir_sync"
                | "compact::after_unlink_dir_sync"
                | "compact::abort"
        )
}

/// Points whose kill leaves a commit's data with no header after it.
fn leaves_headerless_tail(point: &str) -> bool {
    matches!(
        point,
        "flush::after_bodies"
            | "flush::before_data_sync"
            | "flush::after_data_sync"
            | "flush::before_header"
    )
}

/// Choose round `round`'s child plan and kill: deterministic from the seed
/// and the kill points already used.
fn plan_round(
    opts: &StressOptions,
    spec: &StoreSpec,
    round: u64,
    used: &BTreeMap<String, u64>,
    tried: &BTreeMap<String, u64>,
    previous_death: Option<&str>,
) -> (ChildPlan, Kill) {
    let seed = mix(opts.seed, round);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let unused = |names: &[&'static str]| -> Vec<&'static str> {
        names
            .iter()
            .copied()
            .filter(|n| !used.contains_key(*n))
            .collect()
    };
    let catalog: Vec<&'static str> = engine::failpoints::all().collect();
    let target: Option<String> = if opts.user_failpoints.is_some() || rng.gen_bool(0.35) {
        None
    } else {
        let cleanup = unused(&CLEANUP_POINTS);
        let truncate = unused(&TRUNCATE_POINTS);
        let pick = |v: &[&'static str], rng: &mut ChaCha8Rng| v[rng.gen_range(0..v.len())];
        let point = match previous_death {
            Some(p) if leaves_stale_files(p) && !cleanup.is_empty() => pick(&cleanup, &mut rng),
            Some(p) if leaves_headerless_tail(p) && !truncate.is_empty() => {
                pick(&truncate, &mut rng)
            }
            _ => {
                // Unused points first, unless they were tried often in
                // vain (a point this run's configuration never reaches).
                let fresh: Vec<&'static str> = unused(&catalog)
                    .into_iter()
                    .filter(|n| !n.starts_with("recovery::"))
                    .filter(|n| tried.get(*n).copied().unwrap_or(0) < MAX_TRIES)
                    .collect();
                if !fresh.is_empty() && rng.gen_bool(0.8) {
                    pick(&fresh, &mut rng)
                } else {
                    pick(&catalog, &mut rng)
                }
            }
        };
        Some(point.to_string())
    };
    let compaction_target = target
        .as_deref()
        .is_some_and(|p| p.starts_with("compact::"));
    let compactor = if target.as_deref() == Some("compact::abort") || rng.gen_bool(0.1) {
        Compactor::StartAndAbort {
            every: rng.gen_range(1..=4),
        }
    } else if compaction_target {
        Compactor::Background {
            every: rng.gen_range(1..=4),
        }
    } else {
        Compactor::Background {
            every: rng.gen_range(2..=24),
        }
    };
    let plan = ChildPlan {
        store: spec.clone(),
        seed,
        writers: rng.gen_range(1..=4),
        keys: [8, 32, 128, 200][rng.gen_range(0..4)],
        delete_pct: rng.gen_range(0..=30),
        max_value: [16, 300, 5_000][rng.gen_range(0..3)],
        sync_every: rng.gen_range(1..=64),
        compactor,
        purge: rng.gen_bool(0.5),
    };
    let kill = match target {
        Some(point) => Kill::Failpoint {
            skip: if point.starts_with("recovery::") {
                0
            } else {
                rng.gen_range(0..=3)
            },
            point,
            fallback_ms: rng.gen_range(150..=800),
        },
        None => {
            let early = rng.gen_bool(0.1);
            Kill::Time {
                delay_ms: if early {
                    rng.gen_range(0..=40)
                } else {
                    rng.gen_range(1..=400)
                },
                early,
            }
        }
    };
    (plan, kill)
}

fn replay_command(opts: &StressOptions, rounds: u64) -> String {
    let dir = opts
        .dir
        .as_ref()
        .map(|d| format!(" --dir {}", d.display()))
        .unwrap_or_default();
    let fp = opts
        .user_failpoints
        .as_ref()
        .map(|f| format!("FAILPOINTS='{f}' "))
        .unwrap_or_default();
    format!(
        "{fp}{}crashfuzz stress --seed {} --rounds {rounds}{dir}",
        mutant_prefix(),
        opts.seed
    )
}

/// Run `crashfuzz stress`.
pub fn run(opts: &StressOptions) -> Result<StressReport, String> {
    let started = Instant::now();
    let tmp;
    let dir = match &opts.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            let names = std::fs::read_dir(d)
                .map_err(|e| format!("{}: {e}", d.display()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(STORE_NAME))
                .count();
            if names > 0 {
                return Err(format!(
                    "{} already holds a store: give an empty directory",
                    d.display()
                ));
            }
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("crashfuzz-stress-")
                .tempdir()
                .map_err(|e| format!("temporary directory: {e}"))?;
            tmp.path().to_path_buf()
        }
    };
    let spec = StoreSpec::from_seed(opts.seed);
    let mut judge = Judge::new(&spec);
    let mut report = StressReport {
        seed: opts.seed,
        store: Some(spec.clone()),
        failpoints_total: engine::failpoints::all().count(),
        ..StressReport::default()
    };
    let bar: std::sync::Arc<dyn crate::progress::Progress> = match &opts.progress {
        Some(sink) => sink.0.clone(),
        None => std::sync::Arc::new(crate::progress::NoProgress),
    };
    bar.set_length(opts.rounds);
    let mut previous_death: Option<String> = None;
    let mut tried: BTreeMap<String, u64> = BTreeMap::new();
    let mut round = 0u64;
    loop {
        let out_of_rounds = opts.rounds.is_some_and(|n| round >= n);
        let out_of_time = opts.time.is_some_and(|t| started.elapsed() >= t);
        if out_of_rounds || out_of_time {
            break;
        }
        let (plan, kill) = plan_round(
            opts,
            &spec,
            round,
            &report.failpoints_used,
            &tried,
            previous_death.as_deref(),
        );
        if let Kill::Failpoint { point, .. } = &kill {
            *tried.entry(point.clone()).or_default() += 1;
        }
        let end = run_child(opts, &dir, &plan, Some(&kill))?;
        *report.kills.entry(end.kill_kind.to_string()).or_default() += 1;
        if let Some(p) = &end.died_at {
            *report.failpoints_used.entry(p.clone()).or_default() += 1;
        }
        previous_death = end.died_at.clone();
        round += 1;
        report.rounds = round;
        if let Err((kind, invariant, message)) = judge_round(&mut judge, &end, false) {
            report.failures.push(RealFailure {
                kind,
                check: invariant,
                message: format!(
                    "{message}\nround {} plan {plan:?}, kill {kill:?}",
                    round - 1
                ),
                at: format!("seed {} round {}", opts.seed, round - 1),
                replay: replay_command(opts, round),
                child_stderr: end.stderr,
            });
            break;
        }
        bar.set_position(round);
        bar.set_message(format!(
            "{} acked, {}/{} kill points",
            judge.acked_commits,
            report.failpoints_used.len(),
            report.failpoints_total
        ));
    }
    if report.failures.is_empty() && round > 0 {
        // The last kill is checked by one more open, with no kill.
        let (plan, _) = plan_round(opts, &spec, round, &report.failpoints_used, &tried, None);
        let end = run_child(opts, &dir, &plan, None)?;
        if let Err((kind, invariant, message)) = judge_round(&mut judge, &end, true) {
            report.failures.push(RealFailure {
                kind,
                check: invariant,
                message,
                at: format!("seed {} final check after round {}", opts.seed, round - 1),
                replay: replay_command(opts, round),
                child_stderr: end.stderr,
            });
        }
    }
    bar.finish();
    report.acknowledged_commits = judge.acked_commits;
    report.checks = judge.checks;
    report.failpoints_used_count = report.failpoints_used.len();
    report.failpoints_unused = engine::failpoints::all()
        .filter(|n| !report.failpoints_used.contains_key(*n))
        .map(str::to_string)
        .collect();
    report.elapsed_secs = started.elapsed().as_secs_f64();
    report.rounds_per_sec = report.rounds as f64 / report.elapsed_secs.max(1e-9);
    Ok(report)
}

/// Check a user's `FAILPOINTS` value the way `fail::FailScenario::setup`
/// would read it, without panicking: Err names the bad entry.
pub fn validate_failpoints(value: &str) -> Result<(), String> {
    for entry in value.trim().split(';') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((name, actions)) = entry.split_once('=') else {
            return Err(format!("FAILPOINTS entry {entry:?} is not name=actions"));
        };
        fail::cfg(name, actions).map_err(|e| format!("FAILPOINTS entry {entry:?}: {e}"))?;
        fail::remove(name);
        if !engine::failpoints::all().any(|n| n == name) {
            return Err(format!(
                "FAILPOINTS names {name:?}, which is not a failpoint (see `crashfuzz catalog`)"
            ));
        }
    }
    Ok(())
}

/// Print the human summary.
pub fn summary(report: &StressReport) -> String {
    let kills: Vec<String> = report
        .kills
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    format!(
        "{} rounds in {:.1}s ({:.1}/s): kills [{}], {} acknowledged commits, {} oracle checks, \
         failpoints used as kill points {}/{}{}",
        report.rounds,
        report.elapsed_secs,
        report.rounds_per_sec,
        kills.join(", "),
        report.acknowledged_commits,
        report.checks,
        report.failpoints_used_count,
        report.failpoints_total,
        if report.failpoints_unused.is_empty() {
            String::new()
        } else {
            format!(" (unused: {})", report.failpoints_unused.join(", "))
        }
    )
}
