//! Scenarios per second of [`harness::run`] on one core (issues 7, 9 and
//! 17): every run is one whole generated scenario on the simulated disk, its
//! crashes, recoveries and oracle checks included, on the bench thread only.
//!
//! One iteration runs the same scenarios of seed 1 (generated once, not
//! timed) and counts one element per scenario, so elem/s is scenarios/s over
//! a fixed mix. (Scenarios differ tenfold in cost; timing them one at a time
//! would make each sample measure which ones it drew.) `crashfuzz explore
//! --jobs 1` adds only the scenario generation and some bookkeeping to this.
//!
//! The benchmarks, `explore/scenarios/<size>/<profile>`:
//! - `default/default-profile`: 512 default-size scenarios with the large
//!   profile forced off ([`Profile::Default`]), the figure issue 17 holds at
//!   5,000 scenarios/s or more;
//! - `default/large-profile`: the first 64 of them with it forced on
//!   (values to 64 KiB, batches to 255, multi-megabyte files);
//! - `small/mixed`, `default/mixed`, `large/mixed`: 512 scenarios of each
//!   size as the explorer generates them (one in 16 large).
//!
//! `cargo bench -p harness --bench explore` (add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick run, or a filter
//! such as `default-profile`).
//!
//! On a shared machine, user-CPU time of a fixed run is steadier than
//! criterion's wall clock: `EXPLORE_BENCH_FIXED=<profile>:<n>` (profile
//! `default`, `large` or `mixed`) runs default-size scenarios 0..n of seed 1
//! once in that profile, prints the count and exits, for
//! `/usr/bin/time -f %U target/release/deps/explore-<hash> --bench`.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use harness::generate::{scenario_in, Profile, Size};
use harness::{run, RunOptions, Scenario};
use std::hint::black_box;

// The same allocator as the crashfuzz binary, so the figure is explore's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SEED: u64 = 1;
const SCENARIOS: u64 = 512;
/// Large-profile scenarios cost tens of small ones.
const LARGE_SCENARIOS: u64 = 64;

fn scenarios(size: Size, profile: Profile, n: u64) -> Vec<Scenario> {
    (0..n)
        .map(|i| scenario_in(SEED, i, size, profile))
        .collect()
}

fn passing(scenarios: &[Scenario], options: &RunOptions) -> usize {
    scenarios
        .iter()
        .filter(|s| run(black_box(s), options).is_ok())
        .count()
}

fn explore(c: &mut Criterion) {
    let mut group = c.benchmark_group("explore");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    let options = RunOptions::default();
    for (size_name, size, profile_name, profile, n) in [
        (
            "default",
            Size::Default,
            "default-profile",
            Profile::Default,
            SCENARIOS,
        ),
        (
            "default",
            Size::Default,
            "large-profile",
            Profile::Large,
            LARGE_SCENARIOS,
        ),
        ("small", Size::Small, "mixed", Profile::Mixed, SCENARIOS),
        ("default", Size::Default, "mixed", Profile::Mixed, SCENARIOS),
        ("large", Size::Large, "mixed", Profile::Mixed, SCENARIOS),
    ] {
        let name = format!("{size_name}/{profile_name}");
        let scenarios = scenarios(size, profile, n);
        let failing = scenarios.len() - passing(&scenarios, &options);
        if failing > 0 {
            // The correct engine should pass them all; still measure.
            eprintln!("explore/{name}: {failing} of {n} scenarios FAIL");
        }
        group.throughput(Throughput::Elements(n));
        group.bench_function(BenchmarkId::new("scenarios", name), |b| {
            b.iter(|| passing(&scenarios, &options))
        });
    }
    group.finish();
}

/// `EXPLORE_BENCH_FIXED=<profile>:<n>`: one fixed run, for user-CPU timing.
fn fixed(spec: &str) {
    let (profile, n) = spec.split_once(':').unwrap_or((spec, "2000"));
    let profile = match profile {
        "default" => Profile::Default,
        "large" => Profile::Large,
        "mixed" => Profile::Mixed,
        other => panic!("EXPLORE_BENCH_FIXED: unknown profile {other:?}"),
    };
    let n: u64 = n
        .parse()
        .unwrap_or_else(|_| panic!("EXPLORE_BENCH_FIXED: {n:?} is not a count"));
    let options = RunOptions::default();
    let passed: usize = (0..n)
        .map(|i| passing(&[scenario_in(SEED, i, Size::Default, profile)], &options))
        .sum();
    println!("{passed} of {n} default-size scenarios passed ({profile:?} profile)");
}

fn main() {
    if let Ok(spec) = std::env::var("EXPLORE_BENCH_FIXED") {
        return fixed(&spec);
    }
    let mut c = Criterion::default().configure_from_args();
    explore(&mut c);
    c.final_summary();
}
