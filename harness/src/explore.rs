//! `explore`: random scenarios from one seed, on all cores, until a failure,
//! the time budget or the iteration budget.
//!
//! Scenario `i` of seed `s` is [`crate::generate::scenario_bytes`]`(s, i)`:
//! the same on every machine and for any number of workers, so a failure is
//! replayed from its index as well as from its bytes.

use crate::generate::{scenario_bytes, Size};
use crate::runner::{replay_command, run, Failure, RunOptions};
use crate::scenario::Scenario;
use engine::mutants::Mutant;
use failpoints::Coverage;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
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
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// What an exploration did.
#[derive(Debug)]
pub struct ExploreReport {
    /// The seed.
    pub seed: u64,
    /// Scenarios run to the end (passed or failed).
    pub iterations: u64,
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
        serde_json::json!({
            "seed": self.seed,
            "iterations": self.iterations,
            "elapsed_secs": self.elapsed.as_secs_f64(),
            "execs_per_sec": self.execs_per_sec(),
            "crash_states": self.crash_states,
            "checks": self.checks,
            "failures": u64::from(self.failure.is_some()),
            "failure": self.failure.as_ref().map(|f| serde_json::json!({
                "index": f.index,
                "kind": f.failure.kind.name(),
                "invariant": f.failure.invariant,
                "signature": f.failure.signature(),
                "failpoint": f.failure.failpoint,
            })),
            "failpoints_hit": total - self.coverage.unhit().len(),
            "failpoints_crashed": total - self.coverage.uncrashed().len(),
            "failpoints_total": total,
            "failpoints_never_crashed": self.coverage.uncrashed(),
        })
    }
}

/// Run the exploration.
pub fn explore(options: &ExploreOptions) -> ExploreReport {
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let crash_states = AtomicU64::new(0);
    let checks = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let coverage = Mutex::new(Coverage::default());
    let found: Mutex<Option<FoundFailure>> = Mutex::new(None);
    let start = Instant::now();
    let deadline = options.time.map(|t| start + t);
    let limit = options.iterations.unwrap_or(u64::MAX);
    let bar = progress_bar(options);

    let worker = || {
        let mut local = Coverage::default();
        let run_options = RunOptions {
            mutant: options.mutant,
            ..RunOptions::default()
        };
        while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= limit {
                break;
            }
            let bytes = scenario_bytes(options.seed, index, options.size);
            let scenario = Scenario::from_bytes(&bytes);
            let result = run(&scenario, &run_options);
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            match result {
                Ok(outcome) => {
                    crash_states.fetch_add(outcome.crash_states, Ordering::Relaxed);
                    checks.fetch_add(outcome.checks, Ordering::Relaxed);
                    local.merge(&outcome.coverage);
                }
                Err(failure) => {
                    stop.store(true, Ordering::Relaxed);
                    let mut slot = found.lock().unwrap_or_else(|p| p.into_inner());
                    // Keep the lowest index: the same failure whatever the
                    // number of workers, when several are found at once.
                    if slot.as_ref().is_none_or(|f| f.index > index) {
                        *slot = Some(FoundFailure {
                            index,
                            bytes,
                            failure,
                            after_iterations: finished,
                            after: start.elapsed(),
                        });
                    }
                }
            }
            if index.is_multiple_of(64) {
                coverage
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .merge(&local);
                local = Coverage::default();
            }
        }
        coverage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .merge(&local);
    };

    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.jobs.max(1))
            .map(|_| scope.spawn(worker))
            .collect();
        if let Some(bar) = &bar {
            while handles.iter().any(|h| !h.is_finished()) {
                let n = done.load(Ordering::Relaxed);
                let rate = n as f64 / start.elapsed().as_secs_f64().max(1e-9);
                let cov = coverage.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let total = engine::failpoints::all().count();
                bar.set_position(n);
                bar.set_message(format!(
                    "{rate:.0} scenarios/s, {} crash states, failpoints crashed {}/{total}",
                    crash_states.load(Ordering::Relaxed),
                    total - cov.uncrashed().len()
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    ExploreReport {
        seed: options.seed,
        iterations: done.into_inner(),
        elapsed: start.elapsed(),
        crash_states: crash_states.into_inner(),
        checks: checks.into_inner(),
        failure: found.into_inner().unwrap_or_else(|p| p.into_inner()),
        coverage: coverage.into_inner().unwrap_or_else(|p| p.into_inner()),
    }
}

fn progress_bar(options: &ExploreOptions) -> Option<ProgressBar> {
    if !options.progress {
        return None;
    }
    let bar = match options.iterations {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    let template = if options.iterations.is_some() {
        "{elapsed_precise} [{bar:30}] {pos}/{len} {msg}"
    } else {
        "{elapsed_precise} {spinner} {pos} scenarios, {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

/// Write a failure's artifact (raw scenario bytes, the encoding the fuzz
/// targets read) and its readable trace into `dir`. Returns the artifact path.
pub fn write_artifact(dir: &Path, bytes: &[u8], failure: &Failure) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("crash-{}", failure.signature()));
    std::fs::write(&path, bytes)?;
    let mut text = format!("{failure}\n");
    text.push_str(&format!(
        "replay: {}\n\nscenario:\n{}\n\ntrace:\n{}\n",
        replay_command(&failure.scenario, failure.mutant, Some(&path)),
        describe(&failure.scenario),
        failure.trace.join("\n")
    ));
    std::fs::write(path.with_extension("txt"), text)?;
    Ok(path)
}

/// The scenario as numbered readable steps.
pub fn describe(scenario: &Scenario) -> String {
    let mut out = format!("config {:?}\n", scenario.config);
    for (i, step) in scenario.steps.iter().enumerate() {
        out.push_str(&format!("  #{i:<3} {step}\n"));
    }
    out
}
