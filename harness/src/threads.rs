//! Thread schedules: the engine's real background flusher and compactor,
//! with writer threads, under [shuttle](https://docs.rs/shuttle)'s random or
//! PCT scheduler (`crashfuzz explore --threads`, a share of the default
//! swarm, `harness/tests/shuttle.rs`).
//!
//! A [`ThreadScenario`] is derived from one seed: writers, operations per
//! writer, compactions, the pause hook (the compactor waits after every
//! unlocked step until the flusher commits), purge, the scheduler (random,
//! or PCT with a depth) and the schedule seed. Inside a shuttle execution
//! every lock, condition variable and thread of the engine is shuttle's
//! (`engine::sync`), so the scheduler picks every interleaving of writers,
//! flusher and compactor. Each schedule runs on the simulated disk; at the
//! end the oracle checks the store live, then the disk crashes and the
//! reopened store is checked again.
//!
//! Failures are classified as a divergence (the oracle refused the store),
//! a hang (shuttle found every thread waiting: a deadlock, a lost wakeup,
//! a starved flusher) or a panic/engine error, and carry the failing
//! schedule in shuttle's encoding. The artifact ([`ThreadFound::artifact`])
//! is text: a magic line, the scenario and the schedule; `crashfuzz repro`
//! replays the schedule with shuttle's own decoder, deterministically.

use crate::failure::{Check, HarnessCheck, Op};
use crate::reach::{Reached, State};
use crate::runner::{DB_DIR, DB_NAME};
use crate::scenario::Scenario;
use crate::target::Target;
use crate::{Failure, FailureKind};
use engine::mutants::{self, Mutant};
use engine::sync::shuttle;
use engine::Store;
use engine::{BackgroundConfig, BackgroundEvent, CompactionOptions, Config, ManualClock, Phase};
use failpoints::SimVfs;
use oracle::{CompactionParams, Model, Pitr};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shuttle::scheduler::{PctScheduler, RandomScheduler, Schedule, Scheduler, Task, TaskId};
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The first line of a thread-schedule artifact.
pub use crate::target::THREADS_MAGIC as MAGIC;

/// Which shuttle scheduler picks the interleavings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerKind {
    /// Uniformly random at every scheduling point.
    Random,
    /// Probabilistic concurrency testing with this many preemptions.
    Pct(usize),
}

/// One thread scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadScenario {
    /// The disk seed and the schedule seed.
    pub seed: u64,
    /// Writer threads.
    pub writers: usize,
    /// Mutations per writer.
    pub ops_per_writer: usize,
    /// Compactions, one after the other, while the writers write.
    pub compactions: usize,
    /// Pause the compactor after every unlocked step until the flusher
    /// commits a marker.
    pub pause: bool,
    /// Compactions purge every tombstone.
    pub purge: bool,
    /// The scheduler.
    pub scheduler: SchedulerKind,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of the thread scenario at `index` of exploration seed `seed`.
pub fn scenario_seed(seed: u64, index: u64) -> u64 {
    mix(mix(seed ^ 0x0074_6872_6561_6473) ^ index)
}

/// Whether scenario `index` of exploration seed `seed` is a thread scenario
/// when one in `share` is.
pub fn is_thread_index(seed: u64, index: u64, share: u64) -> bool {
    share > 0 && mix(seed.rotate_left(17) ^ index).is_multiple_of(share)
}

impl ThreadScenario {
    /// The scenario of `seed`.
    pub fn from_seed(seed: u64) -> ThreadScenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        ThreadScenario {
            seed,
            writers: rng.gen_range(1..=3),
            ops_per_writer: rng.gen_range(2..=8),
            compactions: rng.gen_range(1..=2),
            pause: rng.gen_ratio(1, 4),
            purge: rng.gen_bool(0.5),
            scheduler: if rng.gen_ratio(2, 3) {
                SchedulerKind::Random
            } else {
                SchedulerKind::Pct(rng.gen_range(1..=3))
            },
        }
    }

    /// Mutations the writers make in all.
    pub fn ops(&self) -> usize {
        self.writers * self.ops_per_writer
    }

    /// The one-line form ([`ThreadScenario::parse`] reads it back).
    pub fn name(&self) -> String {
        let scheduler = match self.scheduler {
            SchedulerKind::Random => "random".to_string(),
            SchedulerKind::Pct(d) => format!("pct{d}"),
        };
        format!(
            "seed={},writers={},ops={},compactions={},pause={},purge={},scheduler={scheduler}",
            self.seed, self.writers, self.ops_per_writer, self.compactions, self.pause, self.purge
        )
    }

    /// Parse [`ThreadScenario::name`] (`scheduler` may be absent: random).
    pub fn parse(text: &str) -> Option<ThreadScenario> {
        let mut s = ThreadScenario {
            seed: 0,
            writers: 0,
            ops_per_writer: 0,
            compactions: 0,
            pause: false,
            purge: false,
            scheduler: SchedulerKind::Random,
        };
        for part in text.trim().split(',') {
            let (k, v) = part.split_once('=')?;
            match k.trim() {
                "seed" => s.seed = v.parse().ok()?,
                "writers" => s.writers = v.parse().ok()?,
                "ops" => s.ops_per_writer = v.parse().ok()?,
                "compactions" => s.compactions = v.parse().ok()?,
                "pause" => s.pause = v.parse().ok()?,
                "purge" => s.purge = v.parse().ok()?,
                "scheduler" => {
                    s.scheduler = match v {
                        "random" => SchedulerKind::Random,
                        pct => SchedulerKind::Pct(pct.strip_prefix("pct")?.parse().ok()?),
                    }
                }
                _ => return None,
            }
        }
        (s.writers <= 16 && s.ops_per_writer <= 1000 && s.compactions <= 16).then_some(s)
    }

    /// The scheduler of this scenario, seeded from its seed, for
    /// `schedules` executions.
    pub fn scheduler(&self, schedules: usize) -> Box<dyn Scheduler + Send> {
        let seed = mix(self.seed);
        match self.scheduler {
            SchedulerKind::Random => Box::new(RandomScheduler::new_from_seed(seed, schedules)),
            SchedulerKind::Pct(depth) => {
                Box::new(PctScheduler::new_from_seed(seed, depth.max(1), schedules))
            }
        }
    }

    /// The artifact of this scenario, with `schedule` if known.
    pub fn artifact(&self, schedule: Option<&str>) -> Vec<u8> {
        let mut text = format!("{MAGIC}\nscenario: {}\n", self.name());
        if let Some(s) = schedule {
            text.push_str(&format!("schedule: {s}\n"));
        }
        text.into_bytes()
    }
}

impl fmt::Display for ThreadScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A parsed artifact: the scenario and the failing schedule, if recorded.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The scenario.
    pub scenario: ThreadScenario,
    /// The schedule in shuttle's encoding.
    pub schedule: Option<String>,
}

/// Whether `bytes` are a thread-schedule artifact.
pub use crate::target::is_threads_artifact as is_artifact;

/// Parse a thread-schedule artifact.
pub fn parse_artifact(bytes: &[u8]) -> Result<Artifact, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the artifact is not UTF-8".to_string())?;
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(format!(
            "not a thread-schedule artifact (no {MAGIC:?} line)"
        ));
    }
    let mut scenario = None;
    let mut schedule = None;
    for line in lines {
        if let Some(s) = line.strip_prefix("scenario:") {
            scenario = Some(
                ThreadScenario::parse(s).ok_or_else(|| format!("bad scenario line {line:?}"))?,
            );
        } else if let Some(s) = line.strip_prefix("schedule:") {
            schedule = Some(s.trim().to_string());
        }
    }
    Ok(Artifact {
        scenario: scenario.ok_or("the artifact has no scenario line")?,
        schedule,
    })
}

// ---------------------------------------------------------------------------
// The journal of writers' mutations, and the oracle's event order
// ---------------------------------------------------------------------------

/// One accepted mutation.
#[derive(Clone, Debug)]
pub struct Mutation {
    /// Its seqno.
    pub seqno: u64,
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty for a delete).
    pub value: Vec<u8>,
    /// A delete.
    pub deleted: bool,
}

/// Every mutation the writers made, from any thread, and a readable trace.
/// A std mutex even under shuttle: a leaf lock held for a push, never
/// across a scheduling point, so shuttle never has to see it.
#[derive(Debug, Default)]
pub struct Journal {
    mutations: Mutex<Vec<Mutation>>,
    trace: Mutex<Vec<String>>,
}

impl Journal {
    /// `store.set`, journaled.
    pub fn set(&self, store: &Store, key: &[u8], value: &[u8]) -> engine::Result<u64> {
        let seqno = store.set(key, value)?;
        self.push(seqno, key, value, false);
        Ok(seqno)
    }

    /// `store.delete`, journaled.
    pub fn delete(&self, store: &Store, key: &[u8]) -> engine::Result<u64> {
        let seqno = store.delete(key)?;
        self.push(seqno, key, &[], true);
        Ok(seqno)
    }

    fn push(&self, seqno: u64, key: &[u8], value: &[u8], deleted: bool) {
        let key_text = String::from_utf8_lossy(key);
        self.note(if deleted {
            format!("delete {key_text} -> seqno {seqno}")
        } else {
            format!(
                "set {key_text} = {} -> seqno {seqno}",
                String::from_utf8_lossy(value)
            )
        });
        self.mutations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Mutation {
                seqno,
                key: key.to_vec(),
                value: value.to_vec(),
                deleted,
            });
    }

    /// Add a line to the trace.
    pub fn note(&self, line: String) {
        self.trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    /// The mutations so far.
    pub fn mutations(&self) -> Vec<Mutation> {
        self.mutations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The trace so far.
    pub fn trace(&self) -> Vec<String> {
        self.trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A check that failed, typed.
#[derive(Clone, Debug)]
pub struct Broke {
    /// The class.
    pub kind: FailureKind,
    /// What broke.
    pub check: Check,
    /// The report.
    pub message: String,
}

impl fmt::Display for Broke {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.kind, self.check, self.message)
    }
}

fn harness_bug(message: String) -> Broke {
    Broke {
        kind: FailureKind::Divergence,
        check: HarnessCheck::HarnessState.into(),
        message,
    }
}

fn divergence(when: &str, d: oracle::Divergence) -> Broke {
    Broke {
        kind: FailureKind::Divergence,
        check: d.invariant.into(),
        message: format!("DIVERGENCE ({when}):\n{d}"),
    }
}

/// What a compaction event does to the model, keyed by the tip it happened at.
enum ModelStep {
    Started(CompactionParams),
    Switched,
    Aborted,
}

/// Feed `model` (fresh, or in step with the store so far) the mutations
/// and the background log, in the engine's linearization order: a flush
/// took the whole queue, so the commit with update_seq `U` holds exactly
/// the mutations after the previous commit's and up to `U`; a compaction
/// event carries the tip it happened at, so it goes after the commit of
/// that tip and before the next one.
pub fn feed(
    model: &mut Model,
    mutations: &[Mutation],
    events: &[BackgroundEvent],
    pitr: Option<Pitr>,
) -> Result<(), Broke> {
    let mut mutations = mutations.to_vec();
    mutations.sort_by_key(|m| m.seqno);
    let first = model.next_seqno();
    for (i, m) in mutations.iter().enumerate() {
        if m.seqno != first + i as u64 {
            return Err(harness_bug(format!(
                "seqnos are not contiguous: #{i} is {} (expected {})",
                m.seqno,
                first + i as u64
            )));
        }
    }
    let mut steps: VecDeque<(u64, ModelStep)> = compaction_steps(events, pitr)?.into();
    let mut queue: VecDeque<Mutation> = mutations.into();
    for event in events {
        let BackgroundEvent::Flushed(info) = event else {
            continue;
        };
        while steps.front().is_some_and(|(tip, _)| *tip < info.update_seq) {
            if let Some((_, step)) = steps.pop_front() {
                apply(model, step);
            }
        }
        let mut batch = 0;
        while queue.front().is_some_and(|m| m.seqno <= info.update_seq) {
            if let Some(m) = queue.pop_front() {
                enqueue(model, &m)?;
                batch += 1;
            }
        }
        if batch == 0 {
            return Err(harness_bug(format!("commit {info:?} holds no mutation")));
        }
        model.flush_started(info.timestamp);
        model
            .flush_acked(info.update_seq, info.timestamp)
            .map_err(|d| divergence("at an acknowledged flush", d))?;
    }
    for (_, step) in steps {
        apply(model, step);
    }
    for m in queue {
        enqueue(model, &m)?;
    }
    Ok(())
}

fn enqueue(model: &mut Model, m: &Mutation) -> Result<(), Broke> {
    let got = if m.deleted {
        model.delete(&m.key)
    } else {
        model.set(&m.key, &m.value)
    };
    if got != m.seqno {
        return Err(harness_bug(format!(
            "the model gave seqno {got} to engine seqno {}",
            m.seqno
        )));
    }
    Ok(())
}

fn apply(model: &mut Model, step: ModelStep) {
    match step {
        ModelStep::Started(params) => model.compaction_started(params),
        ModelStep::Switched => model.compaction_switched(),
        ModelStep::Aborted => model.compaction_aborted(),
    }
}

/// The compaction events as model steps with the tips they belong after,
/// in order. An abort has no tip of its own: it goes as late as possible
/// (before the next start), which the model cannot tell apart.
fn compaction_steps(
    events: &[BackgroundEvent],
    pitr: Option<Pitr>,
) -> Result<Vec<(u64, ModelStep)>, Broke> {
    let mut out: Vec<(Option<u64>, ModelStep)> = Vec::new();
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
                out.push((Some(*h0_update_seq), ModelStep::Started(params)));
            }
            BackgroundEvent::CompactionSwitched { update_seq, .. } => {
                out.push((Some(*update_seq), ModelStep::Switched));
            }
            BackgroundEvent::CompactionFailed {
                switched: false, ..
            } => {
                if matches!(out.last(), Some((_, ModelStep::Started(_)))) {
                    out.push((None, ModelStep::Aborted));
                }
            }
            BackgroundEvent::CompactionFailed {
                switched: true,
                error,
            } => {
                return Err(Broke {
                    kind: FailureKind::UnexpectedError,
                    check: HarnessCheck::ExplainedError(Op::Background).into(),
                    message: format!("a compaction failed after its switch: {error}"),
                })
            }
            BackgroundEvent::Flushed(_) | BackgroundEvent::CompactionFinished(_) => {}
        }
    }
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
) -> Result<Store, Broke> {
    let live =
        crate::runner::extract(&store, sim, false).map_err(|e| harness_bug(e.to_string()))?;
    model
        .check_live(&live)
        .map_err(|d| divergence("live check", d))?;
    sim.crash();
    drop(store);
    sim.reboot();
    model.crash();
    let store = Store::open(sim.as_vfs(), DB_DIR, DB_NAME, config.clone()).map_err(|e| Broke {
        kind: FailureKind::RecoveryError,
        check: HarnessCheck::Recoverable.into(),
        message: format!("reopen after the crash failed: {e}"),
    })?;
    store.verify_all().map_err(|e| Broke {
        kind: FailureKind::Divergence,
        check: HarnessCheck::Verify.into(),
        message: format!("verify: {e}"),
    })?;
    let recovered =
        crate::runner::extract(&store, sim, true).map_err(|e| harness_bug(e.to_string()))?;
    model
        .check(&recovered)
        .map_err(|d| divergence("after the crash", d))?;
    Ok(store)
}

// ---------------------------------------------------------------------------
// One schedule
// ---------------------------------------------------------------------------

/// The simulated disk with a scheduling point at every fsync, rename and
/// unlink (the slow calls, during which another thread runs): without them
/// a compaction step's I/O, the locked final round included, would be one
/// atomic step for shuttle.
#[derive(Debug)]
struct YieldVfs(Arc<dyn engine::Vfs>);

#[derive(Debug)]
struct YieldFile(Arc<dyn engine::VfsFile>);

fn yield_now() {
    shuttle::thread::yield_now();
}

impl engine::Vfs for YieldVfs {
    fn open(
        &self,
        path: &std::path::Path,
        mode: engine::OpenMode,
    ) -> std::io::Result<Arc<dyn engine::VfsFile>> {
        let file = self.0.open(path, mode)?;
        Ok(Arc::new(YieldFile(file)))
    }

    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        yield_now();
        self.0.rename(from, to)
    }

    fn remove(&self, path: &std::path::Path) -> std::io::Result<()> {
        yield_now();
        self.0.remove(path)
    }

    fn list(&self, dir: &std::path::Path) -> std::io::Result<Vec<String>> {
        self.0.list(dir)
    }

    fn sync_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        yield_now();
        self.0.sync_dir(dir)
    }

    fn create_dir_all(&self, dir: &std::path::Path) -> std::io::Result<()> {
        self.0.create_dir_all(dir)
    }

    fn exists(&self, path: &std::path::Path) -> std::io::Result<bool> {
        self.0.exists(path)
    }
}

impl engine::VfsFile for YieldFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }

    fn sync(&self) -> std::io::Result<()> {
        yield_now();
        self.0.sync()
    }

    fn version(&self) -> Option<engine::FileVersion> {
        self.0.version()
    }

    fn unchanged_prefix(&self, generation: u64) -> Option<u64> {
        self.0.unchanged_prefix(generation)
    }
}

/// The store configuration of every thread scenario.
pub fn config() -> Config {
    Config {
        fanout: 3,
        clock: Arc::new(ManualClock::new(1_000)),
        copy_batch_docs: 2,
        max_unlocked_catchup_rounds: 2,
        ..Config::default()
    }
}

fn engine_error(what: &str, e: engine::Error) -> Broke {
    Broke {
        kind: FailureKind::UnexpectedError,
        check: HarnessCheck::ExplainedError(Op::Background).into(),
        message: format!("{what}: {e}"),
    }
}

/// Fail the schedule with `broke` (a typed panic payload the runner reads
/// back; the panic hook keeps quiet about it).
fn fail(broke: Broke) -> ! {
    std::panic::panic_any(broke)
}

fn pause_hook(journal: Arc<Journal>) -> engine::StepHook {
    let n = AtomicU64::new(0);
    Arc::new(move |store: &Store, phase: Phase| {
        if !matches!(phase, Phase::Copy | Phase::CatchUp) {
            return;
        }
        let i = n.fetch_add(1, Ordering::SeqCst);
        let key = format!("pause-{}", i % 2);
        journal.note(format!("compactor pauses in {phase:?}"));
        if let Ok(seqno) = journal.set(store, key.as_bytes(), format!("{phase:?}").as_bytes()) {
            if let Err(e) = store.wait_durable(seqno) {
                fail(engine_error(
                    "the compactor's pause marker never became durable",
                    e,
                ));
            }
        }
    })
}

/// What one passing schedule saw.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    busy_retries: u64,
    commits_while_compacting: u64,
}

/// How many times `ops_per_writer` a writer may write while compactions run.
const MORE_OPS: usize = 8;

/// The body of one schedule: fails (a [`Broke`] payload) on any failure.
fn run_schedule(s: ThreadScenario, journal: &Arc<Journal>) -> Seen {
    let ok = |what: &str, r: engine::Result<u64>| r.unwrap_or_else(|e| fail(engine_error(what, e)));
    let config = config();
    let sim = SimVfs::new(s.seed);
    let vfs: Arc<dyn engine::Vfs> = Arc::new(YieldVfs(sim.as_vfs()));
    let store = Store::open(vfs, DB_DIR, DB_NAME, config.clone())
        .unwrap_or_else(|e| fail(engine_error("open", e)));
    let bg = store
        .start_background(BackgroundConfig {
            record_events: true,
            between_steps: s.pause.then(|| pause_hook(journal.clone())),
            compaction: CompactionOptions {
                purge_upto: s.purge.then_some(u64::MAX),
                ..CompactionOptions::default()
            },
            ..BackgroundConfig::default()
        })
        .unwrap_or_else(|e| fail(engine_error("start background", e)));
    let mut last = 0;
    for i in 0..4u32 {
        last = ok(
            "set",
            journal.set(&store, format!("k{i}").as_bytes(), b"initial"),
        );
    }
    ok("delete", journal.delete(&store, b"k3"));
    journal.note(format!("main waits for seqno {last} to be durable"));
    ok("wait durable", store.wait_durable(last));
    // Writers make `ops_per_writer` mutations, then go on (up to
    // MORE_OPS times as many) until the compactions ended: they write
    // through every phase of them, the locked final round included.
    let compacting = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writers: Vec<_> = (0..s.writers)
        .map(|w| {
            let (store, journal) = (store.clone(), journal.clone());
            let compacting = compacting.clone();
            engine::sync::thread::spawn(move || {
                for i in 0..s.ops_per_writer * MORE_OPS {
                    if i >= s.ops_per_writer && !compacting.load(Ordering::SeqCst) {
                        break;
                    }
                    let key = format!("k{}", (i + w * 2) % 5);
                    let r = if (i + w) % 3 == 2 {
                        journal.delete(&store, key.as_bytes())
                    } else {
                        let value = format!("w{w}-{i}");
                        journal.set(&store, key.as_bytes(), value.as_bytes())
                    };
                    if let Err(e) = r {
                        fail(engine_error(&format!("writer {w}"), e));
                    }
                }
            })
        })
        .collect();
    for i in 1..=s.compactions {
        let ticket = ok("request compaction", bg.request_compaction());
        journal.note(format!("main requests compaction {i}, waits for it"));
        let done = ok("wait compactions", bg.wait_compactions(ticket));
        journal.note(format!("compaction {i} ended ({done} finished)"));
        if done != i as u64 {
            fail(Broke {
                kind: FailureKind::UnexpectedError,
                check: HarnessCheck::ExplainedError(Op::Background).into(),
                message: format!("{done} compactions finished after {i} ended"),
            });
        }
    }
    compacting.store(false, Ordering::SeqCst);
    for w in writers {
        if w.join().is_err() {
            fail(harness_bug("a writer thread panicked".into()));
        }
    }
    // Writes after the switch: lost if the flusher stayed on the old file.
    let seqno = ok("set", journal.set(&store, b"after", b"switch"));
    journal.note(format!("main waits for seqno {seqno} to be durable"));
    ok("wait durable", store.wait_durable(seqno));
    let report = bg
        .shutdown()
        .unwrap_or_else(|e| fail(engine_error("shutdown", e)));
    journal.note("shutdown".into());
    let queued = store
        .queue_len()
        .unwrap_or_else(|e| fail(engine_error("queue_len", e)));
    if queued != 0 {
        fail(Broke {
            kind: FailureKind::Divergence,
            check: HarnessCheck::LostQueue.into(),
            message: format!("{queued} mutations still queued after shutdown"),
        });
    }
    if report.max_catchup_rounds > config.max_unlocked_catchup_rounds as u64 + 1 {
        fail(Broke {
            kind: FailureKind::Hang,
            check: HarnessCheck::BoundedCatchup.into(),
            message: format!("unbounded catch-up: {report:?}"),
        });
    }
    if s.pause && report.commits_while_compacting == 0 {
        fail(Broke {
            kind: FailureKind::Hang,
            check: HarnessCheck::Liveness.into(),
            message: format!("no commit while the compactor paused: {report:?}"),
        });
    }
    for event in &report.events {
        journal.note(format!("background: {}", describe_event(event)));
    }
    let mut model = Model::new();
    if let Err(b) = feed(&mut model, &journal.mutations(), &report.events, None) {
        fail(b);
    }
    if let Err(b) = check_live_then_crash(&mut model, store, &sim, &config) {
        fail(b);
    }
    Seen {
        busy_retries: report.busy_retries,
        commits_while_compacting: report.commits_while_compacting,
    }
}

fn describe_event(event: &BackgroundEvent) -> String {
    match event {
        BackgroundEvent::Flushed(info) => format!(
            "flushed: commit update_seq {} ({} mutations)",
            info.update_seq, info.mutations
        ),
        BackgroundEvent::CompactionStarted { h0_update_seq, .. } => {
            format!("compaction started at update_seq {h0_update_seq}")
        }
        BackgroundEvent::CompactionSwitched {
            update_seq,
            new_rev,
        } => format!("compaction switched to rev {new_rev} at update_seq {update_seq}"),
        BackgroundEvent::CompactionFinished(r) => {
            format!("compaction finished ({} catch-up rounds)", r.catchup_rounds)
        }
        BackgroundEvent::CompactionFailed { switched, error } => {
            format!("compaction failed (switched: {switched}): {error}")
        }
    }
}

// ---------------------------------------------------------------------------
// Running schedules, recording and replaying them
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Decision {
    Task(usize),
    Random,
}

/// The schedule of the current execution: its data seed and decisions.
#[derive(Clone, Debug, Default)]
struct Recorded {
    seed: u64,
    decisions: Vec<Decision>,
}

/// Wraps a scheduler and records every decision it makes, so that the
/// failing schedule can be printed and replayed.
struct Recording<S> {
    inner: S,
    current: Arc<Mutex<Recorded>>,
}

impl<S> Recording<S> {
    fn record(&self, decision: Decision) {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .decisions
            .push(decision);
    }
}

impl<S: Scheduler + ?Sized> Scheduler for Recording<Box<S>> {
    fn new_execution(&mut self) -> Option<Schedule> {
        let schedule = self.inner.new_execution()?;
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Recorded {
            seed: schedule.seed,
            decisions: Vec::new(),
        };
        Some(schedule)
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        let next = self.inner.next_task(runnable, current, is_yielding)?;
        self.record(Decision::Task(usize::from(next)));
        Some(next)
    }

    fn next_u64(&mut self) -> u64 {
        self.record(Decision::Random);
        self.inner.next_u64()
    }
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

impl Recorded {
    /// Shuttle's schedule encoding (what `shuttle::replay` takes): magic
    /// 0x91, varints of the task-id bit width, the step count and the seed,
    /// then the steps as a little-endian bit string (0 + task id, or 1 for
    /// a random draw), in hex.
    fn encode(&self) -> String {
        let max_task = self
            .decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Task(t) => Some(*t),
                Decision::Random => None,
            })
            .max()
            .unwrap_or(0);
        let width = ((usize::BITS - max_task.leading_zeros()) as usize).max(1);
        let mut bits = vec![0u8; (self.decisions.len() * (1 + width)).div_ceil(8)];
        let mut at = 0;
        let mut set = |at: usize| bits[at / 8] |= 1 << (at % 8);
        for d in &self.decisions {
            match d {
                Decision::Task(t) => {
                    for bit in 0..width {
                        if (t >> bit) & 1 == 1 {
                            set(at + 1 + bit);
                        }
                    }
                    at += 1 + width;
                }
                Decision::Random => {
                    set(at);
                    at += 1;
                }
            }
        }
        let mut buf = vec![0x91];
        write_varint(&mut buf, width as u64);
        write_varint(&mut buf, self.decisions.len() as u64);
        write_varint(&mut buf, self.seed);
        buf.extend(bits);
        hex::encode(buf)
    }
}

/// A failing schedule of a thread scenario.
#[derive(Clone, Debug)]
pub struct ThreadFound {
    /// The scenario.
    pub scenario: ThreadScenario,
    /// The seeded bug that was on.
    pub mutant: Option<Mutant>,
    /// What broke.
    pub broke: Broke,
    /// The failing schedule, in shuttle's encoding.
    pub schedule: String,
    /// Scheduling decisions in it.
    pub decisions: usize,
    /// The readable trace of the failing schedule (writers' mutations, the
    /// main thread's waits, the background log when it got that far).
    pub trace: Vec<String>,
}

impl ThreadFound {
    /// The artifact bytes (scenario and schedule).
    pub fn artifact(&self) -> Vec<u8> {
        self.scenario.artifact(Some(&self.schedule))
    }

    /// As the suite's [`Failure`] (target `interleave`; the artifact's magic
    /// line tells `repro` it is a thread schedule).
    pub fn to_failure(&self) -> Failure {
        let mut message = format!(
            "thread schedule failed: {}\nscenario: {}\nschedule ({} decisions): {}\n",
            self.broke.message.trim_end(),
            self.scenario,
            self.decisions,
            self.schedule
        );
        if self.broke.kind == FailureKind::Hang {
            message.push_str(
                "every thread waits for another (or the schedule never ends): a deadlock, a \
                 lost wakeup or a starved flusher (SPEC 2.10)\n",
            );
        }
        let mut f = Failure::new(
            self.broke.kind,
            self.broke.check,
            message,
            &Scenario::default(),
        )
        .for_target(Target::Interleave, &self.artifact());
        f.mutant = self.mutant;
        f.trace = self.trace.clone();
        f
    }
}

/// What the schedules of a passing scenario did.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadOutcome {
    /// Schedules run.
    pub schedules: u64,
    /// Schedules in which the flusher met a held store lock (Busy).
    pub busy_schedules: u64,
    /// The rare states reached.
    pub reached: Reached,
}

fn shuttle_config() -> shuttle::Config {
    let mut config = shuttle::Config::new();
    // The engine's trees and the oracle recurse: more than shuttle's
    // default 60 KiB of stack per thread.
    config.stack_size = 4 << 20;
    config.max_steps = shuttle::MaxSteps::FailAfter(2_000_000);
    config.failure_persistence = shuttle::FailurePersistence::None;
    config.silence_warnings = true;
    config
}

fn quiet_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // Shuttle installs its own hook (which reports every panic) at its
        // first execution: run one first, so that this hook wraps it.
        shuttle::Runner::new(RandomScheduler::new_from_seed(0, 1), shuttle_config()).run(|| {});
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Broke>().is_none() {
                previous(info);
            }
        }));
    });
}

fn classify(payload: Box<dyn std::any::Any + Send>) -> Broke {
    if let Some(b) = payload.downcast_ref::<Broke>() {
        return b.clone();
    }
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a non-string panic".into());
    if message.contains("deadlock") || message.contains("exceeded max_steps") {
        Broke {
            kind: FailureKind::Hang,
            check: HarnessCheck::Liveness.into(),
            message,
        }
    } else {
        Broke {
            kind: FailureKind::Panic,
            check: HarnessCheck::NoPanic.into(),
            message,
        }
    }
}

/// Run `scenario` under its own scheduler for `schedules` schedules (with
/// `mutant` on) until one fails.
pub fn run(
    scenario: ThreadScenario,
    mutant: Option<Mutant>,
    schedules: usize,
) -> Result<ThreadOutcome, Box<ThreadFound>> {
    quiet_panics();
    let current = Arc::new(Mutex::new(Recorded::default()));
    let journal = Arc::new(Mutex::new(Arc::new(Journal::default())));
    let seen = Arc::new(Mutex::new(ThreadOutcome::default()));
    let runner = shuttle::Runner::new(
        Recording {
            inner: scenario.scheduler(schedules),
            current: current.clone(),
        },
        shuttle_config(),
    );
    let body = {
        let (journal, seen) = (journal.clone(), seen.clone());
        move || {
            mutants::set(mutant);
            let j = Arc::new(Journal::default());
            *journal.lock().unwrap_or_else(PoisonError::into_inner) = j.clone();
            let s = run_schedule(scenario, &j);
            let mut out = seen.lock().unwrap_or_else(PoisonError::into_inner);
            out.schedules += 1;
            out.reached.mark(State::ThreadsSchedule);
            if s.busy_retries > 0 {
                out.busy_schedules += 1;
                out.reached.mark(State::ThreadsBusyRetry);
            }
            let _ = s.commits_while_compacting;
        }
    };
    let result = catch_unwind(AssertUnwindSafe(|| runner.run(body)));
    mutants::set(None);
    match result {
        Ok(_) => Ok(*seen.lock().unwrap_or_else(PoisonError::into_inner)),
        Err(payload) => {
            let recorded = current
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let trace = journal
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .trace();
            Err(Box::new(ThreadFound {
                scenario,
                mutant,
                broke: classify(payload),
                schedule: recorded.encode(),
                decisions: recorded.decisions.len(),
                trace,
            }))
        }
    }
}

/// Replay `schedule` (shuttle's encoding) of `scenario` with shuttle's own
/// decoder: the failure, if it fails.
pub fn replay(
    scenario: ThreadScenario,
    mutant: Option<Mutant>,
    schedule: &str,
) -> Result<(), Box<ThreadFound>> {
    quiet_panics();
    let journal = Arc::new(Mutex::new(Arc::new(Journal::default())));
    let body = {
        let journal = journal.clone();
        move || {
            mutants::set(mutant);
            let j = Arc::new(Journal::default());
            *journal.lock().unwrap_or_else(PoisonError::into_inner) = j.clone();
            run_schedule(scenario, &j);
        }
    };
    let encoded = schedule.to_string();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let scheduler = shuttle::scheduler::ReplayScheduler::new_from_encoded(&encoded);
        shuttle::Runner::new(scheduler, shuttle_config()).run(body)
    }));
    mutants::set(None);
    result.map(|_| ()).map_err(|payload| {
        let trace = journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .trace();
        Box::new(ThreadFound {
            scenario,
            mutant,
            broke: classify(payload),
            schedule: schedule.to_string(),
            decisions: 0,
            trace,
        })
    })
}

/// Replay an artifact: its schedule if it has one, else the scenario's
/// own first schedule.
pub fn replay_artifact(
    bytes: &[u8],
    mutant: Option<Mutant>,
) -> Result<Result<(), Box<ThreadFound>>, String> {
    let a = parse_artifact(bytes)?;
    Ok(match &a.schedule {
        Some(s) => replay(a.scenario, mutant, s),
        None => run(a.scenario, mutant, 1).map(|_| ()),
    })
}

/// Schedules tried per candidate while minimizing.
pub const MINIMIZE_SCHEDULES: usize = 200;

/// Shrink a failing scenario: fewer writers, fewer operations, fewer
/// compactions, no pause, no purge, keeping the scheduler and its seed;
/// a candidate is kept when one of its first [`MINIMIZE_SCHEDULES`]
/// schedules fails with the same kind and check. Returns the smallest
/// failure found (the input's if nothing smaller fails).
pub fn minimize(found: &ThreadFound) -> ThreadFound {
    let mut best = found.clone();
    let same =
        |f: &ThreadFound| f.broke.kind == found.broke.kind && f.broke.check == found.broke.check;
    loop {
        let s = best.scenario;
        let mut candidates = Vec::new();
        if s.writers > 1 {
            candidates.push(ThreadScenario {
                writers: s.writers - 1,
                ..s
            });
        }
        if s.writers > 0 {
            candidates.push(ThreadScenario { writers: 0, ..s });
        }
        if s.ops_per_writer > 1 {
            candidates.push(ThreadScenario {
                ops_per_writer: s.ops_per_writer / 2,
                ..s
            });
            candidates.push(ThreadScenario {
                ops_per_writer: s.ops_per_writer - 1,
                ..s
            });
        }
        if s.compactions > 1 {
            candidates.push(ThreadScenario {
                compactions: s.compactions - 1,
                ..s
            });
        }
        if s.pause {
            candidates.push(ThreadScenario { pause: false, ..s });
        }
        if s.purge {
            candidates.push(ThreadScenario { purge: false, ..s });
        }
        let mut shrunk = false;
        for c in candidates {
            if let Err(f) = run(c, found.mutant, MINIMIZE_SCHEDULES) {
                if same(&f) {
                    best = *f;
                    shrunk = true;
                    break;
                }
            }
        }
        if !shrunk {
            return best;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_artifacts_round_trip() {
        for seed in 0..50 {
            let s = ThreadScenario::from_seed(seed);
            assert_eq!(ThreadScenario::parse(&s.name()), Some(s));
            let a = parse_artifact(&s.artifact(Some("91abcd"))).unwrap();
            assert_eq!(a.scenario, s);
            assert_eq!(a.schedule.as_deref(), Some("91abcd"));
            assert!(is_artifact(&s.artifact(None)));
        }
        assert!(parse_artifact(b"garbage").is_err());
    }

    #[test]
    fn a_share_of_indices_are_thread_scenarios() {
        let n = (0..32_000).filter(|&i| is_thread_index(5, i, 32)).count();
        assert!((700..1300).contains(&n), "{n}");
        assert!(!(0..100).any(|i| is_thread_index(5, i, 0)));
    }
}

/// The `threads` fuzz target: `bytes` pick a thread scenario (folded into
/// its seed), which runs one schedule under its scheduler, with the seeded
/// bug `CRASHFUZZ_MUTANT` names, if any. A failure writes the thread
/// artifact (scenario and schedule) to `crashfuzz-artifacts/` and panics
/// with the report and the `repro` command (libFuzzer then keeps the input).
pub fn run_fuzz_input(bytes: &[u8]) {
    let seed = bytes
        .chunks(8)
        .fold(0x7468_7265_6164_7321u64, |acc, chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            mix(acc ^ u64::from_le_bytes(word))
        });
    let mutant = crate::targets::fuzz_options().mutant;
    if let Err(found) = run(ThreadScenario::from_seed(seed), mutant, 1) {
        let artifact = found.artifact();
        let dir = std::path::Path::new("crashfuzz-artifacts");
        let path = dir.join(format!("threads-{seed:016x}"));
        let saved = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, &artifact))
            .map(|()| path.display().to_string())
            .unwrap_or_else(|e| format!("(not saved: {e})"));
        let mutant = mutant.map_or(String::new(), |m| format!(" --mutant {m}"));
        panic!(
            "{}\ncrashfuzz: thread artifact {saved}; replay the scenario and its schedule with \
             `cargo run --release --bin crashfuzz -- repro{mutant} {saved}`\n{}",
            found.to_failure(),
            String::from_utf8_lossy(&artifact)
        );
    }
}

#[cfg(test)]
mod fuzz_input_tests {
    use super::*;

    #[test]
    fn fuzz_inputs_pass_on_the_correct_engine_and_fail_with_a_seeded_bug() {
        for input in [&b""[..], b"\x01", b"threads", &[0xff; 40]] {
            run_fuzz_input(input);
        }
        // Inputs folded the same way, with a commit allowed during the
        // locked switch: some input among a few must find it.
        let found = (0u8..32).find_map(|i| {
            let seed = [i; 8]
                .chunks(8)
                .fold(0x7468_7265_6164_7321u64, |acc, chunk| {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(chunk);
                    mix(acc ^ u64::from_le_bytes(word))
                });
            run(
                ThreadScenario::from_seed(seed),
                Some(Mutant::FlushDuringLockedSwitch),
                1,
            )
            .err()
        });
        assert!(found.is_some(), "no input found the seeded bug");
    }
}
