//! Flush throughput on the real file system: one commit (bodies, trees,
//! data fsync, header, header fsync) per iteration, for batches of 1, 100
//! and 10,000 documents of 100 bytes under 16-byte keys.
//!
//! Each batch size is measured twice so criterion can print both rates:
//! `flushes/<n>` with one element per iteration (elem/s = flushes/s) and
//! `bytes/<n>` with the batch's key and value bytes per iteration (MB/s of
//! user data; the file grows by more, since trees are rewritten on the
//! changed paths). Queueing the batch is setup and not timed.
//!
//! `cargo bench -p engine --bench flush` (add
//! `-- --measurement-time 2 --warm-up-time 1` for a quick run). The store
//! lives in a temp dir on the system temp file system; flushes/s is mostly
//! a measure of that disk's fsync latency for small batches.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use engine::{Config, StdVfs, Store};
use std::sync::Arc;

const VALUE_BYTES: usize = 100;
const KEY_BYTES: usize = 16;
/// Keys cycle through this many, so the trees stop growing after a while
/// and every iteration is an overwrite-heavy steady state.
const KEY_SPACE: u64 = 200_000;

struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    next_key: u64,
    value: Vec<u8>,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(Arc::new(StdVfs), dir.path(), "bench", Config::default())
            .expect("open store");
        Bench {
            _dir: dir,
            store,
            next_key: 0,
            value: vec![0xab; VALUE_BYTES],
        }
    }

    fn queue(&mut self, docs: u64) {
        for _ in 0..docs {
            let key = format!("doc-{:012}", self.next_key % KEY_SPACE);
            debug_assert_eq!(key.len(), KEY_BYTES);
            self.store.set(key.as_bytes(), &self.value).expect("set");
            self.next_key += 1;
        }
    }
}

fn flush(c: &mut Criterion) {
    for docs in [1u64, 100, 10_000] {
        let mut group = c.benchmark_group("flush");
        if docs >= 10_000 {
            group.sample_size(10);
        }
        let mut bench = Bench::new();
        let batch_bytes = docs * (KEY_BYTES + VALUE_BYTES) as u64;
        for (what, throughput) in [
            ("flushes", Throughput::Elements(1)),
            ("bytes", Throughput::Bytes(batch_bytes)),
        ] {
            group.throughput(throughput);
            let store = bench.store.clone();
            group.bench_function(BenchmarkId::new(what, docs), |b| {
                b.iter_batched(
                    || bench.queue(docs),
                    |()| store.flush().expect("flush").expect("a commit"),
                    BatchSize::PerIteration,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, flush);
criterion_main!(benches);
