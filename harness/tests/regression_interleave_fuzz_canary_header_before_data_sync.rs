//! Regression test `regression_interleave_fuzz_canary_header_before_data_sync`, written by `crashfuzz minimize`.
//!
//! What broke: divergence [verify] at step 0:
//!   The canary (seeded bug header-before-data-sync) as found by `cargo fuzz run interleave` with CRASHFUZZ_MUTANT=header-before-data-sync, minimized 29 -> 3 steps. Passes on the correct engine, fails with the bug.
//!
//! How it was found: crash-consistency exploration (signature 46ab081934310f31),
//! with the seeded bug `header-before-data-sync` switched on. It passes on the
//! correct engine; saved as `harness/tests/regression_interleave_fuzz_canary_header_before_data_sync.rs`, it shows it
//! still catches the bug with:
//!   CRASHFUZZ_MUTANT=header-before-data-sync cargo test -p harness --test regression_interleave_fuzz_canary_header_before_data_sync
//! Minimized from 3 to 3 steps in 1 runs.
//!
//! Replay:
//!   cargo run --release --bin crashfuzz -- repro --hex 0203020000020500000000000000000000000018010009 --target interleave --mutant header-before-data-sync

use harness::regression::assert_passes;
use harness::scenario::{Scenario, Step, SwarmConfig};

#[test]
fn regression_interleave_fuzz_canary_header_before_data_sync() {
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
            // #0 set k00 (0 bytes)
            Step::Set { key: 0, len: 0 },
            // #1 arm crash before sync call #1
            Step::CrashAtIo {
                kind: 1,
                nth: 1,
                after: false,
            },
            // #2 flush
            Step::Flush,
        ],
    };
    assert_passes(&scenario);
}
