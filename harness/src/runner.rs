//! `run`: one scenario, start to end, on the simulated disk, with the oracle
//! fed in lockstep. After every crash: reboot the disk into its post-crash
//! image, recover (crashing again during recovery when the scenario says
//! so), `verify` every header, and let the oracle judge what came back.

use crate::events::{Cause, Event, Journal};
use crate::extract::extract_cached;
pub use crate::extract::{extract, extract_headers};
pub use crate::failure::{replay_command, Failure, FailureKind};
use crate::failure::{Check, HarnessCheck, Op};
use crate::scenario::{
    batch_len, failpoint_name, key_bytes, local_name, pause_point, value_len, Scenario, Step,
    FAULT_STEPS, IO_KINDS,
};
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
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::fixture::{DB_DIR, DB_NAME};
/// Compaction steps a `CompactFinish` may take before it is a hang.
pub const MAX_COMPACTION_STEPS: usize = 10_000;
/// Disk calls the oracle's check may make per header it can find, beyond
/// the step's budget (reading one header's trees and documents).
const CHECK_CALLS_PER_HEADER: u64 = 4_096;
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

/// Options of one run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep the trace lines in the outcome (the digest is always computed).
    pub keep_trace: bool,
    /// Switch a seeded bug on (needs the `mutants` feature).
    pub mutant: Option<Mutant>,
    /// Print each trace line to stderr as it happens.
    pub echo: bool,
    /// Take power-loss crash images from the enumeration (`exhaust`).
    pub images: Option<failpoints::ImageChoice>,
}

/// A store built by the one runner from a scenario's build steps, with the
/// journal that saw it built (the model knows every acknowledged commit).
pub(crate) struct Built {
    /// The store's files as the running system saw them when it stopped.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    /// Steps run.
    pub steps: usize,
    /// Oracle checks passed while building.
    pub checks: u64,
    /// The engine configuration it ran with.
    pub config: Config,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    /// The model and the trace so far.
    pub journal: Journal,
}

/// Run `scenario`'s steps up to its first damage step on the simulated disk,
/// judged as every run is, and stop the process without a crash. Call it
/// inside [`guarded`].
pub(crate) fn build_image(
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<Built, Box<Failure>> {
    Runner::new(scenario, options).build()
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
fn value_for(key: u32, len: usize, version: u64) -> Vec<u8> {
    let mut v = format!("v{version}").into_bytes();
    v.resize(v.len().max(len), b'a' + (key % 26) as u8);
    v
}

/// The block edge an [`Step::EdgeCommit`] aims its commit's data end at:
/// the remainder of the data end modulo the block size.
fn edge_remainder(edge: u8) -> u64 {
    let block = engine::layout::BLOCK_BYTES;
    match edge % 3 {
        0 => 0,
        1 => block - 1,
        // One data byte after the block's marker.
        _ => 2,
    }
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
    /// The one sink of the run's events: the model, the trace, the digest.
    journal: Journal,
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
    /// A snapshot a reader holds (`Step::Hold`), with the switches counted
    /// when it was taken.
    held: Option<(engine::Snapshot, u64)>,
    /// Compactions switched so far.
    switches: u64,
    /// Old revisions whose unlink a compaction of the running store
    /// deferred (a reader held them): the store owes their removal.
    deferred_unlinks: Vec<u64>,
    /// Verified header walks whose bytes are unchanged (`extract`'s doc).
    extract_cache: crate::extract::ExtractCache,
    /// A preemption armed for the next compaction step (`Step::Preempt`).
    preempt: Option<Preempt>,
    /// The compaction step is paused: where, and whether it holds the store
    /// lock there.
    paused: Option<(failpoints::PausePoint, bool)>,
    /// Steps before this index already ran (while a compaction step was
    /// paused).
    skip_until: usize,
    /// A step run while a compaction step was paused needs a process
    /// restart (a failed flush poisoned the store): done after the step.
    restart_pending: bool,
    /// The compactor's phase when a crash cut its step (the compaction
    /// itself reports `Aborted` once its step has cleaned up).
    cut_phase: Option<Phase>,
    /// Pauses so far (each ran steps while a compaction step waited).
    pauses: u64,
}

/// The compactor's phase at a crash that cut a step begun in `before`, when
/// the last failpoint hit was `last`: a boundary of a later phase moves it
/// on (the step began in the copy and reached catch-up, say).
fn phase_at_cut(before: Phase, last: Option<&str>) -> Phase {
    let reached = match last.unwrap_or("") {
        "compact::catchup_unlocked"
        | "compact::before_store_lock"
        | "compact::catchup_locked"
        | "compact::replay_header"
        | "compact::before_new_sync"
        | "compact::after_new_sync"
        | "compact::before_rename" => Phase::CatchUp,
        "compact::after_rename"
        | "compact::before_rename_dir_sync"
        | "compact::after_rename_dir_sync"
        | "compact::before_unlink"
        | "compact::after_unlink"
        | "compact::before_unlink_dir_sync"
        | "compact::after_unlink_dir_sync" => Phase::Unlink,
        _ => before,
    };
    let rank = |p: Phase| match p {
        Phase::Copy => 0,
        Phase::CatchUp => 1,
        _ => 2,
    };
    if rank(reached) > rank(before) {
        reached
    } else {
        before
    }
}

/// A [`Step::Preempt`] waiting for the next compaction step.
#[derive(Clone, Copy, Debug)]
struct Preempt {
    point: failpoints::PausePoint,
    nth: u8,
    steps: u8,
}

/// What the thread running a preemptible compaction step tells the runner.
enum PauseMsg {
    Paused(failpoints::PausePoint),
    Declined(failpoints::PausePoint),
    /// The step ended: the compaction back, and the step's result or the
    /// payload of its panic.
    Done(Box<WorkerDone>),
}

type WorkerDone = (Compaction, std::thread::Result<engine::Result<Progress>>);

type WorkerJob = Box<dyn FnOnce() + Send>;

std::thread_local! {
    /// The thread that runs this runner thread's preempted compaction steps,
    /// one at a time, kept for the next one (starting a thread per step was
    /// 7 % of the explorer's time). It ends when this thread does.
    static PREEMPT_WORKER: std::cell::RefCell<Option<std::sync::mpsc::Sender<WorkerJob>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `job` on this thread's preemption worker, starting it if needed.
fn run_on_worker(job: WorkerJob) {
    PREEMPT_WORKER.with(|worker| {
        let mut worker = worker.borrow_mut();
        let mut job = job;
        if let Some(tx) = worker.as_ref() {
            match tx.send(job) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(back)) => job = back,
            }
        }
        let (tx, rx) = std::sync::mpsc::channel::<WorkerJob>();
        std::thread::Builder::new()
            .name("crashfuzz-preempt".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .expect("spawning the preemption worker thread");
        // The worker only stops when `tx` is dropped: this send is received.
        let _ = tx.send(job);
        *worker = Some(tx);
    })
}

/// The failpoint the compactor hits right before it takes the store lock for
/// its final catch-up round and the switch; it releases it at the end of
/// that same step. So a compaction step paused after hitting it holds the
/// store lock (SPEC 1: locked only for start, the final round and the
/// switch), and a flush there must get `Busy`.
const BEFORE_STORE_LOCK: &str = "compact::before_store_lock";
/// The failpoint the compactor hits after the switch released the store
/// lock, before it unlinks the old file (in the same step, or the next).
const BEFORE_UNLINK: &str = "compact::before_unlink";

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
        sim.set_image_choice(options.images.clone());
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
            journal: Journal::new(Model::new(), options.echo),
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
            held: None,
            switches: 0,
            deferred_unlinks: Vec::new(),
            extract_cache: Default::default(),
            preempt: None,
            paused: None,
            skip_until: 0,
            restart_pending: false,
            cut_phase: None,
            pauses: 0,
        }
    }

    /// Record an event that feeds the model; a divergence the model finds
    /// in it (an acknowledged header it did not predict) fails the run.
    fn emit(&mut self, event: Event) -> StepResult {
        match self.journal.emit(event) {
            Ok(()) => Ok(()),
            Err(d) => Err(self.fail(FailureKind::Divergence, d.invariant, d.to_string())),
        }
    }

    /// Record a trace-only event.
    fn note(&mut self, event: Event) {
        self.journal.note(event);
    }

    fn fail(
        &mut self,
        kind: FailureKind,
        check: impl Into<Check>,
        message: String,
    ) -> Box<Failure> {
        let mut failure = self
            .journal
            .fail(kind, check.into(), message, self.scenario, self.step);
        failure.failpoint = self.last_crash_failpoint.clone();
        failure.crash_after_call = self.last_crash_after_call;
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

    /// Open the store and run the steps, up to the first damage step (the
    /// `recover_corrupt` target's, which come last).
    fn run_steps(&mut self) -> StepResult {
        self.note(Event::Config(self.scenario.config.clone()));
        self.watched(|r| r.open_store())?;
        for (i, step) in self.scenario.steps.iter().enumerate() {
            if matches!(step, Step::Damage(_)) {
                break;
            }
            if i < self.skip_until {
                continue;
            }
            self.step = i;
            self.note(Event::Step {
                index: i,
                step: step.clone(),
                paused_at: None,
            });
            self.watched(|r| {
                r.do_step(step)?;
                if r.sim.is_crashed() {
                    r.recover_from_crash()?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn run_all(&mut self) -> Result<Outcome, Box<Failure>> {
        self.run_steps()?;
        self.step = self.scenario.steps.len();
        // Always end with a crash of the default kind and a full check.
        self.note(Event::FinalCrash);
        self.sim.crash();
        self.watched(|r| r.recover_from_crash())?;
        self.watch.start_step();
        self.sanity.max_calls_per_step = self.watch.max_step_calls();
        if self.watch.busy() > 0 {
            self.journal.reached.mark(crate::reach::State::WindowsBusy);
        }
        let mut coverage = self.sim.coverage();
        self.journal.reached.count_into(&mut coverage);
        // Rendering and hashing the trace cost a large share of a run: only
        // when the trace is asked for.
        let (trace_digest, trace) = if self.options.keep_trace {
            (self.journal.digest(), self.journal.lines())
        } else {
            (String::new(), Vec::new())
        };
        Ok(Outcome {
            trace_digest,
            crash_states: self.crash_states,
            checks: self.checks,
            coverage,
            trace,
            sanity: self.sanity.clone(),
        })
    }

    /// Run the build steps, then stop the process (no crash): what the
    /// `recover_corrupt` target damages.
    fn build(mut self) -> Result<Built, Box<Failure>> {
        self.run_steps()?;
        self.compaction = None;
        self.store = None;
        Ok(Built {
            files: self.sim.files(),
            steps: self.step + 1,
            checks: self.checks,
            config: self.config,
            clock: self.clock,
            journal: self.journal,
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
                let c = &self.scenario.config;
                let value = value_for(u32::from(key), value_len(c, len), self.version);
                let k = key_bytes(c, u32::from(key));
                self.queue_set(k, value).map(|_| ())
            }
            Step::Delete { key } => {
                let k = key_bytes(&self.scenario.config, u32::from(key));
                let before = self.watch.injected();
                match self.store()?.delete(&k) {
                    Ok(_) => {
                        self.mutations += 1;
                        self.emit(Event::Queued {
                            key: k,
                            value: None,
                        })
                    }
                    Err(e) => self.mutation_refused(Op::Delete, &e, before),
                }
            }
            Step::Local { name, len, delete } => {
                let name = local_name(name);
                let before = self.watch.injected();
                let value = (!delete).then(|| {
                    self.version += 1;
                    value_for(u32::from(name[7]), usize::from(len % 64), self.version)
                });
                let store = self.store()?;
                let (result, op) = match &value {
                    None => (store.delete_local(&name), Op::DeleteLocal),
                    Some(v) => (store.set_local(&name, v), Op::SetLocal),
                };
                match result {
                    Ok(_) => {
                        self.mutations += 1;
                        self.emit(Event::LocalQueued { name, value })
                    }
                    Err(e) => self.mutation_refused(op, &e, before),
                }
            }
            Step::Preempt { point, nth, steps } => {
                if self.paused.is_none() {
                    self.preempt = Some(Preempt {
                        point: pause_point(point),
                        nth: nth.max(1),
                        steps: steps.max(1),
                    });
                }
                Ok(())
            }
            Step::Flush => self.flush(),
            Step::Tick { secs } => {
                self.clock.advance(u64::from(secs));
                Ok(())
            }
            Step::CompactStart { purge } => self.compact_start(purge),
            Step::CompactStep { n } => {
                let mut ran = false;
                for _ in 0..n {
                    if self.compaction.is_none() || self.sim.is_crashed() {
                        break;
                    }
                    ran = true;
                    self.compact_step()?;
                }
                if ran {
                    // A preemption is for one compaction operation.
                    self.preempt = None;
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
                let work = |r: &Self| {
                    ((r.sanity.commits_acked + 2) * (r.mutations / batch + 2) + rounds + 4)
                        .min(MAX_COMPACTION_STEPS as u64)
                };
                let mut bound = work(self);
                let mut steps = 0;
                let mut pauses = self.pauses;
                while self.compaction.is_some() && !self.sim.is_crashed() {
                    if self.pauses != pauses {
                        // Steps run while a step was paused brought new
                        // work: the bound starts again from here.
                        pauses = self.pauses;
                        bound = bound.max(steps + work(self));
                    }
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
                if steps > 0 {
                    // A preemption is for one compaction operation.
                    self.preempt = None;
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
                            self.emit(Event::CompactionAborted {
                                requested: true,
                                error: None,
                            })?;
                        }
                        Err(e) => match self.explain(&e, before) {
                            Some(Cause::Crash) => {
                                self.sanity.compactions_cut_by_crash += 1;
                                self.note(Event::CompactionCut {
                                    error: e.to_string(),
                                });
                            }
                            // The abort's own cleanup failed (EIO): the
                            // compaction is over either way.
                            Some(_) if unlocked => {
                                self.sanity.compactions_aborted_requested += 1;
                                self.emit(Event::CompactionAborted {
                                    requested: true,
                                    error: Some(e.to_string()),
                                })?;
                            }
                            // Documented refusal: after the switch an abort
                            // is too late (`Compaction::abort`).
                            _ if !unlocked && matches!(e, engine::Error::Invalid(_)) => {
                                self.note(Event::AbortRefused {
                                    error: e.to_string(),
                                })
                            }
                            _ => return Err(self.unexplained(Op::CompactionAbort, &e)),
                        },
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
                let used = self.sim.visible_bytes();
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
            Step::EdgeCommit { key, edge } => self.edge_commit(key, edge),
            Step::Read { kind, a, b } => self.read(kind, a, b),
            Step::Hold { release: false } => self.hold(),
            Step::Hold { release: true } => self.release(),
            Step::Batch { count, first, len } => {
                let c = &self.scenario.config;
                for i in 0..batch_len(c, count) {
                    if self.sim.is_crashed() {
                        break;
                    }
                    self.version += 1;
                    let n = 256 + (u32::from(first) * 16 + i * 7919) % 4096;
                    let k = key_bytes(c, n);
                    let value = value_for(n, value_len(c, len), self.version);
                    if !self.queue_set(k, value)? {
                        return Ok(());
                    }
                }
                if self.sim.is_crashed() {
                    return Ok(());
                }
                self.flush()
            }
            // Damage to a finished image: only the `recover_corrupt` target
            // applies it (`corrupt::run`), after building with this runner.
            Step::Damage(_) => Ok(()),
        }
    }

    /// Queue a set whose value is sized so that the commit's data ends at
    /// the block edge `edge` asks for, then flush. The size comes from a dry
    /// run of the same flush on a copy of the disk (the engine's layout is
    /// its own; the runner only measures where the data ended).
    fn edge_commit(&mut self, key: u8, edge: u8) -> StepResult {
        let block = engine::layout::BLOCK_BYTES;
        let target = edge_remainder(edge);
        let k = key_bytes(&self.scenario.config, u32::from(key));
        let before = self.watch.injected();
        let queued = match self.store()?.queued() {
            Ok(q) => q,
            Err(e) => return self.mutation_refused(Op::Set, &e, before),
        };
        self.version += 1;
        // One dry run with an empty value says where the data ends (E0).
        // The format's sizes are fixed-width, so only the value's length
        // moves the end: L more logical bytes end at E1 with
        // E1 - E0 = L + (data markers the extra bytes cross). Aim at the
        // first edge at or after E0 and solve for L.
        let len = match self.dry_run_data_end(&queued, &k, 0) {
            Some(e0) => {
                let mut e1 = e0 - e0 % block + target;
                if e1 < e0 {
                    e1 += block;
                }
                let markers = (e1 - 1) / block - (e0.max(1) - 1) / block;
                (e1 - e0).saturating_sub(markers) as usize
            }
            None => 16,
        };
        let value = value_for(u32::from(key), len, self.version);
        if !self.queue_set(k, value)? {
            return Ok(());
        }
        self.flush()
    }

    /// Where the data of a flush of `queued` plus `key` = a value of `len`
    /// bytes would end, measured on a copy of the disk (the page cache as
    /// the running system sees it) opened by a second store. `None` if the
    /// copy cannot tell (the disk crashed, the copy failed to open).
    fn dry_run_data_end(&self, queued: &[engine::DocInfo], key: &[u8], len: usize) -> Option<u64> {
        if self.sim.is_crashed() {
            return None;
        }
        let copy = SimVfs::new(self.scenario.config.disk_seed);
        for (path, bytes) in self.sim.files() {
            copy.put_file(&path, &bytes).ok()?;
        }
        // The copy's failpoints count on the copy, and no crash armed on
        // the real disk strikes during the dry run.
        let _binding = failpoints::bind_thread(&copy);
        let store = Store::open(copy.as_vfs(), DB_DIR, DB_NAME, self.config.clone()).ok()?;
        for doc in queued {
            if doc.deleted {
                store.delete(&doc.key).ok()?;
            } else {
                store.set(&doc.key, &doc.value).ok()?;
            }
        }
        store.set(key, &vec![b'x'; len]).ok()?;
        store.flush().ok()?.map(|info| info.data_end)
    }

    /// A read through a public read API, judged by the model: the last
    /// acknowledged state (no flush is in flight between steps).
    fn read(&mut self, kind: u8, a: u8, b: u8) -> StepResult {
        use crate::reach::State as Reach;
        use std::ops::Bound;
        let store = self.store()?.clone();
        let c = self.scenario.config.clone();
        let before = self.watch.injected();
        let tip = self.journal.model.tip_update_seq();
        let at = |x: u8| tip * u64::from(x) / 255;
        let state = |docs: Vec<engine::DocInfo>| -> oracle::State {
            docs.into_iter()
                .map(|d| {
                    let doc = oracle::Doc {
                        value: crate::extract::oracle_value(d.value),
                        seqno: d.seqno,
                        deleted: d.deleted,
                    };
                    (d.key, doc)
                })
                .collect()
        };
        let judged: engine::Result<Result<(), oracle::Divergence>> = (|| {
            let model = &self.journal.model;
            Ok(match kind % 5 {
                0 => {
                    let k = key_bytes(&c, u32::from(a));
                    let found = state(store.get(&k)?.into_iter().collect());
                    let purge = store.snapshot()?.header().purge_seq;
                    self.journal.reached.mark(Reach::ReadGet);
                    model.check_read("get", |x| x == k.as_slice(), &found, purge)
                }
                1 => {
                    let (x, y) = (key_bytes(&c, u32::from(a)), key_bytes(&c, u32::from(b)));
                    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
                    let snap = store.snapshot()?;
                    let found = state(snap.scan(Bound::Included(&lo), Bound::Excluded(&hi))?);
                    self.journal.reached.mark(Reach::ReadScan);
                    model.check_read(
                        "scan",
                        |k| lo.as_slice() <= k && k < hi.as_slice(),
                        &found,
                        snap.header().purge_seq,
                    )
                }
                2 => {
                    let snap = store.snapshot()?;
                    let found = crate::extract::by_seq_entries(snap.changes_since(at(a))?);
                    self.journal.reached.mark(Reach::ReadChangesSince);
                    model.check_changes_since(at(a), &found, snap.header().purge_seq)
                }
                4 => {
                    self.journal.reached.mark(Reach::ReadLocal);
                    if a.is_multiple_of(2) {
                        let name = local_name(b);
                        let found: oracle::Locals = store
                            .get_local(&name)?
                            .map(|v| (name.clone(), crate::extract::oracle_value(v)))
                            .into_iter()
                            .collect();
                        model.check_local_read("get_local", |n| n == name.as_slice(), &found)
                    } else {
                        let found: oracle::Locals = store
                            .snapshot()?
                            .locals()?
                            .into_iter()
                            .filter(|(n, _)| n.as_slice() != engine::COUNTERS_DOC)
                            .map(|(n, v)| (n, crate::extract::oracle_value(v)))
                            .collect();
                        model.check_local_read("locals", |_| true, &found)
                    }
                }
                _ => match store.snapshot_at_seqno(at(a))? {
                    // PiTR and compaction drop older headers, so finding
                    // none can be right, but not while the file still
                    // lists a header at or below the seqno asked for.
                    None => match store
                        .headers()?
                        .iter()
                        .find(|h| h.header.update_seq <= at(a))
                    {
                        Some(h) => Err(oracle::Divergence::from_read(format!(
                            "snapshot_at_seqno({}) found no header, but the file holds \
                             one with update_seq {} (at {})",
                            at(a),
                            h.header.update_seq,
                            h.pos
                        ))),
                        None => Ok(()),
                    },
                    Some(snap) => {
                        let header = crate::extract::recovered_header(&snap, |v, _| {
                            crate::extract::oracle_value(v)
                        })?;
                        self.journal.reached.mark(Reach::ReadSnapshotAtSeqno);
                        if header.update_seq > at(a) {
                            Err(oracle::Divergence::from_read(format!(
                                "snapshot_at_seqno({}) opened a header with update_seq {}",
                                at(a),
                                header.update_seq
                            )))
                        } else {
                            model.check_committed_header(&header, 0, 1)
                        }
                    }
                },
            })
        })();
        match judged {
            Ok(Ok(())) => {
                self.checks += 1;
                Ok(())
            }
            Ok(Err(d)) => Err(self.fail(FailureKind::Divergence, d.invariant, d.to_string())),
            Err(e) => self.read_failed(&e, before, "a read"),
        }
    }

    /// A read API failed: a read cut short by an injected fault is
    /// allowed, anything else fails the run (`readable`).
    fn read_failed(&mut self, e: &engine::Error, before: u64, what: &str) -> StepResult {
        if self.read_cut(e, before) {
            return Ok(());
        }
        Err(self.fail(
            FailureKind::Divergence,
            HarnessCheck::Readable,
            format!("{what} failed with no fault to explain it: {e}"),
        ))
    }

    /// A reader opens a snapshot and keeps it (and its file) open.
    fn hold(&mut self) -> StepResult {
        if self.held.is_some() {
            return Ok(());
        }
        let before = self.watch.injected();
        match self.store()?.snapshot() {
            Ok(snap) => {
                self.held = Some((snap, self.switches));
                Ok(())
            }
            Err(e) => self.read_failed(&e, before, "opening a snapshot"),
        }
    }

    /// The reader reads its snapshot back (still exactly a committed state,
    /// whatever compaction did meanwhile), lets it go, and the deletions it
    /// deferred are retried.
    fn release(&mut self) -> StepResult {
        use crate::reach::State as Reach;
        let Some((snap, switches)) = self.held.take() else {
            return Ok(());
        };
        let before = self.watch.injected();
        match crate::extract::recovered_header(&snap, |v, _| crate::extract::oracle_value(v)) {
            Ok(header) => {
                if let Err(d) = self.journal.model.check_committed_header(&header, 0, 1) {
                    return Err(self.fail(FailureKind::Divergence, d.invariant, d.to_string()));
                }
                self.checks += 1;
                if self.switches > switches {
                    self.journal.reached.mark(Reach::HeldSnapshotAcrossSwitch);
                }
            }
            Err(e) if self.read_cut(&e, before) => {}
            Err(e) => {
                return Err(self.fail(
                    FailureKind::Divergence,
                    HarnessCheck::Readable,
                    format!("a held snapshot could not be read back: {e}"),
                ))
            }
        }
        drop(snap);
        let before = self.watch.injected();
        match self.store()?.retry_pending_deletions() {
            Ok(0) => {}
            Ok(_) => self.journal.reached.mark(Reach::DeferredUnlinkRetried),
            Err(e) => match self.explain(&e, before) {
                Some(_) => {}
                None => return Err(self.unexplained(Op::RetryDeletions, &e)),
            },
        }
        self.check_deferred_unlinks()
    }

    fn arm(&mut self, trigger: CrashTrigger) {
        if let Err(e) = self.sim.arm(trigger) {
            self.note(Event::NotArmed {
                error: e.to_string(),
            });
        }
    }

    /// Queue `set(key, value)`; a refusal must be explained. Whether it was
    /// queued.
    fn queue_set(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<bool, Box<Failure>> {
        let before = self.watch.injected();
        match self.store()?.set(&key, &value) {
            Ok(_) => {
                self.mutations += 1;
                self.emit(Event::Queued {
                    key,
                    value: Some(value),
                })?;
                Ok(true)
            }
            Err(e) => self.mutation_refused(Op::Set, &e, before).map(|()| false),
        }
    }

    /// A set or delete was refused: allowed only when the store is poisoned
    /// by an explained fault (or the disk crashed).
    fn mutation_refused(&mut self, op: Op, e: &engine::Error, before: u64) -> StepResult {
        match self.explain(e, before) {
            Some(_) => {
                self.sanity.mutations_refused += 1;
                self.note(Event::Refused {
                    op,
                    error: e.to_string(),
                });
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
        let locked_pause = self.paused.is_some_and(|(_, locked)| locked);
        if queued == 0 {
            return match store.flush() {
                Ok(None) => Ok(()),
                Err(engine::Error::Busy) if locked_pause => Ok(()),
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
        let started = Event::FlushStarted {
            timestamp_secs: self.clock.now_secs(),
        };
        let result = if locked_pause {
            // The paused compactor holds the store lock: the flush must be
            // refused, and then nothing was in flight.
            let result = store.flush();
            if matches!(result, Err(engine::Error::Busy)) {
                self.journal
                    .reached
                    .mark(crate::reach::State::BusyWhilePaused);
                self.note(Event::Observed(
                    "flush refused (Busy): the paused compactor holds the store lock".into(),
                ));
                return Ok(());
            }
            self.emit(started)?;
            result
        } else {
            self.emit(started)?;
            store.flush()
        };
        match result {
            Ok(Some(info)) => {
                self.sanity.commits_acked += 1;
                self.emit(Event::FlushAcked {
                    update_seq: info.update_seq,
                    timestamp_secs: info.timestamp,
                    data_end: info.data_end,
                })
            }
            Ok(None) => {
                let msg = format!("{queued} queued mutations but the flush committed nothing");
                Err(self.fail(FailureKind::Divergence, HarnessCheck::LostQueue, msg))
            }
            Err(engine::Error::Busy) if self.compaction_unlocked() || self.paused.is_some() => {
                let msg = "the flusher could not commit between compaction steps: the store lock \
                           is held outside start, the final catch-up round and the switch"
                    .to_string();
                Err(self.fail(FailureKind::Hang, HarnessCheck::Liveness, msg))
            }
            Err(e) => {
                match self.explain(&e, before) {
                    Some(Cause::Crash) => {
                        self.sanity.flush_errors_injected += 1;
                        self.note(Event::FlushCut {
                            error: e.to_string(),
                        });
                        return Ok(());
                    }
                    Some(Cause::Poisoned) => self.sanity.flush_errors_explained += 1,
                    Some(Cause::Fault) => self.sanity.flush_errors_injected += 1,
                    None => return Err(self.unexplained(Op::Flush, &e)),
                }
                // EIO: nothing may be assumed; the store refuses work until
                // reopened, so restart the process.
                self.poisoned_by = Some(e.to_string());
                self.emit(Event::FlushFailed {
                    error: e.to_string(),
                })?;
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
        self.emit(Event::Queued {
            key: b"_probe".to_vec(),
            value: Some(b"live".to_vec()),
        })?;
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
                self.sanity.compactions_started += 1;
                self.emit(Event::CompactionStarted {
                    h0_update_seq: c.h0_update_seq(),
                    params,
                })?;
                self.compaction = Some(c);
            }
            // Documented refusal: nothing committed yet to compact, and the
            // model must agree that the store is empty.
            Err(e @ engine::Error::Invalid(_)) if self.journal.model.tip_update_seq() == 0 => {
                self.sanity.compaction_start_refused_empty += 1;
                self.note(Event::CompactionNotStarted {
                    error: e.to_string(),
                });
            }
            Err(e) => match self.explain(&e, before) {
                Some(_) => {
                    self.sanity.compaction_start_refused_fault += 1;
                    self.note(Event::CompactionNotStarted {
                        error: e.to_string(),
                    });
                }
                None => return Err(self.unexplained(Op::StartCompaction, &e)),
            },
        }
        Ok(())
    }

    fn compact_step(&mut self) -> StepResult {
        let Some(mut c) = self.compaction.take() else {
            return Ok(());
        };
        let faults_before = self.watch.injected();
        let before = c.phase();
        let result = match self.preempt {
            Some(preempt) => {
                let (back, result, fired) = self.preemptible_step(c, preempt)?;
                if fired {
                    self.preempt = None;
                }
                if std::mem::take(&mut self.restart_pending) {
                    // The store failed under a step run while this one was
                    // paused: whatever the step did is judged after the
                    // restart, as a crash's would be.
                    drop(back);
                    self.note(Event::CompactionCut {
                        error: format!(
                            "a step run while it was paused failed the store ({result:?})"
                        ),
                    });
                    return self.restart();
                }
                c = back;
                if self.sim.is_crashed() && result.is_ok() {
                    // A step run while it was paused crashed the machine:
                    // whatever the compactor did after that reached no disk.
                    self.compaction = Some(c);
                    self.sanity.compactions_cut_by_crash += 1;
                    self.note(Event::CompactionCut {
                        error: "the machine crashed while the step was paused".into(),
                    });
                    return Ok(());
                }
                result
            }
            None => c.step(),
        };
        let after = c.phase();
        self.compaction = Some(c);
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
                    self.switches += 1;
                    self.emit(Event::CompactionSwitched { phase: after })?;
                }
                if let Progress::Done(report) = progress {
                    self.note(Event::CompactionDone {
                        rounds: report.catchup_rounds,
                        locked_replay_docs: report.locked_replay_docs,
                        headers: report.headers_written,
                        unlink_deferred: report.unlink_deferred,
                    });
                    if report.unlink_deferred {
                        // Compaction writes revision rev + 1 (SPEC 1.4).
                        self.deferred_unlinks.push(report.new_rev.saturating_sub(1));
                    }
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
            Err(e) => {
                match self.explain(&e, faults_before) {
                    Some(Cause::Crash) => {
                        let last = self.sim.pending_crash().and_then(|r| r.last_failpoint);
                        self.cut_phase = Some(phase_at_cut(before, last));
                        self.sanity.compactions_cut_by_crash += 1;
                        self.note(Event::CompactionCut {
                            error: e.to_string(),
                        });
                        return Ok(());
                    }
                    Some(_) => {}
                    None => return Err(self.unexplained(Op::CompactionStep, &e)),
                }
                self.sanity.compactions_aborted_fault += 1;
                self.compaction = None;
                if matches!(before, Phase::Copy | Phase::CatchUp) && !switched_now {
                    self.emit(Event::CompactionAborted {
                        requested: false,
                        error: Some(e.to_string()),
                    })
                } else {
                    // Failed after the rename: the store is poisoned; restart.
                    self.note(Event::CompactionFailedAfterSwitch {
                        error: e.to_string(),
                    });
                    self.restart()
                }
            }
        }
    }

    /// Run one compaction step on a thread of its own, paused at the armed
    /// point while the runner runs the next steps of the scenario (other
    /// actors), then resumed. Only one of the two threads runs at a time: the
    /// run stays deterministic.
    fn preemptible_step(
        &mut self,
        c: Compaction,
        preempt: Preempt,
    ) -> Result<(Compaction, engine::Result<Progress>, bool), Box<Failure>> {
        use std::sync::{mpsc, Mutex, PoisonError};
        let (to_runner, from_worker) = mpsc::channel::<PauseMsg>();
        let (to_worker, from_runner) = mpsc::channel::<()>();
        let from_runner = Mutex::new(from_runner);
        let store = self.store()?.clone();
        let hook_tx = to_runner.clone();
        let hook: failpoints::PauseHook = Arc::new(move |point| {
            // A call that holds the memory lock cannot be preempted here:
            // any other call of the store would wait for it.
            if !store.memory_lock_free() {
                let _ = hook_tx.send(PauseMsg::Declined(point));
                return;
            }
            if hook_tx.send(PauseMsg::Paused(point)).is_ok() {
                let _ = from_runner
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .recv();
            }
        });
        let locks_before = self.sim.failpoint_hits(BEFORE_STORE_LOCK);
        let unlinks_before = self.sim.failpoint_hits(BEFORE_UNLINK);
        self.sim
            .arm_pause(preempt.point, u64::from(preempt.nth), hook);
        let sim = self.sim.clone();
        let mutant = engine::mutants::current();
        run_on_worker(Box::new(move || {
            let _binding = failpoints::bind_thread(&sim);
            engine::mutants::set(mutant);
            let mut c = c;
            let result = catch_unwind(AssertUnwindSafe(|| c.step()));
            let _ = to_runner.send(PauseMsg::Done(Box::new((c, result))));
        }));
        let mut failure = None;
        let mut panicked = None;
        // Until the step is done, whatever happens here: the worker must
        // never be left waiting for a resume.
        let mut done = None;
        while let Ok(msg) = from_worker.recv() {
            match msg {
                PauseMsg::Done(d) => {
                    done = Some(d);
                    break;
                }
                PauseMsg::Declined(point) => self.note(Event::PauseDeclined {
                    at: point.to_string(),
                }),
                PauseMsg::Paused(point) => {
                    // Paused at that very failpoint, the lock is not taken
                    // yet.
                    let at_it = point == failpoints::PausePoint::Failpoint(BEFORE_STORE_LOCK);
                    let taken = self.sim.failpoint_hits(BEFORE_STORE_LOCK) - locks_before;
                    // The switch released it before the unlink.
                    let released = self.sim.failpoint_hits(BEFORE_UNLINK) > unlinks_before;
                    let locked = taken > u64::from(at_it) && !released;
                    let paused = catch_unwind(AssertUnwindSafe(|| {
                        self.run_paused(point, locked, preempt.steps)
                    }));
                    match paused {
                        Ok(Ok(())) => {}
                        Ok(Err(f)) => failure = Some(f),
                        Err(payload) => panicked = Some(payload),
                    }
                    let _ = to_worker.send(());
                }
            }
        }
        let fired = !self.sim.disarm_pause();
        let Some(done) = done else {
            panic!("the preemption worker stopped without finishing its step");
        };
        let (c, result) = *done;
        if let Some(payload) = panicked {
            std::panic::resume_unwind(payload);
        }
        let result = match result {
            Ok(result) => result,
            Err(payload) => std::panic::resume_unwind(payload),
        };
        match failure {
            Some(f) => Err(f),
            None => Ok((c, result, fired)),
        }
    }

    /// The compaction step is paused at `point`: run the next `steps` steps
    /// of the scenario (up to a process restart, or a crash), then let it go
    /// on.
    fn run_paused(&mut self, point: failpoints::PausePoint, locked: bool, steps: u8) -> StepResult {
        use crate::reach::State as Reach;
        self.pauses += 1;
        self.paused = Some((point, locked));
        self.note(Event::Paused {
            at: point.to_string(),
            locked,
        });
        let scenario = self.scenario;
        let first = self.step + 1;
        let end = (first + usize::from(steps)).min(scenario.steps.len());
        let current = self.step;
        let mut result = Ok(());
        for i in first..end {
            let step = &scenario.steps[i];
            // A restart waits for the step; so does a second compaction
            // start: whether the engine may accept it depends on whether the
            // paused step is already failing (its cleanup ends the
            // compaction), which the runner cannot see mid-step.
            if matches!(
                step,
                Step::Reopen | Step::Damage(_) | Step::CompactStart { .. }
            ) || self.sim.is_crashed()
                || self.restart_pending
            {
                break;
            }
            self.journal.reached.mark(Reach::CompactorPaused);
            self.step = i;
            self.skip_until = i + 1;
            self.note(Event::Step {
                index: i,
                step: step.clone(),
                paused_at: Some(point.to_string()),
            });
            result = self.do_step(step);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            self.step = current;
        }
        self.paused = None;
        self.note(Event::Resumed);
        result
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
                self.note(Event::CrashedInRecovery { record });
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
                    self.note(Event::Opened {
                        rev: report.rev,
                        removed: report.removed.clone(),
                        truncated_bytes: report.truncated_bytes,
                        damaged_headers: report.damaged_headers.len(),
                    });
                    // Recovery cut whatever was damaged, durably.
                    self.tail_may_be_damaged = false;
                    self.partial_writes_seen = self.partial_writes();
                    // Faults armed for the recovery end with it.
                    self.sim.set_faults(base_faults(&self.scenario.config));
                    self.poisoned_by = None;
                    self.store = Some(store);
                    // The open removed every lower revision.
                    self.deferred_unlinks.clear();
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
                    self.note(Event::StrictRefused {
                        error: e.to_string(),
                    });
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
                    self.note(Event::OpenFailedInjected {
                        error: e.to_string(),
                    });
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
        self.sim.injected(failpoints::FaultKind::ShortWrite)
            + self.sim.injected(failpoints::FaultKind::Enospc)
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
        if self.paused.is_some() {
            // Not while a compaction step is under way on the other thread:
            // the pause ends, and the restart follows the step.
            self.restart_pending = true;
            return Ok(());
        }
        self.held = None;
        self.compaction = None;
        self.store = None;
        self.poisoned_by = None;
        self.sim.disarm();
        self.sim.set_faults(base_faults(&self.scenario.config));
        self.emit(Event::ProcessRestart)?;
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
        self.held = None;
        let phase = self.compaction.take().map(|c| c.phase());
        let phase = match (phase, self.cut_phase.take()) {
            (Some(Phase::Aborted), Some(cut)) => Some(cut),
            (phase, _) => phase,
        };
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
        self.emit(Event::Crash {
            record,
            phase,
            largest_file: self.watch.max_file_end(),
        })?;
        self.open_store()?;
        self.check(true)
    }

    fn check_live(&mut self) -> StepResult {
        self.check(false)?;
        self.check_deferred_unlinks()
    }

    /// SPEC invariant 9 on a running store, for the one stale file it may
    /// keep: an old revision whose unlink was deferred because a reader
    /// held it. Until it is gone from the directory the store must still
    /// list it among its pending deletions: one it dropped from the list
    /// is a second `<name>.couch.<rev>` nobody removes until some later
    /// open. (The directory is otherwise judged only right after an open;
    /// the harness looks at the simulator's directory, no engine call.)
    fn check_deferred_unlinks(&mut self) -> StepResult {
        if self.deferred_unlinks.is_empty() || self.sim.is_crashed() {
            return Ok(());
        }
        let Some(store) = self.store.as_ref() else {
            return Ok(());
        };
        let before = self.watch.injected();
        let pending = match store.pending_deletions() {
            Ok(p) => p,
            Err(e) => return self.read_failed(&e, before, "listing pending deletions"),
        };
        let dir = Path::new(DB_DIR);
        let mut stale = Vec::new();
        self.deferred_unlinks.retain(|rev| {
            let path = dir.join(engine::layout::file_name(DB_NAME, *rev));
            if self.sim.file(&path).is_none() {
                return false;
            }
            if !pending.contains(&path) {
                stale.push(path);
            }
            true
        });
        let Some(path) = stale.first() else {
            return Ok(());
        };
        let msg = format!(
            "{} is still in the directory after its unlink was deferred, but the store no \
             longer lists it among its pending deletions {pending:?}: a stale revision \
             beside the current one that nothing will remove",
            path.display()
        );
        Err(self.fail(
            FailureKind::Divergence,
            oracle::Invariant::SingleAuthority,
            msg,
        ))
    }

    fn check(&mut self, after_crash: bool) -> StepResult {
        let store = self.store()?.clone();
        // Every header is verified while it is read (verify is always on in
        // the simulator). The directory is judged only right after an open:
        // while running, a `.compact` file or a not yet unlinked old revision
        // is normal (a deferred unlink is judged by check_deferred_unlinks).
        // Reading every header's trees is the harness's work, growing with
        // the store: it gets its own allowance (a bounded number of calls
        // per header), so a big store is not taken for a hang.
        let headers_bound = self.sanity.commits_acked + 2 * self.sanity.compactions_started + 2;
        self.watch
            .allow(headers_bound.saturating_mul(CHECK_CALLS_PER_HEADER));
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
            self.journal.model.check(&recovered).map(Some)
        } else {
            self.journal.model.check_live(&recovered).map(|()| None)
        };
        match result {
            Ok(report) => {
                self.checks += 1;
                self.note(Event::Checked {
                    tip: recovered.headers.first().map_or(0, |h| h.update_seq),
                    headers: recovered.headers.len(),
                    report: report.as_ref().map(|r| r.to_string()).unwrap_or_default(),
                    landed: report
                        .is_some_and(|r| matches!(r.in_flight, oracle::InFlight::Landed { .. })),
                    new_file_won: report.is_some_and(|r| {
                        matches!(r.compaction, oracle::CompactionOutcome::NewFile)
                    }),
                });
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
                self.note(Event::ReadCut {
                    cause,
                    error: e.to_string(),
                });
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
