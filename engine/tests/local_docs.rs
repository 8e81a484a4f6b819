//! User local documents (`_local/...`): queued like mutations, committed by
//! a flush, kept out of the document indexes, carried by compaction's
//! catch-up as of the newest header (removals included), and durable
//! across a reopen.

mod common;

use engine::{CompactionOptions, Config, ManualClock, StdVfs, Store, Vfs, COUNTERS_DOC};
use std::sync::Arc;

fn open(vfs: &Arc<dyn Vfs>, dir: &std::path::Path) -> Store {
    let config = Config {
        fanout: 3,
        clock: Arc::new(ManualClock::new(1)),
        copy_batch_docs: 2,
        ..Config::default()
    };
    Store::open(vfs.clone(), dir, "db", config).unwrap()
}

/// The user local documents of the store's tip.
fn locals(store: &Store) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = store.snapshot().unwrap().locals().unwrap();
    all.retain(|(name, _)| name.as_slice() != COUNTERS_DOC);
    all
}

#[test]
fn names_outside_local_or_the_counters_document_are_refused() {
    let dir = common::scratch_dir();
    let vfs: Arc<dyn Vfs> = Arc::new(StdVfs);
    let store = open(&vfs, dir.path());
    for name in [&b"ckpt"[..], b"_local/", COUNTERS_DOC, &[b'_'; 2000]] {
        assert!(
            matches!(store.set_local(name, b"v"), Err(engine::Error::Invalid(_))),
            "{name:?} accepted"
        );
        assert!(matches!(
            store.delete_local(name),
            Err(engine::Error::Invalid(_))
        ));
    }
    assert_eq!(store.queue_len().unwrap(), 0);
}

#[test]
fn a_local_only_commit_raises_update_seq_and_stays_out_of_the_indexes() {
    let dir = common::scratch_dir();
    let vfs: Arc<dyn Vfs> = Arc::new(StdVfs);
    let store = open(&vfs, dir.path());
    assert_eq!(store.set(b"a", b"1").unwrap(), 1);
    store.flush().unwrap();
    assert_eq!(store.set_local(b"_local/ckpt", b"x").unwrap(), 2);
    assert_eq!(store.queue_len().unwrap(), 1);
    // Queued, not visible.
    assert_eq!(store.get_local(b"_local/ckpt").unwrap(), None);
    let info = store.flush().unwrap().expect("a local change commits");
    assert_eq!(
        (info.update_seq, info.mutations, info.local_changes),
        (2, 0, 1)
    );
    assert_eq!(
        store.get_local(b"_local/ckpt").unwrap(),
        Some(b"x".to_vec())
    );
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.changes_since(0).unwrap().len(), 1);
    assert_eq!(snap.all_docs().unwrap().len(), 1);
    snap.verify().unwrap();
    // A later change in the same batch wins; a removal removes.
    store.set_local(b"_local/ckpt", b"y").unwrap();
    store.set_local(b"_local/other", b"o").unwrap();
    store.delete_local(b"_local/ckpt").unwrap();
    store.flush().unwrap();
    assert_eq!(
        locals(&store),
        vec![(b"_local/other".to_vec(), b"o".to_vec())]
    );
    drop(store);
    let store = open(&vfs, dir.path());
    assert_eq!(
        locals(&store),
        vec![(b"_local/other".to_vec(), b"o".to_vec())]
    );
    assert_eq!(
        store.set(b"b", b"2").unwrap(),
        6,
        "seqnos go on after the tip"
    );
}

/// A local document removed (and another one changed) while the copy runs
/// is removed (changed) in the new file: catch-up carries the newest
/// header's local documents, removals included.
#[test]
fn catch_up_carries_local_changes_and_removals_made_during_the_copy() {
    let dir = common::scratch_dir();
    let vfs: Arc<dyn Vfs> = Arc::new(StdVfs);
    let store = open(&vfs, dir.path());
    for i in 0..10u8 {
        store.set(&[b'k', i], &[i]).unwrap();
    }
    store.set_local(b"_local/gone", b"1").unwrap();
    store.set_local(b"_local/kept", b"1").unwrap();
    store.flush().unwrap();
    let mut c = store
        .start_compaction(CompactionOptions::default())
        .unwrap();
    c.step().unwrap();
    store.delete_local(b"_local/gone").unwrap();
    store.set_local(b"_local/kept", b"2").unwrap();
    store.flush().unwrap();
    c.run().unwrap();
    let expected = vec![(b"_local/kept".to_vec(), b"2".to_vec())];
    assert_eq!(locals(&store), expected);
    drop(store);
    let store = open(&vfs, dir.path());
    assert_eq!(store.rev().unwrap(), 2);
    assert_eq!(locals(&store), expected);
}
