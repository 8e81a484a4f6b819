//! `crashfuzz report`: the nightly campaign's report, what a team opens in
//! the morning. `crashfuzz campaign` fills a campaign directory; this module reads
//! it and writes `report.md`, `report.json` and SVG plots.
//!
//! The campaign directory (every part optional; what is missing is reported
//! as missing, never invented):
//!
//! ```text
//! campaign.txt                 key=value lines: date, commit, budget_secs, jobs,
//!                              mutant, corpus_before.<target>, ...
//! logs/fuzz-<target>.log       libFuzzer's output (fork mode or not)
//! corpus/<target>/             the merged, minimized corpus
//! artifacts/<target>/          libFuzzer's crash-*, timeout-*, oom-* files
//! explore/summary.json         `crashfuzz explore --json`, last line
//! explore/coverage.txt         `crashfuzz explore --coverage`
//! mutants/mutants.json         `crashfuzz mutants --json`, last line
//! mutation/                    `ci/mutants.sh --out`: cargo-mutants'
//!                              mutants.out/outcomes.json, history.tsv,
//!                              known-survivors.txt, label.txt
//! triage/<signature>/meta.txt  key=value lines from the triage: targets,
//!                              source, artifacts, reproduced, test_with_bug...
//! triage/<signature>/repro.txt     `crashfuzz repro --quiet` output
//! triage/<signature>/minimize.txt  `crashfuzz minimize` output
//! ```
//!
//! Coverage over time comes from libFuzzer's own progress lines. Failpoint
//! coverage comes from the explorer's coverage file and from replaying each
//! target's corpus through [`run_target`] here (the fuzz targets run in other
//! processes and keep no failpoint counters of their own).
//!
//! The verdict fails on a unique crash whose signature is not in the known
//! list, on a seeded bug that escaped the benchmark, on a target that did
//! not run, and (with `--strict-failpoints`) on a catalog failpoint never
//! crashed at. In a canary campaign (a seeded bug on) it fails instead when
//! the bug was *not* found.

use engine::mutants::Mutant;
use failpoints::Coverage;
use harness::runner::RunOptions;
use harness::targets::{run_target, Target};
use plotters::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Arguments of `crashfuzz report`.
#[derive(clap::Args, Clone, Debug)]
pub struct ReportArgs {
    /// The campaign directory `crashfuzz campaign` filled (layout: see the
    /// `harness::report` module doc).
    pub campaign: PathBuf,
    /// Where report.md, report.json and plots/ go (default: the campaign
    /// directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Signatures already triaged, one per line (`#` starts a comment):
    /// they are listed but do not fail the verdict.
    #[arg(long)]
    pub known: Option<PathBuf>,
    /// Signature history across campaigns (`signature first_seen last_seen
    /// campaigns`, tab-separated); read, then updated with this campaign.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Do not replay the corpora for per-target failpoint coverage.
    #[arg(long)]
    pub no_replay: bool,
    /// Fail the verdict when a catalog failpoint was never crashed at.
    #[arg(long)]
    pub strict_failpoints: bool,
}

/// One progress line of libFuzzer.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the fuzzer started (fork mode prints it; otherwise
    /// executions / average exec/s).
    pub secs: f64,
    /// Executions so far.
    pub execs: u64,
    /// Coverage edges (`cov:`).
    pub edges: u64,
    /// Features (`ft:`).
    pub features: u64,
    /// Corpus inputs (`corp:`).
    pub corpus: u64,
    /// Average executions per second since the start, as printed.
    pub execs_per_sec: f64,
}

/// What one libFuzzer log says.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FuzzLog {
    /// Progress lines, in order (times and executions continue across
    /// restarts within one log).
    pub samples: Vec<Sample>,
    /// Whether it ran in fork mode.
    pub fork: bool,
    /// Seed inputs it started from.
    pub seed_inputs: Option<u64>,
    /// Fork mode's OOM, timeout and crash counters at the end.
    pub ooms: u64,
    /// See `ooms`.
    pub timeouts: u64,
    /// See `ooms`.
    pub crashes: u64,
    /// Wall seconds, from `INFO: exiting: .. time: Ns` or `Done N runs in S
    /// second(s)` when printed.
    pub secs: Option<f64>,
    /// Executions, from `Done N runs` or `stat::number_of_executed_units`.
    pub execs: Option<u64>,
    /// Distinct `ERROR:` lines (libFuzzer's crash reasons).
    pub errors: Vec<String>,
}

impl FuzzLog {
    /// Executions in total.
    pub fn total_execs(&self) -> u64 {
        let last = self.samples.last().map_or(0, |s| s.execs);
        self.execs.map_or(last, |e| e.max(last))
    }

    /// Wall seconds in total: as libFuzzer printed it at the end, else the
    /// last progress line's.
    pub fn total_secs(&self) -> f64 {
        let last = self.samples.last().map_or(0.0, |s| s.secs);
        self.secs.unwrap_or(last)
    }

    /// Highest edge count seen.
    pub fn edges(&self) -> u64 {
        self.samples.iter().map(|s| s.edges).max().unwrap_or(0)
    }

    /// Highest feature count seen.
    pub fn features(&self) -> u64 {
        self.samples.iter().map(|s| s.features).max().unwrap_or(0)
    }

    /// Executions per second over the whole run.
    pub fn execs_per_sec(&self) -> f64 {
        let secs = self.total_secs();
        if secs > 0.0 {
            self.total_execs() as f64 / secs
        } else {
            self.samples.last().map_or(0.0, |s| s.execs_per_sec)
        }
    }

    /// Executions per second over time, each point over a window of at
    /// least `window_secs` (fork mode's lines come in bursts, one per job).
    pub fn rate_series(&self, window_secs: f64) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        let mut j = 0;
        for (i, s) in self.samples.iter().enumerate() {
            while j + 1 < i && s.secs - self.samples[j + 1].secs >= window_secs {
                j += 1;
            }
            let base = &self.samples[j];
            let dt = s.secs - base.secs;
            let rate = if j < i && dt >= window_secs {
                s.execs.saturating_sub(base.execs) as f64 / dt
            } else {
                s.execs_per_sec
            };
            out.push((s.secs, rate));
        }
        out
    }
}

/// The value after `key` among whitespace-separated tokens.
fn field<'a>(tokens: &[&'a str], key: &str) -> Option<&'a str> {
    tokens
        .iter()
        .position(|t| *t == key)
        .and_then(|i| tokens.get(i + 1).copied())
}

fn leading_u64(s: &str) -> Option<u64> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn leading_f64(s: &str) -> Option<f64> {
    let num: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().ok()
}

/// Parse libFuzzer's output: progress lines of fork mode
/// (`#N: cov: C ft: F corp: K exec/s: E oom/timeout/crash: a/b/c time: Ts
/// job: J dft_time: D`) and of a single process (`#N\tNEW    cov: C ft: F
/// corp: K/Bb lim: L exec/s: E rss: RMb ...`), and the closing lines.
pub fn parse_libfuzzer_log(text: &str) -> FuzzLog {
    let mut log = FuzzLog::default();
    // Offsets carried over when the log holds several runs (a restart).
    let (mut secs_base, mut execs_base) = (0.0f64, 0u64);
    let mut runs = 0;
    let mut errors = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with("INFO: Seed:") {
            runs += 1;
            if runs > 1 {
                if let Some(last) = log.samples.last() {
                    secs_base = last.secs;
                    execs_base = last.execs;
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            if let Some(sample) = parse_progress(rest, &mut log) {
                let prev_secs = log.samples.last().map_or(0.0, |s| s.secs);
                let sample = Sample {
                    secs: (sample.secs + secs_base).max(prev_secs),
                    execs: sample.execs + execs_base,
                    ..sample
                };
                log.samples.push(sample);
            }
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("INFO: -fork=") {
            log.fork = true;
            if let Some(i) = tokens.iter().position(|t| *t == "seed") {
                log.seed_inputs = tokens.get(i.wrapping_sub(1)).and_then(|t| t.parse().ok());
            }
        } else if line.starts_with("INFO: exiting:") {
            log.secs = field(&tokens, "time:")
                .and_then(leading_f64)
                .map(|s| s + secs_base);
        } else if let Some(rest) = line.strip_prefix("Done ") {
            // `Done 12345 runs in 30 second(s)`
            let words: Vec<&str> = rest.split_whitespace().collect();
            log.execs = words
                .first()
                .and_then(|w| w.parse::<u64>().ok())
                .map(|e| e + execs_base);
            log.secs = field(&words, "in")
                .and_then(leading_f64)
                .map(|s| s + secs_base);
        } else if let Some(rest) = line.strip_prefix("stat::number_of_executed_units:") {
            log.execs = rest.trim().parse::<u64>().ok().map(|e| e + execs_base);
        } else if let Some(i) = line.find("ERROR: ") {
            // `==123== ERROR: libFuzzer: deadly signal`; drop the pid.
            errors.insert(line[i..].to_string());
        }
    }
    log.errors = errors.into_iter().collect();
    log
}

/// One progress line after its `#`, or None if it is not one.
fn parse_progress(rest: &str, log: &mut FuzzLog) -> Option<Sample> {
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let execs: u64 = digits.parse().ok()?;
    let tail = &rest[digits.len()..];
    let fork_line = tail.starts_with(':');
    if !(fork_line || tail.starts_with(['\t', ' '])) {
        return None;
    }
    let tokens: Vec<&str> = tail.trim_start_matches(':').split_whitespace().collect();
    let prev = log.samples.last().cloned().unwrap_or_default();
    let num = |key: &str| field(&tokens, key).and_then(leading_u64);
    let execs_per_sec = field(&tokens, "exec/s:").and_then(leading_f64);
    if num("cov:").is_none() && execs_per_sec.is_none() {
        return None;
    }
    let execs_per_sec = execs_per_sec.unwrap_or(prev.execs_per_sec);
    let secs = match field(&tokens, "time:").and_then(leading_f64) {
        Some(t) => t,
        None if execs_per_sec > 0.0 => execs as f64 / execs_per_sec,
        None => prev.secs,
    };
    if let Some(counts) = field(&tokens, "oom/timeout/crash:") {
        let n: Vec<u64> = counts.split('/').filter_map(|c| c.parse().ok()).collect();
        if let [o, t, c] = n[..] {
            (log.ooms, log.timeouts, log.crashes) = (o, t, c);
        }
        log.fork = true;
    }
    Some(Sample {
        secs,
        execs,
        edges: num("cov:").unwrap_or(prev.edges),
        features: num("ft:").unwrap_or(prev.features),
        corpus: num("corp:").unwrap_or(prev.corpus),
        execs_per_sec,
    })
}

/// `key=value` lines (`#` comments and blank lines skipped).
pub fn parse_key_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The verdict line of `crashfuzz repro`: `FAILURE <kind> [<invariant>] at
/// step N (signature S)`, and the `crash after failpoint:` line after it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReproVerdict {
    /// Failure kind.
    pub kind: String,
    /// Invariant.
    pub invariant: String,
    /// Step of the failure.
    pub step: Option<u64>,
    /// The 16-hex signature.
    pub signature: String,
    /// Failpoint of the crash before it.
    pub failpoint: Option<String>,
    /// The first line of the failure's message.
    pub message: Option<String>,
}

/// The verdict of `crashfuzz repro --json` output; None if it reports no
/// failure.
pub fn verdict_from_json(json: &serde_json::Value) -> Option<ReproVerdict> {
    let f = json.get("failure").filter(|f| !f.is_null())?;
    let text = |k: &str| f[k].as_str().map(str::to_string);
    Some(ReproVerdict {
        kind: text("kind").unwrap_or_default(),
        invariant: text("invariant").unwrap_or_default(),
        step: f["step"].as_u64(),
        signature: text("signature").unwrap_or_default(),
        failpoint: text("failpoint"),
        message: text("message").and_then(|m| m.lines().next().map(str::to_string)),
    })
}

/// Parse `crashfuzz repro --quiet` output; None if it reports no failure.
pub fn parse_repro(text: &str) -> Option<ReproVerdict> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with("FAILURE "));
    let first = lines.next()?;
    let rest = first.strip_prefix("FAILURE ")?;
    let (kind, rest) = rest.split_once(' ')?;
    let invariant = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map_or("", |(inv, _)| inv);
    let step = rest
        .split_once("at step ")
        .and_then(|(_, s)| leading_u64(s));
    let signature = rest
        .split_once("(signature ")
        .map_or("", |(_, s)| s.trim_end_matches(')'));
    let mut verdict = ReproVerdict {
        kind: kind.to_string(),
        invariant: invariant.to_string(),
        step,
        signature: signature.to_string(),
        ..ReproVerdict::default()
    };
    for line in lines {
        if let Some(fp) = line.strip_prefix("crash after failpoint: ") {
            let fp = fp.split_once(" (crash point").map_or(fp, |(fp, _)| fp);
            verdict.failpoint = Some(fp.trim().to_string());
        } else if line.starts_with("seeded bug on:") || line.starts_with("target: ") {
            continue;
        } else if verdict.message.is_none() && !line.trim().is_empty() {
            verdict.message = Some(line.trim().to_string());
        }
    }
    Some(verdict)
}

/// One fuzz target's row.
#[derive(Clone, Debug, Serialize)]
pub struct TargetRow {
    /// Target name.
    pub name: String,
    /// Whether a log was found.
    pub ran: bool,
    /// Fork mode.
    pub fork: bool,
    /// Wall seconds.
    pub secs: f64,
    /// Executions.
    pub execs: u64,
    /// Executions per second.
    pub execs_per_sec: f64,
    /// Coverage edges at the end.
    pub edges: u64,
    /// Features at the end.
    pub features: u64,
    /// Corpus inputs restored before the campaign.
    pub corpus_before: Option<u64>,
    /// Corpus inputs after fuzzing, before cmin.
    pub corpus_after_fuzz: Option<u64>,
    /// Corpus inputs after cmin.
    pub corpus_files: u64,
    /// Corpus bytes after cmin.
    pub corpus_bytes: u64,
    /// Crash artifacts libFuzzer wrote this campaign (crash-, timeout-,
    /// oom-, leak-, slow-unit-).
    pub crash_artifacts: u64,
    /// Fork mode's counters: (ooms, timeouts, crashes).
    pub oom_timeout_crash: (u64, u64, u64),
    /// Signatures of the unique crashes found by this target.
    pub new_crashes: Vec<String>,
    /// libFuzzer's distinct ERROR lines.
    pub errors: Vec<String>,
    /// Corpus inputs replayed for failpoint coverage, and how many failed.
    pub replayed: u64,
    /// See `replayed`.
    pub replay_failures: u64,
    /// Progress samples (for the plots).
    #[serde(skip)]
    pub log: FuzzLog,
    /// Failpoint coverage of the corpus.
    #[serde(skip)]
    pub coverage: Coverage,
}

/// One failpoint's row.
#[derive(Clone, Debug, Serialize)]
pub struct FailpointRow {
    /// Catalog name.
    pub name: String,
    /// Where it sits.
    pub at: Vec<String>,
    /// Hits and crashes in the stable explorer.
    pub explorer_hits: u64,
    /// See `explorer_hits`.
    pub explorer_crashes: u64,
    /// Hits and crashes replaying the fuzz corpora, all targets.
    pub fuzz_hits: u64,
    /// See `fuzz_hits`.
    pub fuzz_crashes: u64,
    /// Crashes per target that crashed here.
    pub fuzz_crashes_by_target: BTreeMap<String, u64>,
    /// Crashed at by anything this campaign.
    pub crashed: bool,
}

/// One unique crash.
#[derive(Clone, Debug, Serialize)]
pub struct CrashRow {
    /// The signature (directory name under triage/).
    pub signature: String,
    /// Failure kind, invariant and failpoint.
    pub kind: String,
    /// See `kind`.
    pub invariant: String,
    /// See `kind`.
    pub failpoint: Option<String>,
    /// First line of the failure's message.
    pub message: Option<String>,
    /// The fuzz target its artifacts replay as.
    pub target: String,
    /// Targets (or `explorer`) that found it.
    pub found_by: Vec<String>,
    /// The crash failpoints of its artifacts (one crash point: failpoints
    /// with no statement between them share a signature).
    pub failpoints: Vec<String>,
    /// In a canary campaign: whether it needs the seeded bug (false: it
    /// fails on the correct engine too, a real crash).
    pub needs_bug: Option<bool>,
    /// Raw artifacts with this signature.
    pub artifacts: u64,
    /// Whether `crashfuzz repro` reproduced it.
    pub reproduced: bool,
    /// Listed in the known-crashes file.
    pub known: bool,
    /// Date first seen (history), this campaign's date if new.
    pub first_seen: Option<String>,
    /// Campaigns it was seen in, this one included.
    pub campaigns: u64,
    /// Steps before and after minimization.
    pub steps_before: Option<u64>,
    /// See `steps_before`.
    pub steps_after: Option<u64>,
    /// Paths, relative to the report directory.
    pub artifact: Option<String>,
    /// See `artifact`.
    pub minimized: Option<String>,
    /// See `artifact`.
    pub regression_test: Option<String>,
    /// The regression test run with the seeded bug on (`fails` or
    /// `passes`; absent when not run).
    pub test_with_bug: Option<String>,
    /// The regression test run on the engine as it is, no seeded bug.
    pub test_current: Option<String>,
    /// The replay command.
    pub replay: String,
    /// The minimized scenario, readable.
    pub scenario: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// campaign.txt.
    pub campaign: BTreeMap<String, String>,
    /// The seeded bug on in this campaign (a canary run).
    pub canary: Option<String>,
    /// Whether the campaign passed, and why not.
    pub ok: bool,
    /// Reasons the verdict failed.
    pub failures: Vec<String>,
    /// Things to look at that do not fail the verdict.
    pub warnings: Vec<String>,
    /// Per fuzz target.
    pub targets: Vec<TargetRow>,
    /// `explore --json` summary.
    pub explorer: Option<serde_json::Value>,
    /// Per failpoint.
    pub failpoints: Vec<FailpointRow>,
    /// Catalog failpoints nothing crashed at.
    pub failpoints_never_crashed: Vec<String>,
    /// Crashes per I/O trigger (explorer and corpora).
    pub io_crashes: BTreeMap<String, u64>,
    /// Injections per fault kind of the simulated disk (explorer and
    /// corpora), every kind listed.
    pub faults: BTreeMap<String, u64>,
    /// Fault kinds never injected.
    pub faults_never_injected: Vec<String>,
    /// Runs counted for the rare states (explorer and corpora).
    pub reach_runs: u64,
    /// Rare state (`harness::reach`) -> runs that reached it, every state
    /// listed.
    pub reach: BTreeMap<String, u64>,
    /// Rare states no run reached.
    pub reach_never: Vec<String>,
    /// `mutants --json`.
    pub mutants: Option<serde_json::Value>,
    /// Seeded bugs the benchmark missed.
    pub escaped: Vec<String>,
    /// `exhaust --json` (exhaust/exhaust.json): the bound reached.
    pub exhaust: Option<serde_json::Value>,
    /// Unique crashes.
    pub crashes: Vec<CrashRow>,
    /// The cargo-mutants score of this campaign's mutation run, if any.
    pub mutation: Option<crate::mutation::Score>,
    /// Earlier mutation scores (the trend), oldest first.
    pub mutation_history: Vec<crate::mutation::HistoryEntry>,
    /// SVG plots, relative to the report directory.
    pub plots: Vec<String>,
}

fn read_optional(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The last line of `text` that parses as a JSON object.
fn last_json(text: &str) -> Option<serde_json::Value> {
    text.lines()
        .rev()
        .filter(|l| l.trim_start().starts_with('{'))
        .find_map(|l| serde_json::from_str(l).ok())
}

fn dir_stats(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok().filter(|m| m.is_file()))
        .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

const ARTIFACT_PREFIXES: [&str; 5] = ["crash-", "timeout-", "oom-", "leak-", "slow-unit-"];

/// Replay every file of `dir` as `target` and merge the failpoint coverage
/// of the runs that pass. Returns (coverage, replayed, failed).
pub fn replay_corpus(target: Target, dir: &Path, mutant: Option<Mutant>) -> (Coverage, u64, u64) {
    let options = RunOptions {
        mutant,
        ..RunOptions::default()
    };
    let mut coverage = Coverage::default();
    let (mut replayed, mut failed) = (0, 0);
    for path in sorted_files(dir) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        replayed += 1;
        match run_target(target, &bytes, &options) {
            Ok(outcome) => coverage.merge(&outcome.coverage),
            Err(_) => failed += 1,
        }
    }
    (coverage, replayed, failed)
}

fn parse_mutant_name(name: Option<&String>) -> Result<Option<Mutant>, String> {
    match name.map(String::as_str) {
        None | Some("") | Some("none") => Ok(None),
        Some(n) => Mutant::from_name(n)
            .map(Some)
            .ok_or_else(|| format!("campaign.txt: unknown seeded bug {n:?}")),
    }
}

fn target_row(
    args: &ReportArgs,
    campaign: &BTreeMap<String, String>,
    target: Target,
    mutant: Option<Mutant>,
) -> TargetRow {
    let dir = &args.campaign;
    let name = target.name();
    let text = read_optional(&dir.join("logs").join(format!("fuzz-{name}.log")));
    let log = text.as_deref().map(parse_libfuzzer_log).unwrap_or_default();
    let corpus_dir = dir.join("corpus").join(name);
    let (corpus_files, corpus_bytes) = dir_stats(&corpus_dir);
    let crash_artifacts = sorted_files(&dir.join("artifacts").join(name))
        .iter()
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| ARTIFACT_PREFIXES.iter().any(|pre| n.starts_with(pre)))
        })
        .count() as u64;
    let (coverage, replayed, replay_failures) = if args.no_replay {
        (Coverage::default(), 0, 0)
    } else {
        replay_corpus(target, &corpus_dir, mutant)
    };
    let count = |key: &str| {
        campaign
            .get(&format!("{key}.{name}"))
            .and_then(|v| v.parse().ok())
    };
    TargetRow {
        name: name.to_string(),
        ran: text.is_some() && !log.samples.is_empty(),
        fork: log.fork,
        secs: log.total_secs(),
        execs: log.total_execs(),
        execs_per_sec: log.execs_per_sec(),
        edges: log.edges(),
        features: log.features(),
        corpus_before: count("corpus_before"),
        corpus_after_fuzz: count("corpus_after_fuzz"),
        corpus_files,
        corpus_bytes,
        crash_artifacts,
        oom_timeout_crash: (log.ooms, log.timeouts, log.crashes),
        new_crashes: Vec::new(),
        errors: log.errors.clone(),
        replayed,
        replay_failures,
        log,
        coverage,
    }
}

fn failpoint_rows(explorer: &Coverage, targets: &[TargetRow]) -> Vec<FailpointRow> {
    engine::failpoints::all()
        .map(|name| {
            let get = |m: &BTreeMap<String, u64>| m.get(name).copied().unwrap_or(0);
            let by_target: BTreeMap<String, u64> = targets
                .iter()
                .map(|t| (t.name.clone(), get(&t.coverage.crashes)))
                .filter(|(_, n)| *n > 0)
                .collect();
            let fuzz_crashes = by_target.values().sum();
            let explorer_crashes = get(&explorer.crashes);
            FailpointRow {
                name: name.to_string(),
                at: harness::catalog::locations(name)
                    .into_iter()
                    .map(String::from)
                    .collect(),
                explorer_hits: get(&explorer.hits),
                explorer_crashes,
                fuzz_hits: targets.iter().map(|t| get(&t.coverage.hits)).sum(),
                fuzz_crashes,
                fuzz_crashes_by_target: by_target,
                crashed: explorer_crashes + fuzz_crashes > 0,
            }
        })
        .collect()
}

/// `signature -> (first_seen, last_seen, campaigns)`.
type History = BTreeMap<String, (String, String, u64)>;

fn read_history(path: Option<&Path>) -> History {
    let text = path.and_then(read_optional).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f[..] {
                [sig, first, last, n, ..] => Some((
                    sig.to_string(),
                    (first.to_string(), last.to_string(), n.parse().unwrap_or(1)),
                )),
                _ => None,
            }
        })
        .collect()
}

fn write_history(path: &Path, history: &History) -> Result<(), String> {
    let mut text = String::from("# signature\tfirst_seen\tlast_seen\tcampaigns\n");
    for (sig, (first, last, n)) in history {
        let _ = writeln!(text, "{sig}\t{first}\t{last}\t{n}");
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn read_known(path: Option<&Path>) -> BTreeSet<String> {
    path.and_then(read_optional)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('#').next())
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// `minimized <kind> [<inv>]: steps A -> B in R runs`.
fn parse_minimize_steps(text: &str) -> (Option<u64>, Option<u64>) {
    let Some(line) = text.lines().find(|l| l.starts_with("minimized ")) else {
        return (None, None);
    };
    let Some((_, steps)) = line.split_once("steps ") else {
        return (None, None);
    };
    let mut parts = steps.split(" -> ");
    let before = parts.next().and_then(leading_u64);
    let after = parts.next().and_then(leading_u64);
    (before, after)
}

/// The readable scenario `crashfuzz minimize` prints (from `config` to the
/// `artifact:` line).
fn minimized_scenario(text: &str) -> Option<String> {
    let start = text.find("config ")?;
    let body = &text[start..];
    let end = body.find("\nartifact:").unwrap_or(body.len());
    Some(body[..end].trim_end().to_string())
}

/// A comma-separated list (`-` and empty items dropped).
fn list(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "-")
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn rel(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn crash_rows(
    args: &ReportArgs,
    out: &Path,
    campaign: &BTreeMap<String, String>,
    history: &mut History,
    known: &BTreeSet<String>,
) -> Vec<CrashRow> {
    let triage = args.campaign.join("triage");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&triage)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    let date = campaign
        .get("date")
        .cloned()
        .unwrap_or_else(|| "today".into());
    let canary = campaign
        .get("mutant")
        .is_some_and(|m| !m.is_empty() && m != "none");
    let mut rows = Vec::new();
    for dir in dirs {
        let meta = parse_key_values(&read_optional(&dir.join("meta.txt")).unwrap_or_default());
        // The structured results the campaign writes (repro.json,
        // minimize.json); the text forms only for campaign directories
        // written before them.
        let verdict = match read_optional(&dir.join("repro.json")).and_then(|t| last_json(&t)) {
            Some(json) => verdict_from_json(&json),
            None => parse_repro(&read_optional(&dir.join("repro.txt")).unwrap_or_default()),
        };
        let (steps_before, steps_after, min_scenario) =
            match read_optional(&dir.join("minimize.json")).and_then(|t| last_json(&t)) {
                Some(json) => (
                    json["steps_before"].as_u64(),
                    json["steps_after"].as_u64(),
                    json["scenario"].as_str().map(|s| s.trim_end().to_string()),
                ),
                None => {
                    let text = read_optional(&dir.join("minimize.txt")).unwrap_or_default();
                    let (before, after) = parse_minimize_steps(&text);
                    (before, after, minimized_scenario(&text))
                }
            };
        let signature = meta.get("signature").cloned().unwrap_or_else(|| {
            dir.file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        });
        let v = verdict.clone().unwrap_or_default();
        let existing = |name: &str| {
            let p = dir.join(name);
            p.is_file().then(|| rel(&p, out))
        };
        let test = meta
            .get("test")
            .and_then(|t| existing(t))
            .or_else(|| existing(&format!("regression_{signature}.rs")));
        let entry = history
            .entry(signature.clone())
            .or_insert_with(|| (date.clone(), date.clone(), 0));
        if !canary {
            entry.1 = date.clone();
            entry.2 += 1;
        }
        let first_seen = Some(entry.0.clone());
        let campaigns = entry.2.max(1);
        let minimized = existing("minimized");
        let target = meta
            .get("target")
            .cloned()
            .unwrap_or_else(|| "interleave".into());
        let replay = meta.get("replay").cloned().unwrap_or_else(|| {
            let mutant = campaign
                .get("mutant")
                .filter(|_| canary)
                .map_or(String::new(), |m| format!(" --mutant {m}"));
            let input = minimized
                .clone()
                .or_else(|| existing("artifact"))
                .unwrap_or_default();
            format!(
                "cargo run --release --bin crashfuzz -- repro {input} --target {target}{mutant}"
            )
        });
        rows.push(CrashRow {
            known: known.contains(&signature),
            kind: if v.kind.is_empty() {
                meta.get("kind")
                    .cloned()
                    .unwrap_or_else(|| "unreproduced".into())
            } else {
                v.kind.clone()
            },
            invariant: if v.invariant.is_empty() {
                meta.get("invariant").cloned().unwrap_or_default()
            } else {
                v.invariant.clone()
            },
            failpoint: v
                .failpoint
                .clone()
                .or_else(|| meta.get("failpoint").cloned()),
            message: v.message.clone(),
            target: target.clone(),
            found_by: meta
                .get("targets")
                .map_or_else(|| vec![target.clone()], |t| list(Some(t))),
            failpoints: list(meta.get("failpoints")),
            needs_bug: meta.get("without_bug").map(|w| w == "passes"),
            artifacts: meta
                .get("artifacts")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            reproduced: verdict.is_some(),
            first_seen,
            campaigns,
            steps_before,
            steps_after,
            artifact: existing("artifact"),
            minimized,
            regression_test: test,
            test_with_bug: meta.get("test_with_bug").cloned(),
            test_current: meta.get("test_current").cloned(),
            replay,
            scenario: min_scenario,
            signature,
        });
    }
    rows
}

/// Build the report from the campaign directory (and update the history
/// file, if given). Plots are drawn by [`write`].
pub fn build(args: &ReportArgs) -> Result<Report, String> {
    let dir = &args.campaign;
    if !dir.is_dir() {
        return Err(format!("{} is not a campaign directory", dir.display()));
    }
    let out = args.out.clone().unwrap_or_else(|| dir.clone());
    let campaign = parse_key_values(&read_optional(&dir.join("campaign.txt")).unwrap_or_default());
    let mutant = parse_mutant_name(campaign.get("mutant"))?;
    let canary = mutant.map(|m| m.name().to_string());
    let mut targets: Vec<TargetRow> = Target::ALL
        .into_iter()
        .map(|t| target_row(args, &campaign, t, mutant))
        .collect();

    let explorer = read_optional(&dir.join("explore/summary.json")).and_then(|t| last_json(&t));
    let explorer_cov = match read_optional(&dir.join("explore/coverage.txt")) {
        Some(text) => {
            Coverage::from_text(&text).map_err(|e| format!("explore/coverage.txt: {e}"))?
        }
        None => Coverage::default(),
    };
    let failpoints = failpoint_rows(&explorer_cov, &targets);
    let never: Vec<String> = failpoints
        .iter()
        .filter(|f| !f.crashed)
        .map(|f| f.name.clone())
        .collect();
    let mut io_crashes = explorer_cov.io_crashes.clone();
    let mut faults: BTreeMap<String, u64> = failpoints::FaultKind::ALL
        .into_iter()
        .map(|k| (k.name().to_string(), 0))
        .collect();
    for cov in std::iter::once(&explorer_cov).chain(targets.iter().map(|t| &t.coverage)) {
        for (k, n) in &cov.faults {
            *faults.entry(k.clone()).or_insert(0) += n;
        }
    }
    for t in &targets {
        for (k, n) in &t.coverage.io_crashes {
            *io_crashes.entry(k.clone()).or_insert(0) += n;
        }
    }
    let faults_never_injected: Vec<String> = faults
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| k.clone())
        .collect();
    let mut reach_cov = failpoints::Coverage::default();
    for cov in std::iter::once(&explorer_cov).chain(targets.iter().map(|t| &t.coverage)) {
        for (k, n) in &cov.reach {
            *reach_cov.reach.entry(k.clone()).or_insert(0) += n;
        }
        reach_cov.runs += cov.runs;
    }
    let reach: BTreeMap<String, u64> = harness::reach::names()
        .into_iter()
        .map(|n| {
            let runs = reach_cov.reach.get(&n).copied().unwrap_or(0);
            (n, runs)
        })
        .collect();
    let reach_never = harness::reach::never_reached(&reach_cov);

    let mutants = read_optional(&dir.join("mutants/mutants.json")).and_then(|t| last_json(&t));
    let escaped: Vec<String> = mutants
        .as_ref()
        .and_then(|m| m["mutants"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|r| r["detected"] == serde_json::Value::Bool(false))
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect();

    let (mutation, mutation_history) = match crate::mutation::for_report(dir) {
        Ok(Some((score, trend))) => (Some(score), trend),
        Ok(None) => (None, Vec::new()),
        Err(e) => return Err(format!("the mutation run: {e}")),
    };

    let mut history = read_history(args.history.as_deref());
    let known = read_known(args.known.as_deref());
    let crashes = crash_rows(args, &out, &campaign, &mut history, &known);
    for t in &mut targets {
        t.new_crashes = crashes
            .iter()
            .filter(|c| c.found_by.contains(&t.name))
            .map(|c| c.signature.clone())
            .collect();
    }
    if let (Some(path), None) = (&args.history, &canary) {
        write_history(path, &history)?;
    }

    let mut report = Report {
        campaign,
        canary,
        ok: true,
        failures: Vec::new(),
        warnings: Vec::new(),
        targets,
        explorer,
        failpoints,
        failpoints_never_crashed: never,
        io_crashes,
        faults,
        faults_never_injected,
        reach_runs: reach_cov.runs,
        reach,
        reach_never,
        mutants,
        exhaust: read_optional(&dir.join("exhaust/exhaust.json")).and_then(|t| last_json(&t)),
        escaped,
        crashes,
        mutation,
        mutation_history,
        plots: Vec::new(),
    };
    judge(&mut report, args.strict_failpoints);
    Ok(report)
}

impl CrashRow {
    /// Whether this is the canary's seeded bug rather than a real crash.
    pub fn is_canary(&self, report: &Report) -> bool {
        report.canary.is_some() && self.reproduced && self.needs_bug != Some(false)
    }

    fn headline(&self) -> String {
        format!(
            "{}: {} [{}]{}",
            self.signature,
            self.kind,
            self.invariant,
            self.failpoint
                .as_deref()
                .map_or(String::new(), |f| format!(" after {f}"))
        )
    }
}

/// Fill the verdict: failures and warnings.
fn judge(r: &mut Report, strict_failpoints: bool) {
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    for t in r.targets.iter().filter(|t| !t.ran) {
        failures.push(format!(
            "fuzz target {} did not run (no progress in logs/fuzz-{}.log)",
            t.name, t.name
        ));
    }
    let (canary, real): (Vec<&CrashRow>, Vec<&CrashRow>) =
        r.crashes.iter().partition(|c| c.is_canary(r));
    if let Some(bug) = &r.canary {
        match canary.len() {
            0 => failures.push(format!("canary: the seeded bug {bug} was not found")),
            1 => {}
            n => warnings.push(format!("canary: {n} signatures for one seeded bug")),
        }
        for c in &canary {
            if c.test_with_bug.as_deref() == Some("passes") {
                failures.push(format!(
                    "canary: the regression test of {} passes with the bug on",
                    c.signature
                ));
            }
            if c.test_current.as_deref() == Some("fails") {
                failures.push(format!(
                    "canary: the regression test of {} fails on the correct engine",
                    c.signature
                ));
            }
        }
    }
    for c in &real {
        if !c.known {
            failures.push(format!("new unique crash {}", c.headline()));
        }
        if c.test_current.as_deref() == Some("passes") {
            warnings.push(format!(
                "the regression test of {} passes: it does not reproduce the crash",
                c.signature
            ));
        }
    }
    for bug in &r.escaped {
        failures.push(format!("seeded bug escaped the benchmark: {bug}"));
    }
    if r.mutants.is_none() {
        warnings.push("no seeded-bug benchmark results (mutants/mutants.json)".into());
    }
    if r.explorer.is_none() {
        warnings.push("no explorer summary (explore/summary.json)".into());
    }
    if let Some(sanity) = r.explorer.as_ref().map(|e| &e["sanity"]) {
        let unexplained = sanity["unexplained_errors"].as_u64().unwrap_or(0);
        if unexplained > 0 {
            failures.push(format!(
                "the explorer saw {unexplained} engine error(s) no injected fault explains"
            ));
        }
        if sanity["commits_acked"].as_u64() == Some(0) {
            failures.push("the explorer's engine acknowledged no commit at all".into());
        }
    }
    // What a campaign never exercised: a failure under --strict-failpoints,
    // else a warning. A state never reached is a bug the suite cannot find.
    let reach_runs = format!("rare state(s) never reached in {} runs", r.reach_runs);
    let unexercised = [
        (
            "failpoint(s) never crashed at",
            &r.failpoints_never_crashed,
            true,
        ),
        (
            "fault kind(s) of the simulated disk never injected",
            &r.faults_never_injected,
            true,
        ),
        (reach_runs.as_str(), &r.reach_never, r.reach_runs > 0),
    ];
    for (what, never, counted) in unexercised {
        if !counted || never.is_empty() {
            continue;
        }
        let line = format!("{} {what}: {}", never.len(), never.join(", "));
        if strict_failpoints {
            failures.push(line);
        } else {
            warnings.push(line);
        }
    }
    for t in r.targets.iter().filter(|t| t.replay_failures > 0) {
        warnings.push(format!(
            "{}: {} of {} corpus inputs fail when replayed",
            t.name, t.replay_failures, t.replayed
        ));
    }
    // The nightly mutation shard warns; the weekly run of all of them
    // (`crashfuzz mutation-score`) fails on a new survivor.
    if let Some(m) = &r.mutation {
        if !m.baseline_ok {
            warnings.push("mutation run: the unmutated engine failed the gate".into());
        }
        for s in m.survivors.iter().filter(|s| !s.known) {
            warnings.push(format!("mutation run: new surviving mutant `{}`", s.name));
        }
    }
    r.ok = failures.is_empty();
    r.failures = failures;
    r.warnings = warnings;
}

// ---------------------------------------------------------------- plots

/// The window of the exec/s plots: fork mode reports executions when a job
/// ends, so a rate over less than a few jobs is noise.
fn rate_window(log: &FuzzLog) -> f64 {
    (log.total_secs() / 25.0).clamp(5.0, 60.0)
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn plot_err<E: std::fmt::Debug>(e: E) -> String {
    format!("plotting: {e:?}")
}

/// A line chart of several series over seconds.
fn line_chart(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), String> {
    let x_max = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let y_max = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(y_desc)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(plot_err)?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)
}

/// One target: edges and features on top, exec/s below.
fn target_chart(path: &Path, t: &TargetRow) -> Result<(), String> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let root = root
        .titled(&format!("fuzz target {}", t.name), ("sans-serif", 20))
        .map_err(plot_err)?;
    let (top, bottom) = root.split_vertically(270);
    let x_max = t.log.total_secs().max(1.0);
    let cov: Vec<(f64, f64)> = t
        .log
        .samples
        .iter()
        .map(|s| (s.secs, s.edges as f64))
        .collect();
    let ft: Vec<(f64, f64)> = t
        .log
        .samples
        .iter()
        .map(|s| (s.secs, s.features as f64))
        .collect();
    let rate = t.log.rate_series(rate_window(&t.log));
    for (area, series, y_desc) in [
        (
            &top,
            vec![
                ("edges (cov)", cov, COLORS[0]),
                ("features (ft)", ft, COLORS[1]),
            ],
            "count",
        ),
        (&bottom, vec![("exec/s", rate, COLORS[2])], "exec/s"),
    ] {
        let y_max = series
            .iter()
            .flat_map(|(_, pts, _)| pts.iter().map(|p| p.1))
            .fold(1.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc(y_desc)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(plot_err)?;
        for (name, points, color) in series {
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(plot_err)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
    }
    root.present().map_err(plot_err)
}

/// Horizontal bars per failpoint: hits (grey) and crashes (blue, red label
/// when never crashed at), on a log scale.
fn failpoint_chart(path: &Path, rows: &[FailpointRow]) -> Result<(), String> {
    let n = rows.len().max(1);
    let height = 110 + 22 * n as u32;
    let max = rows
        .iter()
        .map(|r| (r.explorer_hits + r.fuzz_hits).max(r.explorer_crashes + r.fuzz_crashes))
        .max()
        .unwrap_or(1)
        .max(10) as f64;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "failpoint coverage: hits (grey) and crashes taken (blue); red = never crashed at",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(260)
        .build_cartesian_2d((0.8f64..max * 2.0).log_scale(), 0f64..n as f64)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|v| {
            // A label at each bar's middle (i + 0.5), none between.
            let i = (n as f64 - v - 0.5).round();
            if (n as f64 - v - 0.5 - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("count (explorer + fuzz corpora, log scale)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(plot_err)?;
    let grey = RGBColor(190, 190, 190);
    for (i, r) in rows.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let hits = (r.explorer_hits + r.fuzz_hits) as f64;
        let crashes = (r.explorer_crashes + r.fuzz_crashes) as f64;
        if hits > 0.0 {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.8, y + 0.5), (hits.max(1.0), y + 0.9)],
                    grey.filled(),
                )))
                .map_err(plot_err)?;
        }
        if crashes > 0.0 {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.8, y + 0.1), (crashes.max(1.0), y + 0.5)],
                    COLORS[0].filled(),
                )))
                .map_err(plot_err)?;
        } else {
            chart
                .draw_series(std::iter::once(Text::new(
                    "NEVER CRASHED AT",
                    (1.0, y + 0.45),
                    ("sans-serif", 13).into_font().color(&RED),
                )))
                .map_err(plot_err)?;
        }
    }
    root.present().map_err(plot_err)
}

fn draw_plots(report: &mut Report, out: &Path) -> Result<(), String> {
    let plots = out.join("plots");
    std::fs::create_dir_all(&plots).map_err(|e| format!("{}: {e}", plots.display()))?;
    let ran: Vec<&TargetRow> = report.targets.iter().filter(|t| t.ran).collect();
    let cov: Vec<(String, Vec<(f64, f64)>)> = ran
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.log
                    .samples
                    .iter()
                    .map(|s| (s.secs, s.edges as f64))
                    .collect(),
            )
        })
        .collect();
    line_chart(
        &plots.join("coverage.svg"),
        "coverage edges over time",
        "edges (cov)",
        &cov,
    )?;
    report.plots.push("plots/coverage.svg".into());
    let rate: Vec<(String, Vec<(f64, f64)>)> = ran
        .iter()
        .map(|t| (t.name.clone(), t.log.rate_series(rate_window(&t.log))))
        .collect();
    line_chart(
        &plots.join("execs.svg"),
        "executions per second over time",
        "exec/s",
        &rate,
    )?;
    report.plots.push("plots/execs.svg".into());
    failpoint_chart(&plots.join("failpoints.svg"), &report.failpoints)?;
    report.plots.push("plots/failpoints.svg".into());
    for t in &ran {
        let name = format!("plots/target-{}.svg", t.name);
        target_chart(&out.join(&name), t)?;
        report.plots.push(name);
    }
    Ok(())
}

// ---------------------------------------------------------------- markdown

fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn opt_num(n: Option<u64>) -> String {
    n.map_or("–".into(), num)
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report.
pub fn to_markdown(r: &Report) -> String {
    let mut md = String::new();
    md_summary(&mut md, r);
    md_targets(&mut md, r);
    md_explorer(&mut md, r);
    md_failpoints(&mut md, r);
    md_mutants(&mut md, r);
    md_exhaust(&mut md, r);
    if let Some(score) = &r.mutation {
        md.push_str(&crate::mutation::to_markdown(score, &r.mutation_history));
    }
    md_crashes(&mut md, r);
    md
}

fn md_summary(md: &mut String, r: &Report) {
    let get = |k: &str| r.campaign.get(k).map_or("?", String::as_str);
    let _ = writeln!(md, "# crashfuzz nightly campaign, {}\n", get("started"));
    let _ = writeln!(
        md,
        "Commit `{}`, budget {} s, {} job(s): {} s of fuzzing per target, {} s of \
         exploration, up to {} s per seeded bug; wall time {} s (builds {} s).{}\n",
        get("commit"),
        get("budget_secs"),
        get("jobs"),
        get("fuzz_secs_per_target"),
        get("explore_secs"),
        get("mutants_secs_per_bug"),
        get("wall_secs"),
        get("build_secs"),
        r.canary.as_ref().map_or(String::new(), |m| format!(
            " **Canary campaign: the seeded bug `{m}` is on** in the fuzz targets, \
             the explorer, repro and minimize."
        ))
    );
    let _ = writeln!(md, "**Verdict: {}.**\n", if r.ok { "PASS" } else { "FAIL" });
    for f in &r.failures {
        let _ = writeln!(md, "- {f}");
    }
    if !r.failures.is_empty() {
        md.push('\n');
    }
    if !r.warnings.is_empty() {
        md.push_str("Warnings:\n\n");
        for w in &r.warnings {
            let _ = writeln!(md, "- {w}");
        }
        md.push('\n');
    }
    let crashed = r.failpoints.iter().filter(|f| f.crashed).count();
    let execs: u64 = r.targets.iter().map(|t| t.execs).sum();
    let detected = r.mutants.as_ref().map_or("–".into(), |m| {
        format!("{} of {}", m["detected"], m["total"])
    });
    let _ = writeln!(
        md,
        "| | |\n|---|---|\n| fuzz targets run | {} of {} |\n| fuzz executions | {} |\n\
         | unique crashes | {} |\n| failpoints crashed at | {crashed} of {} |\n\
         | seeded bugs detected | {detected} |\n",
        r.targets.iter().filter(|t| t.ran).count(),
        r.targets.len(),
        num(execs),
        r.crashes.len(),
        r.failpoints.len(),
    );
}

fn md_targets(md: &mut String, r: &Report) {
    md.push_str("## Fuzz targets\n\n");
    md.push_str(
        "| target | time (s) | execs | exec/s | edges | features | corpus files (restored → \
         fuzzed → cmin) | corpus bytes | crash artifacts | unique crashes |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for t in &r.targets {
        if !t.ran {
            let _ = writeln!(md, "| `{}` | **did not run** | | | | | | | | |", t.name);
            continue;
        }
        let crashes: Vec<String> = t.new_crashes.iter().map(|s| format!("`{s}`")).collect();
        let _ = writeln!(
            md,
            "| `{}` | {:.0} | {} | {:.0} | {} | {} | {} → {} → {} | {} | {} | {} |",
            t.name,
            t.secs,
            num(t.execs),
            t.execs_per_sec,
            num(t.edges),
            num(t.features),
            opt_num(t.corpus_before),
            opt_num(t.corpus_after_fuzz),
            num(t.corpus_files),
            num(t.corpus_bytes),
            t.crash_artifacts,
            if crashes.is_empty() {
                "0".to_string()
            } else {
                crashes.join(" ")
            }
        );
    }
    md.push_str(
        "\nEdges and features are libFuzzer's (`cov:` and `ft:`); exec/s is over the whole \
         run, the plots show it over time.\n\n",
    );
    for p in r.plots.iter().filter(|p| !p.contains("failpoints")) {
        let _ = writeln!(md, "![{p}]({p})");
    }
    md.push('\n');
}

fn md_explorer(md: &mut String, r: &Report) {
    md.push_str("## Stable explorer\n\n");
    let Some(e) = &r.explorer else {
        md.push_str("Not run.\n\n");
        return;
    };
    let failure = match e["failure"].as_object() {
        Some(f) => format!(
            "**failure** {} [{}], signature `{}`",
            f.get("kind").and_then(|v| v.as_str()).unwrap_or("?"),
            f.get("invariant").and_then(|v| v.as_str()).unwrap_or("?"),
            f.get("signature").and_then(|v| v.as_str()).unwrap_or("?"),
        ),
        None => "no failure".into(),
    };
    let _ = writeln!(
        md,
        "Seed {}: {} scenarios in {:.0} s ({:.0}/s), {} crash states checked, {} oracle \
         checks, failpoints hit {}/{}, crashed at {}/{}; {failure}.\n",
        e["seed"],
        num(e["iterations"].as_u64().unwrap_or(0)),
        e["elapsed_secs"].as_f64().unwrap_or(0.0),
        e["execs_per_sec"].as_f64().unwrap_or(0.0),
        num(e["crash_states"].as_u64().unwrap_or(0)),
        num(e["checks"].as_u64().unwrap_or(0)),
        e["failpoints_hit"],
        e["failpoints_total"],
        e["failpoints_crashed"],
        e["failpoints_total"],
    );
    if let Some(sanity) = e["sanity"].as_object() {
        md.push_str("Sanity counters (what the engine acknowledged, refused and aborted, by cause):\n\n| counter | value |\n|---|---|\n");
        for (name, value) in sanity {
            let _ = writeln!(md, "| {name} | {} |", num(value.as_u64().unwrap_or(0)));
        }
        md.push('\n');
    }
}

fn md_failpoints(md: &mut String, r: &Report) {
    md.push_str("## Failpoints\n\n");
    let crashed = r.failpoints.iter().filter(|f| f.crashed).count();
    let never = if r.failpoints_never_crashed.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = r
            .failpoints_never_crashed
            .iter()
            .map(|f| format!("`{f}`"))
            .collect();
        format!(" **Never crashed at: {}.**", names.join(", "))
    };
    let _ = writeln!(
        md,
        "{crashed} of {} catalog failpoints crashed at: by the explorer, and by each fuzz \
         target's corpus replayed through `crashfuzz`.{never}\n",
        r.failpoints.len(),
    );
    md.push_str(
        "| failpoint | at | explorer hits | explorer crashes | fuzz hits | fuzz crashes | \
         fuzz crashes by target | |\n|---|---|---|---|---|---|---|---|\n",
    );
    for f in &r.failpoints {
        let by: Vec<String> = f
            .fuzz_crashes_by_target
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            f.name,
            f.at.join(", "),
            num(f.explorer_hits),
            num(f.explorer_crashes),
            num(f.fuzz_hits),
            num(f.fuzz_crashes),
            by.join(", "),
            if f.crashed { "" } else { "**NEVER CRASHED**" }
        );
    }
    let fuzz_never: Vec<String> = r
        .failpoints
        .iter()
        .filter(|f| f.crashed && f.fuzz_crashes == 0)
        .map(|f| format!("`{}`", f.name))
        .collect();
    if !fuzz_never.is_empty() && r.targets.iter().any(|t| t.replayed > 0) {
        let _ = writeln!(
            md,
            "\nCrashed at by the explorer only, never by the fuzz corpora: {}.",
            fuzz_never.join(", ")
        );
    }
    if let Some(p) = r.plots.iter().find(|p| p.contains("failpoints")) {
        let _ = writeln!(md, "\n![failpoint coverage]({p})\n");
    }
    if !r.io_crashes.is_empty() {
        let parts: Vec<String> = r
            .io_crashes
            .iter()
            .map(|(k, n)| format!("`{k}` {}", num(*n)))
            .collect();
        let _ = writeln!(md, "Crashes per I/O trigger: {}.\n", parts.join(", "));
    }
    md.push_str("### Faults of the simulated disk\n\n| fault kind | injected |\n|---|---|\n");
    for (kind, n) in &r.faults {
        let flag = if *n == 0 { " **NEVER INJECTED**" } else { "" };
        let _ = writeln!(md, "| `{kind}` | {}{flag} |", num(*n));
    }
    md.push('\n');
    if r.reach_runs > 0 {
        let _ = writeln!(
            md,
            "### Rare states\n\nShare of {} runs (explorer and corpus replays) that \
             reached each state (`harness::reach`).\n\n| state | runs | share |\n|---|---|---|",
            num(r.reach_runs)
        );
        for (state, n) in &r.reach {
            let share = *n as f64 / r.reach_runs as f64;
            let flag = if *n == 0 {
                " **NEVER REACHED**"
            } else if share < 0.01 {
                " (below 1%)"
            } else {
                ""
            };
            let _ = writeln!(
                md,
                "| `{state}` | {} | {:.2}%{flag} |",
                num(*n),
                share * 100.0
            );
        }
        md.push('\n');
    }
}

fn md_exhaust(md: &mut String, r: &Report) {
    md.push_str("## Bounded-exhaustive check\n\n");
    let Some(e) = r.exhaust.as_ref() else {
        md.push_str("Not run.\n\n");
        return;
    };
    let reached = match e["longest_complete"].as_u64() {
        Some(l) => format!("every workload of <= {l} ops"),
        None => "not even the empty workload".to_string(),
    };
    md.push_str(&format!(
        "Bound asked: {} ops; bound reached: {reached} (items {} of {}).\n\n{}\n\n",
        e["max_ops"],
        e["next"],
        e["total_items"],
        e["statement"].as_str().unwrap_or("")
    ));
}

fn md_mutants(md: &mut String, r: &Report) {
    md.push_str("## Seeded bugs (mutation table)\n\n");
    let Some(rows) = r.mutants.as_ref().and_then(|m| m["mutants"].as_array()) else {
        md.push_str("Not run.\n\n");
        return;
    };
    md.push_str(
        "| # | seeded bug | detected | median time (s) | median scenarios | kind | invariant \
         | steps (raw → min) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (i, m) in rows.iter().enumerate() {
        let s = |k: &str| m[k].as_str().map_or("–".to_string(), String::from);
        let detected = if m["detected"].as_bool() == Some(true) {
            format!("{}/{}", m["detections"], m["seeds"])
        } else {
            "**ESCAPED**".into()
        };
        let steps = match (m["raw_steps"].as_u64(), m["min_steps"].as_u64()) {
            (Some(a), Some(b)) => format!("{a} → {b}"),
            _ => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {} | `{}` | {detected} | {} | {} | {} | {} | {steps} |",
            i + 1,
            s("name"),
            m["median_secs"]
                .as_f64()
                .map_or("–".into(), |v| format!("{v:.2}")),
            m["median_scenarios"]
                .as_f64()
                .map_or("–".into(), |v| format!("{v:.0}")),
            s("kind"),
            s("invariant"),
        );
    }
    let detected = rows
        .iter()
        .filter(|m| m["detected"].as_bool() == Some(true))
        .count();
    let _ = writeln!(md, "\n{detected} of {} seeded bugs detected.\n", rows.len());
}

fn md_crashes(md: &mut String, r: &Report) {
    md.push_str("## Unique crashes\n\n");
    if r.crashes.is_empty() {
        md.push_str("None.\n\n");
        return;
    }
    md.push_str(
        "One per signature: failure kind, invariant and crash point (the failpoint of the \
         crash, where crashes leaving the same disk state are one point; see ci/README.md), \
         hashed. Paths are relative to this report's directory.\n\n",
    );
    for c in &r.crashes {
        let status = if c.is_canary(r) {
            "the canary".to_string()
        } else if c.known {
            "known".to_string()
        } else if c.campaigns <= 1 {
            "**NEW**".to_string()
        } else {
            format!("**untriaged**, seen in {} campaigns", c.campaigns)
        };
        let _ = writeln!(md, "### `{}` ({status})\n", c.headline());
        if let Some(m) = &c.message {
            let _ = writeln!(md, "> {}\n", cell(m));
        }
        let _ = writeln!(
            md,
            "- found by {} ({} artifact(s){}); first seen {}; {}",
            c.found_by.join(", "),
            c.artifacts,
            if c.failpoints.len() > 1 {
                format!(", crash failpoints {}", c.failpoints.join(", "))
            } else {
                String::new()
            },
            c.first_seen.as_deref().unwrap_or("?"),
            if c.reproduced {
                "reproduces"
            } else {
                "**did not reproduce**"
            }
        );
        if c.needs_bug == Some(false) {
            md.push_str("- **fails without the seeded bug too: a real crash**\n");
        }
        if let (Some(a), Some(b)) = (c.steps_before, c.steps_after) {
            let _ = writeln!(md, "- minimized from {a} to {b} steps");
        }
        for (what, path) in [
            ("artifact", &c.artifact),
            ("minimized artifact", &c.minimized),
            ("regression test", &c.regression_test),
        ] {
            if let Some(p) = path {
                let _ = writeln!(md, "- {what}: [`{p}`]({p})");
            }
        }
        if let Some(with_bug) = &c.test_with_bug {
            let _ = writeln!(
                md,
                "- regression test run with the seeded bug on: **{with_bug}**"
            );
        }
        if let Some(current) = &c.test_current {
            let _ = writeln!(
                md,
                "- regression test run on the engine as it is: **{current}**"
            );
        }
        let _ = writeln!(md, "- replay: `{}`", c.replay);
        if let Some(min) = &c.minimized {
            let _ = writeln!(
                md,
                "- keep it as a regression artifact (replayed by `cargo test`): \
                 `cp {min} harness/regressions/{}--nightly-{}.bin`",
                c.target, c.signature
            );
        }
        md.push('\n');
        if let Some(s) = &c.scenario {
            let _ = writeln!(
                md,
                "<details><summary>minimized scenario</summary>\n\n```text\n{s}\n```\n</details>\n"
            );
        }
    }
}

/// Build the report and write report.md, report.json and the plots.
pub fn write(args: &ReportArgs) -> Result<Report, String> {
    let mut report = build(args)?;
    let out = args.out.clone().unwrap_or_else(|| args.campaign.clone());
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    draw_plots(&mut report, &out)?;
    let md = to_markdown(&report);
    std::fs::write(out.join("report.md"), md).map_err(|e| format!("writing report.md: {e}"))?;
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(out.join("report.json"), json)
        .map_err(|e| format!("writing report.json: {e}"))?;
    Ok(report)
}

/// The `report` subcommand: exit 0 when the verdict passes, 1 when not.
pub fn cmd(args: &ReportArgs) -> Result<u8, String> {
    let report = write(args)?;
    let out = args.out.as_ref().unwrap_or(&args.campaign);
    println!(
        "report: {} ({} targets, {} failpoints, {} unique crash(es))",
        out.join("report.md").display(),
        report.targets.len(),
        report.failpoints.len(),
        report.crashes.len()
    );
    if report.ok {
        println!("verdict: PASS");
    } else {
        println!("verdict: FAIL");
        for f in &report.failures {
            println!("  {f}");
        }
    }
    for w in &report.warnings {
        println!("  warning: {w}");
    }
    Ok(if report.ok { 0 } else { 1 })
}
