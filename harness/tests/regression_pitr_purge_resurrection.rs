//! Regression test `regression_pitr_purge_resurrection`, written by `crashfuzz minimize`.
//!
//! What broke: divergence [no-resurrection] at step 0:
//!   A PiTR compaction purged a tombstone while an older retained header still held the live version; the next compaction replayed from that header by changes-since, which cannot see a purged delete: the key came back to life. Replays now remove keys purged between two source headers. Found by `crashfuzz explore --seed 7`, scenario 60063.
//!
//! How it was found: crash-consistency exploration (signature 90c75ede5d2bdcba),
//! on the engine as it was then. It failed until the bug was fixed
//! and must pass from then on.
//! Minimized from 49 to 49 steps in 1 runs.
//!
//! Replay:
//!   cargo run --release --bin crashfuzz -- repro --hex 06010005090602ab7ae4d7f15417060314002a2d00110700010200240f1d1909001915071c00033c00130d160a021900001e188203091605020700072918000011021d1f130e0500140a002b1d001915141c041615010900202009071010031d1409002a2300093700280e100214090e031b00001b0102160500 --target interleave

use harness::regression::{assert_passes, failpoint};
use harness::scenario::{Scenario, Step, SwarmConfig};

#[test]
fn regression_pitr_purge_resurrection() {
    let scenario = Scenario {
        config: SwarmConfig {
            fanout: 8,
            copy_batch_docs: 2,
            catchup_rounds: 0,
            pitr_granularity_secs: Some(3),
            pitr_max_age_secs: 9,
            crash_mode: Some(6),
            disk_seed: 1681234470469544706,
            windows: false,
            strict_recovery: true,
            tear_unsynced: true,
            process_crashes: true,
            probe_liveness: true,
            fsync_revert: false,
            no_psow: 0,
            large: false,
            long_keys: false,
        },
        steps: vec![
            // #0 compact finish
            Step::CompactFinish,
            // #1 set k42 (45 bytes)
            Step::Set { key: 42, len: 45 },
            // #2 set k17 (7 bytes)
            Step::Set { key: 17, len: 7 },
            // #3 set k01 (2 bytes)
            Step::Set { key: 1, len: 2 },
            // #4 set k36 (15 bytes)
            Step::Set { key: 36, len: 15 },
            // #5 check
            Step::Check,
            // #6 crash now
            Step::CrashNow,
            // #7 flush
            Step::Flush,
            // #8 set k25 (21 bytes)
            Step::Set { key: 25, len: 21 },
            // #9 delete k28
            Step::Delete { key: 28 },
            // #10 set k03 (60 bytes)
            Step::Set { key: 3, len: 60 },
            // #11 set k19 (13 bytes)
            Step::Set { key: 19, len: 13 },
            // #12 arm crash at recovery::before_truncate hit #3
            Step::CrashAtFailpoint {
                point: failpoint("recovery::before_truncate"),
                nth: 3,
            },
            // #13 crash now
            Step::CrashNow,
            // #14 set k00 (30 bytes)
            Step::Set { key: 0, len: 30 },
            // #15 arm crash after write call #4
            Step::CrashAtIo {
                kind: 0,
                nth: 4,
                after: true,
            },
            // #16 flush
            Step::Flush,
            // #17 arm crash at flush::after_header hit #3
            Step::CrashAtFailpoint {
                point: failpoint("flush::after_header"),
                nth: 3,
            },
            // #18 delete k00
            Step::Delete { key: 0 },
            // #19 delete k41
            Step::Delete { key: 41 },
            // #20 arm crash before write call #1
            Step::CrashAtIo {
                kind: 0,
                nth: 1,
                after: false,
            },
            // #21 compact step x3
            Step::CompactStep { n: 3 },
            // #22 check
            Step::Check,
            // #23 snapshot check now-19s
            Step::SnapshotCheck { back: 19 },
            // #24 tick +6s
            Step::Tick { secs: 6 },
            // #25 set k20 (10 bytes)
            Step::Set { key: 20, len: 10 },
            // #26 set k43 (29 bytes)
            Step::Set { key: 43, len: 29 },
            // #27 set k25 (21 bytes)
            Step::Set { key: 25, len: 21 },
            // #28 compact finish
            Step::CompactFinish,
            // #29 EIO on write #3
            Step::Eio {
                sync: false,
                nth: 3,
            },
            // #30 arm crash at compact::before_rename hit #2
            Step::CrashAtFailpoint {
                point: failpoint("compact::before_rename"),
                nth: 2,
            },
            // #31 flush
            Step::Flush,
            // #32 set k32 (32 bytes)
            Step::Set { key: 32, len: 32 },
            // #33 flush
            Step::Flush,
            // #34 delete k16
            Step::Delete { key: 16 },
            // #35 compact start (purge 3/3)
            Step::CompactStart { purge: 3 },
            // #36 check
            Step::Check,
            // #37 compact finish
            Step::CompactFinish,
            // #38 flush
            Step::Flush,
            // #39 set k42 (35 bytes)
            Step::Set { key: 42, len: 35 },
            // #40 set k09 (55 bytes)
            Step::Set { key: 9, len: 55 },
            // #41 set k40 (14 bytes)
            Step::Set { key: 40, len: 14 },
            // #42 compact start (purge 2/3)
            Step::CompactStart { purge: 2 },
            // #43 compact finish
            Step::CompactFinish,
            // #44 flush
            Step::Flush,
            // #45 tick +4s
            Step::Tick { secs: 4 },
            // #46 arm crash in recovery at write call #1
            Step::CrashInRecovery {
                kind: 0,
                nth: 1,
                repeat: 1,
            },
            // #47 arm crash in recovery at sync call #3
            Step::CrashInRecovery {
                kind: 1,
                nth: 3,
                repeat: 1,
            },
            // #48 arm crash at flush::after_header hit #1
            Step::CrashAtFailpoint {
                point: failpoint("flush::after_header"),
                nth: 1,
            },
        ],
    };
    assert_passes(&scenario);
}
