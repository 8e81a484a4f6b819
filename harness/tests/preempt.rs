//! Preemption inside a compaction step (issue 18): a `Preempt` step pauses
//! the next compaction step at a failpoint or a disk call, the steps after it
//! run while it is paused (writers, the flusher, readers, a second compaction
//! start, a crash), and then it resumes. Deterministic: only one of the two
//! threads runs at a time.

use harness::regression::failpoint;
use harness::runner::{run, RunOptions};
use harness::scenario::{pause_point, pause_points, Scenario, Step, SwarmConfig};

fn config() -> SwarmConfig {
    SwarmConfig {
        fanout: 3,
        catchup_rounds: 0,
        disk_seed: 7,
        ..SwarmConfig::default()
    }
}

/// A store with a few commits, a compaction started and copied, then the
/// step that takes the store lock preempted at `point` while `during` runs.
fn scenario(point: &str, during: Vec<Step>) -> Scenario {
    let mut steps = vec![
        Step::Set { key: 1, len: 8 },
        Step::Set { key: 2, len: 8 },
        Step::Flush,
        Step::CompactStart { purge: 0 },
        Step::CompactStep { n: 1 },
        Step::Preempt {
            point: failpoint(point),
            nth: 1,
            steps: during.len() as u8,
        },
        Step::CompactStep { n: 1 },
    ];
    steps.extend(during);
    steps.extend([
        Step::CompactFinish,
        Step::Check,
        Step::Read {
            kind: 0,
            a: 3,
            b: 0,
        },
    ]);
    Scenario {
        config: config(),
        steps,
    }
}

fn traced() -> RunOptions {
    RunOptions {
        keep_trace: true,
        ..RunOptions::default()
    }
}

#[test]
fn pause_points_read_back_and_name_every_failpoint_and_call_kind() {
    let names: Vec<String> = (0..pause_points())
        .map(|i| pause_point(i).to_string())
        .collect();
    assert!(names.contains(&"compact::before_store_lock".to_string()));
    assert!(names.contains(&"a Rename call".to_string()));
    for point in 0..pause_points() {
        let s = Scenario {
            config: config(),
            steps: vec![Step::Preempt {
                point,
                nth: 3,
                steps: 2,
            }],
        };
        assert_eq!(Scenario::from_bytes(&s.to_bytes()), s);
    }
}

/// A second compaction start ends the pause: it runs after the step.
#[test]
fn a_second_compaction_start_waits_for_the_paused_step() {
    let s = scenario(
        "compact::catchup_locked",
        vec![
            Step::Set { key: 3, len: 9 },
            Step::CompactStart { purge: 0 },
        ],
    );
    let outcome = run(&s, &traced()).unwrap_or_else(|f| panic!("{f}"));
    let trace = outcome.trace.join("\n");
    assert!(
        trace.contains("#7 set k03 (9 bytes), while the compactor"),
        "{trace}"
    );
    assert!(
        trace.lines().any(|l| l == "#8 compact start (purge 0/3)"),
        "{trace}"
    );
}

/// A writer and the flusher commit while the compactor is paused right
/// before it takes the store lock: the final round must replay that commit.
#[test]
fn a_flush_before_the_store_lock_is_caught_up() {
    let s = scenario(
        "compact::before_store_lock",
        vec![Step::Set { key: 3, len: 9 }, Step::Flush],
    );
    let outcome = run(&s, &traced()).unwrap_or_else(|f| panic!("{f}"));
    let trace = outcome.trace.join("\n");
    assert!(
        trace.contains("the compactor pauses at compact::before_store_lock"),
        "{trace}"
    );
    assert!(
        trace.contains("#8 flush, while the compactor is paused at compact::before_store_lock"),
        "{trace}"
    );
    assert!(trace.contains("the compactor resumes"), "{trace}");
}

/// Paused inside the locked final round, a flush gets `Busy`, as the model
/// allows; the mutation stays queued and commits after the switch.
#[test]
fn a_flush_during_the_locked_round_is_refused_busy() {
    let s = scenario(
        "compact::catchup_locked",
        vec![
            Step::Set { key: 3, len: 9 },
            Step::Flush,
            Step::Read {
                kind: 1,
                a: 0,
                b: 40,
            },
        ],
    );
    let outcome = run(&s, &traced()).unwrap_or_else(|f| panic!("{f}"));
    let trace = outcome.trace.join("\n");
    assert!(trace.contains("(holding the store lock)"), "{trace}");
    assert!(trace.contains("flush refused (Busy)"), "{trace}");
    assert_eq!(outcome.coverage.reach.get("busy-while-paused"), Some(&1));
}

/// A read and a crash while paused: the crash cuts the paused step.
#[test]
fn a_crash_while_paused_cuts_the_step() {
    let s = scenario(
        "compact::before_rename",
        vec![
            Step::Read {
                kind: 2,
                a: 0,
                b: 0,
            },
            Step::CrashNow,
            Step::Flush,
        ],
    );
    let outcome = run(&s, &traced()).unwrap_or_else(|f| panic!("{f}"));
    let trace = outcome.trace.join("\n");
    assert!(
        trace.contains("#7 read changes since tip*0/255, while the compactor"),
        "{trace}"
    );
    assert!(trace.contains("compaction cut by crash"), "{trace}");
    // The crash ended the pause: the flush after it ran on the reopened
    // store, not while paused.
    assert!(trace.lines().any(|l| l == "#9 flush"), "{trace}");
}

/// The check-then-act seeded bug: the final round replays up to a tip read
/// before the lock, so the commit made while paused there is lost.
#[cfg(feature = "mutants")]
#[test]
fn the_tip_read_before_the_lock_loses_the_commit() {
    use engine::mutants::Mutant;
    let s = scenario(
        "compact::before_store_lock",
        vec![Step::Set { key: 3, len: 9 }, Step::Flush],
    );
    let failure = run(
        &s,
        &RunOptions {
            mutant: Some(Mutant::CatchupTipReadBeforeLock),
            ..traced()
        },
    )
    .expect_err("the seeded bug must be found");
    assert_eq!(
        failure.kind,
        harness::failure::FailureKind::Divergence,
        "{failure}"
    );
}
