//! The extract cache and its chunk memo change no result: a walk served
//! from memory equals a fresh one, and a byte changed under a memoized
//! chunk is read again (and caught) instead of being served stale.

use engine::vfs::OpenMode;
use engine::{Config, Store};
use failpoints::SimVfs;
use harness::extract::{extract, extract_cached, ExtractCache};

const DIR: &str = "/db";

fn value(i: u8) -> Vec<u8> {
    format!("value-{i:02}-{}", "x".repeat(40 + usize::from(i))).into_bytes()
}

fn store_with_commits(sim: &SimVfs, commits: u8) -> Store {
    let store = Store::open(sim.as_vfs(), DIR, "db", Config::default()).unwrap();
    for i in 0..commits {
        store.set(&[b'k', i], &value(i)).unwrap();
        store.flush().unwrap();
    }
    store
}

#[test]
fn memoized_walks_equal_fresh_ones() {
    let sim = SimVfs::new(3);
    let store = store_with_commits(&sim, 6);
    let mut cache = ExtractCache::default();
    let first = extract_cached(&store, &sim, false, Some(&mut cache)).unwrap();
    assert_eq!(first, extract(&store, &sim, false).unwrap());
    assert_eq!(first.headers.len(), 6);
    // Each new header shares its older documents' bodies and most nodes
    // with the headers before it: the memo serves them.
    let (hits, misses) = cache.chunk_counts();
    assert!(hits > 0 && misses > 0, "hits {hits}, misses {misses}");
    store.set(b"k9", &value(9)).unwrap();
    store.flush().unwrap();
    let second = extract_cached(&store, &sim, false, Some(&mut cache)).unwrap();
    assert_eq!(second, extract(&store, &sim, false).unwrap());
    assert_eq!(second.headers.len(), 7);
}

#[test]
fn a_changed_byte_under_a_memoized_chunk_is_read_again() {
    let sim = SimVfs::new(4);
    let store = store_with_commits(&sim, 6);
    let mut cache = ExtractCache::default();
    extract_cached(&store, &sim, false, Some(&mut cache)).unwrap();
    let (hits, _) = cache.chunk_counts();
    assert!(hits > 0, "the first extract memoized nothing");
    // Damage the body of the first document, which every header holds.
    let path = sim
        .files()
        .into_keys()
        .find(|p| p.starts_with(DIR))
        .expect("the store's file");
    let bytes = sim.file(&path).unwrap();
    let body = value(0);
    let at = bytes
        .windows(body.len())
        .position(|w| w == body.as_slice())
        .expect("the first body is in the file");
    let file = sim.as_vfs().open(&path, OpenMode::ReadWrite).unwrap();
    file.write_all_at(b"Y", (at + 10) as u64).unwrap();
    let fresh = extract(&store, &sim, false);
    assert!(fresh.is_err(), "a damaged body verified: {fresh:?}");
    let cached = extract_cached(&store, &sim, false, Some(&mut cache));
    assert!(
        cached.is_err(),
        "the memo served the damaged body's old bytes: {cached:?}"
    );
}
