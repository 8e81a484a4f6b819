//! Replays every committed artifact in `harness/regressions/` on the correct
//! engine: each was a failure once (see `harness/regressions/README.md`) and
//! must pass now, deterministically.

use harness::targets::{run_target, Target};
use harness::RunOptions;
use std::path::Path;

#[test]
fn every_committed_regression_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut replayed = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.extension().is_none_or(|e| e != "bin") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let target = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.split("--").next())
            .and_then(Target::from_name)
            .unwrap_or(Target::Interleave);
        if let Err(f) = run_target(target, &bytes, &RunOptions::default()) {
            panic!("{} fails again:\n{f}", path.display());
        }
        replayed += 1;
    }
    assert!(
        replayed >= 2,
        "expected the committed regressions, found {replayed}"
    );
}
