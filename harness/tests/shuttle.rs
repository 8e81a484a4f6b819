//! Systematic concurrency testing of the background flusher and compactor
//! with [shuttle](https://docs.rs/shuttle) (issue 11).
//!
//! Run with `ci/shuttle.sh` (`RUSTFLAGS="--cfg shuttle" cargo test -p harness --test shuttle`).
//! The feature makes every lock, condition variable and thread of the
//! engine shuttle's (`engine::sync`), so shuttle's schedulers (random and
//! PCT) choose every interleaving of writers, flusher and compactor. It is
//! for this test target alone: with it, the engine works only inside a
//! shuttle execution.
//!
//! Each schedule runs one scenario on the simulated disk: writers queue
//! mutations while the background compactor compacts and the flusher
//! commits; then the oracle checks the store live and after a crash. The
//! properties, for every schedule:
//! - the oracle's check holds (no acknowledged flush lost, exactly one
//!   committed header, the switch is the identity on the state);
//! - no deadlock (shuttle fails a schedule in which every thread waits);
//! - with the compactor paused after every step of its unlocked phases
//!   until the flusher commits, the flusher commits while the copy runs;
//! - a compaction finishes in at most `max_unlocked_catchup_rounds + 1`
//!   catch-up rounds, and the queue drains to zero at shutdown.
//!
//! The seeded bugs must be caught: lock-through-copy as a liveness failure
//! (the paused compactor and the starved flusher wait for each other:
//! shuttle reports the deadlock), flusher-writes-old-file as a divergence.
//! On every failure the failing schedule is printed in shuttle's encoding
//! with the command that replays it, and the test replays it itself.
#![cfg(shuttle)]

mod threads_support;

use engine::mutants::{self, Mutant};
use engine::sync::shuttle;
use engine::sync::thread;
use engine::{BackgroundConfig, CompactionOptions, Config, ManualClock, Phase, Store};
use failpoints::SimVfs;
use harness::runner::{DB_DIR, DB_NAME};
use oracle::Model;
use shuttle::scheduler::{PctScheduler, RandomScheduler, Schedule, Scheduler, Task, TaskId};
use shuttle::Runner;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use threads_support::Journal;

/// Schedules per scheduler for the correct engine. Each takes about a
/// millisecond; the whole file runs in seconds on 2 cores. A longer
/// campaign sets CRASHFUZZ_SHUTTLE_ITERATIONS.
const DEFAULT_ITERATIONS: usize = 1_000;
/// PCT's bug depth: preemptions per schedule.
const PCT_DEPTH: usize = 3;

/// One scenario, run inside a shuttle execution.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    /// Disk seed.
    seed: u64,
    writers: usize,
    ops_per_writer: usize,
    /// Compactions, one after the other, while the writers write.
    compactions: usize,
    /// Pause the compactor after every unlocked step until the flusher
    /// commits a marker.
    pause: bool,
    purge: bool,
}

impl Scenario {
    fn name(&self) -> String {
        format!(
            "seed={},writers={},ops={},compactions={},pause={},purge={}",
            self.seed, self.writers, self.ops_per_writer, self.compactions, self.pause, self.purge
        )
    }

    fn parse(text: &str) -> Option<Scenario> {
        let mut s = Scenario {
            seed: 0,
            writers: 0,
            ops_per_writer: 0,
            compactions: 0,
            pause: false,
            purge: false,
        };
        for part in text.split(',') {
            let (k, v) = part.split_once('=')?;
            match k {
                "seed" => s.seed = v.parse().ok()?,
                "writers" => s.writers = v.parse().ok()?,
                "ops" => s.ops_per_writer = v.parse().ok()?,
                "compactions" => s.compactions = v.parse().ok()?,
                "pause" => s.pause = v.parse().ok()?,
                "purge" => s.purge = v.parse().ok()?,
                _ => return None,
            }
        }
        Some(s)
    }
}

fn config() -> Config {
    Config {
        fanout: 3,
        clock: Arc::new(ManualClock::new(1_000)),
        copy_batch_docs: 2,
        max_unlocked_catchup_rounds: 2,
        ..Config::default()
    }
}

fn pause_hook(journal: Arc<Journal>) -> engine::StepHook {
    let n = AtomicU64::new(0);
    Arc::new(move |store: &Store, phase: Phase| {
        if !matches!(phase, Phase::Copy | Phase::CatchUp) {
            return;
        }
        let i = n.fetch_add(1, Ordering::SeqCst);
        let key = format!("pause-{}", i % 2);
        if let Ok(seqno) = journal.set(store, key.as_bytes(), format!("{phase:?}").as_bytes()) {
            store
                .wait_durable(seqno)
                .expect("the flusher commits while the compactor pauses");
        }
    })
}

/// The body of one schedule. Panics on any failure.
fn run_scenario(s: Scenario) {
    let config = config();
    let sim = SimVfs::new(s.seed);
    let store = Store::open(sim.as_vfs(), DB_DIR, DB_NAME, config.clone()).expect("open");
    let journal = Arc::new(Journal::default());
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
        .expect("start background");
    let mut last = 0;
    for i in 0..4u32 {
        last = journal
            .set(&store, format!("k{i}").as_bytes(), b"initial")
            .expect("set");
    }
    journal.delete(&store, b"k3").expect("delete");
    store.wait_durable(last).expect("durable");
    let writers: Vec<_> = (0..s.writers)
        .map(|w| {
            let (store, journal) = (store.clone(), journal.clone());
            thread::spawn(move || {
                for i in 0..s.ops_per_writer {
                    let key = format!("k{}", (i + w * 2) % 5);
                    if (i + w) % 3 == 2 {
                        journal.delete(&store, key.as_bytes()).expect("delete");
                    } else {
                        let value = format!("w{w}-{i}");
                        journal
                            .set(&store, key.as_bytes(), value.as_bytes())
                            .expect("set");
                    }
                }
            })
        })
        .collect();
    for i in 1..=s.compactions {
        let ticket = bg.request_compaction().expect("request");
        assert_eq!(bg.wait_compactions(ticket).expect("compaction"), i as u64);
    }
    for w in writers {
        w.join().expect("writer");
    }
    // Writes after the switch: lost if the flusher stayed on the old file.
    let seqno = journal.set(&store, b"after", b"switch").expect("set");
    store.wait_durable(seqno).expect("durable");
    let report = bg.shutdown().expect("shutdown");
    assert_eq!(store.queue_len().expect("queue"), 0, "queue not drained");
    assert!(
        report.max_catchup_rounds <= config.max_unlocked_catchup_rounds as u64 + 1,
        "unbounded catch-up: {report:?}"
    );
    if s.pause {
        assert!(report.commits_while_compacting > 0, "{report:?}");
    }
    let mut model = Model::new();
    if let Err(e) = threads_support::feed(&mut model, &journal.mutations(), &report.events, None) {
        panic!("{e}");
    }
    if let Err(e) = threads_support::check_live_then_crash(&mut model, store, &sim, &config) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------
// Running schedules, classifying failures, printing and replaying schedules
// ---------------------------------------------------------------------------

/// A scheduling decision, as shuttle records it.
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

impl<S: Scheduler> Scheduler for Recording<S> {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Every thread waits for another: the flusher starved (SPEC 2.10).
    Liveness,
    /// The oracle refused the store.
    Divergence,
    /// Anything else: an assertion, an engine error, a panic.
    Panic,
}

impl Kind {
    /// The crashfuzz exit code of the same class.
    fn exit_code(self) -> i32 {
        let kind = match self {
            Kind::Liveness => harness::FailureKind::Hang,
            Kind::Divergence => harness::FailureKind::Divergence,
            Kind::Panic => harness::FailureKind::Panic,
        };
        kind.exit_code()
    }

    fn of(message: &str) -> Kind {
        if message.contains("deadlock") || message.contains("exceeded max_steps") {
            Kind::Liveness
        } else if message.contains("DIVERGENCE") {
            Kind::Divergence
        } else {
            Kind::Panic
        }
    }
}

struct Found {
    kind: Kind,
    message: String,
    scenario: Scenario,
    mutant: Option<Mutant>,
    schedule: Recorded,
}

impl Found {
    fn replay_command(&self) -> String {
        let mutant = self.mutant.map_or(String::new(), |m| {
            format!(" CRASHFUZZ_SHUTTLE_MUTANT={}", m.name())
        });
        format!(
            "CRASHFUZZ_SHUTTLE_SCENARIO={}{mutant} CRASHFUZZ_SHUTTLE_SCHEDULE={} \
             ci/shuttle.sh --ignored \
             replay_schedule_from_env --nocapture",
            self.scenario.name(),
            self.schedule.encode()
        )
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Liveness => "LIVENESS FAILURE (hang)",
            Kind::Divergence => "DIVERGENCE",
            Kind::Panic => "PANIC",
        };
        writeln!(f, "{kind}, crashfuzz exit code {}", self.kind.exit_code())?;
        if let Some(m) = self.mutant {
            writeln!(f, "seeded bug on: {m}")?;
        }
        writeln!(f, "scenario: {}", self.scenario.name())?;
        if self.kind == Kind::Liveness {
            writeln!(
                f,
                "every thread waits for another (or the schedule never ends). With the \
                 compactor paused in an unlocked phase until the flusher commits, this is \
                 the flusher starving: the store lock is held outside start, the final \
                 catch-up round and the switch (SPEC 2.10)."
            )?;
        }
        let first: Vec<&str> = self.message.lines().take(12).collect();
        writeln!(f, "{}", first.join("\n"))?;
        writeln!(
            f,
            "failing schedule ({} decisions): {}",
            self.schedule.decisions.len(),
            self.schedule.encode()
        )?;
        write!(f, "replay: {}", self.replay_command())
    }
}

fn shuttle_config() -> shuttle::Config {
    let mut config = shuttle::Config::new();
    // The engine's trees and the oracle recurse: more than shuttle's
    // default 60 KiB of stack per thread.
    config.stack_size = 4 << 20;
    config.max_steps = shuttle::MaxSteps::FailAfter(2_000_000);
    config
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a non-string panic".into())
}

/// Run `scenario` under `scheduler` (with `mutant` on) until the scheduler
/// is done or a schedule fails.
fn explore(
    scenario: Scenario,
    mutant: Option<Mutant>,
    scheduler: impl Scheduler + 'static,
) -> Result<usize, Box<Found>> {
    let current = Arc::new(Mutex::new(Recorded::default()));
    let runner = Runner::new(
        Recording {
            inner: scheduler,
            current: current.clone(),
        },
        shuttle_config(),
    );
    let result = catch_unwind(AssertUnwindSafe(|| {
        runner.run(move || {
            mutants::set(mutant);
            run_scenario(scenario);
        })
    }));
    mutants::set(None);
    result.map_err(|payload| {
        let message = panic_message(&*payload);
        Box::new(Found {
            kind: Kind::of(&message),
            message,
            scenario,
            mutant,
            schedule: current
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        })
    })
}

/// Replay an encoded schedule with shuttle's own decoder; the failure
/// message, if it fails.
fn replay(scenario: Scenario, mutant: Option<Mutant>, encoded: &str) -> Option<String> {
    let encoded = encoded.to_string();
    let result = catch_unwind(AssertUnwindSafe(|| {
        shuttle::replay(
            move || {
                mutants::set(mutant);
                run_scenario(scenario);
            },
            &encoded,
        )
    }));
    mutants::set(None);
    result.err().map(|payload| panic_message(&*payload))
}

fn iterations() -> usize {
    std::env::var("CRASHFUZZ_SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS)
}

fn must_pass(scenario: Scenario, scheduler: impl Scheduler + 'static) -> usize {
    match explore(scenario, None, scheduler) {
        Ok(n) => n,
        Err(found) => panic!("{found}"),
    }
}

fn scenario(seed: u64, pause: bool, purge: bool) -> Scenario {
    Scenario {
        seed,
        writers: 2,
        ops_per_writer: 6,
        compactions: 2,
        pause,
        purge,
    }
}

#[test]
fn random_schedules_keep_every_invariant() {
    let n = must_pass(
        scenario(1, false, false),
        RandomScheduler::new_from_seed(11, iterations()),
    );
    assert_eq!(n, iterations());
}

#[test]
fn pct_schedules_keep_every_invariant() {
    let n = must_pass(
        scenario(2, false, true),
        PctScheduler::new_from_seed(12, PCT_DEPTH, iterations()),
    );
    assert_eq!(n, iterations());
}

#[test]
fn the_flusher_commits_while_the_compactor_pauses_in_every_phase() {
    must_pass(
        scenario(3, true, false),
        RandomScheduler::new_from_seed(13, iterations() / 2),
    );
    must_pass(
        scenario(4, true, true),
        PctScheduler::new_from_seed(14, PCT_DEPTH, iterations() / 2),
    );
}

/// The seeded bug must be found as `kind`, and its printed schedule must
/// replay to the same kind of failure.
fn seeded_bug_is_caught(mutant: Mutant, scenario: Scenario, kind: Kind) {
    let found = match explore(
        scenario,
        Some(mutant),
        RandomScheduler::new_from_seed(21, 50),
    ) {
        Ok(n) => panic!("seeded bug {mutant} escaped {n} schedules"),
        Err(found) => found,
    };
    eprintln!("--- caught as expected ---\n{found}");
    assert_eq!(found.kind, kind, "{found}");
    let replayed = replay(scenario, Some(mutant), &found.schedule.encode())
        .unwrap_or_else(|| panic!("the printed schedule did not replay the failure:\n{found}"));
    assert_eq!(Kind::of(&replayed), kind, "replayed as: {replayed}");
}

#[test]
fn lock_through_copy_is_a_liveness_failure() {
    seeded_bug_is_caught(
        Mutant::LockThroughCopy,
        scenario(5, true, false),
        Kind::Liveness,
    );
}

#[test]
fn flusher_writing_the_old_file_is_a_divergence() {
    // One compaction: a second one could not even start, as the file the
    // store still writes was unlinked by the first.
    let scenario = Scenario {
        compactions: 1,
        ..scenario(6, false, false)
    };
    seeded_bug_is_caught(Mutant::FlusherWritesOldFile, scenario, Kind::Divergence);
}

/// Replays a printed schedule: set CRASHFUZZ_SHUTTLE_SCENARIO,
/// CRASHFUZZ_SHUTTLE_SCHEDULE and optionally CRASHFUZZ_SHUTTLE_MUTANT as a
/// failure report prints them.
#[test]
#[ignore = "replays a schedule given in the environment"]
fn replay_schedule_from_env() {
    let scenario = std::env::var("CRASHFUZZ_SHUTTLE_SCENARIO")
        .ok()
        .and_then(|s| Scenario::parse(&s))
        .expect("CRASHFUZZ_SHUTTLE_SCENARIO as printed");
    let schedule = std::env::var("CRASHFUZZ_SHUTTLE_SCHEDULE").expect("CRASHFUZZ_SHUTTLE_SCHEDULE");
    let mutant = std::env::var("CRASHFUZZ_SHUTTLE_MUTANT")
        .ok()
        .map(|m| Mutant::from_name(&m).expect("a seeded bug name"));
    match replay(scenario, mutant, &schedule) {
        None => eprintln!("the schedule passes"),
        Some(message) => panic!("{:?}: {message}", Kind::of(&message)),
    }
}
