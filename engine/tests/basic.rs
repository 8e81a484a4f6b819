//! Basic store behaviour on the real file system.

use engine::{Config, ManualClock, StdVfs, Store};
use std::sync::Arc;

fn config(fanout: usize) -> Config {
    Config {
        fanout,
        clock: Arc::new(ManualClock::new(1000)),
        ..Config::default()
    }
}

#[test]
fn set_flush_reopen_get() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = Arc::new(StdVfs);
    let store = Store::open(vfs.clone(), dir.path(), "db", config(3)).unwrap();
    for i in 0..50u32 {
        store
            .set(format!("k{i:03}").as_bytes(), &i.to_be_bytes())
            .unwrap();
    }
    store.delete(b"k007").unwrap();
    let info = store.flush().unwrap().expect("a commit");
    assert_eq!(info.update_seq, 51);
    store.set(b"k001", b"new").unwrap();
    store.flush().unwrap();
    store.verify().unwrap();
    drop(store);
    let store = Store::open(vfs, dir.path(), "db", config(3)).unwrap();
    let report = store.verify().unwrap();
    assert_eq!(report.live, 49);
    assert_eq!(report.deleted, 1);
    assert_eq!(store.get(b"k001").unwrap().unwrap().value, b"new");
    assert!(store.get(b"k007").unwrap().unwrap().deleted);
    assert_eq!(
        store.get(b"k010").unwrap().unwrap().value,
        10u32.to_be_bytes()
    );
    assert_eq!(store.headers().unwrap().len(), 2);
    assert_eq!(
        store.snapshot().unwrap().changes_since(50).unwrap().len(),
        2
    );
}
