//! The `crashfuzz` binary end to end: determinism, replay commands, exit
//! codes, bad input.

use engine::mutants::Mutant;
use harness::explore::{explore, ExploreOptions};
use harness::generate::{scenario, Size};
use harness::{run, RunOptions};
use std::process::Command;

fn crashfuzz() -> Command {
    Command::new(env!("CARGO_BIN_EXE_crashfuzz"))
}

/// The same seed gives the same trace, byte for byte, run after run.
#[test]
fn same_seed_same_trace_digest() {
    let options = RunOptions {
        keep_trace: true,
        ..RunOptions::default()
    };
    let mut distinct = std::collections::BTreeSet::new();
    for i in 0..200 {
        let s = scenario(42, i, Size::Default);
        let a = run(&s, &options).expect("the correct engine passes");
        let b = run(&scenario(42, i, Size::Default), &options).expect("again");
        assert_eq!(a.trace_digest, b.trace_digest, "scenario {i} of seed 42");
        assert_eq!(a.trace, b.trace, "scenario {i} of seed 42");
        assert_eq!(a.trace_digest.len(), 64);
        distinct.insert(a.trace_digest);
    }
    // Different scenarios do different things: the digest is not constant.
    assert!(
        distinct.len() > 150,
        "only {} distinct traces",
        distinct.len()
    );
}

/// A failure's printed replay command, run as printed, reproduces the same
/// failure (kind, invariant, signature) with the kind's exit code.
#[test]
fn printed_replay_command_reproduces_the_failure() {
    let report = explore(&ExploreOptions {
        seed: 3,
        time: None,
        iterations: Some(20_000),
        jobs: 1,
        size: Size::Default,
        mutant: Some(Mutant::HeaderSyncSkipped),
        progress: None,
        ..ExploreOptions::default()
    });
    let found = report.failure.expect("the seeded bug is found");
    let command = found.failure.replay_command();
    // cargo run --release --bin crashfuzz -- repro --hex <HEX> --mutant <BUG>
    let args: Vec<&str> = command
        .split_once(" -- ")
        .expect("a cargo run command")
        .1
        .split_whitespace()
        .collect();
    assert_eq!(args[0], "repro", "{command}");
    let out = crashfuzz()
        .args(&args)
        .arg("--quiet")
        .output()
        .expect("run crashfuzz");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(found.failure.kind.exit_code()),
        "{command}\n{stdout}"
    );
    assert!(stdout.contains(&found.failure.signature()), "{stdout}");
    assert!(
        stdout.contains(&format!("[{}]", found.failure.invariant())),
        "{stdout}"
    );
}

/// `explore` on the correct engine finds nothing, exits 0, and its last
/// stdout line is the JSON summary with the documented fields.
#[test]
fn explore_json_summary() {
    let out = crashfuzz()
        .args([
            "explore",
            "--seed",
            "5",
            "--iterations",
            "300",
            "--jobs",
            "1",
            "--json",
        ])
        .output()
        .expect("run crashfuzz");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a summary line");
    let v: serde_json::Value = serde_json::from_str(last).expect("JSON");
    for field in [
        "seed",
        "iterations",
        "execs_per_sec",
        "crash_states",
        "failures",
        "failpoints_hit",
        "failpoints_total",
    ] {
        assert!(v.get(field).is_some(), "missing {field} in {last}");
    }
    assert_eq!(v["iterations"], 300);
    assert_eq!(v["failures"], 0);
    assert_eq!(v["seed"], 5);
}

/// A seeded bug found by `explore` writes an artifact that `repro` replays
/// to the same exit code, twice.
#[test]
fn explore_failure_writes_a_replayable_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let out = crashfuzz()
        .args([
            "explore",
            "--seed",
            "1",
            "--iterations",
            "5000",
            "--jobs",
            "1",
        ])
        .args(["--mutant", "seqno-reused", "--out"])
        .arg(dir.path())
        .output()
        .expect("run crashfuzz");
    let code = out.status.code();
    assert!(matches!(code, Some(3..=6)), "exit {code:?}");
    let artifact = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_none())
        .expect("an artifact");
    assert!(artifact.with_extension("txt").exists());
    for _ in 0..2 {
        let again = crashfuzz()
            .arg("repro")
            .arg(&artifact)
            .args(["--mutant", "seqno-reused", "--quiet"])
            .output()
            .unwrap();
        assert_eq!(again.status.code(), code);
    }
    // Without the bug the same artifact passes.
    let clean = crashfuzz()
        .arg("repro")
        .arg(&artifact)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(clean.status.code(), Some(0));
}

/// Bad flags and unreadable input exit 2 with a message, never a panic.
#[test]
fn bad_input_exits_2() {
    let cases: Vec<Vec<&str>> = vec![
        vec!["explore", "--jobs", "lots"],
        vec!["no-such-command"],
        vec!["repro", "/no/such/artifact"],
        vec!["repro", "--hex", "zz"],
        vec!["repro"],
        vec!["explore", "--mutant", "no-such-bug", "--iterations", "1"],
        vec!["explore", "--size", "huge", "--iterations", "1"],
        vec!["inspect", "/no/such/file.couch.1"],
        vec!["catalog", "--coverage", "/no/such/coverage"],
    ];
    for args in cases {
        let out = crashfuzz().args(&args).output().expect("run crashfuzz");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.trim().is_empty(), "{args:?} gave no message");
    }
}

/// `inspect` of a corrupt file reports instead of panicking.
#[test]
fn inspect_reports_damage() {
    let dir = tempfile::tempdir().unwrap();
    let store = engine::Store::open(
        std::sync::Arc::new(engine::StdVfs),
        dir.path(),
        "db",
        engine::Config::default(),
    )
    .unwrap();
    store.set(b"a", b"1").unwrap();
    store.flush().unwrap();
    store.set(b"b", b"2").unwrap();
    store.flush().unwrap();
    drop(store);
    let path = dir.path().join("db.couch.1");
    let ok = crashfuzz().arg("inspect").arg(&path).output().unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("2 header block(s)"));
    let mut bytes = std::fs::read(&path).unwrap();
    let last_header = (bytes.len() - 1) / 4096 * 4096;
    bytes[last_header + 12] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let bad = crashfuzz().arg("inspect").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("DAMAGED"), "{stdout}");
}

/// Run the `cargo run ... -- <args>` command a tool printed, as printed.
fn run_printed(command: &str) -> std::process::Output {
    let args: Vec<&str> = command
        .split_once(" -- ")
        .expect("a cargo run command")
        .1
        .split_whitespace()
        .collect();
    crashfuzz().args(&args).output().expect("run crashfuzz")
}

/// A `recover_corrupt` and a `pitr` finding, minimized with `--json`: the
/// printed replay command carries the target and the seeded bug, and
/// replays the same failure (same signature) as that target reads it.
#[test]
fn minimized_target_findings_replay_as_their_target() {
    use harness::generate::scenario_bytes;
    use harness::targets::{run_target, Target};
    let cases = [
        (Target::RecoverCorrupt, Mutant::TornHeaderAccepted),
        (Target::Pitr, Mutant::PitrOnlyTip),
    ];
    for (target, mutant) in cases {
        let options = RunOptions {
            mutant: Some(mutant),
            ..RunOptions::default()
        };
        let input = (0..20_000)
            .map(|i| scenario_bytes(5, i, Size::Default))
            .find(|bytes| run_target(target, bytes, &options).is_err())
            .unwrap_or_else(|| panic!("{target} never caught {mutant}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let artifact = dir.path().join("crash-input");
        std::fs::write(&artifact, &input).expect("write artifact");
        let out = crashfuzz()
            .arg("minimize")
            .arg(&artifact)
            .args([
                "--target",
                target.name(),
                "--mutant",
                mutant.name(),
                "--json",
            ])
            .output()
            .expect("run crashfuzz minimize");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let min: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("minimize --json");
        let replay = min["replay"].as_str().expect("a replay command");
        assert!(
            replay.contains(&format!("--target {}", target.name())),
            "{replay}"
        );
        assert!(
            replay.contains(&format!("--mutant {}", mutant.name())),
            "{replay}"
        );
        let again = run_printed(&format!("{replay} --json"));
        let verdict: serde_json::Value = serde_json::from_str(
            String::from_utf8_lossy(&again.stdout)
                .lines()
                .last()
                .unwrap_or(""),
        )
        .expect("repro --json");
        assert_eq!(verdict["failure"]["target"], target.name());
        assert_eq!(
            verdict["failure"]["signature"], min["failure"]["signature"],
            "{target}: {verdict}"
        );
        assert_eq!(
            again.status.code(),
            min["failure"]["exit_code"].as_i64().map(|c| c as i32)
        );
    }
}
