//! Minimization time per seeded bug (issue 9): for a few seeded bugs, find a
//! failing scenario once with [`explore`] (fixed seed, one worker, an
//! iteration budget; not timed), then time [`minimize`] on it. Every
//! iteration does the same deterministic work (same runs, same result), so
//! the time is the cost of the candidate runs; the number of runs and the
//! steps before and after are printed once per bug.
//!
//! `cargo bench -p harness --bench minimize` (add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick run).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use engine::mutants::Mutant;
use harness::explore::{explore, ExploreOptions};
use harness::generate::Size;
use harness::minimize::minimize;
use harness::{RunOptions, Scenario};
use std::hint::black_box;

const SEED: u64 = 1;
/// Scenarios explore may run to find a failure for one bug.
const ITERATIONS: u64 = 200_000;

/// Bugs from different layers: the flusher's commit protocol, recovery,
/// compaction's catch-up and switch, PiTR, purge.
const BUGS: [Mutant; 6] = [
    Mutant::HeaderSyncSkipped,
    Mutant::NoHeaderFallback,
    Mutant::CatchupOnlyToH0,
    Mutant::NoDirSyncAfterRename,
    Mutant::PitrTwoPerWindow,
    Mutant::PurgeAboveBound,
];

fn find_failure(mutant: Mutant) -> Option<Scenario> {
    let report = explore(&ExploreOptions {
        seed: SEED,
        time: None,
        iterations: Some(ITERATIONS),
        jobs: 1,
        size: Size::Default,
        mutant: Some(mutant),
        progress: None,
        ..ExploreOptions::default()
    });
    report.failure.map(|f| f.failure.scenario)
}

fn minimize_bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("minimize");
    group.sample_size(10);
    for mutant in BUGS {
        let Some(scenario) = find_failure(mutant) else {
            eprintln!(
                "minimize/{mutant}: no failure in {ITERATIONS} scenarios of seed {SEED}; skipped"
            );
            continue;
        };
        let options = RunOptions {
            mutant: Some(mutant),
            ..RunOptions::default()
        };
        if let Some(m) = minimize(&scenario, &options) {
            eprintln!(
                "minimize/{mutant}: {} -> {} steps in {} runs ({} [{}])",
                m.steps_before,
                m.steps_after,
                m.runs,
                m.failure.kind,
                m.failure.invariant()
            );
        }
        group.bench_function(BenchmarkId::from_parameter(mutant.name()), |b| {
            b.iter(|| black_box(minimize(black_box(&scenario), &options)))
        });
    }
    group.finish();
}

criterion_group!(benches, minimize_bench);
criterion_main!(benches);
