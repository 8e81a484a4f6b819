//! `crashfuzz report`: parsing libFuzzer's logs (fork mode and a single
//! process, recorded from this suite's fuzz targets in `tests/data/`), the
//! repro verdict, and a whole campaign directory into report.md,
//! report.json and SVG plots, with the verdict rules.

use crashfuzz::report::{parse_libfuzzer_log, parse_repro, write, ReportArgs};
use harness::explore::{explore, ExploreOptions};
use harness::generate::Size;
use harness::targets::{write_seed_corpus, Target};
use std::path::{Path, PathBuf};

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn fork_mode_log() {
    let log = parse_libfuzzer_log(&data("libfuzzer-fork.log"));
    assert!(log.fork);
    assert_eq!(log.seed_inputs, Some(64));
    assert_eq!(log.samples.len(), 5);
    let last = log.samples.last().unwrap();
    assert_eq!(
        (last.execs, last.edges, last.features, last.corpus),
        (7830, 3485, 13239, 568)
    );
    assert_eq!(last.secs, 13.0);
    assert_eq!(log.total_execs(), 7830);
    assert_eq!(log.total_secs(), 13.0);
    assert_eq!(log.edges(), 3485);
    assert!((log.execs_per_sec() - 7830.0 / 13.0).abs() < 1e-9);
    assert_eq!(log.errors, vec!["ERROR: libFuzzer: deadly signal"]);
}

#[test]
fn single_process_log() {
    let log = parse_libfuzzer_log(&data("libfuzzer-single.log"));
    assert!(!log.fork);
    assert!(log.samples.len() > 50, "{} samples", log.samples.len());
    // Closing lines: `Done 40474 runs in 13 second(s)` and the final stats.
    assert_eq!(log.total_execs(), 40474);
    assert_eq!(log.total_secs(), 13.0);
    assert_eq!(log.edges(), 3538);
    // Time is executions / average exec/s, never going back.
    for pair in log.samples.windows(2) {
        assert!(pair[1].secs >= pair[0].secs, "{pair:?}");
        assert!(pair[1].execs >= pair[0].execs, "{pair:?}");
    }
    let rates = log.rate_series(5.0);
    assert_eq!(rates.len(), log.samples.len());
    assert!(rates.iter().all(|(_, r)| r.is_finite() && *r >= 0.0));
}

#[test]
fn a_restart_within_one_log_continues_time_and_executions() {
    let one = data("libfuzzer-fork.log");
    let log = parse_libfuzzer_log(&format!("{one}{one}"));
    assert_eq!(log.samples.len(), 10);
    assert_eq!(log.total_execs(), 2 * 7830);
    assert_eq!(log.total_secs(), 26.0);
}

#[test]
fn lines_that_are_not_progress_are_ignored() {
    let log = parse_libfuzzer_log(
        "#\n#abc: cov: 1\n#12 unrelated words\n###### Recommended dictionary. ######\n\
         #3\tINITED cov: 5 ft: 6 corp: 1/1b exec/s: 0 rss: 30Mb\n",
    );
    assert_eq!(log.samples.len(), 1);
    assert_eq!((log.samples[0].execs, log.samples[0].edges), (3, 5));
}

#[test]
fn repro_verdict() {
    let v = parse_repro(&data("repro-canary.txt")).unwrap();
    assert_eq!(v.kind, "divergence");
    assert_eq!(v.invariant, "verify");
    assert_eq!(v.step, Some(15));
    assert_eq!(v.signature, "205e30d560de0b3b");
    assert_eq!(v.failpoint.as_deref(), Some("flush::before_header_sync"));
    assert!(v.message.unwrap().starts_with("verify failed"));
    assert_eq!(
        parse_repro("no failure: 3 crash states, 9 checks, trace digest ab"),
        None
    );
}

const SIG: &str = "a3c3b92c155a6b7a";

/// A campaign directory as ci/nightly.sh leaves it: every target's log,
/// a small corpus for one target, a real explorer run's coverage, a mutation
/// table, and one triaged crash.
fn campaign(dir: &Path, mutant: &str, escaped: bool, meta: &str) {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for (i, target) in Target::ALL.into_iter().enumerate() {
        let log = if i % 2 == 0 {
            "libfuzzer-fork.log"
        } else {
            "libfuzzer-single.log"
        };
        std::fs::write(logs.join(format!("fuzz-{target}.log")), data(log)).unwrap();
    }
    write_seed_corpus(Target::CrashOps, &dir.join("corpus/crash_ops"), 1, 6).unwrap();
    std::fs::write(
        dir.join("campaign.txt"),
        format!(
            "date=2025-01-02\nstarted=2025-01-02 02:17 UTC\ncommit=abc1234\nbudget_secs=300\n\
             jobs=2\nmutant={mutant}\ncorpus_before.crash_ops=2\ncorpus_after_fuzz.crash_ops=9\n"
        ),
    )
    .unwrap();

    let report = explore(&ExploreOptions {
        seed: 7,
        time: None,
        iterations: Some(300),
        jobs: 1,
        size: Size::Default,
        mutant: None,
        progress: None,
        ..ExploreOptions::default()
    });
    std::fs::create_dir_all(dir.join("explore")).unwrap();
    std::fs::write(
        dir.join("explore/summary.json"),
        format!("some log line\n{}\n", report.to_json()),
    )
    .unwrap();
    std::fs::write(dir.join("explore/coverage.txt"), report.coverage.to_text()).unwrap();

    std::fs::create_dir_all(dir.join("mutants")).unwrap();
    std::fs::write(
        dir.join("mutants/mutants.json"),
        format!(
            r#"{{"detected":1,"total":2,"mutants":[
            {{"name":"header-before-data-sync","detected":true,"detections":1,"seeds":1,"median_secs":0.5,"median_scenarios":900.0,"kind":"divergence","invariant":"verify","raw_steps":48,"min_steps":4}},
            {{"name":"seqno-reused","detected":{},"detections":0,"seeds":1,"median_secs":null,"median_scenarios":null,"kind":null,"invariant":null,"raw_steps":null,"min_steps":null}}]}}"#,
            !escaped
        )
        .replace('\n', ""),
    )
    .unwrap();

    let triage = dir.join("triage").join(SIG);
    std::fs::create_dir_all(&triage).unwrap();
    std::fs::write(triage.join("repro.txt"), data("repro-canary.txt")).unwrap();
    std::fs::write(triage.join("minimize.txt"), data("minimize-canary.txt")).unwrap();
    std::fs::write(triage.join("artifact"), b"\x01\x02").unwrap();
    std::fs::write(triage.join("minimized"), b"\x01").unwrap();
    std::fs::write(triage.join(format!("regression_{SIG}.rs")), "// test\n").unwrap();
    std::fs::write(
        triage.join("meta.txt"),
        format!(
            "signature={SIG}\ntarget=crash_ops\ntargets=crash_ops,explorer\n\
             failpoints=flush::after_header,flush::before_header_sync\nartifacts=5\n\
             test=regression_{SIG}.rs\n{meta}"
        ),
    )
    .unwrap();
}

fn args(dir: &Path) -> ReportArgs {
    ReportArgs {
        campaign: dir.to_path_buf(),
        out: None,
        known: None,
        history: None,
        no_replay: false,
        strict_failpoints: false,
    }
}

fn svg(path: PathBuf) -> String {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.starts_with("<svg"), "{}", path.display());
    assert!(text.trim_end().ends_with("</svg>"), "{}", path.display());
    text
}

#[test]
fn a_campaign_becomes_a_report_with_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign(dir, "none", true, "");
    let history = dir.join("history.tsv");
    let report = write(&ReportArgs {
        history: Some(history.clone()),
        ..args(dir)
    })
    .unwrap();

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for target in Target::ALL {
        assert!(md.contains(&format!("| `{target}` |")), "{target} missing");
    }
    for name in engine::failpoints::all() {
        assert!(md.contains(&format!("| `{name}` |")), "{name} missing");
    }
    assert!(md.contains("## Seeded bugs (mutation table)"));
    assert!(md.contains("| 2 | `seqno-reused` | **ESCAPED** |"));
    assert!(md.contains(&format!("### `{SIG}: divergence [verify]")));
    assert!(md.contains("**NEW**"));
    assert!(md.contains("arm crash at flush::before_header_sync hit #1"));
    assert!(md.contains("2 → 9 → 6"), "corpus counts");

    // The rare states: every one listed with its share; in 300 explorer
    // runs some are reached, and the ones never reached are flagged.
    assert!(md.contains("### Rare states"));
    for name in harness::reach::names() {
        assert!(md.contains(&format!("| `{name}` |")), "{name} missing");
    }
    assert!(report.reach_runs >= 300, "{}", report.reach_runs);
    assert!(report.reach["crash:drop-unsynced@idle"] > 0);
    let zero: Vec<&String> = report
        .reach
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(zero.len(), report.reach_never.len());
    assert!(zero.iter().all(|n| report.reach_never.contains(n)));
    if !report.reach_never.is_empty() {
        assert!(md.contains("**NEVER REACHED**"));
        assert!(report
            .warnings
            .iter()
            .chain(&report.failures)
            .any(|w| w.contains("rare state(s) never reached")));
    }

    // Every target ran; the crash_ops corpus was replayed for coverage.
    assert!(report.targets.iter().all(|t| t.ran));
    let crash_ops = &report.targets[0];
    assert_eq!((crash_ops.replayed, crash_ops.replay_failures), (6, 0));
    assert!(report.failpoints.iter().any(|f| f.fuzz_crashes > 0));
    assert!(report.failpoints.iter().all(|f| f.explorer_hits > 0));
    assert_eq!(report.crashes[0].failpoints.len(), 2);
    assert_eq!(report.crashes[0].steps_after, Some(3));

    // A new crash and an escaped seeded bug fail the verdict.
    assert!(!report.ok);
    assert_eq!(report.escaped, vec!["seqno-reused"]);
    assert!(report
        .failures
        .iter()
        .any(|f| f.contains("new unique crash")));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["targets"].as_array().unwrap().len(), Target::ALL.len());
    assert_eq!(
        json["failpoints"].as_array().unwrap().len(),
        engine::failpoints::all().count()
    );
    assert_eq!(json["ok"], false);

    let cov = svg(dir.join("plots/coverage.svg"));
    assert!(cov.contains("crash_ops") && cov.contains("recover_corrupt"));
    svg(dir.join("plots/execs.svg"));
    let fp = svg(dir.join("plots/failpoints.svg"));
    assert!(fp.contains("compact::after_unlink_dir_sync"));
    for target in Target::ALL {
        svg(dir.join(format!("plots/target-{target}.svg")));
    }

    // The history remembers the signature; the next campaign counts it again.
    let text = std::fs::read_to_string(&history).unwrap();
    assert!(text.contains(&format!("{SIG}\t2025-01-02\t2025-01-02\t1")));
    let again = write(&ReportArgs {
        history: Some(history.clone()),
        ..args(dir)
    })
    .unwrap();
    assert_eq!(again.crashes[0].campaigns, 2);
}

#[test]
fn known_crashes_and_detected_bugs_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign(dir, "none", false, "");
    let known = dir.join("known.txt");
    std::fs::write(&known, format!("# triaged\n{SIG}  # issue 42\n")).unwrap();
    let report = write(&ReportArgs {
        known: Some(known),
        ..args(dir)
    })
    .unwrap();
    assert!(report.ok, "{:?}", report.failures);
    assert!(report.crashes[0].known);
}

#[test]
fn canary_verdict() {
    // Found, needs the bug, its test fails with the bug and passes without.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign(
        dir,
        "header-before-data-sync",
        false,
        "without_bug=passes\ntest_with_bug=fails\ntest_current=passes\n",
    );
    let report = write(&args(dir)).unwrap();
    assert!(report.ok, "{:?}", report.failures);
    assert_eq!(report.canary.as_deref(), Some("header-before-data-sync"));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("(the canary)"));

    // A crash that fails without the seeded bug is a real crash, and then
    // the canary itself was not found.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign(dir, "header-before-data-sync", false, "without_bug=fails\n");
    let report = write(&args(dir)).unwrap();
    assert!(!report.ok);
    assert!(report.failures.iter().any(|f| f.contains("was not found")));
    assert!(report
        .failures
        .iter()
        .any(|f| f.contains("new unique crash")));

    // A regression test that passes with the bug on does not catch it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign(
        dir,
        "header-before-data-sync",
        false,
        "without_bug=passes\ntest_with_bug=passes\n",
    );
    let report = write(&args(dir)).unwrap();
    assert!(report
        .failures
        .iter()
        .any(|f| f.contains("passes with the bug on")));
}

#[test]
fn missing_targets_and_failpoints_are_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("campaign.txt"), "date=2025-01-02\n").unwrap();
    let report = write(&ReportArgs {
        strict_failpoints: true,
        ..args(dir)
    })
    .unwrap();
    assert!(!report.ok);
    assert!(report.targets.iter().all(|t| !t.ran));
    assert_eq!(
        report.failpoints_never_crashed.len(),
        engine::failpoints::all().count()
    );
    assert!(report
        .failures
        .iter()
        .any(|f| f.contains("never crashed at")));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("**did not run**"));
    assert!(md.contains("**NEVER CRASHED**"));
    svg(dir.join("plots/failpoints.svg"));
}

/// The explorer's sanity counters reach the report, and an unexplained
/// engine error (or an engine that acknowledged nothing) fails the verdict.
#[test]
fn sanity_counters_are_reported_and_judged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign(dir, "none", false, "");
    let known = dir.join("known.txt");
    std::fs::write(&known, format!("{SIG}\n")).unwrap();
    let with_known = || ReportArgs {
        known: Some(known.clone()),
        ..args(dir)
    };
    let report = write(&with_known()).unwrap();
    assert!(report.ok, "{:?}", report.failures);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| commits_acked |"), "{md}");
    assert!(md.contains("| unexplained_errors | 0 |"), "{md}");

    let path = dir.join("explore/summary.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    json["sanity"]["unexplained_errors"] = 2.into();
    json["sanity"]["commits_acked"] = 0.into();
    std::fs::write(&path, format!("{json}\n")).unwrap();
    let report = write(&with_known()).unwrap();
    assert!(!report.ok);
    let failures = report.failures.join("\n");
    assert!(
        failures.contains("2 engine error(s) no injected fault explains"),
        "{failures}"
    );
    assert!(failures.contains("acknowledged no commit"), "{failures}");
}

/// `ci/mutants.sh --out <campaign>/mutation` leaves cargo-mutants' outcomes,
/// the known survivors, the label and the score history: the report shows
/// the score, the trend against the same shard's last run, the survivors,
/// and warns (without failing the nightly verdict) on a new survivor.
#[test]
fn the_mutation_score_and_its_trend_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign(dir, "none", false, "");
    let known = dir.join("known.txt");
    std::fs::write(&known, format!("{SIG}\n")).unwrap();
    let without = write(&ReportArgs {
        known: Some(known.clone()),
        ..args(dir)
    })
    .unwrap();
    assert!(without.mutation.is_none());
    assert!(!std::fs::read_to_string(dir.join("report.md"))
        .unwrap()
        .contains("Mutation score"));

    let m = dir.join("mutation");
    std::fs::create_dir_all(m.join("mutants.out")).unwrap();
    std::fs::write(
        m.join("mutants.out/outcomes.json"),
        data("mutation-outcomes.json"),
    )
    .unwrap();
    std::fs::write(m.join("label.txt"), "shard 0/16\n").unwrap();
    std::fs::write(
        m.join("known-survivors.txt"),
        "engine/src/store.rs: replace Store::x -> bool with false # a blind spot\n",
    )
    .unwrap();
    std::fs::write(
        m.join("history.tsv"),
        "2026-11-27T03:00:00Z\tshard 0/16\t4\t0\t1\t0\t21.0\n\
         2026-11-28T03:00:00Z\tshard 1/16\t5\t0\t0\t0\t19.0\n",
    )
    .unwrap();
    let report = write(&ReportArgs {
        known: Some(known),
        ..args(dir)
    })
    .unwrap();
    let score = report.mutation.as_ref().expect("the mutation score");
    assert_eq!(score.percent, Some(60.0));
    assert_eq!(score.new_survivors, 1);
    assert!(
        report.ok,
        "a nightly shard only warns: {:?}",
        report.failures
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("Snapshot::verify")),
        "{:?}",
        report.warnings
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("## Mutation score"), "{md}");
    assert!(md.contains("**60.0%**"), "{md}");
    assert!(
        md.contains("-20.0 points since the last run of `shard 0/16`"),
        "{md}"
    );
    assert!(md.contains("known blind spot"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["mutation"]["viable"], 5);

    std::fs::write(m.join("mutants.out/outcomes.json"), "{ truncated").unwrap();
    let err = write(&args(dir)).unwrap_err();
    assert!(err.contains("not JSON"), "{err}");
}
