//! Regression test `regression_pitr_base_strictly_older`, written by `crashfuzz minimize`.
//!
//! What broke: divergence [pitr-history] at step 0:
//!   With PiTR max age 0, a header written during the compaction at the start second competed with the base; engine and oracle disagreed on the history floor. The base is now strictly older than the cutoff in both. Found by `crashfuzz explore --seed 7`, scenario 1446.
//!
//! How it was found: crash-consistency exploration (signature ec8b2fbf4db70cc5),
//! on the engine as it was then. It failed until the bug was fixed
//! and must pass from then on.
//! Minimized from 50 to 50 steps in 1 runs.
//!
//! Replay:
//!   cargo run --release --bin crashfuzz -- repro --hex 070400030002e0371b143bc63f86000211020e0209160d0300092600213300001609000a0f07151d000130091b000110020e031c011a141a18820f141d0014341c0009002f331c030e061609020e0616100109091909091102002e030e0600030d1003090909110007091400021a000000 --target interleave

use harness::regression::{assert_passes, failpoint};
use harness::scenario::{Scenario, Step, SwarmConfig};

#[test]
fn regression_pitr_base_strictly_older() {
    let scenario = Scenario {
        config: SwarmConfig {
            fanout: 9,
            copy_batch_docs: 5,
            catchup_rounds: 0,
            pitr_granularity_secs: Some(2),
            pitr_max_age_secs: 0,
            crash_mode: Some(2),
            disk_seed: 9673668481657812960,
            windows: false,
            strict_recovery: false,
            tear_unsynced: false,
            process_crashes: false,
            probe_liveness: true,
            fsync_revert: false,
            no_psow: 0,
            large: false,
            long_keys: false,
        },
        steps: vec![
            // #0 compact step x3
            Step::CompactStep { n: 3 },
            // #1 tick +3s
            Step::Tick { secs: 3 },
            // #2 flush
            Step::Flush,
            // #3 arm crash at compact::copy_step hit #4
            Step::CrashAtFailpoint {
                point: failpoint("compact::copy_step"),
                nth: 4,
            },
            // #4 set k09 (38 bytes)
            Step::Set { key: 9, len: 38 },
            // #5 set k33 (51 bytes)
            Step::Set { key: 33, len: 51 },
            // #6 set k00 (22 bytes)
            Step::Set { key: 0, len: 22 },
            // #7 flush
            Step::Flush,
            // #8 set k10 (15 bytes)
            Step::Set { key: 10, len: 15 },
            // #9 delete k21
            Step::Delete { key: 21 },
            // #10 check
            Step::Check,
            // #11 set k01 (48 bytes)
            Step::Set { key: 1, len: 48 },
            // #12 flush
            Step::Flush,
            // #13 arm crash in recovery at write call #2
            Step::CrashInRecovery {
                kind: 0,
                nth: 2,
                repeat: 1,
            },
            // #14 compact start (purge 2/3)
            Step::CompactStart { purge: 2 },
            // #15 tick +4s
            Step::Tick { secs: 4 },
            // #16 EIO on fsync #1
            Step::Eio { sync: true, nth: 1 },
            // #17 reopen (process restart)
            Step::Reopen,
            // #18 compact finish
            Step::CompactFinish,
            // #19 reopen (process restart)
            Step::Reopen,
            // #20 arm crash after write call #16
            Step::CrashAtIo {
                kind: 0,
                nth: 16,
                after: true,
            },
            // #21 compact finish
            Step::CompactFinish,
            // #22 check
            Step::Check,
            // #23 set k20 (52 bytes)
            Step::Set { key: 20, len: 52 },
            // #24 EIO on write #1
            Step::Eio {
                sync: false,
                nth: 1,
            },
            // #25 flush
            Step::Flush,
            // #26 set k47 (51 bytes)
            Step::Set { key: 47, len: 51 },
            // #27 EIO on fsync #2
            Step::Eio { sync: true, nth: 2 },
            // #28 tick +7s
            Step::Tick { secs: 7 },
            // #29 arm crash at recovery::after_cleanup hit #3
            Step::CrashAtFailpoint {
                point: failpoint("recovery::after_cleanup"),
                nth: 3,
            },
            // #30 tick +7s
            Step::Tick { secs: 7 },
            // #31 arm crash at compact::catchup_unlocked hit #2
            Step::CrashAtFailpoint {
                point: failpoint("compact::catchup_unlocked"),
                nth: 2,
            },
            // #32 flush
            Step::Flush,
            // #33 flush
            Step::Flush,
            // #34 crash now
            Step::CrashNow,
            // #35 flush
            Step::Flush,
            // #36 flush
            Step::Flush,
            // #37 compact step x3
            Step::CompactStep { n: 3 },
            // #38 set k46 (3 bytes)
            Step::Set { key: 46, len: 3 },
            // #39 tick +7s
            Step::Tick { secs: 7 },
            // #40 set k03 (13 bytes)
            Step::Set { key: 3, len: 13 },
            // #41 compact start (purge 3/3)
            Step::CompactStart { purge: 3 },
            // #42 flush
            Step::Flush,
            // #43 flush
            Step::Flush,
            // #44 flush
            Step::Flush,
            // #45 compact step x1
            Step::CompactStep { n: 1 },
            // #46 delete k09
            Step::Delete { key: 9 },
            // #47 compact finish
            Step::CompactFinish,
            // #48 set k02 (26 bytes)
            Step::Set { key: 2, len: 26 },
            // #49 set k00 (0 bytes)
            Step::Set { key: 0, len: 0 },
        ],
    };
    assert_passes(&scenario);
}
