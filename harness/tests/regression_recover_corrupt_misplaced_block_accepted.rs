//! Regression test `regression_recover_corrupt_misplaced_block_accepted`, written by `crashfuzz minimize`.
//!
//! What broke: divergence [committed-state] at step 0:
//!   Two whole blocks swapped: every chunk kept a valid CRC32C because a checksum covered only the chunk's bytes; an older header read another commit's node. Checksums now cover the chunk's file offset (format::checksum_at). Found by `cargo fuzz run recover_corrupt` after ~9,800 executions.
//!
//! How it was found: crash-consistency exploration (signature 5f37a869ef847560),
//! on the engine as it was then. It failed until the bug was fixed
//! and must pass from then on.
//! Minimized from 13 to 13 steps in 1 runs.
//!
//! Replay:
//!   cargo run --release --bin crashfuzz -- repro --hex 020302000000000000000000000000000700090000000900000009000000090000000900000009160300 --target recover_corrupt

use harness::regression::assert_target_passes;
use harness::scenario::{Damage, Place, Scenario, Step, SwarmConfig};
use harness::targets::Target;

#[test]
fn regression_recover_corrupt_misplaced_block_accepted() {
    let scenario = Scenario {
        config: SwarmConfig {
            fanout: 4,
            copy_batch_docs: 4,
            catchup_rounds: 2,
            pitr_granularity_secs: None,
            pitr_max_age_secs: 0,
            crash_mode: Some(0),
            disk_seed: 0,
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
            // #0 delete k00
            Step::Delete { key: 0 },
            // #1 flush
            Step::Flush,
            // #2 set k00 (0 bytes)
            Step::Set { key: 0, len: 0 },
            // #3 flush
            Step::Flush,
            // #4 set k00 (0 bytes)
            Step::Set { key: 0, len: 0 },
            // #5 flush
            Step::Flush,
            // #6 set k00 (0 bytes)
            Step::Set { key: 0, len: 0 },
            // #7 flush
            Step::Flush,
            // #8 set k00 (0 bytes)
            Step::Set { key: 0, len: 0 },
            // #9 flush
            Step::Flush,
            // #10 set k00 (0 bytes)
            Step::Set { key: 0, len: 0 },
            // #11 flush
            Step::Flush,
            // #12 damage: swap two blocks: header block 3 before the newest and header block 4 before the newest
            Step::Damage(Damage::SwapBlocks {
                a: 3,
                b: Place::HeaderBlock(4),
            }),
        ],
    };
    assert_target_passes(Target::RecoverCorrupt, &scenario);
}
