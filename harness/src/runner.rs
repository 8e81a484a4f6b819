//! `run`: one scenario, start to end, on the simulated disk, with the oracle
//! fed in lockstep. After every crash: reboot the disk into its post-crash
//! image, recover (crashing again during recovery when the scenario says
//! so), `verify` every header, and let the oracle judge what came back.

use crate::extract::extract_cached;
pub use crate::extract::{extract, extract_headers};
pub use crate::failure::{replay_command, Failure, FailureKind};
use crate::failure::{Check, HarnessCheck, Op};
use crate::scenario::{failpoint_name, Scenario, Step, FAULT_STEPS, IO_KINDS, KEY_SPACE};
use crate::watch::{Watch, WatchVfs, WatchdogExpired, DEFAULT_CALL_BUDGET, DEFAULT_DISK_CEILING};
use engine::mutants::Mutant;
use engine::vfs::Vfs;
use engine::Clock;
use engine::{
    Compaction, CompactionOptions, Config, ManualClock, Phase, PitrConfig, Progress,
    RecoveryPolicy, Store,
};
use failpoints::{
    Coverage, CrashMode, CrashTrigger, FaultConfig, FsyncFailure, IoKind, SimVfs, TearUnit,
};
use oracle::{CompactionParams, Model, Pitr};
use sha2::{Digest, Sha256};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

pub use crate::extract::DB_DIR;
/// The store's name.
pub const DB_NAME: &str = "db";
/// Compaction steps a `CompactFinish` may take before it is a hang.
pub const MAX_COMPACTION_STEPS: usize = 10_000;
/// Crashes in a row during one recovery before giving up on the scenario.
const MAX_RECOVERY_CRASHES: usize = 4;

/// What a passing run did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// SHA-256 over the trace, equal for equal runs (empty unless
    /// `keep_trace` was set).
    pub trace_digest: String,
    /// Post-crash images recovered and checked.
    pub crash_states: u64,
    /// Oracle checks passed (crash recoveries and live checks).
    pub checks: u64,
    /// Failpoint hits and crashes.
    pub coverage: Coverage,
    /// The trace, if asked for.
    pub trace: Vec<String>,
    /// What the engine acknowledged, refused and aborted, and why.
    pub sanity: Sanity,
}

/// Sanity counters: what the engine acknowledged, and every error it
/// returned, by the cause that explained it. A run whose engine acknowledges
/// nothing is visibly wrong here before any check fails; an unexplained
/// error is a failure ([`FailureKind::UnexpectedError`]), so in a passing
/// run `unexplained_errors` is 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sanity {
    /// Flushes acknowledged (header fsync returned Ok).
    pub commits_acked: u64,
    /// Flush errors explained by a fault injected during the flush (EIO, a
    /// crash cutting it).
    pub flush_errors_injected: u64,
    /// Flush errors explained otherwise (the store was poisoned by an
    /// earlier explained fault).
    pub flush_errors_explained: u64,
    /// Set/delete refused, explained (poisoned store, crashed disk).
    pub mutations_refused: u64,
    /// Compactions started.
    pub compactions_started: u64,
    /// Compactions that switched files and finished.
    pub compactions_finished: u64,
    /// Compactions aborted on request (`CompactAbort`).
    pub compactions_aborted_requested: u64,
    /// Compactions aborted by an injected fault (EIO, Windows busy rename).
    pub compactions_aborted_fault: u64,
    /// Compactions cut by a crash.
    pub compactions_cut_by_crash: u64,
    /// Compaction start refused: one is already running.
    pub compaction_start_refused_running: u64,
    /// Compaction start refused: nothing committed yet (the model agrees).
    pub compaction_start_refused_empty: u64,
    /// Compaction start refused by an injected fault or a poisoned store.
    pub compaction_start_refused_fault: u64,
    /// Strict opens refused where the crash image could hold a damaged tail.
    pub strict_refusals_damage: u64,
    /// Reads (checks) cut short by a crash or an injected read fault.
    pub reads_cut: u64,
    /// Opens failed by an injected fault, then retried.
    pub opens_failed_injected: u64,
    /// Errors no injected fault explains (each one fails its run).
    pub unexplained_errors: u64,
    /// The most disk calls one step made (the watchdog's budget is
    /// [`crate::watch::DEFAULT_CALL_BUDGET`]).
    pub max_calls_per_step: u64,
}

impl Sanity {
    /// Add `other` into `self` (maxima stay maxima).
    pub fn merge(&mut self, other: &Sanity) {
        self.commits_acked += other.commits_acked;
        self.flush_errors_injected += other.flush_errors_injected;
        self.flush_errors_explained += other.flush_errors_explained;
        self.mutations_refused += other.mutations_refused;
        self.compactions_started += other.compactions_started;
        self.compactions_finished += other.compactions_finished;
        self.compactions_aborted_requested += other.compactions_aborted_requested;
        self.compactions_aborted_fault += other.compactions_aborted_fault;
        self.compactions_cut_by_crash += other.compactions_cut_by_crash;
        self.compaction_start_refused_running += other.compaction_start_refused_running;
        self.compaction_start_refused_empty += other.compaction_start_refused_empty;
        self.compaction_start_refused_fault += other.compaction_start_refused_fault;
        self.strict_refusals_damage += other.strict_refusals_damage;
        self.reads_cut += other.reads_cut;
        self.opens_failed_injected += other.opens_failed_injected;
        self.unexplained_errors += other.unexplained_errors;
        self.max_calls_per_step = self.max_calls_per_step.max(other.max_calls_per_step);
    }
}

/// Why an engine error is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// The disk crashed during the call.
    Crash,
    /// The disk injected a fault (EIO, busy) during the call and the engine
    /// reported an I/O error (or poisoned itself because of it).
    Fault,
    /// The store was poisoned by an earlier explained fault.
    Poisoned,
}

/// Options of one run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep the trace lines in the outcome (the digest is always computed).
    pub keep_trace: bool,
    /// Switch a seeded bug on (needs the `mutants` feature).
    pub mutant: Option<Mutant>,
    /// Print each trace line to stderr as it happens.
    pub echo: bool,
}

/// Run one scenario. Never panics: an engine panic becomes a
/// [`FailureKind::Panic`] failure.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<Outcome, Box<Failure>> {
    guarded(scenario, options, "engine panicked", || {
        Runner::new(scenario, options).run_all()
    })
}

/// Run `body` with the failpoint callbacks installed and `options.mutant`
/// switched on for this thread; a panic inside becomes a
/// [`FailureKind::Panic`] failure whose message starts with `context`.
pub(crate) fn guarded(
    scenario: &Scenario,
    options: &RunOptions,
    context: &str,
    body: impl FnOnce() -> Result<Outcome, Box<Failure>>,
) -> Result<Outcome, Box<Failure>> {
    // One callback per failpoint name, registered once per process (the
    // harness never clears the `fail` registry).
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        failpoints::install_failpoint_callbacks();
        // The watchdog's panic is how a hang leaves the engine, not a bug
        // to print a backtrace for: the runner reports it as a failure.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<WatchdogExpired>().is_none() {
                previous(info);
            }
        }));
    });
    engine::mutants::set(options.mutant);
    let result = catch_unwind(AssertUnwindSafe(body));
    engine::mutants::set(None);
    result.unwrap_or_else(|payload| {
        let (message, watchdog) = panic_message(payload.as_ref());
        let (kind, check) = if watchdog {
            (FailureKind::Hang, HarnessCheck::Watchdog)
        } else {
            (FailureKind::Panic, HarnessCheck::NoPanic)
        };
        let mut failure = Failure::new(kind, check, format!("{context}: {message}"), scenario);
        failure.mutant = options.mutant;
        Err(Box::new(failure))
    })
}

/// The message of a panic payload, and whether it was the watchdog.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> (String, bool) {
    if let Some(w) = payload.downcast_ref::<WatchdogExpired>() {
        return (w.to_string(), true);
    }
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic with a non-string payload".into());
    (message, false)
}

/// Whether the disk injected `err`: a simulated crash, an injected EIO,
/// ENOSPC or short write, or Windows' busy rename/unlink.
pub(crate) fn is_injected(err: &std::io::Error) -> bool {
    failpoints::is_simulated_crash(err) || failpoints::is_injected_fault(err)
}

/// The value a `Set` step writes: unique per version, `len` bytes at least
/// long enough to hold the version.
fn value_for(key: u8, len: u8, version: u64) -> Vec<u8> {
    let mut v = format!("v{version}").into_bytes();
    v.resize(v.len().max(usize::from(len)), b'a' + key % 26);
    v
}

fn key_bytes(key: u8) -> Vec<u8> {
    format!("k{:02}", key % KEY_SPACE).into_bytes()
}

fn io_kind(index: u8) -> IoKind {
    let name = IO_KINDS[usize::from(index) % IO_KINDS.len()];
    IoKind::from_name(name).unwrap_or(IoKind::Write)
}

struct Runner<'a> {
    scenario: &'a Scenario,
    options: &'a RunOptions,
    sim: SimVfs,
    _binding: failpoints::ThreadBinding,
    clock: Arc<ManualClock>,
    config: Config,
    store: Option<Store>,
    compaction: Option<Compaction>,
    model: Model,
    trace: Vec<String>,
    step: usize,
    crash_states: u64,
    checks: u64,
    /// A crash armed for the next recovery, and for how many successive
    /// recovery attempts it strikes.
    recovery_trigger: Option<(CrashTrigger, u8)>,
    /// Faults armed for the next recovery (on top of the base faults).
    recovery_faults: Option<FaultConfig>,
    version: u64,
    last_crash_failpoint: Option<String>,
    /// Whether the last crash struck just after an I/O call took effect.
    last_crash_after_call: bool,
    /// The engine's view of the disk: counts injected faults, and the
    /// watchdog's budget.
    watch: Arc<Watch>,
    vfs: Arc<dyn Vfs>,
    sanity: Sanity,
    /// The last crash image may hold a damaged tail (a torn or partial
    /// unsynced write survived); cleared by a successful open, which cuts
    /// such a tail durably. Only then may strict recovery refuse to open.
    tail_may_be_damaged: bool,
    /// Partial writes the watch had counted at the last successful open.
    partial_writes_seen: u64,
    /// An explained fault poisoned the running store (until it reopens).
    poisoned_by: Option<String>,
    /// Mutations queued and commits acknowledged: the compaction step bound.
    mutations: u64,
    /// Verified header walks whose bytes are unchanged (`extract`'s doc).
    extract_cache: crate::extract::ExtractCache,
}

type StepResult = Result<(), Box<Failure>>;

impl<'a> Runner<'a> {
    fn new(scenario: &'a Scenario, options: &'a RunOptions) -> Runner<'a> {
        let c = &scenario.config;
        let sim = SimVfs::new(c.disk_seed);
        sim.set_crash_mode(
            c.crash_mode
                .map(|m| CrashMode::ALL[usize::from(m) % CrashMode::ALL.len()]),
        );
        sim.set_faults(base_faults(c));
        let binding = failpoints::bind_thread(&sim);
        let watch = Watch::new(DEFAULT_CALL_BUDGET, DEFAULT_DISK_CEILING, is_injected);
        let (config, clock) = engine_config(scenario);
        Runner {
            scenario,
            options,
            sim: sim.clone(),
            _binding: binding,
            clock,
            config,
            store: None,
            compaction: None,
            model: Model::new(),
            trace: Vec::new(),
            step: 0,
            crash_states: 0,
            checks: 0,
            recovery_trigger: None,
            recovery_faults: None,
            version: 0,
            last_crash_failpoint: None,
            last_crash_after_call: false,
            vfs: Arc::new(WatchVfs::new(sim.as_vfs(), watch.clone())),
            watch,
            sanity: Sanity::default(),
            tail_may_be_damaged: false,
            partial_writes_seen: 0,
            poisoned_by: None,
            mutations: 0,
            extract_cache: Default::default(),
        }
    }

    fn log(&mut self, line: String) {
        if self.options.echo {
            eprintln!("{line}");
        }
        self.trace.push(line);
    }

    fn fail(
        &mut self,
        kind: FailureKind,
        check: impl Into<Check>,
        message: String,
    ) -> Box<Failure> {
        let check = check.into();
        self.log(format!(
            "!! {kind} [{check}]: {}",
            message.lines().next().unwrap_or("")
        ));
        let mut failure = Failure::new(kind, check, message, self.scenario);
        failure.step = self.step;
        failure.failpoint = self.last_crash_failpoint.clone();
        failure.crash_after_call = self.last_crash_after_call;
        failure.trace = self.trace.clone();
        failure.mutant = self.options.mutant;
        Box::new(failure)
    }

    /// Run `body` as one watched step: its disk calls count against the
    /// watchdog's budget, and a panic inside (the engine's, or the
    /// watchdog's) becomes a failure that keeps this step and the trace.
    fn watched(&mut self, body: impl FnOnce(&mut Self) -> StepResult) -> StepResult {
        self.watch.start_step();
        match catch_unwind(AssertUnwindSafe(|| body(self))) {
            Ok(result) => result,
            Err(payload) => {
                let (message, watchdog) = panic_message(payload.as_ref());
                // The engine may have left its state half-done: drop it
                // without judging anything more.
                self.compaction = None;
                self.store = None;
                Err(if watchdog {
                    let msg = format!(
                        "{message}: the engine did not finish step {} (an endless loop, or \
                         unbounded work)",
                        self.step
                    );
                    self.fail(FailureKind::Hang, HarnessCheck::Watchdog, msg)
                } else {
                    self.fail(
                        FailureKind::Panic,
                        HarnessCheck::NoPanic,
                        format!("engine panicked: {message}"),
                    )
                })
            }
        }
    }

    fn run_all(&mut self) -> Result<Outcome, Box<Failure>> {
        self.log(format!("config {:?}", self.scenario.config));
        self.watched(|r| r.open_store())?;
        for (i, step) in self.scenario.steps.iter().enumerate() {
            self.step = i;
            self.log(format!("#{i} {step}"));
            self.watched(|r| {
                r.do_step(step)?;
                if r.sim.is_crashed() {
                    r.recover_from_crash()?;
                }
                Ok(())
            })?;
        }
        self.step = self.scenario.steps.len();
        // Always end with a crash of the default kind and a full check.
        self.log("# final crash".into());
        self.sim.crash();
        self.watched(|r| r.recover_from_crash())?;
        self.watch.start_step();
        self.sanity.max_calls_per_step = self.watch.max_step_calls();
        // The digest costs ~5% of a run: only when the trace is asked for.
        let trace_digest = if self.options.keep_trace {
            let mut hasher = Sha256::new();
            for line in &self.trace {
                hasher.update(line.as_bytes());
                hasher.update(b"\n");
            }
            hex::encode(hasher.finalize())
        } else {
            String::new()
        };
        Ok(Outcome {
            trace_digest,
            crash_states: self.crash_states,
            checks: self.checks,
            coverage: self.sim.coverage(),
            trace: if self.options.keep_trace {
                std::mem::take(&mut self.trace)
            } else {
                Vec::new()
            },
            sanity: self.sanity.clone(),
        })
    }

    /// Why the engine error `e`, returned by a call that started when the
    /// disk had injected `faults_before` faults, is allowed; None if nothing
    /// the run injected explains it.
    fn explain(&self, e: &engine::Error, faults_before: u64) -> Option<Cause> {
        if self.sim.is_crashed() {
            return Some(Cause::Crash);
        }
        let io_or_poison = matches!(e, engine::Error::Io { .. } | engine::Error::Poisoned(_));
        if io_or_poison && self.watch.injected() > faults_before {
            return Some(Cause::Fault);
        }
        if matches!(e, engine::Error::Poisoned(_)) && self.poisoned_by.is_some() {
            return Some(Cause::Poisoned);
        }
        None
    }

    /// The failure for an engine error nothing explains.
    fn unexplained(&mut self, op: Op, e: &engine::Error) -> Box<Failure> {
        self.sanity.unexplained_errors += 1;
        let msg = format!(
            "{} failed with \"{e}\", but the run injected no fault that explains it \
             (injected so far: {}; store poisoned by: {})",
            op.name(),
            self.watch.injected(),
            self.poisoned_by.as_deref().unwrap_or("nothing")
        );
        self.fail(
            FailureKind::UnexpectedError,
            HarnessCheck::ExplainedError(op),
            msg,
        )
    }

    fn store(&self) -> Result<&Store, Box<Failure>> {
        self.store
            .as_ref()
            .ok_or_else(|| unreachable_failure(self.scenario, "no open store"))
    }

    fn do_step(&mut self, step: &Step) -> StepResult {
        match *step {
            Step::Set { key, len } => {
                self.version += 1;
                let value = value_for(key, len, self.version);
                let k = key_bytes(key);
                let before = self.watch.injected();
                match self.store()?.set(&k, &value) {
                    Ok(_) => {
                        self.mutations += 1;
                        self.model.set(&k, &value);
                        Ok(())
                    }
                    Err(e) => self.mutation_refused(Op::Set, &e, before),
                }
            }
            Step::Delete { key } => {
                let k = key_bytes(key);
                let before = self.watch.injected();
                match self.store()?.delete(&k) {
                    Ok(_) => {
                        self.mutations += 1;
                        self.model.delete(&k);
                        Ok(())
                    }
                    Err(e) => self.mutation_refused(Op::Delete, &e, before),
                }
            }
            Step::Flush => self.flush(),
            Step::Tick { secs } => {
                self.clock.advance(u64::from(secs));
                Ok(())
            }
            Step::CompactStart { purge } => self.compact_start(purge),
            Step::CompactStep { n } => {
                for _ in 0..n {
                    if self.compaction.is_none() || self.sim.is_crashed() {
                        break;
                    }
                    self.compact_step()?;
                }
                Ok(())
            }
            Step::CompactFinish => {
                // With no flush in between, the compaction must end within
                // a bound of its work: a copy or replay step per batch of
                // documents and per header, plus the catch-up rounds, the
                // final round, the switch and the unlink.
                let batch = u64::from(self.scenario.config.copy_batch_docs.max(1));
                let rounds = u64::from(self.scenario.config.catchup_rounds);
                let bound =
                    ((self.sanity.commits_acked + 2) * (self.mutations / batch + 2) + rounds + 4)
                        .min(MAX_COMPACTION_STEPS as u64);
                let mut steps = 0;
                while self.compaction.is_some() && !self.sim.is_crashed() {
                    steps += 1;
                    if steps > bound {
                        let msg = format!(
                            "compaction did not finish in {bound} steps with the flusher idle \
                             ({} mutations, {} commits, batch {batch}, {rounds} unlocked \
                             rounds)",
                            self.mutations, self.sanity.commits_acked
                        );
                        return Err(self.fail(
                            FailureKind::Hang,
                            HarnessCheck::BoundedCompaction,
                            msg,
                        ));
                    }
                    self.compact_step()?;
                }
                Ok(())
            }
            Step::CompactAbort => {
                if let Some(c) = self.compaction.take() {
                    let phase = c.phase();
                    let unlocked = matches!(phase, Phase::Copy | Phase::CatchUp);
                    let before = self.watch.injected();
                    match c.abort() {
                        Ok(()) => {
                            self.sanity.compactions_aborted_requested += 1;
                            self.model.compaction_aborted();
                            self.log("   aborted".into());
                        }
                        Err(e) if self.sim.is_crashed() => {
                            self.sanity.compactions_cut_by_crash += 1;
                            self.log(format!("   abort cut by crash: {e}"))
                        }
                        Err(e) if unlocked && self.explain(&e, before).is_some() => {
                            // The abort's own cleanup failed (EIO): the
                            // compaction is over either way.
                            self.sanity.compactions_aborted_requested += 1;
                            self.model.compaction_aborted();
                            self.log(format!("   abort failed: {e}"));
                        }
                        // Documented refusal: after the switch an abort is
                        // too late (`Compaction::abort`).
                        Err(e @ engine::Error::Invalid(_)) if !unlocked => {
                            self.log(format!("   abort refused: {e}"))
                        }
                        Err(e) => return Err(self.unexplained(Op::CompactionAbort, &e)),
                    }
                }
                Ok(())
            }
            Step::CrashAtFailpoint { point, nth } => {
                let name = failpoint_name(point).to_string();
                let recovery = name.starts_with("recovery::");
                let trigger = CrashTrigger::AtFailpoint {
                    name,
                    nth: u64::from(nth),
                };
                if recovery {
                    // Recovery failpoints are hit only by an open: arm this
                    // for the next recovery (a crash disarms any trigger).
                    self.recovery_trigger = Some((trigger, 1));
                } else {
                    self.arm(trigger);
                }
                Ok(())
            }
            Step::CrashAtIo { kind, nth, after } => {
                let kind = io_kind(kind);
                let nth = u64::from(nth);
                self.arm(if after {
                    CrashTrigger::AfterIo { kind, nth }
                } else {
                    CrashTrigger::AtIo { kind, nth }
                });
                Ok(())
            }
            Step::CrashNow => {
                self.sim.crash();
                Ok(())
            }
            // A process restart: the kernel and its page cache live on, so
            // what was not synced is still not durable afterwards.
            Step::Reopen => self.restart(),
            Step::CrashInRecovery { kind, nth, repeat } => {
                let trigger = CrashTrigger::AtIo {
                    kind: io_kind(kind),
                    nth: u64::from(nth),
                };
                self.recovery_trigger = Some((trigger, repeat.max(1)));
                Ok(())
            }
            Step::Fault {
                kind,
                nth,
                recovery,
            } => {
                let used: u64 = self.sim.files().values().map(|b| b.len() as u64).sum();
                if recovery {
                    let base = base_faults(&self.scenario.config);
                    self.recovery_faults = Some(with_fault(base, kind, nth, used));
                } else {
                    self.sim
                        .set_faults(with_fault(self.sim.faults(), kind, nth, used));
                }
                Ok(())
            }
            Step::Eio { sync, nth } => {
                let nth = Some(u64::from(nth));
                let mut faults = self.sim.faults();
                if sync {
                    faults.eio_sync_nth = nth;
                } else {
                    faults.eio_write_nth = nth;
                }
                self.sim.set_faults(faults);
                Ok(())
            }
            Step::Check => self.check_live(),
            Step::SnapshotCheck { back } => self.snapshot_check(back),
        }
    }

    fn arm(&mut self, trigger: CrashTrigger) {
        if let Err(e) = self.sim.arm(trigger) {
            self.log(format!("   not armed: {e}"));
        }
    }

    /// A set or delete was refused: allowed only when the store is poisoned
    /// by an explained fault (or the disk crashed).
    fn mutation_refused(&mut self, op: Op, e: &engine::Error, before: u64) -> StepResult {
        match self.explain(e, before) {
            Some(_) => {
                self.sanity.mutations_refused += 1;
                self.log(format!("   {} refused: {e}", op.name()));
                Ok(())
            }
            None => Err(self.unexplained(op, e)),
        }
    }

    fn flush(&mut self) -> StepResult {
        let store = self.store()?.clone();
        let before = self.watch.injected();
        let queued = match store.queue_len() {
            Ok(n) => n,
            Err(e) => {
                return match self.explain(&e, before) {
                    Some(_) => Ok(()),
                    None => Err(self.unexplained(Op::QueueLength, &e)),
                }
            }
        };
        if queued == 0 {
            return match store.flush() {
                Ok(None) => Ok(()),
                Err(e) => match self.explain(&e, before) {
                    Some(_) => Ok(()),
                    None => Err(self.unexplained(Op::Flush, &e)),
                },
                Ok(Some(info)) => {
                    let msg = format!("a flush of an empty queue committed {info:?}");
                    Err(self.fail(FailureKind::Divergence, HarnessCheck::EmptyFlush, msg))
                }
            };
        }
        self.model.flush_started(self.clock.now_secs());
        match store.flush() {
            Ok(Some(info)) => {
                self.sanity.commits_acked += 1;
                self.log(format!(
                    "   acked update_seq={} ts={}",
                    info.update_seq, info.timestamp
                ));
                if let Err(d) = self.model.flush_acked(info.update_seq, info.timestamp) {
                    return Err(self.fail(FailureKind::Divergence, d.invariant, d.to_string()));
                }
                Ok(())
            }
            Ok(None) => {
                let msg = format!("{queued} queued mutations but the flush committed nothing");
                Err(self.fail(FailureKind::Divergence, HarnessCheck::LostQueue, msg))
            }
            Err(engine::Error::Busy) if self.compaction_unlocked() => {
                let msg = "the flusher could not commit between compaction steps: the store lock \
                           is held outside start, the final catch-up round and the switch"
                    .to_string();
                Err(self.fail(FailureKind::Hang, HarnessCheck::Liveness, msg))
            }
            Err(e) if self.sim.is_crashed() => {
                self.sanity.flush_errors_injected += 1;
                self.log(format!("   flush cut by crash: {e}"));
                Ok(())
            }
            Err(e) => {
                match self.explain(&e, before) {
                    Some(Cause::Poisoned) => self.sanity.flush_errors_explained += 1,
                    Some(_) => self.sanity.flush_errors_injected += 1,
                    None => return Err(self.unexplained(Op::Flush, &e)),
                }
                // EIO: nothing may be assumed; the store refuses work until
                // reopened, so restart the process.
                self.poisoned_by = Some(e.to_string());
                self.model.flush_failed();
                self.log(format!("   flush failed: {e}"));
                if self.store()?.set(b"probe", b"x").is_ok() {
                    let msg = format!("the store accepted a write after a failed flush ({e})");
                    return Err(self.fail(
                        FailureKind::Divergence,
                        HarnessCheck::PoisonAfterError,
                        msg,
                    ));
                }
                self.restart()
            }
        }
    }

    /// The compactor is paused in an unlocked phase: the flusher must be
    /// able to commit now (SPEC invariant 10).
    fn probe_liveness(&mut self) -> StepResult {
        let store = self.store()?.clone();
        if let Err(e) = store.set(b"_probe", b"live") {
            let msg = format!(
                "the store refused a write while the compactor is in an unlocked phase: {e}"
            );
            return Err(self.fail(FailureKind::Hang, HarnessCheck::Liveness, msg));
        }
        self.mutations += 1;
        self.model.set(b"_probe", b"live");
        self.flush()
    }

    fn compaction_unlocked(&self) -> bool {
        self.compaction
            .as_ref()
            .is_some_and(|c| matches!(c.phase(), Phase::Copy | Phase::CatchUp))
    }

    fn compact_start(&mut self, purge: u8) -> StepResult {
        let before = self.watch.injected();
        if self.compaction.is_some() {
            return match self.store()?.start_compaction(CompactionOptions::default()) {
                // Documented refusal: one compaction at a time.
                Err(engine::Error::CompactionRunning) => {
                    self.sanity.compaction_start_refused_running += 1;
                    Ok(())
                }
                Err(e) => match self.explain(&e, before) {
                    Some(_) => {
                        self.sanity.compaction_start_refused_fault += 1;
                        Ok(())
                    }
                    None => Err(self.unexplained(Op::StartCompaction, &e)),
                },
                Ok(_) => {
                    let msg = "a second compaction started while one runs".to_string();
                    Err(self.fail(FailureKind::Divergence, HarnessCheck::SingleCompaction, msg))
                }
            };
        }
        let store = self.store()?.clone();
        let tip = store.snapshot().map(|s| s.header().update_seq).unwrap_or(0);
        let purge_upto = (purge > 0).then(|| tip * u64::from(purge) / 3);
        match store.start_compaction(CompactionOptions {
            purge_upto,
            ..CompactionOptions::default()
        }) {
            Ok(c) => {
                let params = CompactionParams {
                    purge_upto: c.purge_upto(),
                    pitr: self.config.pitr.map(|p| Pitr {
                        granularity_secs: p.granularity_secs,
                        max_age_secs: p.max_history_age_secs,
                    }),
                    now_secs: c.started_at_secs(),
                };
                self.log(format!(
                    "   started: h0={} purge_upto={:?}",
                    c.h0_update_seq(),
                    c.purge_upto()
                ));
                self.sanity.compactions_started += 1;
                self.model.compaction_started(params);
                self.compaction = Some(c);
            }
            // Documented refusal: nothing committed yet to compact, and the
            // model must agree that the store is empty.
            Err(e @ engine::Error::Invalid(_)) if self.model.tip_update_seq() == 0 => {
                self.sanity.compaction_start_refused_empty += 1;
                self.log(format!("   not started: {e}"));
            }
            Err(e) => match self.explain(&e, before) {
                Some(_) => {
                    self.sanity.compaction_start_refused_fault += 1;
                    self.log(format!("   not started: {e}"));
                }
                None => return Err(self.unexplained(Op::StartCompaction, &e)),
            },
        }
        Ok(())
    }

    fn compact_step(&mut self) -> StepResult {
        let Some(c) = self.compaction.as_mut() else {
            return Ok(());
        };
        let faults_before = self.watch.injected();
        let before = c.phase();
        let result = c.step();
        let after = c.phase();
        let switched_now = matches!(before, Phase::Copy | Phase::CatchUp)
            && matches!(after, Phase::Unlink | Phase::Done);
        match result {
            Ok(progress) => {
                if self.scenario.config.probe_liveness
                    && matches!(after, Phase::Copy | Phase::CatchUp)
                {
                    self.probe_liveness()?;
                }
                if switched_now {
                    self.model.compaction_switched();
                    self.log(format!("   switched ({after:?})"));
                }
                if let Progress::Done(report) = progress {
                    self.log(format!(
                        "   compaction done: rounds={} locked_replay={} headers={}",
                        report.catchup_rounds, report.locked_replay_docs, report.headers_written
                    ));
                    self.compaction = None;
                    self.sanity.compactions_finished += 1;
                    // SPEC invariant 10: catch-up is bounded, the unlocked
                    // rounds by the configuration and then one locked round.
                    let limit = self.config.max_unlocked_catchup_rounds as u64 + 1;
                    if report.catchup_rounds > limit {
                        let msg = format!(
                            "compaction ran {} catch-up rounds, more than the {} unlocked ones \
                             configured plus the final locked one",
                            report.catchup_rounds,
                            limit - 1
                        );
                        return Err(self.fail(
                            FailureKind::Hang,
                            HarnessCheck::BoundedCatchup,
                            msg,
                        ));
                    }
                }
                Ok(())
            }
            Err(e) if self.sim.is_crashed() => {
                self.sanity.compactions_cut_by_crash += 1;
                self.log(format!("   compaction cut by crash: {e}"));
                Ok(())
            }
            Err(e) => {
                if self.explain(&e, faults_before).is_none() {
                    return Err(self.unexplained(Op::CompactionStep, &e));
                }
                self.sanity.compactions_aborted_fault += 1;
                self.log(format!("   compaction failed: {e}"));
                self.compaction = None;
                if matches!(before, Phase::Copy | Phase::CatchUp) && !switched_now {
                    self.model.compaction_aborted();
                    Ok(())
                } else {
                    // Failed after the rename: the store is poisoned; restart.
                    self.restart()
                }
            }
        }
    }

    fn open_store(&mut self) -> StepResult {
        let mut crashes = 0;
        // A strict refusal is judged, then this one open tolerates the tail
        // (as an operator would); the next open is strict again.
        let mut config = self.config.clone();
        loop {
            if let Some((t, left)) = self.recovery_trigger.take() {
                self.arm(t.clone());
                if left > 1 {
                    // Strikes the next attempt too, if this one crashes.
                    self.recovery_trigger = Some((t, left - 1));
                }
            }
            if let Some(faults) = self.recovery_faults.take() {
                self.sim.set_faults(faults);
            }
            let revisions_before = self.revisions();
            // A write that failed part-way (a short write, ENOSPC after
            // one) since the last successful open may have left a partial
            // record, perhaps a header's first bytes, in the page cache.
            if self.partial_writes() > self.partial_writes_seen {
                self.tail_may_be_damaged = true;
            }
            let before = self.watch.injected();
            let opened = Store::open_with_report(self.vfs.clone(), DB_DIR, DB_NAME, config.clone());
            if self.sim.is_crashed() {
                drop(opened);
                crashes += 1;
                let record = self.sim.reboot();
                self.note_image(&record, false);
                self.crash_states += 1;
                self.log(format!("   crashed during recovery: {record}"));
                if crashes > MAX_RECOVERY_CRASHES {
                    let msg = "recovery crashed too often".to_string();
                    return Err(self.fail(FailureKind::Hang, HarnessCheck::RecoveryProgress, msg));
                }
                continue;
            }
            self.sim.disarm();
            // A crash that did not strike this attempt strikes no later one.
            self.recovery_trigger = None;
            let unreadable = matches!(
                &opened,
                Err(engine::Error::Io { source, .. }) if failpoints::is_simulated_read_error(source)
            );
            if unreadable {
                // An open that could not read what it chose removes no
                // revision: a lower one may be all an operator can salvage
                // if the highest stays unreadable. (Once the chosen one has
                // recovered and verified, removing lower ones is right,
                // even if the open fails later.)
                let after = self.revisions();
                if let Some(lost) = revisions_before.iter().find(|r| !after.contains(r)) {
                    let msg = format!(
                        "an open that could not read the revision it chose removed revision \
                         file {lost} (before: {revisions_before:?}, after: {after:?})"
                    );
                    return Err(self.fail(
                        FailureKind::Divergence,
                        HarnessCheck::FailedOpenKeepsRevisions,
                        msg,
                    ));
                }
            }
            match opened {
                Ok((store, report)) => {
                    self.log(format!(
                        "   opened rev {} (removed {:?}, truncated {} bytes)",
                        report.rev, report.removed, report.truncated_bytes
                    ));
                    // Recovery cut whatever was damaged, durably.
                    self.tail_may_be_damaged = false;
                    self.partial_writes_seen = self.partial_writes();
                    // Faults armed for the recovery end with it.
                    self.sim.set_faults(base_faults(&self.scenario.config));
                    self.poisoned_by = None;
                    self.store = Some(store);
                    return Ok(());
                }
                Err(e) if config.recovery == RecoveryPolicy::Strict && e.is_corruption() => {
                    // Documented refusal (`RecoveryPolicy::Strict`): strict
                    // recovery refuses a damaged tail. Allowed only when the
                    // crash image can hold one: a torn or partial unsynced
                    // write survived. After dropping only unsynced state, or
                    // keeping all of it, every header in the file is whole.
                    if !self.tail_may_be_damaged {
                        self.sanity.unexplained_errors += 1;
                        let msg = format!(
                            "strict recovery refused to open ({e}), but no crash image since the \
                             last successful open could hold a damaged tail (no torn, partial or \
                             reordered unsynced write survived)"
                        );
                        return Err(self.fail(
                            FailureKind::UnexpectedError,
                            HarnessCheck::ExplainedError(Op::StrictOpen),
                            msg,
                        ));
                    }
                    self.sanity.strict_refusals_damage += 1;
                    self.log(format!(
                        "   strict open refused: {e}; reopening tolerant once"
                    ));
                    config.recovery = RecoveryPolicy::TolerateCorruptTail;
                }
                Err(e)
                    if self.explain(&e, before) == Some(Cause::Fault)
                        && crashes <= MAX_RECOVERY_CRASHES =>
                {
                    // An injected I/O error during recovery: the open fails
                    // cleanly (it must not panic or damage anything), and the
                    // operator retries.
                    crashes += 1;
                    self.sanity.opens_failed_injected += 1;
                    self.log(format!("   open failed with injected EIO, retrying: {e}"));
                    // The operator's remedy: the transient fault is gone,
                    // bad sectors are remapped (their bytes intact).
                    self.sim.set_faults(base_faults(&self.scenario.config));
                    self.sim.clear_latent_sector_errors();
                }
                Err(e) => {
                    let msg = format!("open failed on a disk that must recover: {e}");
                    return Err(self.fail(
                        FailureKind::RecoveryError,
                        HarnessCheck::Recoverable,
                        msg,
                    ));
                }
            }
        }
    }

    /// Writes the disk failed part-way so far (short writes, ENOSPC after
    /// one), as the disk counted them: a crash can strike right after one
    /// took effect, before the engine saw its error.
    fn partial_writes(&self) -> u64 {
        let c = self.sim.coverage();
        c.injected(failpoints::FaultKind::ShortWrite) + c.injected(failpoints::FaultKind::Enospc)
    }

    /// The store's complete revision files now (as the running system sees
    /// the directory).
    fn revisions(&self) -> Vec<String> {
        self.sim
            .as_vfs()
            .list(Path::new(DB_DIR))
            .unwrap_or_default()
            .into_iter()
            .filter(|f| {
                matches!(
                    engine::layout::classify(DB_NAME, f),
                    Some(engine::layout::FileKind::Revision(_))
                )
            })
            .collect()
    }

    /// A process restart without a disk crash: drop the store (the queue is
    /// lost) and open again; the page cache, synced or not, stays as it is.
    fn restart(&mut self) -> StepResult {
        self.compaction = None;
        self.store = None;
        self.poisoned_by = None;
        self.sim.disarm();
        self.sim.set_faults(base_faults(&self.scenario.config));
        self.log("   process restart".into());
        self.model.crash();
        self.open_store()?;
        self.check(true)
    }

    /// Note whether the post-crash image just computed can hold a damaged
    /// tail: some unsynced write survived torn, partially or out of order.
    fn note_image(&mut self, record: &failpoints::CrashRecord, torn: bool) {
        let damaging = matches!(
            record.mode,
            Some(CrashMode::KeepSubset | CrashMode::Torn { .. } | CrashMode::LoseSetLen)
        );
        if damaging || torn {
            self.tail_may_be_damaged = true;
        }
    }

    fn recover_from_crash(&mut self) -> StepResult {
        self.compaction = None;
        self.store = None;
        let triggered = matches!(
            self.sim.pending_crash().map(|r| r.cause),
            Some(failpoints::CrashCause::Trigger(_))
        );
        let record = if triggered && self.scenario.config.process_crashes {
            self.sim.restart_process()
        } else if self.scenario.config.tear_unsynced {
            // The simulator's sub-sector tear: one bit of a surviving
            // unsynced byte flipped (a header's, when there is one).
            let record = self.sim.reboot_with_bitflip_unsynced();
            self.note_image(&record, true);
            record
        } else {
            let record = self.sim.reboot();
            self.note_image(&record, false);
            record
        };
        // Injected EIO is a transient fault of the running system; a restart
        // starts with a healthy disk (Windows semantics stay).
        self.sim.set_faults(base_faults(&self.scenario.config));
        self.last_crash_failpoint = record.last_failpoint.map(str::to_string);
        self.last_crash_after_call = matches!(
            record.cause,
            failpoints::CrashCause::Trigger(CrashTrigger::AfterIo { .. })
        );
        self.crash_states += 1;
        self.log(format!("   {record}"));
        self.model.crash();
        self.open_store()?;
        self.check(true)
    }

    fn check_live(&mut self) -> StepResult {
        self.check(false)
    }

    fn check(&mut self, after_crash: bool) -> StepResult {
        let store = self.store()?.clone();
        // Every header is verified while it is read (verify is always on in
        // the simulator). The directory is judged only right after an open:
        // while running, a `.compact` file or a not yet unlinked old revision
        // is normal.
        let before = self.watch.injected();
        let cache = Some(&mut self.extract_cache);
        let mut extracted = extract_cached(&store, &self.sim, after_crash, cache);
        if after_crash {
            if let Err(e) = &extracted {
                if self.read_cut(e, before) {
                    // The check after a recovery must happen: the operator
                    // remaps the bad sectors (bytes intact) and reads again.
                    self.sim.clear_latent_sector_errors();
                    self.sim.set_faults(base_faults(&self.scenario.config));
                    let cache = Some(&mut self.extract_cache);
                    extracted = extract_cached(&store, &self.sim, after_crash, cache);
                }
            }
        }
        let recovered = match extracted {
            Ok(r) => r,
            Err(e) if !after_crash && self.read_cut(&e, before) => return Ok(()),
            Err(e) => {
                let kind = if matches!(e, engine::Error::Verify(_)) || e.is_corruption() {
                    FailureKind::Divergence
                } else {
                    FailureKind::RecoveryError
                };
                return Err(self.fail(kind, HarnessCheck::Verify, format!("verify failed: {e}")));
            }
        };
        let result = if after_crash {
            self.model.check(&recovered).map(|r| format!("{r}"))
        } else {
            self.model.check_live(&recovered).map(|()| String::new())
        };
        match result {
            Ok(report) => {
                self.checks += 1;
                let tip = recovered.headers.first().map_or(0, |h| h.update_seq);
                self.log(format!(
                    "   check ok: tip={tip} headers={} {report}",
                    recovered.headers.len()
                ));
                Ok(())
            }
            Err(d) => Err(self.fail(FailureKind::Divergence, d.invariant, d.to_string())),
        }
    }

    /// A read cut short by a crash or an injected read fault: allowed (the
    /// engine reported an I/O error, as it must), logged, not judged.
    fn read_cut(&mut self, e: &engine::Error, before: u64) -> bool {
        match self.explain(e, before) {
            Some(cause) => {
                self.sanity.reads_cut += 1;
                self.log(format!("   read cut ({cause:?}): {e}"));
                true
            }
            None => false,
        }
    }

    fn snapshot_check(&mut self, back: u8) -> StepResult {
        let store = self.store()?.clone();
        let at = self.clock.now_secs().saturating_sub(u64::from(back));
        let before = self.watch.injected();
        let headers = match store.headers() {
            Ok(h) => h,
            Err(e) if self.read_cut(&e, before) => return Ok(()),
            Err(e) => {
                return Err(self.fail(
                    FailureKind::Divergence,
                    HarnessCheck::Readable,
                    e.to_string(),
                ))
            }
        };
        let expected = headers
            .iter()
            .find(|h| h.header.timestamp <= at)
            .map(|h| h.pos);
        match store.snapshot_at(at) {
            Ok(snap) => {
                let got = snap.as_ref().and_then(|s| s.header_pos());
                if got != expected {
                    let msg =
                        format!("snapshot_at({at}) opened header {got:?}, expected {expected:?}");
                    return Err(self.fail(FailureKind::Divergence, HarnessCheck::SnapshotAt, msg));
                }
                if let Some(Err(e)) = snap.map(|s| s.verify()) {
                    if self.read_cut(&e, before) {
                        return Ok(());
                    }
                    return Err(self.fail(
                        FailureKind::Divergence,
                        HarnessCheck::Verify,
                        e.to_string(),
                    ));
                }
                Ok(())
            }
            Err(e) if self.read_cut(&e, before) => Ok(()),
            Err(e) => Err(self.fail(
                FailureKind::Divergence,
                HarnessCheck::SnapshotAt,
                e.to_string(),
            )),
        }
    }
}

/// The engine configuration a scenario's swarm config asks for, with the
/// logical clock it runs on (the one fixture of the runner, the
/// `recover_corrupt` target and the crash-image replay).
pub fn engine_config(scenario: &Scenario) -> (Config, Arc<ManualClock>) {
    let c = &scenario.config;
    let clock = Arc::new(ManualClock::new(1_000));
    let config = Config {
        fanout: usize::from(c.fanout.max(2)),
        recovery: if c.strict_recovery {
            RecoveryPolicy::Strict
        } else {
            RecoveryPolicy::TolerateCorruptTail
        },
        clock: clock.clone(),
        pitr: c.pitr_granularity_secs.map(|g| PitrConfig {
            granularity_secs: u64::from(g.max(1)),
            max_history_age_secs: u64::from(c.pitr_max_age_secs),
        }),
        copy_batch_docs: usize::from(c.copy_batch_docs.max(1)),
        max_unlocked_catchup_rounds: usize::from(c.catchup_rounds),
    };
    (config, clock)
}

/// The faults a scenario's disk has for its whole life: the swarm's
/// settings (Windows semantics, what a failed fsync does, power-safe
/// overwrite); the per-call faults of steps come and go on top of them.
fn base_faults(c: &crate::scenario::SwarmConfig) -> FaultConfig {
    FaultConfig {
        windows_mode: c.windows,
        fsync_failure: if c.fsync_revert {
            FsyncFailure::Revert
        } else {
            FsyncFailure::KeepPages
        },
        no_power_safe_overwrite: match c.no_psow {
            1 => Some(TearUnit::Sector),
            2 => Some(TearUnit::Page),
            _ => None,
        },
        ..FaultConfig::default()
    }
}

/// `faults` with the fault `FAULT_STEPS[kind]` set at the `nth` call of its
/// kind; `used` is the bytes on the disk now (for `enospc`).
fn with_fault(mut faults: FaultConfig, kind: u8, nth: u8, used: u64) -> FaultConfig {
    let n = Some(u64::from(nth));
    match FAULT_STEPS[usize::from(kind) % FAULT_STEPS.len()] {
        "read-eio" => faults.eio_read_nth = n,
        "latent-sector-error" => faults.latent_error_read_nth = n,
        "eio-open" => faults.eio_open_nth = n,
        "eio-set-len" => faults.eio_set_len_nth = n,
        "eio-rename" => faults.eio_rename_nth = n,
        "eio-remove" => faults.eio_remove_nth = n,
        "eio-sync-dir" => faults.eio_sync_dir_nth = n,
        "short-write" => faults.short_write_nth = n,
        _ => faults.capacity_bytes = Some(used + 1024 * u64::from(nth)),
    }
    faults
}

fn unreachable_failure(scenario: &Scenario, what: &str) -> Box<Failure> {
    Box::new(Failure::new(
        FailureKind::RecoveryError,
        HarnessCheck::HarnessState,
        format!("harness state error: {what}"),
        scenario,
    ))
}
