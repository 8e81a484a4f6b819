//! Regression test `regression_canary`, written by `crashfuzz minimize`.
//!
//! What broke: divergence [verify] at step 2:
//!   verify failed: corrupted body of 0 bytes, index says 2 at offset 0
//! The crash before it struck after failpoint `flush::before_header_sync`.
//!
//! How it was found: crash-consistency exploration (signature 205e30d560de0b3b),
//! with the seeded bug `header-before-data-sync` switched on. It passes on the
//! correct engine; saved as `harness/tests/regression_canary.rs`, it shows it
//! still catches the bug with:
//!   CRASHFUZZ_MUTANT=header-before-data-sync cargo test -p harness --test regression_canary
//! Minimized from 33 to 3 steps in 87 runs.
//!
//! Replay:
//!   cargo run --release --bin crashfuzz -- repro --hex 0203020000020500000000000000000016060000000009 --mutant header-before-data-sync

use harness::regression::{assert_passes, failpoint};
use harness::scenario::{Scenario, Step, SwarmConfig};

#[test]
fn regression_canary() {
    let scenario = Scenario {
        config: SwarmConfig {
            fanout: 4,
            copy_batch_docs: 4,
            catchup_rounds: 2,
            pitr_granularity_secs: None,
            pitr_max_age_secs: 0,
            crash_mode: Some(2),
            disk_seed: 5,
            windows: false,
            strict_recovery: false,
            tear_unsynced: false,
            process_crashes: false,
            probe_liveness: false,
            fsync_revert: false,
            no_psow: 0,
            large: false,
            long_keys: false,
        },
        steps: vec![
            // #0 arm crash at flush::before_header_sync hit #1
            Step::CrashAtFailpoint {
                point: failpoint("flush::before_header_sync"),
                nth: 1,
            },
            // #1 set k00 (0 bytes)
            Step::Set { key: 0, len: 0 },
            // #2 flush
            Step::Flush,
        ],
    };
    assert_passes(&scenario);
}
