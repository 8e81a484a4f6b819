//! Shared by the real-thread and Windows-mode tests: a journal of the
//! mutations writers made, and the reconstruction of the oracle's event
//! sequence from it and the background threads' event log (both from
//! `harness::threads`), and the check of a store on the real file system.
//!
//! The oracle's [`Model`] wants events in the order the engine linearized
//! them. Writers and the flusher run on different threads, so the order is
//! recovered from seqnos instead of from wall-clock order: a flush took the
//! whole queue, so the commit with update_seq `U` holds exactly the
//! mutations with seqnos after the previous commit's and up to `U`; a
//! compaction event carries the tip it happened at (H0 at the start, the
//! final update_seq at the switch), so it goes after the commit of that tip
//! and before the next one.
#![allow(dead_code)]

use engine::{Config, Store};
use failpoints::SimVfs;
use oracle::Model;
use std::path::Path;

/// The journal, the feed and the crash check of the thread mode
/// (`harness::threads`), shared with these tests (each test file uses its
/// own part).
#[allow(unused_imports)]
pub use harness::threads::{check_live_then_crash, feed, Journal};

/// Check a store on the real file system: live, then closed and reopened
/// (a clean close: nothing is lost, the queue is empty).
pub fn check_live_then_reopen(
    model: &mut Model,
    store: Store,
    dir: &Path,
    name: &str,
    config: &Config,
) -> Result<Store, String> {
    // `extract` lists files only through a SimVfs; the real directory is
    // listed here instead.
    let unused = SimVfs::new(0);
    let live = harness::runner::extract(&store, &unused, false).map_err(|e| e.to_string())?;
    model
        .check_live(&live)
        .map_err(|d| format!("DIVERGENCE (live check):\n{d}"))?;
    drop(store);
    model.crash();
    let vfs: std::sync::Arc<dyn engine::Vfs> = std::sync::Arc::new(engine::StdVfs);
    let store = Store::open(vfs.clone(), dir, name, config.clone())
        .map_err(|e| format!("reopen failed: {e}"))?;
    store.verify_all().map_err(|e| format!("verify: {e}"))?;
    let mut recovered =
        harness::runner::extract(&store, &unused, false).map_err(|e| e.to_string())?;
    recovered.files = Some(vfs.list(dir).map_err(|e| e.to_string())?);
    model
        .check(&recovered)
        .map_err(|d| format!("DIVERGENCE (after reopen):\n{d}"))?;
    Ok(store)
}
