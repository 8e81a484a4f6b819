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

fn key(i: u8) -> Vec<u8> {
    format!("key-number-{i:02}").into_bytes()
}

fn store_with_commits(sim: &SimVfs, commits: u8) -> Store {
    let config = Config {
        fanout: 3,
        ..Config::default()
    };
    let store = Store::open(sim.as_vfs(), DIR, "db", config).unwrap();
    for i in 0..commits {
        store.set(&key(i), &value(i)).unwrap();
        store.flush().unwrap();
    }
    store
}

/// Overwrite one byte of the first (or the last) occurrence of `pattern` in
/// the store's file (a change the simulated disk notes).
fn damage(sim: &SimVfs, pattern: &[u8], last: bool) {
    let path = sim
        .files()
        .into_keys()
        .find(|p| p.starts_with(DIR))
        .expect("the store's file");
    let bytes = sim.file(&path).unwrap();
    let mut found = bytes
        .windows(pattern.len())
        .enumerate()
        .filter(|(_, w)| *w == pattern);
    let (at, _) = if last {
        found.next_back()
    } else {
        found.next()
    }
    .expect("the pattern is in the file");
    let file = sim.as_vfs().open(&path, OpenMode::ReadWrite).unwrap();
    file.write_all_at(b"Y", (at + pattern.len() / 2) as u64)
        .unwrap();
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
    let (hits, misses, _) = cache.chunk_counts();
    assert!(hits > 0 && misses > 0, "hits {hits}, misses {misses}");
    store.set(&key(9), &value(9)).unwrap();
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
    let (hits, _, _) = cache.chunk_counts();
    assert!(hits > 0, "the first extract memoized nothing");
    // Damage the body of the first document, which every header holds.
    damage(&sim, &value(0), false);
    let fresh = extract(&store, &sim, false);
    assert!(fresh.is_err(), "a damaged body verified: {fresh:?}");
    let cached = extract_cached(&store, &sim, false, Some(&mut cache));
    assert!(
        cached.is_err(),
        "the memo served the damaged body's old bytes: {cached:?}"
    );
}

#[test]
fn a_changed_byte_under_a_memoized_subtree_is_walked_again() {
    let sim = SimVfs::new(5);
    let store = store_with_commits(&sim, 12);
    let mut cache = ExtractCache::default();
    extract_cached(&store, &sim, false, Some(&mut cache)).unwrap();
    // Later headers share the oldest leaves: their subtrees were served
    // from the memo.
    let (_, _, subtrees) = cache.chunk_counts();
    assert!(subtrees > 0, "no subtree was memoized");
    // The last copy of the first key sits in the leftmost leaf the first
    // split wrote, which every later header shares and none has as its
    // root (a root is also read by the header's own check, memo or not).
    damage(&sim, &key(0), true);
    let fresh = extract(&store, &sim, false);
    assert!(fresh.is_err(), "a damaged node verified: {fresh:?}");
    let cached = extract_cached(&store, &sim, false, Some(&mut cache));
    assert!(
        cached.is_err(),
        "the memo served the damaged node's old walk: {cached:?}"
    );
}
