//! `explore`: random scenarios from one seed, on all cores, until a failure,
//! the time budget or the iteration budget.
//!
//! Scenario `i` of seed `s` is [`crate::generate::scenario_bytes`]`(s, i)`:
//! the same on every machine and for any number of workers, so a failure is
//! replayed from its index as well as from its bytes.

use crate::failure::HarnessCheck;
use crate::generate::{scenario_bytes, Size};
use crate::runner::{run, Failure, FailureKind, RunOptions, Sanity};
use crate::scenario::Scenario;
use crate::threads::ThreadScenario;
use engine::mutants::Mutant;
use failpoints::Coverage;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to explore.
#[derive(Clone, Debug)]
pub struct ExploreOptions {
    /// The seed of everything.
    pub seed: u64,
    /// Stop after this long.
    pub time: Option<Duration>,
    /// Stop after this many scenarios.
    pub iterations: Option<u64>,
    /// Worker threads.
    pub jobs: usize,
    /// Scenario size.
    pub size: Size,
    /// A seeded bug to switch on.
    pub mutant: Option<Mutant>,
    /// Where to show progress (the CLI draws a bar; `None`: nowhere).
    pub progress: Option<crate::progress::ProgressSink>,
    /// The wall-clock backstop: a scenario still running after this long is
    /// reported as a hang. The deterministic watchdog (a budget of disk
    /// calls per step, [`crate::watch`]) catches almost every hang first;
    /// this one catches a loop that never touches the disk.
    pub hang_after: Duration,
    /// The memory ceiling: when the process's resident memory passes it, the
    /// longest-running scenario is reported as a hang.
    pub max_rss_bytes: u64,
    /// Which scenarios are thread schedules ([`crate::threads`]).
    pub threads: ThreadsMode,
}

/// Which scenarios of an exploration are thread schedules: the background
/// flusher and compactor with writers under shuttle ([`crate::threads`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadsMode {
    /// None.
    Off,
    /// One in this many (by a hash of the seed and the index).
    Share(u64),
    /// All (`explore --threads`).
    Only,
}

/// The default share of thread scenarios: one in this many. A thread
/// scenario (one schedule) costs about as much as a deterministic one
/// (about 1.2 ms on one core), so this is about 3 % of the time.
pub const DEFAULT_THREAD_SHARE: u64 = 32;

/// Schedules run per thread scenario: one, so that every schedule has a
/// scenario of its own (the scheduler is seeded from the scenario seed).
pub const SCHEDULES_PER_THREAD_SCENARIO: usize = 1;

impl ThreadsMode {
    /// Whether scenario `index` of `seed` is a thread scenario.
    pub fn is_threads(self, seed: u64, index: u64) -> bool {
        match self {
            ThreadsMode::Off => false,
            ThreadsMode::Only => true,
            ThreadsMode::Share(n) => crate::threads::is_thread_index(seed, index, n),
        }
    }
}

/// The thread scenario at `index` of `seed`.
pub fn thread_scenario(seed: u64, index: u64) -> ThreadScenario {
    ThreadScenario::from_seed(crate::threads::scenario_seed(seed, index))
}

impl Default for ExploreOptions {
    fn default() -> ExploreOptions {
        ExploreOptions {
            seed: 1,
            time: None,
            iterations: None,
            jobs: 1,
            size: Size::Default,
            mutant: None,
            progress: None,
            hang_after: Duration::from_secs(DEFAULT_HANG_SECS),
            max_rss_bytes: DEFAULT_MAX_RSS_MB << 20,
            threads: ThreadsMode::Share(DEFAULT_THREAD_SHARE),
        }
    }
}

/// Default of `explore --hang-secs`: scenarios take well under a millisecond.
pub const DEFAULT_HANG_SECS: u64 = 10;
/// Default of `explore --max-rss-mb`.
pub const DEFAULT_MAX_RSS_MB: u64 = 2048;

/// What an exploration did.
#[derive(Debug)]
pub struct ExploreReport {
    /// The seed.
    pub seed: u64,
    /// Scenarios run to the end (passed or failed).
    pub iterations: u64,
    /// Of them, thread scenarios.
    pub thread_scenarios: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Post-crash images recovered and checked.
    pub crash_states: u64,
    /// Oracle checks passed.
    pub checks: u64,
    /// The first failure found, with its scenario index and bytes.
    pub failure: Option<FoundFailure>,
    /// Failpoint hits and crashes over all scenarios.
    pub coverage: Coverage,
    /// What the engine acknowledged, refused and aborted (passing runs).
    pub sanity: Sanity,
    /// The process's peak resident memory seen while exploring, in bytes
    /// (0 where the platform does not tell).
    pub peak_rss_bytes: u64,
}

/// A failure found by exploration.
#[derive(Debug)]
pub struct FoundFailure {
    /// Index of the scenario under the seed.
    pub index: u64,
    /// The scenario bytes (the artifact).
    pub bytes: Vec<u8>,
    /// The failure.
    pub failure: Box<Failure>,
    /// Scenarios run before it was found (all workers).
    pub after_iterations: u64,
    /// Time to find it.
    pub after: Duration,
}

impl ExploreReport {
    /// Scenarios per second.
    pub fn execs_per_sec(&self) -> f64 {
        self.iterations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The JSON summary `explore --json` prints as its last line.
    pub fn to_json(&self) -> serde_json::Value {
        let total = engine::failpoints::all().count();
        let mut sanity = self.sanity.clone();
        if self
            .failure
            .as_ref()
            .is_some_and(|f| f.failure.kind == FailureKind::UnexpectedError)
        {
            sanity.unexplained_errors += 1;
        }
        serde_json::json!({
            "seed": self.seed,
            "iterations": self.iterations,
            "thread_scenarios": self.thread_scenarios,
            "elapsed_secs": self.elapsed.as_secs_f64(),
            "execs_per_sec": self.execs_per_sec(),
            "crash_states": self.crash_states,
            "checks": self.checks,
            "failures": u64::from(self.failure.is_some()),
            "failure": self.failure.as_ref().map(|f| serde_json::json!({
                "index": f.index,
                "kind": f.failure.kind.name(),
                "exit_code": f.failure.kind.exit_code(),
                "invariant": f.failure.invariant(),
                "signature": f.failure.signature(),
                "failpoint": f.failure.failpoint,
            })),
            "failpoints_hit": total - self.coverage.unhit().len(),
            "failpoints_crashed": total - self.coverage.uncrashed().len(),
            "failpoints_total": total,
            "failpoints_never_crashed": self.coverage.uncrashed(),
            "faults_injected": failpoints::FaultKind::ALL
                .into_iter()
                .map(|k| (k.name(), self.coverage.injected(k)))
                .collect::<std::collections::BTreeMap<_, _>>(),
            "faults_never_injected": self.coverage.uninjected(),
            "reach_runs": self.coverage.runs,
            "reach": crate::reach::names()
                .into_iter()
                .map(|n| {
                    let runs = self.coverage.reach.get(&n).copied().unwrap_or(0);
                    let share = self.coverage.reach_share(&n);
                    (n, serde_json::json!({ "runs": runs, "share": share }))
                })
                .collect::<serde_json::Map<_, _>>(),
            "reach_never": crate::reach::never_reached(&self.coverage),
            "reach_below_1pct": crate::reach::names()
                .into_iter()
                .filter(|n| self.coverage.reach_share(n) < 0.01)
                .collect::<Vec<_>>(),
            "sanity": sanity,
            "peak_rss_mb": self.peak_rss_bytes >> 20,
        })
    }
}

/// What the workers share.
struct Shared {
    options: ExploreOptions,
    next: AtomicU64,
    done: AtomicU64,
    threads_done: AtomicU64,
    crash_states: AtomicU64,
    checks: AtomicU64,
    stop: AtomicBool,
    coverage: Mutex<Coverage>,
    sanity: Mutex<Sanity>,
    found: Mutex<Option<FoundFailure>>,
    start: Instant,
    /// Per worker: the scenario it runs (index + 1, 0 when idle) and when it
    /// started it (milliseconds since `start`).
    running: Vec<(AtomicU64, AtomicU64)>,
    finished_workers: AtomicU64,
}

impl Shared {
    fn report(&self, index: u64, bytes: Vec<u8>, failure: Box<Failure>, finished: u64) {
        self.stop.store(true, Ordering::Relaxed);
        let mut slot = self.found.lock().unwrap_or_else(|p| p.into_inner());
        // Keep the lowest index: the same failure whatever the number of
        // workers, when several are found at once.
        if slot.as_ref().is_none_or(|f| f.index > index) {
            *slot = Some(FoundFailure {
                index,
                bytes,
                failure,
                after_iterations: finished,
                after: self.start.elapsed(),
            });
        }
    }

    fn worker(&self, me: usize) {
        let options = &self.options;
        let deadline = options.time.map(|t| self.start + t);
        let limit = options.iterations.unwrap_or(u64::MAX);
        let mut local = Coverage::default();
        let mut local_sanity = Sanity::default();
        let run_options = RunOptions {
            mutant: options.mutant,
            ..RunOptions::default()
        };
        while !self.stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= limit {
                break;
            }
            let (slot, since) = &self.running[me];
            since.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
            slot.store(index + 1, Ordering::Relaxed);
            if options.threads.is_threads(options.seed, index) {
                let scenario = thread_scenario(options.seed, index);
                let result =
                    crate::threads::run(scenario, options.mutant, SCHEDULES_PER_THREAD_SCENARIO);
                slot.store(0, Ordering::Relaxed);
                let finished = self.done.fetch_add(1, Ordering::Relaxed) + 1;
                self.threads_done.fetch_add(1, Ordering::Relaxed);
                match result {
                    Ok(outcome) => {
                        // One crash at the end; a live and a post-crash check.
                        self.crash_states.fetch_add(1, Ordering::Relaxed);
                        self.checks.fetch_add(2, Ordering::Relaxed);
                        outcome.reached.count_into(&mut local);
                    }
                    Err(found) => {
                        let failure = Box::new(found.to_failure());
                        self.report(index, found.artifact(), failure, finished)
                    }
                }
                continue;
            }
            let bytes = scenario_bytes(options.seed, index, options.size);
            let scenario = Scenario::from_bytes(&bytes);
            let result = run(&scenario, &run_options);
            slot.store(0, Ordering::Relaxed);
            let finished = self.done.fetch_add(1, Ordering::Relaxed) + 1;
            match result {
                Ok(outcome) => {
                    self.crash_states
                        .fetch_add(outcome.crash_states, Ordering::Relaxed);
                    self.checks.fetch_add(outcome.checks, Ordering::Relaxed);
                    local.merge(&outcome.coverage);
                    local_sanity.merge(&outcome.sanity);
                }
                Err(failure) => self.report(index, bytes, failure, finished),
            }
            if index.is_multiple_of(64) {
                self.flush_local(&mut local, &mut local_sanity);
            }
        }
        self.flush_local(&mut local, &mut local_sanity);
        self.finished_workers.fetch_add(1, Ordering::Relaxed);
    }

    fn flush_local(&self, local: &mut Coverage, sanity: &mut Sanity) {
        self.coverage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .merge(local);
        *local = Coverage::default();
        self.sanity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .merge(sanity);
        *sanity = Sanity::default();
    }

    /// The backstops: a scenario running longer than `hang_after`, or the
    /// process past its memory ceiling, is a hang of the longest-running
    /// scenario. Returns true when one fired (the stuck worker is left
    /// behind: the caller reports and exits).
    fn check_backstops(&self, rss: u64) -> bool {
        let now_ms = self.start.elapsed().as_millis() as u64;
        let oldest = self
            .running
            .iter()
            .filter_map(|(slot, since)| {
                let index = slot.load(Ordering::Relaxed).checked_sub(1)?;
                Some((since.load(Ordering::Relaxed), index))
            })
            .min();
        let Some((since, index)) = oldest else {
            return false;
        };
        let ran = Duration::from_millis(now_ms.saturating_sub(since));
        let (invariant, why) = if ran >= self.options.hang_after {
            (
                HarnessCheck::WallClockWatchdog,
                format!(
                    "scenario {index} still running after {:.1} s (--hang-secs {}): a hang \
                     that makes no disk call",
                    ran.as_secs_f64(),
                    self.options.hang_after.as_secs()
                ),
            )
        } else if rss > self.options.max_rss_bytes {
            (
                HarnessCheck::MemoryCeiling,
                format!(
                    "resident memory {} MiB passed the ceiling of {} MiB (--max-rss-mb) while \
                     scenario {index} ran for {:.1} s",
                    rss >> 20,
                    self.options.max_rss_bytes >> 20,
                    ran.as_secs_f64()
                ),
            )
        } else {
            return false;
        };
        let (bytes, scenario) = if self.options.threads.is_threads(self.options.seed, index) {
            let s = thread_scenario(self.options.seed, index);
            (s.artifact(None), Scenario::default())
        } else {
            let bytes = scenario_bytes(self.options.seed, index, self.options.size);
            let scenario = Scenario::from_bytes(&bytes);
            (bytes, scenario)
        };
        let mut failure = Failure::new(FailureKind::Hang, invariant, why, &scenario);
        failure.input = bytes.clone();
        failure.mutant = self.options.mutant;
        let failure = Box::new(failure);
        let finished = self.done.load(Ordering::Relaxed);
        self.report(index, bytes, failure, finished);
        true
    }
}

/// The process's resident memory in bytes (Linux; 0 elsewhere).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Run the exploration. A hung scenario (wall-clock or memory backstop) is
/// reported as a failure without waiting for its worker, which is left
/// running: the caller should report and exit the process.
pub fn explore(options: &ExploreOptions) -> ExploreReport {
    let jobs = options.jobs.max(1);
    let shared = Arc::new(Shared {
        options: options.clone(),
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        threads_done: AtomicU64::new(0),
        crash_states: AtomicU64::new(0),
        checks: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        coverage: Mutex::new(Coverage::default()),
        sanity: Mutex::new(Sanity::default()),
        found: Mutex::new(None),
        start: Instant::now(),
        running: (0..jobs)
            .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
            .collect(),
        finished_workers: AtomicU64::new(0),
    });
    let bar = options.progress.clone();
    if let Some(bar) = &bar {
        bar.0.set_length(options.iterations);
    }
    let handles: Vec<_> = (0..jobs)
        .map(|me| {
            let shared = shared.clone();
            std::thread::spawn(move || shared.worker(me))
        })
        .collect();
    let mut peak_rss = 0;
    let mut hung = false;
    let mut ticks = 0u64;
    while shared.finished_workers.load(Ordering::Relaxed) < jobs as u64 {
        std::thread::sleep(Duration::from_millis(20));
        ticks += 1;
        let rss = resident_bytes();
        peak_rss = peak_rss.max(rss);
        if shared.check_backstops(rss) {
            hung = true;
            break;
        }
        if let Some(bar) = bar.as_ref().filter(|_| ticks.is_multiple_of(5)) {
            let n = shared.done.load(Ordering::Relaxed);
            let rate = n as f64 / shared.start.elapsed().as_secs_f64().max(1e-9);
            let cov = shared
                .coverage
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let total = engine::failpoints::all().count();
            bar.0.set_position(n);
            bar.0.set_message(format!(
                "{rate:.0} scenarios/s, {} crash states, failpoints crashed {}/{total}",
                shared.crash_states.load(Ordering::Relaxed),
                total - cov.uncrashed().len()
            ));
        }
    }
    if !hung {
        for h in handles {
            // A worker never panics (`run` catches every panic).
            let _ = h.join();
        }
    }
    if let Some(bar) = bar {
        bar.0.finish();
    }
    let found = shared
        .found
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let coverage = shared
        .coverage
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let sanity = shared
        .sanity
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    ExploreReport {
        seed: options.seed,
        iterations: shared.done.load(Ordering::Relaxed),
        thread_scenarios: shared.threads_done.load(Ordering::Relaxed),
        elapsed: shared.start.elapsed(),
        crash_states: shared.crash_states.load(Ordering::Relaxed),
        checks: shared.checks.load(Ordering::Relaxed),
        failure: found,
        coverage,
        sanity,
        peak_rss_bytes: peak_rss,
    }
}

/// Write a failure's artifact (raw scenario bytes, the encoding the fuzz
/// targets read) and its readable trace into `dir`. Returns the artifact path.
pub fn write_artifact(dir: &Path, bytes: &[u8], failure: &Failure) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("crash-{}", failure.signature()));
    std::fs::write(&path, bytes)?;
    let mut text = format!("{failure}\n");
    let scenario = match crate::threads::parse_artifact(bytes) {
        Ok(a) => format!("thread schedule: {}", a.scenario),
        Err(_) => describe(&failure.scenario),
    };
    text.push_str(&format!(
        "replay: {}\n\nscenario:\n{}\n\ntrace:\n{}\n",
        failure.replay_command_from(&path),
        scenario,
        failure.trace.join("\n")
    ));
    std::fs::write(path.with_extension("txt"), text)?;
    Ok(path)
}

pub use crate::scenario::describe;

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(options: ExploreOptions) -> Shared {
        Shared {
            running: (0..2)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            options,
            next: AtomicU64::new(0),
            done: AtomicU64::new(0),
            threads_done: AtomicU64::new(0),
            crash_states: AtomicU64::new(0),
            checks: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            coverage: Mutex::new(Coverage::default()),
            sanity: Mutex::new(Sanity::default()),
            found: Mutex::new(None),
            start: Instant::now(),
            finished_workers: AtomicU64::new(0),
        }
    }

    /// The wall-clock backstop reports the longest-running scenario as a
    /// hang, with its bytes, and stops the workers. (A zero limit makes any
    /// running scenario overdue, so no test waits on a clock.)
    #[test]
    fn backstop_reports_the_oldest_running_scenario() {
        let s = shared(ExploreOptions {
            hang_after: Duration::ZERO,
            seed: 9,
            ..ExploreOptions::default()
        });
        assert!(!s.check_backstops(0), "idle workers are not hung");
        s.running[1].0.store(7 + 1, Ordering::Relaxed);
        assert!(s.check_backstops(0));
        assert!(s.stop.load(Ordering::Relaxed));
        let found = s.found.lock().unwrap().take().expect("a failure");
        assert_eq!(found.index, 7);
        assert_eq!(found.failure.kind, FailureKind::Hang);
        assert_eq!(found.failure.invariant(), "wall-clock-watchdog");
        assert_eq!(found.bytes, scenario_bytes(9, 7, Size::Default));
    }

    /// Past the memory ceiling, the running scenario is a hang too.
    #[test]
    fn memory_ceiling_is_a_hang() {
        let s = shared(ExploreOptions {
            max_rss_bytes: 100,
            hang_after: Duration::from_secs(3600),
            ..ExploreOptions::default()
        });
        s.running[0].0.store(3 + 1, Ordering::Relaxed);
        assert!(!s.check_backstops(100));
        assert!(s.check_backstops(101));
        let found = s.found.lock().unwrap().take().expect("a failure");
        assert_eq!(found.failure.invariant(), "memory-ceiling");
        assert_eq!(found.index, 3);
    }
}
