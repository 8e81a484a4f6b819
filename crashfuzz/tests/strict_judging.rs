//! Strict judging: every engine error must be explained by a fault the run
//! injected, liveness is strict, and a hang is a failure with a replay, not
//! a hung explorer.

use engine::mutants::Mutant;
use harness::explore::{explore, ExploreOptions, ThreadsMode};
use harness::{run, FailureKind, RunOptions};
use std::process::Command;

fn explore_with(mutant: Option<Mutant>, iterations: u64) -> harness::explore::ExploreReport {
    explore(&ExploreOptions {
        seed: 1,
        iterations: Some(iterations),
        jobs: 1,
        mutant,
        // The deterministic runner's judge: no thread schedules (they
        // find some of these bugs too, under other checks).
        threads: ThreadsMode::Off,
        ..ExploreOptions::default()
    })
}

/// Each seeded hole of the old judge is found, with the kind and invariant
/// that name it, and the failure replays to the same signature.
#[test]
fn the_four_judging_bugs_are_found_and_replay() {
    let cases = [
        (
            Mutant::FlushRejectsDuplicateKey,
            FailureKind::UnexpectedError,
            "explained-error:flush",
        ),
        (
            Mutant::CatchupGivesUp,
            FailureKind::UnexpectedError,
            "explained-error:compaction step",
        ),
        (
            Mutant::StrictRefusesCleanTail,
            FailureKind::UnexpectedError,
            "explained-error:strict-open",
        ),
        (Mutant::RecoveryScanStuck, FailureKind::Hang, "watchdog"),
    ];
    for (mutant, kind, invariant) in cases {
        let report = explore_with(Some(mutant), 5_000);
        let found = report
            .failure
            .unwrap_or_else(|| panic!("{mutant} escaped 5,000 scenarios of seed 1"));
        assert_eq!(found.failure.kind, kind, "{mutant}: {}", found.failure);
        assert_eq!(found.failure.invariant(), invariant, "{mutant}");
        let again = run(
            &found.failure.scenario,
            &RunOptions {
                mutant: Some(mutant),
                ..RunOptions::default()
            },
        )
        .expect_err("the failure replays");
        assert_eq!(again.signature(), found.failure.signature(), "{mutant}");
        // The same scenario passes on the correct engine: it is the bug,
        // not the judge, that fails it.
        run(&found.failure.scenario, &RunOptions::default())
            .unwrap_or_else(|f| panic!("{mutant}'s scenario fails the correct engine: {f}"));
    }
}

/// On the correct engine nothing is unexplained, and the counters show an
/// engine that acknowledges, compacts, and meets injected faults.
#[test]
fn correct_engine_counters_are_sane() {
    let report = explore_with(None, 1_500);
    assert!(report.failure.is_none(), "{:?}", report.failure);
    let s = &report.sanity;
    assert_eq!(s.unexplained_errors, 0);
    assert!(s.commits_acked > 1_500, "{s:?}");
    assert!(s.compactions_started > 100, "{s:?}");
    assert!(s.compactions_finished > 50, "{s:?}");
    assert!(s.compactions_aborted_requested > 0, "{s:?}");
    assert!(s.compactions_aborted_fault > 0, "{s:?}");
    assert!(s.flush_errors_injected > 0, "{s:?}");
    assert!(s.compaction_start_refused_running > 0, "{s:?}");
    assert!(s.compaction_start_refused_empty > 0, "{s:?}");
    assert!(s.strict_refusals_damage > 0, "{s:?}");
    assert!(s.max_calls_per_step > 0, "{s:?}");
    assert!(
        s.max_calls_per_step < harness::watch::DEFAULT_CALL_BUDGET / 10,
        "the busiest step ({} disk calls) is too close to the watchdog's budget",
        s.max_calls_per_step
    );
    let json = report.to_json();
    assert_eq!(json["sanity"]["unexplained_errors"], 0);
    assert!(json["sanity"]["commits_acked"].as_u64().unwrap_or(0) > 0);
}

/// An engine that loops forever: `explore --jobs 2` exits 5 with an
/// artifact, and `repro` of the artifact shows the hang with exit 5.
#[test]
fn a_looping_engine_is_a_hang_with_a_replayable_artifact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_crashfuzz"))
        .args(["explore", "--seed", "1", "--jobs", "2", "--time", "120"])
        .args(["--mutant", "recovery-scan-stuck", "--json", "--out"])
        .arg(dir.path())
        .output()
        .expect("run crashfuzz");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("JSON summary");
    assert_eq!(json["failure"]["kind"], "hang");
    assert_eq!(json["failure"]["invariant"], "watchdog");
    assert!(json["peak_rss_mb"].as_u64().unwrap_or(u64::MAX) < 512);
    let artifact = std::fs::read_dir(dir.path())
        .expect("artifact dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_none())
        .expect("an artifact");
    let repro = Command::new(env!("CARGO_BIN_EXE_crashfuzz"))
        .arg("repro")
        .arg(&artifact)
        .args(["--mutant", "recovery-scan-stuck", "--quiet"])
        .output()
        .expect("run crashfuzz repro");
    assert_eq!(repro.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&repro.stdout).contains("hang [watchdog]"));
}
