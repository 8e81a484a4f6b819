//! Crashing the real thing (issue 21): `crashfuzz stress` kills real child
//! processes running the engine on the real file system and checks every
//! reopen with the oracle; `crashfuzz replay-crashes` opens crash images
//! built from a recorded StdVfs run in fresh processes. Small bounds: a few
//! rounds, a few images.
//!
//! Verdicts never depend on timing. The driver picks random kill moments
//! (that is the tool); the tests only assert what must hold whatever the
//! moments were: no failure on the correct engine, and a failure, with its
//! exit code, for the seeded bugs. A bug is caught within a bounded number
//! of rounds because every round that acknowledges a flush after a
//! compaction (flusher-writes-old-file) or reopens a store with data
//! (seqno-reused) exposes it, and the rounds do both from the first few.

use harness::realfs::{failpoint_of_panic, parse_line, Msg};
use serde_json::Value;
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_crashfuzz");

fn crashfuzz(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(EXE);
    cmd.args(args)
        .env_remove("FAILPOINTS")
        .env_remove("CRASHFUZZ_MUTANT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run crashfuzz")
}

/// The JSON summary on the last line of stdout.
fn summary(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}):\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn stress_on_the_correct_engine_finds_nothing() {
    let out = crashfuzz(&["stress", "--seed", "11", "--rounds", "12", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let s = summary(&out);
    assert_eq!(s["rounds"], 12, "{s}");
    assert_eq!(s["failures"].as_array().map(Vec::len), Some(0), "{s}");
    assert!(s["acknowledged_commits"].as_u64() > Some(0), "{s}");
    // Every round's reopen plus the final one is checked, except rounds
    // whose child died before it could report its open.
    assert!(s["checks"].as_u64() >= Some(2), "{s}");
    let kills: u64 = s["kills"]
        .as_object()
        .map(|k| k.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    assert_eq!(kills, 12, "every round ends in a kill: {s}");
}

#[test]
fn stress_in_a_chosen_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let path_arg = path.to_string_lossy().into_owned();
    let args = [
        "stress", "--seed", "5", "--rounds", "3", "--dir", &path_arg, "--json",
    ];
    let out = crashfuzz(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let names: Vec<String> = std::fs::read_dir(&path)
        .expect("the store directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("db.couch.")),
        "{names:?}"
    );
    // A directory that already holds a store is refused (bad usage).
    let again = crashfuzz(&args, &[]);
    assert_eq!(again.status.code(), Some(2), "{}", show(&again));
}

/// Run stress with a seeded bug; it must end in a divergence (exit 3) with
/// a replay command naming the bug.
fn assert_stress_catches(bug: &str) {
    let out = crashfuzz(
        &["stress", "--seed", "1", "--rounds", "80", "--json"],
        &[("CRASHFUZZ_MUTANT", bug)],
    );
    assert_eq!(out.status.code(), Some(3), "{bug} escaped:\n{}", show(&out));
    let s = summary(&out);
    let failure = &s["failures"][0];
    assert_eq!(failure["kind"], "divergence", "{s}");
    let replay = failure["replay"].as_str().unwrap_or_default();
    assert!(
        replay.contains(&format!("CRASHFUZZ_MUTANT={bug}")) && replay.contains("--seed 1"),
        "{replay}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("replay: "), "{stderr}");
}

#[test]
fn stress_catches_the_flusher_left_on_the_old_file() {
    assert_stress_catches("flusher-writes-old-file");
}

#[test]
fn stress_catches_reused_seqnos() {
    assert_stress_catches("seqno-reused");
}

#[test]
fn failpoints_from_the_environment_reach_the_children() {
    // The documented example: every child that gets to a compaction's
    // rename dies there; the driver reopens and checks as for any kill.
    let out = crashfuzz(
        &["stress", "--seed", "3", "--rounds", "5", "--json"],
        &[("FAILPOINTS", "compact::before_rename=panic")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let s = summary(&out);
    assert_eq!(s["rounds"], 5, "{s}");
    let used = s["failpoints_used"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        used.keys().all(|k| k == "compact::before_rename"),
        "only the user's failpoint may kill: {s}"
    );
    assert!(
        s["kills"].get("failpoint").is_none(),
        "the driver chooses no kill points of its own under FAILPOINTS: {s}"
    );
}

#[test]
fn a_bad_failpoints_value_is_bad_usage() {
    for bad in [
        "compact::before_rename=explode",
        "no-such-point=panic",
        "novalue",
    ] {
        let out = crashfuzz(&["stress", "--rounds", "1"], &[("FAILPOINTS", bad)]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "FAILPOINTS={bad}: {}",
            show(&out)
        );
    }
}

#[test]
fn crash_images_of_the_correct_engine_all_recover() {
    let out = crashfuzz(
        &[
            "replay-crashes",
            "--seed",
            "1",
            "--max-images",
            "24",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let s = summary(&out);
    assert!(s["images"].as_u64() >= Some(12), "{s}");
    assert!(s["acknowledged_flushes"].as_u64() > Some(0), "{s}");
    assert_eq!(s["failures"].as_array().map(Vec::len), Some(0), "{s}");
}

#[test]
fn crash_images_catch_a_header_made_durable_before_its_data() {
    let out = crashfuzz(
        &[
            "replay-crashes",
            "--seed",
            "1",
            "--max-images",
            "60",
            "--json",
        ],
        &[("CRASHFUZZ_MUTANT", "header-before-data-sync")],
    );
    assert_eq!(out.status.code(), Some(3), "escaped:\n{}", show(&out));
    let s = summary(&out);
    assert_eq!(s["failures"][0]["kind"], "divergence", "{s}");
}

#[test]
fn a_bad_pipe_line_is_an_error_not_a_panic() {
    assert!(
        parse_line(b"{\"t\":\"flushed\",\"update_seq\":3,\"timestamp\":1,\"rev\":1}\n").is_ok()
    );
    for bad in [
        &b"not json\n"[..],
        b"{\"t\":\"flushed\"}\n",
        b"{\"t\":\"no_such_message\"}\n",
        b"\xff\xfe\n",
        b"",
    ] {
        assert!(parse_line(bad).is_err(), "{bad:?} parsed");
    }
    let msg = parse_line(br#"{"t":"died","point":"flush::after_header","message":"x"}"#)
        .expect("a died line");
    assert!(matches!(msg, Msg::Died { point: Some(p), .. } if p == "flush::after_header"));
}

#[test]
fn panics_from_failpoint_actions_name_their_failpoint() {
    assert_eq!(
        failpoint_of_panic("failpoint compact::before_rename panic", None).as_deref(),
        Some("compact::before_rename")
    );
    assert_eq!(
        failpoint_of_panic(
            "Return is not supported for the fail point \"flush::after_header\"",
            None
        )
        .as_deref(),
        Some("flush::after_header")
    );
    assert_eq!(failpoint_of_panic("index out of bounds", None), None);
}
