//! `run`: one scenario, start to end, on the simulated disk, with the oracle
//! fed in lockstep. After every crash: reboot the disk into its post-crash
//! image, recover (crashing again during recovery when the scenario says
//! so), `verify` every header, and let the oracle judge what came back.

use crate::scenario::{failpoint_name, Scenario, Step, IO_KINDS, KEY_SPACE};
use engine::mutants::Mutant;
use engine::Clock;
use engine::{
    Compaction, CompactionOptions, Config, ManualClock, Phase, PitrConfig, Progress,
    RecoveryPolicy, Store,
};
use failpoints::{Coverage, CrashMode, CrashTrigger, FaultConfig, IoKind, SimVfs};
use oracle::{CompactionParams, Model, Pitr, RecoveredHeader, RecoveredStore};
use sha2::{Digest, Sha256};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

/// The store's directory on the simulated disk.
pub const DB_DIR: &str = "/db";
/// The store's name.
pub const DB_NAME: &str = "db";
/// Compaction steps a `CompactFinish` may take before it is a hang.
pub const MAX_COMPACTION_STEPS: usize = 10_000;
/// Crashes in a row during one recovery before giving up on the scenario.
const MAX_RECOVERY_CRASHES: usize = 4;

/// How a failure is classified; each kind has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// The oracle (or `verify`) found a broken invariant.
    Divergence,
    /// The engine panicked.
    Panic,
    /// Something did not finish, or the flusher starved (liveness).
    Hang,
    /// Recovery failed on a disk the fault model says must recover.
    RecoveryError,
}

impl FailureKind {
    /// The process exit code for this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::Divergence => 3,
            FailureKind::Panic => 4,
            FailureKind::Hang => 5,
            FailureKind::RecoveryError => 6,
        }
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Divergence => "divergence",
            FailureKind::Panic => "panic",
            FailureKind::Hang => "hang",
            FailureKind::RecoveryError => "recovery-error",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed run: what broke, where, and the trace up to it.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The class of failure.
    pub kind: FailureKind,
    /// The invariant broken (oracle name, `verify`, `liveness`, ...).
    pub invariant: String,
    /// The full report.
    pub message: String,
    /// The step (0-based) at which it was found.
    pub step: usize,
    /// The failpoint last hit before the crash that preceded it, if any.
    pub failpoint: Option<String>,
    /// The trace up to and including the failure.
    pub trace: Vec<String>,
    /// The scenario that failed.
    pub scenario: Scenario,
    /// The seeded bug that was on, if any.
    pub mutant: Option<Mutant>,
}

impl Failure {
    /// De-duplication signature: failure kind + invariant + crash failpoint,
    /// hashed to 16 hex digits.
    pub fn signature(&self) -> String {
        let text = format!(
            "{}|{}|{}",
            self.kind,
            self.invariant,
            self.failpoint.as_deref().unwrap_or("-")
        );
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }

    /// The command that replays this failure from its scenario bytes.
    pub fn replay_command(&self) -> String {
        replay_command(&self.scenario, self.mutant, None)
    }
}

/// The command line that replays `scenario` (from `artifact` when it was
/// written to a file, else from its hex bytes).
pub fn replay_command(
    scenario: &Scenario,
    mutant: Option<Mutant>,
    artifact: Option<&Path>,
) -> String {
    let mutant = mutant.map_or(String::new(), |m| format!(" --mutant {}", m.name()));
    match artifact {
        Some(path) => format!(
            "cargo run --release --bin crashfuzz -- repro {}{mutant}",
            path.display()
        ),
        None => format!(
            "cargo run --release --bin crashfuzz -- repro --hex {}{mutant}",
            hex::encode(scenario.to_bytes())
        ),
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "FAILURE {} [{}] at step {} (signature {})",
            self.kind,
            self.invariant,
            self.step,
            self.signature()
        )?;
        if let Some(m) = self.mutant {
            writeln!(f, "seeded bug on: {m}")?;
        }
        if let Some(fp) = &self.failpoint {
            writeln!(f, "crash after failpoint: {fp}")?;
        }
        writeln!(f, "{}", self.message.trim_end())?;
        writeln!(f, "replay: {}", self.replay_command())
    }
}

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
    INSTALL.call_once(failpoints::install_failpoint_callbacks);
    engine::mutants::set(options.mutant);
    let result = catch_unwind(AssertUnwindSafe(body));
    engine::mutants::set(None);
    result.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic with a non-string payload".into());
        Err(Box::new(Failure {
            kind: FailureKind::Panic,
            invariant: "no-panic".into(),
            message: format!("{context}: {message}"),
            step: 0,
            failpoint: None,
            trace: Vec::new(),
            scenario: scenario.clone(),
            mutant: options.mutant,
        }))
    })
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
    recovery_trigger: Option<CrashTrigger>,
    version: u64,
    last_crash_failpoint: Option<String>,
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
        sim.set_faults(FaultConfig {
            windows_mode: c.windows,
            ..FaultConfig::default()
        });
        let binding = failpoints::bind_thread(&sim);
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
        Runner {
            scenario,
            options,
            sim,
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
            version: 0,
            last_crash_failpoint: None,
        }
    }

    fn log(&mut self, line: String) {
        if self.options.echo {
            eprintln!("{line}");
        }
        self.trace.push(line);
    }

    fn fail(&mut self, kind: FailureKind, invariant: &str, message: String) -> Box<Failure> {
        self.log(format!(
            "!! {kind} [{invariant}]: {}",
            message.lines().next().unwrap_or("")
        ));
        Box::new(Failure {
            kind,
            invariant: invariant.to_string(),
            message,
            step: self.step,
            failpoint: self.last_crash_failpoint.clone(),
            trace: self.trace.clone(),
            scenario: self.scenario.clone(),
            mutant: self.options.mutant,
        })
    }

    fn run_all(&mut self) -> Result<Outcome, Box<Failure>> {
        self.log(format!("config {:?}", self.scenario.config));
        self.open_store()?;
        for (i, step) in self.scenario.steps.iter().enumerate() {
            self.step = i;
            self.log(format!("#{i} {step}"));
            self.do_step(step)?;
            if self.sim.is_crashed() {
                self.recover_from_crash()?;
            }
        }
        self.step = self.scenario.steps.len();
        // Always end with a crash of the default kind and a full check.
        self.log("# final crash".into());
        self.sim.crash();
        self.recover_from_crash()?;
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
        })
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
                if self.store()?.set(&k, &value).is_ok() {
                    self.model.set(&k, &value);
                }
                Ok(())
            }
            Step::Delete { key } => {
                let k = key_bytes(key);
                if self.store()?.delete(&k).is_ok() {
                    self.model.delete(&k);
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
                for _ in 0..n {
                    if self.compaction.is_none() || self.sim.is_crashed() {
                        break;
                    }
                    self.compact_step()?;
                }
                Ok(())
            }
            Step::CompactFinish => {
                let mut steps = 0;
                while self.compaction.is_some() && !self.sim.is_crashed() {
                    steps += 1;
                    if steps > MAX_COMPACTION_STEPS {
                        let msg =
                            format!("compaction did not finish in {MAX_COMPACTION_STEPS} steps");
                        return Err(self.fail(FailureKind::Hang, "bounded-compaction", msg));
                    }
                    self.compact_step()?;
                }
                Ok(())
            }
            Step::CompactAbort => {
                if let Some(c) = self.compaction.take() {
                    let phase = c.phase();
                    match c.abort() {
                        Ok(()) => {
                            self.model.compaction_aborted();
                            self.log("   aborted".into());
                        }
                        Err(e) if self.sim.is_crashed() => {
                            self.log(format!("   abort cut by crash: {e}"))
                        }
                        Err(e) if matches!(phase, Phase::Copy | Phase::CatchUp) => {
                            // The abort's own cleanup failed (EIO): the
                            // compaction is over either way.
                            self.model.compaction_aborted();
                            self.log(format!("   abort failed: {e}"));
                        }
                        Err(e) => self.log(format!("   abort refused: {e}")),
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
                    self.recovery_trigger = Some(trigger);
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
            Step::CrashInRecovery { kind, nth } => {
                self.recovery_trigger = Some(CrashTrigger::AtIo {
                    kind: io_kind(kind),
                    nth: u64::from(nth),
                });
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

    fn flush(&mut self) -> StepResult {
        let store = self.store()?.clone();
        let queued = store.queue_len().unwrap_or(0);
        if queued == 0 {
            return match store.flush() {
                Ok(None) | Err(_) => Ok(()),
                Ok(Some(info)) => {
                    let msg = format!("a flush of an empty queue committed {info:?}");
                    Err(self.fail(FailureKind::Divergence, "empty-flush", msg))
                }
            };
        }
        self.model.flush_started(self.clock.now_secs());
        match store.flush() {
            Ok(Some(info)) => {
                self.log(format!(
                    "   acked update_seq={} ts={}",
                    info.update_seq, info.timestamp
                ));
                if let Err(d) = self.model.flush_acked(info.update_seq, info.timestamp) {
                    return Err(self.fail(FailureKind::Divergence, d.signature(), d.to_string()));
                }
                Ok(())
            }
            Ok(None) => {
                let msg = format!("{queued} queued mutations but the flush committed nothing");
                Err(self.fail(FailureKind::Divergence, "lost-queue", msg))
            }
            Err(engine::Error::Busy) if self.compaction_unlocked() => {
                let msg = "the flusher could not commit between compaction steps: the store lock \
                           is held outside start, the final catch-up round and the switch"
                    .to_string();
                Err(self.fail(FailureKind::Hang, "liveness", msg))
            }
            Err(e) if self.sim.is_crashed() => {
                self.log(format!("   flush cut by crash: {e}"));
                Ok(())
            }
            Err(e) => {
                // EIO: nothing may be assumed; the store refuses work until
                // reopened, so restart the process.
                self.model.flush_failed();
                self.log(format!("   flush failed: {e}"));
                if self.store()?.set(b"probe", b"x").is_ok() {
                    let msg = format!("the store accepted a write after a failed flush ({e})");
                    return Err(self.fail(FailureKind::Divergence, "poison-after-error", msg));
                }
                self.restart()
            }
        }
    }

    /// The compactor is paused in an unlocked phase: the flusher must be
    /// able to commit now (SPEC invariant 10).
    fn probe_liveness(&mut self) -> StepResult {
        let store = self.store()?.clone();
        if store.set(b"_probe", b"live").is_err() {
            return Ok(());
        }
        self.model.set(b"_probe", b"live");
        self.flush()
    }

    fn compaction_unlocked(&self) -> bool {
        self.compaction
            .as_ref()
            .is_some_and(|c| matches!(c.phase(), Phase::Copy | Phase::CatchUp))
    }

    fn compact_start(&mut self, purge: u8) -> StepResult {
        if self.compaction.is_some() {
            return match self.store()?.start_compaction(CompactionOptions::default()) {
                Err(engine::Error::CompactionRunning) => Ok(()),
                Err(_) => Ok(()),
                Ok(_) => {
                    let msg = "a second compaction started while one runs".to_string();
                    Err(self.fail(FailureKind::Divergence, "single-compaction", msg))
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
                self.model.compaction_started(params);
                self.compaction = Some(c);
            }
            Err(e) => self.log(format!("   not started: {e}")),
        }
        Ok(())
    }

    fn compact_step(&mut self) -> StepResult {
        let Some(c) = self.compaction.as_mut() else {
            return Ok(());
        };
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
                }
                Ok(())
            }
            Err(e) if self.sim.is_crashed() => {
                self.log(format!("   compaction cut by crash: {e}"));
                Ok(())
            }
            Err(e) => {
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
        loop {
            if let Some(t) = self.recovery_trigger.take() {
                self.arm(t);
            }
            let opened =
                Store::open_with_report(self.sim.as_vfs(), DB_DIR, DB_NAME, self.config.clone());
            if self.sim.is_crashed() {
                drop(opened);
                crashes += 1;
                let record = self.sim.reboot();
                self.crash_states += 1;
                self.log(format!("   crashed during recovery: {record}"));
                if crashes > MAX_RECOVERY_CRASHES {
                    let msg = "recovery crashed too often".to_string();
                    return Err(self.fail(FailureKind::Hang, "recovery-progress", msg));
                }
                continue;
            }
            self.sim.disarm();
            match opened {
                Ok((store, report)) => {
                    self.log(format!(
                        "   opened rev {} (removed {:?}, truncated {} bytes)",
                        report.rev, report.removed, report.truncated_bytes
                    ));
                    self.store = Some(store);
                    return Ok(());
                }
                Err(e) if self.config.recovery == RecoveryPolicy::Strict && e.is_corruption() => {
                    // Strict recovery refuses a damaged tail, as documented;
                    // the operator then opens tolerating it.
                    self.log(format!("   strict open refused: {e}; reopening tolerant"));
                    self.config.recovery = RecoveryPolicy::TolerateCorruptTail;
                }
                Err(e) if is_injected_eio(&e) && crashes <= MAX_RECOVERY_CRASHES => {
                    // An injected I/O error during recovery: the open fails
                    // cleanly (it must not panic or damage anything), and the
                    // operator retries.
                    crashes += 1;
                    self.log(format!("   open failed with injected EIO, retrying: {e}"));
                    self.sim.set_faults(FaultConfig {
                        windows_mode: self.scenario.config.windows,
                        ..FaultConfig::default()
                    });
                }
                Err(e) => {
                    let msg = format!("open failed on a disk that must recover: {e}");
                    return Err(self.fail(FailureKind::RecoveryError, "recoverable", msg));
                }
            }
        }
    }

    /// A process restart without a disk crash: drop the store (the queue is
    /// lost) and open again; the page cache, synced or not, stays as it is.
    fn restart(&mut self) -> StepResult {
        self.compaction = None;
        self.store = None;
        self.sim.disarm();
        self.sim.set_faults(FaultConfig {
            windows_mode: self.scenario.config.windows,
            ..FaultConfig::default()
        });
        self.log("   process restart".into());
        self.model.crash();
        self.open_store()?;
        self.check(true)
    }

    /// After a power loss with `tear_unsynced`: flip one bit of one byte that
    /// was never synced and survived into the image, in a header block when
    /// there is one (a header torn inside its sector).
    fn tear_unsynced(&mut self, durable_lens: &[(std::path::PathBuf, usize)]) {
        let crashes = self.crash_states;
        for (path, durable_len) in durable_lens {
            let Some(mut bytes) = self.sim.file(path) else {
                continue;
            };
            if bytes.len() <= *durable_len {
                continue;
            }
            let mix = self.scenario.config.disk_seed ^ crashes.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let headers: Vec<usize> = (*durable_len..bytes.len())
                .filter(|at| at % 4096 == 0 && bytes[*at] == engine::format::MARKER_HEADER)
                .collect();
            let at = match headers.last() {
                // Inside the header's length, checksum or first fields.
                Some(block) => (block + 1 + (mix % 40) as usize).min(bytes.len() - 1),
                None => *durable_len + (mix as usize) % (bytes.len() - durable_len),
            };
            bytes[at] ^= 1 << ((mix >> 8) % 8);
            if self.sim.put_file(path, &bytes).is_ok() {
                self.log(format!("   tore unsynced byte {at} of {}", path.display()));
            }
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
            let durable_lens: Vec<(std::path::PathBuf, usize)> = self
                .sim
                .snapshot()
                .into_iter()
                .map(|f| (f.path, f.durable.len()))
                .collect();
            let record = self.sim.reboot();
            self.tear_unsynced(&durable_lens);
            record
        } else {
            self.sim.reboot()
        };
        // Injected EIO is a transient fault of the running system; a restart
        // starts with a healthy disk (Windows semantics stay).
        self.sim.set_faults(FaultConfig {
            windows_mode: self.scenario.config.windows,
            ..FaultConfig::default()
        });
        self.last_crash_failpoint = record.last_failpoint.map(str::to_string);
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
        let recovered = match extract(&store, &self.sim, after_crash) {
            Ok(r) => r,
            Err(e) => {
                let kind = if matches!(e, engine::Error::Verify(_)) || e.is_corruption() {
                    FailureKind::Divergence
                } else {
                    FailureKind::RecoveryError
                };
                return Err(self.fail(kind, "verify", format!("verify failed: {e}")));
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
            Err(d) => Err(self.fail(FailureKind::Divergence, d.signature(), d.to_string())),
        }
    }

    fn snapshot_check(&mut self, back: u8) -> StepResult {
        let store = self.store()?.clone();
        let at = self.clock.now_secs().saturating_sub(u64::from(back));
        let headers = match store.headers() {
            Ok(h) => h,
            Err(e) => return Err(self.fail(FailureKind::Divergence, "readable", e.to_string())),
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
                    return Err(self.fail(FailureKind::Divergence, "snapshot-at", msg));
                }
                if let Some(Err(e)) = snap.map(|s| s.verify()) {
                    return Err(self.fail(FailureKind::Divergence, "verify", e.to_string()));
                }
                Ok(())
            }
            Err(e) => Err(self.fail(FailureKind::Divergence, "snapshot-at", e.to_string())),
        }
    }
}

fn is_injected_eio(e: &engine::Error) -> bool {
    matches!(e, engine::Error::Io { source, .. } if failpoints::is_simulated_eio(source))
}

fn unreachable_failure(scenario: &Scenario, what: &str) -> Box<Failure> {
    Box::new(Failure {
        kind: FailureKind::RecoveryError,
        invariant: "harness".into(),
        message: format!("harness state error: {what}"),
        step: 0,
        failpoint: None,
        trace: Vec::new(),
        scenario: scenario.clone(),
        mutant: None,
    })
}

/// Everything the oracle needs, read through the engine's public API only.
pub fn extract(store: &Store, sim: &SimVfs, list_files: bool) -> engine::Result<RecoveredStore> {
    let mut headers = Vec::new();
    for h in store.headers()? {
        // One walk per header: verify (trees, agreement, reduces, counters)
        // and collect what the oracle needs.
        let (_, contents) = store.snapshot_at_header(h.pos)?.verify_with_contents()?;
        let docs = contents
            .docs
            .into_iter()
            .map(|d| {
                (
                    d.key,
                    oracle::Doc {
                        value: d.value,
                        seqno: d.seqno,
                        deleted: d.deleted,
                    },
                )
            })
            .collect();
        let by_seq = contents
            .by_seq
            .into_iter()
            .map(|e| oracle::BySeqEntry {
                seqno: e.seqno,
                key: e.key,
                deleted: e.deleted,
            })
            .collect();
        let counters = contents.counters.unwrap_or_default();
        headers.push(RecoveredHeader {
            update_seq: h.header.update_seq,
            purge_seq: h.header.purge_seq,
            timestamp_secs: h.header.timestamp,
            docs,
            by_seq,
            counters: oracle::Counters {
                live: counters.live,
                deleted: counters.deleted,
            },
        });
    }
    let files = if list_files {
        sim.as_vfs().list(Path::new(DB_DIR)).ok()
    } else {
        None
    };
    Ok(RecoveredStore { headers, files })
}
