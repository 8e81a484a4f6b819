//! Scenarios per second of [`harness::run`] on one core (issues 7 and 9):
//! every run is one whole generated scenario on the simulated disk, its
//! crashes, recoveries and oracle checks included, on the bench thread only.
//!
//! For each [`Size`] one iteration runs the same 512 scenarios of seed 1
//! (generated once, not timed) and counts as 512 elements, so elem/s is
//! scenarios/s over a fixed mix. (Scenarios differ tenfold in cost; timing
//! them one at a time would make each sample measure which ones it drew.)
//! `crashfuzz explore --jobs 1` adds only the scenario generation (a ChaCha8
//! fill of ~100 bytes) and some bookkeeping to this.
//!
//! `cargo bench -p harness --bench explore` (add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick run).

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use harness::generate::{scenario, Size};
use harness::{run, RunOptions, Scenario};
use std::hint::black_box;

// The same allocator as the crashfuzz binary, so the figure is explore's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SEED: u64 = 1;
const SCENARIOS: u64 = 512;

fn explore(c: &mut Criterion) {
    let mut group = c.benchmark_group("explore");
    group.throughput(Throughput::Elements(SCENARIOS));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    let options = RunOptions::default();
    for (name, size) in [
        ("small", Size::Small),
        ("default", Size::Default),
        ("large", Size::Large),
    ] {
        let scenarios: Vec<Scenario> = (0..SCENARIOS).map(|i| scenario(SEED, i, size)).collect();
        let failing = scenarios
            .iter()
            .filter(|s| run(s, &options).is_err())
            .count();
        if failing > 0 {
            // The correct engine should pass them all; still measure.
            eprintln!("explore/{name}: {failing} of {SCENARIOS} scenarios FAIL");
        }
        group.bench_function(BenchmarkId::new("scenarios", name), |b| {
            b.iter(|| {
                scenarios
                    .iter()
                    .filter(|s| run(black_box(s), &options).is_ok())
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, explore);
criterion_main!(benches);
