//! The minimizer and the regression tests it writes, tested on the canary:
//! the seeded bug "header written before the data fsync" must be found by a
//! fixed-seed exploration and minimized to a short, replayable scenario.
//!
//! `CRASHFUZZ_BLESS=1 cargo test -p harness --test minimize` rewrites
//! `tests/regression_canary.rs` from the canary's minimized failure.

use engine::mutants::Mutant;
use harness::explore::{explore, ExploreOptions};
use harness::generate::{scenario, Size};
use harness::minimize::{
    minimize, minimize_target, minimize_with_budget, regression_test, Minimized,
};
use harness::scenario::{Scenario, Step, SwarmConfig};
use harness::targets::{run_target, Target};
use harness::{run, RunOptions};
use std::path::Path;
use std::sync::OnceLock;

/// The canary's seeded bug.
const CANARY: Mutant = Mutant::HeaderBeforeDataSync;
/// The exploration seed that finds it (any seed does, given time).
const CANARY_SEED: u64 = 4;
/// Scenarios the exploration may spend.
const CANARY_BUDGET: u64 = 50_000;
/// The longest minimized repro allowed (issue 7's canary requirement).
const MAX_MIN_STEPS: usize = 12;

fn with_mutant(mutant: Mutant) -> RunOptions {
    RunOptions {
        mutant: Some(mutant),
        ..RunOptions::default()
    }
}

/// The canary's raw and minimized failure, computed once per test binary.
fn canary() -> &'static (Scenario, Minimized) {
    static CANARY_RUN: OnceLock<(Scenario, Minimized)> = OnceLock::new();
    CANARY_RUN.get_or_init(find_and_minimize_canary)
}

/// Explore with the canary on and minimize what it finds.
fn find_and_minimize_canary() -> (Scenario, Minimized) {
    let report = explore(&ExploreOptions {
        seed: CANARY_SEED,
        time: None,
        iterations: Some(CANARY_BUDGET),
        jobs: 1,
        size: Size::Default,
        mutant: Some(CANARY),
        progress: None,
        ..ExploreOptions::default()
    });
    let found = report.failure.unwrap_or_else(|| {
        panic!("the canary {CANARY} escaped {CANARY_BUDGET} scenarios of seed {CANARY_SEED}")
    });
    eprintln!(
        "canary found at scenario {} after {} scenarios: {} [{}]",
        found.index,
        found.after_iterations,
        found.failure.kind,
        found.failure.invariant()
    );
    let raw = Scenario::from_bytes(&found.bytes);
    let min = minimize(&raw, &with_mutant(CANARY)).expect("the found scenario fails");
    eprintln!(
        "minimized: steps {} -> {} in {} runs",
        min.steps_before, min.steps_after, min.runs
    );
    (raw, min)
}

#[test]
fn canary_is_found_and_minimized_to_a_short_replayable_repro() {
    let (raw, min) = canary();
    let original = run(raw, &with_mutant(CANARY)).expect_err("the artifact fails");
    assert_eq!(min.failure.kind, original.kind);
    assert_eq!(min.failure.invariant(), original.invariant());
    assert_eq!(min.steps_before, raw.steps.len());
    assert_eq!(min.steps_after, min.scenario.steps.len());
    assert!(
        min.steps_after <= MAX_MIN_STEPS,
        "minimized to {} steps, want at most {MAX_MIN_STEPS}",
        min.steps_after
    );
    // The minimized artifact is the scenario's bytes: read back, it is the
    // same scenario and fails the same way.
    let read_back = Scenario::from_bytes(&min.scenario.to_bytes());
    assert_eq!(read_back, min.scenario);
    let again = run(&read_back, &with_mutant(CANARY)).expect_err("the repro fails");
    assert_eq!(again.kind, original.kind);
    assert_eq!(again.invariant(), original.invariant());
    // A seeded bug, not a real one: the correct engine passes it.
    if let Err(f) = run(&min.scenario, &RunOptions::default()) {
        panic!("the minimized canary fails on the correct engine:\n{f}");
    }
    let test = regression_test(min, "regression_canary");
    if std::env::var_os("CRASHFUZZ_BLESS").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regression_canary.rs");
        std::fs::write(&path, &test).expect("write the blessed regression test");
    }
    assert!(test.contains("fn regression_canary() {"));
    assert!(test.contains(
        "CRASHFUZZ_MUTANT=header-before-data-sync cargo test -p harness --test regression_canary"
    ));
    assert!(test.contains(&min.failure.invariant()));
    assert!(test.contains(&format!("--hex {}", hex::encode(min.scenario.to_bytes()))));
    assert!(test.contains("    assert_passes(&scenario);\n"));
    assert_eq!(test.matches("\n        steps: vec![").count(), 1);
    assert_eq!(
        test.matches("            // #").count(),
        min.steps_after,
        "one commented line per step"
    );
}

#[test]
fn minimization_is_deterministic() {
    let (_, first) = canary();
    let (_, second) = find_and_minimize_canary();
    assert_eq!(first.scenario, second.scenario);
    assert_eq!(first.runs, second.runs);
}

#[test]
fn a_passing_scenario_is_not_minimized() {
    assert!(minimize(&Scenario::default(), &RunOptions::default()).is_none());
    let s = scenario(1, 0, Size::Default);
    assert!(run(&s, &RunOptions::default()).is_ok());
    assert!(minimize(&s, &RunOptions::default()).is_none());
}

#[test]
fn the_run_budget_bounds_minimization() {
    let (raw, _) = canary();
    let budget = 10;
    let min =
        minimize_with_budget(Target::Interleave, raw, &with_mutant(CANARY), budget).expect("fails");
    // The budget plus the final check that the artifact reproduces.
    assert!(min.runs <= budget + 1, "{} runs", min.runs);
    assert!(min.steps_after <= min.steps_before);
    let again = run(&min.scenario, &with_mutant(CANARY)).expect_err("still fails");
    assert_eq!(again.invariant(), min.failure.invariant());
}

#[test]
fn a_regression_test_spells_out_every_step_kind() {
    let steps = vec![
        Step::Set { key: 47, len: 63 },
        Step::Delete { key: 1 },
        Step::Flush,
        Step::Tick { secs: 8 },
        Step::CompactStart { purge: 3 },
        Step::CompactStep { n: 4 },
        Step::CompactFinish,
        Step::CompactAbort,
        Step::CrashAtFailpoint { point: 0, nth: 4 },
        Step::CrashAtIo {
            kind: 4,
            nth: 16,
            after: true,
        },
        Step::CrashNow,
        Step::Reopen,
        Step::CrashInRecovery {
            kind: 1,
            nth: 2,
            repeat: 2,
        },
        Step::Eio { sync: true, nth: 3 },
        Step::Check,
        Step::SnapshotCheck { back: 31 },
    ];
    let s = Scenario {
        config: SwarmConfig {
            pitr_granularity_secs: Some(3),
            crash_mode: None,
            disk_seed: u64::MAX,
            ..SwarmConfig::default()
        },
        steps,
    }
    .normalized();
    let mut failure = harness::Failure::new(
        harness::FailureKind::Divergence,
        harness::failure::HarnessCheck::SnapshotAt,
        "first line\nsecond line".into(),
        &s,
    );
    failure.step = 3;
    failure.failpoint = Some("flush::before_header_sync".into());
    let min = Minimized {
        scenario: s.clone(),
        failure: Box::new(failure),
        steps_before: 40,
        steps_after: s.steps.len(),
        runs: 7,
        target: Target::Interleave,
    };
    let test = regression_test(&min, "0-every step");
    assert!(test.contains("fn regression_0_every_step() {"));
    assert!(test.contains("//!   first line\n"));
    assert!(!test.contains("second line"));
    assert!(test.contains("Minimized from 40 to 16 steps in 7 runs."));
    assert!(test.contains("pitr_granularity_secs: Some(3),"));
    assert!(test.contains("crash_mode: None,"));
    assert!(test.contains(&format!("disk_seed: {},", u64::MAX)));
    assert!(test.contains("tear_unsynced: false,"));
    assert!(test.contains(&format!(
        "point: failpoint({:?}),",
        harness::scenario::failpoint_name(0)
    )));
    for name in [
        "Set { key: 47, len: 63 }",
        "Delete { key: 1 }",
        "Flush,",
        "Tick { secs: 8 }",
        "CompactStart { purge: 3 }",
        "CompactStep { n: 4 }",
        "CompactFinish,",
        "CompactAbort,",
        "CrashAtFailpoint {",
        "CrashAtIo {",
        "CrashNow,",
        "Reopen,",
        "CrashInRecovery {\n                kind: 1,\n                nth: 2,\n                repeat: 2,",
        "Eio { sync: true, nth: 3 }",
        "Check,",
        "SnapshotCheck { back: 31 }",
    ] {
        assert!(test.contains(&format!("Step::{name}")), "{name} missing");
    }
    // The failpoint helper finds what the catalog numbers.
    assert_eq!(
        harness::regression::failpoint(harness::scenario::failpoint_name(5)),
        5
    );
}

#[test]
fn a_fuzz_target_artifact_is_minimized_as_the_target_reads_it() {
    // The first generated input that the crash_ops target (compaction
    // steps dropped) fails on with the canary on: the bug is in the flush.
    let target = Target::CrashOps;
    let (narrowed, original) = (0..CANARY_BUDGET)
        .find_map(|i| {
            let s = target.scenario(&harness::generate::scenario_bytes(
                CANARY_SEED,
                i,
                Size::Default,
            ));
            run_target(target, &s.to_bytes(), &with_mutant(CANARY))
                .err()
                .map(|f| (s, f))
        })
        .expect("crash_ops catches the canary");
    let min = minimize_target(target, &narrowed, &with_mutant(CANARY)).expect("fails");
    assert_eq!(min.target, target);
    assert_eq!(min.failure.kind, original.kind);
    assert_eq!(min.failure.invariant(), original.invariant());
    assert!(
        min.steps_after <= MAX_MIN_STEPS,
        "{} steps",
        min.steps_after
    );
    let bytes = min.scenario.to_bytes();
    assert_eq!(target.scenario(&bytes), min.scenario);
    let again = run_target(target, &bytes, &with_mutant(CANARY)).expect_err("still fails");
    assert_eq!(again.invariant(), original.invariant());
    let test = regression_test(&min, "crash_ops_canary");
    assert!(test.contains("use harness::targets::Target;\n"));
    assert!(test.contains("    assert_target_passes(Target::CrashOps, &scenario);\n"));
    assert!(test.contains(" --target crash_ops --mutant header-before-data-sync\n"));
}

#[test]
fn every_step_kind_reads_back_from_its_bytes() {
    // The minimizer keeps only candidates that read back from their bytes,
    // so a step kind that does not is never minimized.
    for kind in 0..5 {
        for after in [false, true] {
            let s = Scenario {
                config: SwarmConfig::default(),
                steps: vec![Step::CrashAtIo {
                    kind,
                    nth: 16,
                    after,
                }],
            };
            assert_eq!(Scenario::from_bytes(&s.to_bytes()), s);
        }
    }
}
