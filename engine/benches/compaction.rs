//! Compaction throughput and the flusher's commit latency while a compaction
//! runs (issue 4), on the real file system: the point of MB-38428.
//!
//! Four measurements, each printed by criterion, plus summaries on stderr:
//!
//! - `compaction/flush_alone`: one commit per iteration: queue one 100-byte
//!   document (overwriting one of the store's keys) and flush it, no
//!   compaction running (a spinning thread keeps the other core busy, see
//!   [`spin_for`]). Elem/s is commits/s.
//! - `compaction/concurrent`: one full compaction per iteration
//!   (`start_compaction`, then `step` until Done) on the bench thread, while
//!   a flusher thread commits one document at a time in a loop. MB/s is the
//!   compactor's rate in live user data (keys + values) copied.
//! - `compaction/stop_the_world`: the same with
//!   [`CompactionOptions::stop_the_world`]: the compaction holds the store's
//!   memory lock through copy, catch-up and switch, so the flusher waits on
//!   the mutex for the whole compaction.
//! - `compaction/no_flusher`: the compaction alone, for its undisturbed MB/s.
//!
//! Commit latency is the time from `set` to the end of the `flush` that made
//! it durable (both take the memory lock, so in stop-the-world mode either
//! may be the one that waits). In `concurrent` and `stop_the_world` the
//! flusher first runs alone for [`BASELINE_WINDOW`] before every
//! compaction, next to a busy core ([`spin_for`]): those commits are the
//! baseline (`flusher alone just before`),
//! measured under the same disk conditions as the ones `during compaction`,
//! since fsync latency on a shared machine drifts by 10x within minutes.
//! The summaries cover every commit made while criterion ran the benchmark,
//! its warm-up included.
//!
//! `cargo bench -p engine --bench compaction` (add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick run). The store
//! lives in a temp dir on the system temp file system.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use engine::{CompactionOptions, Config, Progress, StdVfs, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Live documents in the store: what every compaction copies.
const DOCS: u64 = 100_000;
const VALUE_BYTES: usize = 100;
const KEY_BYTES: usize = 16;
/// Documents per flush while filling the store.
const FILL_BATCH_DOCS: u64 = 10_000;
/// Live user bytes a compaction copies.
const LIVE_BYTES: u64 = DOCS * (KEY_BYTES + VALUE_BYTES) as u64;

fn key(i: u64) -> Vec<u8> {
    let key = format!("doc-{:012}", i % DOCS);
    debug_assert_eq!(key.len(), KEY_BYTES);
    key.into_bytes()
}

struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
}

impl Bench {
    /// A store holding `DOCS` live documents, each written twice so the
    /// first compaction also drops garbage like a real one.
    fn new() -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(Arc::new(StdVfs), dir.path(), "bench", Config::default())
            .expect("open store");
        let value = vec![0xab; VALUE_BYTES];
        for i in 0..2 * DOCS {
            store.set(&key(i), &value).expect("set");
            if (i + 1) % FILL_BATCH_DOCS == 0 {
                store.flush().expect("flush");
            }
        }
        store.flush().expect("flush");
        Bench { _dir: dir, store }
    }
}

/// One commit of one document: its latency.
fn commit_one(store: &Store, i: u64, value: &[u8]) -> Duration {
    let start = Instant::now();
    store.set(&key(i), value).expect("set");
    loop {
        match store.flush() {
            Ok(_) => break,
            // The compactor holds the store lock (its final catch-up round
            // and the switch): the flush is refused at once and retried;
            // the wait counts in the commit's latency.
            Err(engine::Error::Busy) => thread::yield_now(),
            Err(e) => panic!("flush: {e}"),
        }
    }
    start.elapsed()
}

/// Run one compaction to the end; its wall time.
fn compact(store: &Store, options: CompactionOptions) -> Duration {
    let start = Instant::now();
    let mut c = store.start_compaction(options).expect("start compaction");
    while !matches!(c.step().expect("compaction step"), Progress::Done(_)) {}
    start.elapsed()
}

/// How long the flusher runs alone before each compaction: the paired
/// baseline, measured under the same disk conditions as the compaction
/// right after it (fsync latency on a shared machine drifts a lot).
const BASELINE_WINDOW: Duration = Duration::from_millis(250);

/// Keep this thread's core busy for `window` without touching the disk.
///
/// On a VM whose other vCPU is idle, every fsync wake-up of the flusher
/// took ~8 ms instead of ~0.5 ms (measured: the same loop with `yes` on the
/// other core drops to 0.4 ms). A compaction keeps that core busy, so a
/// baseline measured next to an idle core would flatter the compaction.
/// The baselines therefore run next to a busy core too.
fn spin_for(window: Duration) {
    let start = Instant::now();
    while start.elapsed() < window {
        std::hint::spin_loop();
    }
}

/// Commit latencies of the flusher.
#[derive(Default)]
struct Latencies {
    /// Commits that finished before the compaction started.
    before: Vec<Duration>,
    /// Commits that finished while it ran (and the one in flight at its end).
    during: Vec<Duration>,
    /// Time the flusher ran alone, in all.
    before_time: Duration,
    /// Compaction wall times.
    compactions: Vec<Duration>,
}

/// Let a flusher thread commit in a loop, alone for [`BASELINE_WINDOW`],
/// then run one compaction. Returns the compaction's wall time.
fn compact_with_flusher(
    store: &Store,
    options: CompactionOptions,
    latencies: &mut Latencies,
    next_key: &mut u64,
) -> Duration {
    let stop = AtomicBool::new(false);
    let started = Barrier::new(2);
    let first_key = *next_key;
    let (compaction_start, elapsed, commits) = thread::scope(|s| {
        let flusher = s.spawn(|| {
            let value = vec![0xcd; VALUE_BYTES];
            let mut out = Vec::new();
            let mut i = first_key;
            started.wait();
            while !stop.load(Ordering::Relaxed) {
                let latency = commit_one(store, i, &value);
                out.push((Instant::now(), latency));
                i += 1;
            }
            out
        });
        started.wait();
        spin_for(BASELINE_WINDOW);
        let compaction_start = Instant::now();
        let elapsed = compact(store, options);
        stop.store(true, Ordering::Relaxed);
        let commits = flusher.join().expect("flusher thread");
        (compaction_start, elapsed, commits)
    });
    *next_key += commits.len() as u64;
    for (end, latency) in commits {
        if end < compaction_start {
            latencies.before.push(latency);
        } else {
            latencies.during.push(latency);
        }
    }
    latencies.before_time += BASELINE_WINDOW;
    latencies.compactions.push(elapsed);
    elapsed
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// "median .. p99 .. max .. over N commits, R commits/s".
fn summary(latencies: &mut [Duration], over: Duration) -> String {
    if latencies.is_empty() {
        return "no commits".to_string();
    }
    latencies.sort();
    format!(
        "commit latency median {:?} p99 {:?} max {:?} over {} commits, {:.0} commits/s",
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        latencies[latencies.len() - 1],
        latencies.len(),
        latencies.len() as f64 / over.as_secs_f64().max(1e-9),
    )
}

fn compaction_summary(compactions: &[Duration]) -> String {
    let mut rates: Vec<f64> = compactions
        .iter()
        .map(|d| LIVE_BYTES as f64 / 1e6 / d.as_secs_f64())
        .collect();
    rates.sort_by(f64::total_cmp);
    match rates.get(rates.len() / 2) {
        Some(median) => format!("{} compactions, median {median:.1} MB/s", rates.len()),
        None => "no compactions".to_string(),
    }
}

fn print_summary(what: &str, latencies: &mut Latencies) {
    let busy: Duration = latencies.compactions.iter().sum();
    eprintln!(
        "{what}: flusher alone just before: {}",
        summary(&mut latencies.before, latencies.before_time)
    );
    eprintln!(
        "{what}: during compaction: {}",
        summary(&mut latencies.during, busy)
    );
    eprintln!("{what}: {}", compaction_summary(&latencies.compactions));
}

fn compaction(c: &mut Criterion) {
    let bench = Bench::new();
    let store = &bench.store;
    // The first compaction drops the fill's garbage; measure steady state.
    compact(store, CompactionOptions::default());
    let mut next_key = 0u64;

    let mut group = c.benchmark_group("compaction");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);

    let value = vec![0xef; VALUE_BYTES];
    let mut latencies = Vec::new();
    group.throughput(Throughput::Elements(1));
    let spinning = AtomicBool::new(true);
    thread::scope(|s| {
        // A busy core beside the flusher, as in the compaction runs (see
        // `spin_for`).
        s.spawn(|| {
            while spinning.load(Ordering::Relaxed) {
                spin_for(Duration::from_millis(1));
            }
        });
        group.bench_function("flush_alone", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let latency = commit_one(store, next_key, &value);
                    next_key += 1;
                    latencies.push(latency);
                    total += latency;
                }
                total
            })
        });
        spinning.store(false, Ordering::Relaxed);
    });
    let alone: Duration = latencies.iter().sum();
    eprintln!("compaction/flush_alone: {}", summary(&mut latencies, alone));

    group.throughput(Throughput::Bytes(LIVE_BYTES));
    for (name, stop_the_world) in [("concurrent", false), ("stop_the_world", true)] {
        let options = CompactionOptions {
            stop_the_world,
            ..CompactionOptions::default()
        };
        let mut latencies = Latencies::default();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| compact_with_flusher(store, options, &mut latencies, &mut next_key))
                    .sum()
            })
        });
        print_summary(&format!("compaction/{name}"), &mut latencies);
    }

    let mut compactions = Vec::new();
    group.bench_function("no_flusher", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let elapsed = compact(store, CompactionOptions::default());
                compactions.push(elapsed);
                total += elapsed;
            }
            total
        })
    });
    eprintln!(
        "compaction/no_flusher: {}",
        compaction_summary(&compactions)
    );
    group.finish();

    store.verify().expect("verify after the benchmark");
    let live = store
        .snapshot()
        .expect("snapshot")
        .counters()
        .expect("counters")
        .map_or(0, |c| c.live);
    assert_eq!(live, DOCS, "every compaction kept every live document");
}

criterion_group!(benches, compaction);
criterion_main!(benches);
