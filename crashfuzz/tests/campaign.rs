//! `crashfuzz campaign`: its triage and report on a prepared campaign
//! directory (a canary's explorer artifact and a libFuzzer timeout that does
//! not reproduce), and its bad usage. The fuzzing itself needs cargo-fuzz
//! and the nightly toolchain: `ci/nightly.sh` runs it.

use crashfuzz::campaign::{collect_artifacts, triage};
use crashfuzz::report::{parse_key_values, write, ReportArgs};
use engine::mutants::Mutant;
use harness::explore::{explore, write_artifact, ExploreOptions};
use harness::failure::unreproduced_signature;
use harness::targets::{run_target, write_seed_corpus, Target};
use harness::RunOptions;
use std::path::Path;
use std::process::Command;

const CANARY: Mutant = Mutant::HeaderBeforeDataSync;

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_planted_canary_artifact_is_triaged_minimized_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    // What the fuzzing half of a canary campaign leaves: every target's log,
    // campaign.txt, and a timeout libFuzzer saved that replays fine.
    std::fs::create_dir_all(out.join("logs")).unwrap();
    for target in Target::ALL {
        std::fs::write(
            out.join("logs").join(format!("fuzz-{target}.log")),
            data("libfuzzer-fork.log"),
        )
        .unwrap();
    }
    std::fs::write(
        out.join("campaign.txt"),
        "date=2025-01-02\nbudget_secs=300\njobs=2\nmutant=header-before-data-sync\n",
    )
    .unwrap();
    let timeouts = out.join("artifacts/crash_ops");
    write_seed_corpus(Target::CrashOps, &timeouts, 5, 1).unwrap();
    std::fs::rename(timeouts.join("seed-000"), timeouts.join("timeout-0123")).unwrap();

    // The explorer finds the seeded bug.
    let found = explore(&ExploreOptions {
        seed: 1,
        iterations: Some(50_000),
        jobs: 1,
        mutant: Some(CANARY),
        ..ExploreOptions::default()
    })
    .failure
    .expect("the explorer finds the canary");
    let sig = found.failure.signature();
    write_artifact(&out.join("explore/artifacts"), &found.bytes, &found.failure).unwrap();

    let artifacts = collect_artifacts(out, &Target::ALL);
    assert_eq!(artifacts.len(), 2, "the explorer's .txt is not an artifact");
    let signatures = triage(out, &Target::ALL, Some(CANARY)).unwrap();
    let timeout_sig = unreproduced_signature(Target::CrashOps, "timeout");
    let mut want = vec![sig.clone(), timeout_sig.clone()];
    want.sort();
    assert_eq!(signatures, want);

    // The canary: filed under the signature repro prints, minimized, with
    // its regression test.
    let dir = out.join("triage").join(&sig);
    let meta = parse_key_values(&read(&dir.join("meta.txt")));
    for key in [
        "signature",
        "target",
        "targets",
        "failpoints",
        "artifacts",
        "representative",
        "without_bug",
        "test",
        "replay",
    ] {
        assert!(meta.contains_key(key), "meta.txt has no {key}: {meta:?}");
    }
    assert_eq!(meta["signature"], sig);
    assert_eq!(meta["target"], "interleave");
    assert_eq!(meta["targets"], "explorer");
    assert_eq!(meta["artifacts"], "1");
    assert_eq!(meta["without_bug"], "passes");
    assert_eq!(
        meta["replay"],
        format!(
            "cargo run --release --bin crashfuzz -- repro triage/{sig}/minimized \
             --target interleave --mutant header-before-data-sync"
        )
    );
    let repro: serde_json::Value = serde_json::from_str(&read(&dir.join("repro.json"))).unwrap();
    assert_eq!(repro["failure"]["signature"], sig.as_str());
    assert!(read(&dir.join("repro.txt")).contains(&format!("(signature {sig})")));
    let minimized = std::fs::read(dir.join("minimized")).unwrap();
    assert!(minimized.len() <= found.bytes.len());
    let with_bug = RunOptions {
        mutant: Some(CANARY),
        ..RunOptions::default()
    };
    let again = run_target(Target::Interleave, &minimized, &with_bug).unwrap_err();
    assert_eq!(
        (again.kind, again.check),
        (found.failure.kind, found.failure.check)
    );
    assert!(run_target(Target::Interleave, &minimized, &RunOptions::default()).is_ok());
    let test = read(&dir.join(&meta["test"]));
    assert!(meta["test"].starts_with("regression_") && meta["test"].ends_with(".rs"));
    assert!(test.contains("#[test]"), "{test}");
    let minimize: serde_json::Value =
        serde_json::from_str(&read(&dir.join("minimize.json"))).unwrap();
    assert_eq!(minimize["failure"]["kind"], found.failure.kind.name());

    // The timeout: one signature per target and libFuzzer kind.
    let meta = parse_key_values(&read(
        &out.join("triage").join(&timeout_sig).join("meta.txt"),
    ));
    assert_eq!(meta["kind"], "unreproduced-timeout");
    assert_eq!(meta["targets"], "crash_ops");
    assert!(!meta.contains_key("test"));

    // The report: the canary found; the timeout is a new unique crash until
    // it is known.
    let mut args = ReportArgs {
        campaign: out.to_path_buf(),
        out: None,
        known: None,
        history: None,
        no_replay: true,
        strict_failpoints: false,
    };
    let report = write(&args).unwrap();
    assert!(!report.ok);
    assert_eq!(
        report.failures,
        vec![format!(
            "new unique crash {timeout_sig}: unreproduced-timeout []"
        )],
    );
    let canary = report.crashes.iter().find(|c| c.signature == sig).unwrap();
    assert!(canary.reproduced && canary.is_canary(&report));
    assert_eq!(
        canary.steps_after.map(|s| s as usize),
        Some(again.scenario.steps.len())
    );
    let known = out.join("known.txt");
    std::fs::write(&known, format!("{timeout_sig} # a timeout\n")).unwrap();
    args.known = Some(known);
    let report = write(&args).unwrap();
    assert!(report.ok, "{:?}", report.failures);
    assert!(out.join("report.md").is_file() && out.join("report.json").is_file());
}

#[test]
fn bad_usage_exits_2_with_a_message() {
    for (argv, needle) in [
        (&["--frobnicate"][..], "unexpected argument"),
        (&["--budget", "ten"], "invalid value"),
        (&["--jobs", "0"], "--jobs must be at least 1"),
        (&["--targets", "crash_ops nope"], "unknown fuzz target"),
        (&["--mutant", "no-such-bug"], "unknown seeded bug"),
        (
            &["--canary", "--mutant", "seqno-reused"],
            "cannot be used with",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_crashfuzz"))
            .arg("campaign")
            .args(argv)
            .args(["--cache", "/nonexistent/never-written", "--out"])
            .arg(std::env::temp_dir().join("crashfuzz-never-written"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{argv:?}: {stderr}");
        assert!(stderr.contains(needle), "{argv:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{argv:?}: {stderr}");
    }
    assert!(!std::env::temp_dir()
        .join("crashfuzz-never-written")
        .exists());
}
