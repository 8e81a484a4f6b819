//! The mutation gate: the test cargo-mutants runs against every mutant of
//! the engine (`ci/mutants.sh`, `.cargo/mutants.toml`).
//!
//! It is the suite in a few seconds: the explorer (`harness::explore`, the
//! default swarm) over a fixed number of scenarios of a fixed seed at every
//! scenario size, then every fuzz target's seed templates (a crash at every
//! catalog failpoint, damage for `recover_corrupt`, EIO for `io_errors`, a
//! PiTR history for `pitr`), each run as `crashfuzz repro --target` runs it.
//! It fails on the first failure (printing its replay command) and on a run
//! that is visibly wrong although no check failed: nothing acknowledged, no
//! compaction finished, a failpoint never reached, a fault kind never
//! injected. Hangs: the explorer's wall-clock backstop and the per-target
//! watchdog turn a loop into a failure; the deterministic watchdog (disk
//! calls per step) catches most first; cargo-mutants' own timeout is the
//! last resort.
//!
//! Ignored by default (`cargo test --workspace` stays fast); cargo-mutants
//! passes `--ignored` (`.cargo/mutants.toml`). By hand:
//! `cargo test -p harness --profile mutants --test mutation_gate -- --ignored --nocapture`.
//! `CRASHFUZZ_MUTATION_GATE_SCENARIOS=N` changes the explorer's budget
//! (default [`SCENARIOS`]); the seed is fixed so that every mutant meets the
//! same scenarios and the score is reproducible.

use harness::explore::{explore, ExploreOptions};
use harness::generate::Size;
use harness::target::Target;
use harness::targets::{run_target_watched, seed_scenario};
use harness::{RunOptions, Sanity};
use std::time::{Duration, Instant};

/// The seed of every scenario the gate runs.
const SEED: u64 = 20_261_204;
/// Explorer scenarios of default size (small: twice as many; large: a
/// quarter).
const SCENARIOS: u64 = 3_000;
/// Seed templates per fuzz target: two per catalog failpoint (a random
/// scenario and a template crashing at that failpoint), plus a few.
fn templates() -> u64 {
    2 * engine::failpoints::all().count() as u64 + 4
}
/// A scenario running longer than this is a hang (scenarios take well
/// under a millisecond).
const HANG: Duration = Duration::from_secs(10);

fn scenarios() -> u64 {
    match std::env::var("CRASHFUZZ_MUTATION_GATE_SCENARIOS") {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            panic!("CRASHFUZZ_MUTATION_GATE_SCENARIOS={v:?}: expected a number of scenarios")
        }),
        Err(_) => SCENARIOS,
    }
}

#[test]
#[ignore = "the mutation gate: run by cargo mutants (ci/mutants.sh), or with -- --ignored"]
fn mutation_gate() {
    let start = Instant::now();
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let base = scenarios();
    let mut sanity = Sanity::default();
    let mut coverage = failpoints::Coverage::default();
    let mut ran = 0u64;

    for (size, iterations) in [
        (Size::Default, base),
        (Size::Small, base * 2),
        (Size::Large, base / 4),
    ] {
        let report = explore(&ExploreOptions {
            seed: SEED,
            iterations: Some(iterations),
            jobs,
            size,
            hang_after: HANG,
            ..ExploreOptions::default()
        });
        if let Some(found) = &report.failure {
            panic!(
                "explore (seed {SEED}, size {size:?}) failed at scenario {}:\n{}\nreplay: {}",
                found.index,
                found.failure,
                found.failure.replay_command()
            );
        }
        ran += report.iterations;
        sanity.merge(&report.sanity);
        coverage.merge(&report.coverage);
    }

    let options = RunOptions::default();
    for target in Target::ALL {
        for i in 0..templates() {
            let bytes = seed_scenario(target, SEED, i).to_bytes();
            match run_target_watched(target, &bytes, &options, HANG) {
                Ok(outcome) => {
                    sanity.merge(&outcome.sanity);
                    coverage.merge(&outcome.coverage);
                    ran += 1;
                }
                Err(failure) => panic!(
                    "target {target} seed template {i} (seed {SEED}) failed:\n{failure}\nreplay: {}",
                    failure.replay_command()
                ),
            }
        }
    }

    // Liveness and reach: a run that acknowledges nothing, never finishes a
    // compaction or never reaches a failpoint passes every invariant
    // vacuously.
    let mut wrong = Vec::new();
    if sanity.commits_acked == 0 {
        wrong.push("no flush was acknowledged (every flush failed?)".to_string());
    }
    if sanity.compactions_finished == 0 {
        wrong.push("no compaction finished".to_string());
    }
    if sanity.unexplained_errors != 0 {
        wrong.push(format!(
            "{} unexplained engine errors",
            sanity.unexplained_errors
        ));
    }
    let unhit = coverage.unhit();
    if !unhit.is_empty() {
        wrong.push(format!("failpoints never reached: {unhit:?}"));
    }
    let uncrashed = coverage.uncrashed();
    if !uncrashed.is_empty() {
        wrong.push(format!("failpoints never crashed at: {uncrashed:?}"));
    }
    let uninjected = coverage.uninjected();
    if !uninjected.is_empty() {
        wrong.push(format!("fault kinds never injected: {uninjected:?}"));
    }
    eprintln!(
        "mutation gate: {ran} scenarios in {:.1} s, {} commits acknowledged, {} compactions \
         finished, seed {SEED}",
        start.elapsed().as_secs_f64(),
        sanity.commits_acked,
        sanity.compactions_finished
    );
    assert!(
        wrong.is_empty(),
        "the run passed every check but is visibly wrong:\n- {}",
        wrong.join("\n- ")
    );
}
