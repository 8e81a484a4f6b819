//! `crashfuzz mutants`: the seeded-bug benchmark. For each seeded bug,
//! explore with K seeds until a failure or the time budget; report whether
//! it was detected, the median time and scenarios to detect, the failure
//! kind and invariant, and the minimized repro's size.

use engine::mutants::Mutant;
use harness::explore::{explore, ExploreOptions};
use harness::generate::Size;
use harness::minimize::minimize;
use harness::runner::RunOptions;
use std::path::Path;
use std::time::Duration;

/// How to run the benchmark.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Budget of one exploration (one seed of one bug).
    pub time_per_bug: Duration,
    /// Explorations per bug, seeds `first_seed..first_seed + seeds`.
    pub seeds: u64,
    /// The first seed.
    pub first_seed: u64,
    /// Workers per exploration.
    pub jobs: usize,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// One seeded bug's result.
#[derive(Clone, Debug)]
pub struct BugResult {
    /// The bug.
    pub mutant: Mutant,
    /// (seconds, scenarios) to detect, per seed; None where it escaped.
    pub runs: Vec<Option<(f64, u64)>>,
    /// Failure kind of the first detection.
    pub kind: Option<String>,
    /// Invariant of the first detection.
    pub invariant: Option<String>,
    /// Steps of the minimized first detection.
    pub min_steps: Option<usize>,
    /// Steps of the first detection before minimization.
    pub raw_steps: Option<usize>,
}

impl BugResult {
    /// Detected by at least one seed.
    pub fn detected(&self) -> bool {
        self.runs.iter().any(Option::is_some)
    }

    fn medians(&self) -> (Option<f64>, Option<f64>) {
        let mut secs: Vec<f64> = self.runs.iter().flatten().map(|r| r.0).collect();
        let mut n: Vec<f64> = self.runs.iter().flatten().map(|r| r.1 as f64).collect();
        (median(&mut secs), median(&mut n))
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Run the benchmark for `bugs`.
pub fn bench(bugs: &[Mutant], options: &BenchOptions) -> Vec<BugResult> {
    bugs.iter().map(|&m| bench_one(m, options)).collect()
}

fn bench_one(mutant: Mutant, options: &BenchOptions) -> BugResult {
    let mut result = BugResult {
        mutant,
        runs: Vec::new(),
        kind: None,
        invariant: None,
        min_steps: None,
        raw_steps: None,
    };
    for k in 0..options.seeds {
        let report = explore(&ExploreOptions {
            seed: options.first_seed + k,
            time: Some(options.time_per_bug),
            iterations: None,
            jobs: options.jobs,
            size: Size::Default,
            mutant: Some(mutant),
            progress: None,
            ..ExploreOptions::default()
        });
        match report.failure {
            Some(found) => {
                result
                    .runs
                    .push(Some((found.after.as_secs_f64(), found.after_iterations)));
                if result.kind.is_none() {
                    result.kind = Some(found.failure.kind.name().to_string());
                    result.invariant = Some(found.failure.invariant());
                    if let Ok(Err(thread)) =
                        harness::threads::replay_artifact(&found.bytes, Some(mutant))
                    {
                        // A thread schedule: its size is the writers' operations.
                        result.raw_steps = Some(thread.scenario.ops());
                        result.min_steps = Some(harness::threads::minimize(&thread).scenario.ops());
                        continue;
                    }
                    result.raw_steps = Some(found.failure.scenario.steps.len());
                    let run_options = RunOptions {
                        mutant: Some(mutant),
                        ..RunOptions::default()
                    };
                    result.min_steps =
                        minimize(&found.failure.scenario, &run_options).map(|m| m.steps_after);
                }
            }
            None => result.runs.push(None),
        }
    }
    if options.progress {
        let (secs, _) = result.medians();
        eprintln!(
            "{:<30} {}{}",
            mutant.name(),
            if result.detected() {
                "detected"
            } else {
                "ESCAPED"
            },
            secs.map_or(String::new(), |s| format!(" (median {s:.2}s)"))
        );
    }
    result
}

/// The results as the JSON object `--json` prints.
pub fn to_json(results: &[BugResult]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let (secs, n) = r.medians();
            serde_json::json!({
                "name": r.mutant.name(),
                "detected": r.detected(),
                "detections": r.runs.iter().flatten().count(),
                "seeds": r.runs.len(),
                "median_secs": secs,
                "median_scenarios": n,
                "kind": r.kind,
                "invariant": r.invariant,
                "raw_steps": r.raw_steps,
                "min_steps": r.min_steps,
            })
        })
        .collect();
    serde_json::json!({
        "mutants": rows,
        "detected": results.iter().filter(|r| r.detected()).count(),
        "total": results.len(),
    })
}

/// The results as a Markdown table.
pub fn to_markdown(results: &[BugResult]) -> String {
    let mut out = String::from(
        "| # | seeded bug | detected | median time (s) | median scenarios | kind | invariant | steps (raw → min) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (i, r) in results.iter().enumerate() {
        let (secs, n) = r.medians();
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            r.mutant.name(),
            if r.detected() {
                format!("{}/{}", r.runs.iter().flatten().count(), r.runs.len())
            } else {
                "**escaped**".to_string()
            },
            secs.map_or("–".into(), |s| format!("{s:.2}")),
            n.map_or("–".into(), |n| format!("{n:.0}")),
            r.kind.as_deref().unwrap_or("–"),
            r.invariant.as_deref().unwrap_or("–"),
            match (r.raw_steps, r.min_steps) {
                (Some(a), Some(b)) => format!("{a} → {b}"),
                _ => "–".into(),
            },
        ));
    }
    let detected = results.iter().filter(|r| r.detected()).count();
    out.push_str(&format!(
        "\n{detected} of {} seeded bugs detected.\n",
        results.len()
    ));
    out
}

/// The `mutants` subcommand: exit 0 only if every bug was detected.
pub fn cmd(
    bugs: &[Mutant],
    options: &BenchOptions,
    json: bool,
    markdown: Option<&Path>,
) -> Result<u8, String> {
    if !cfg!(feature = "mutants") {
        return Err("the seeded-bug benchmark needs the `mutants` feature".into());
    }
    let results = bench(bugs, options);
    let table = to_markdown(&results);
    if let Some(path) = markdown {
        std::fs::write(path, &table).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if json {
        println!("{}", to_json(&results));
    } else {
        print!("{table}");
    }
    Ok(if results.iter().all(BugResult::detected) {
        0
    } else {
        1
    })
}
