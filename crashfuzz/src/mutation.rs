//! The independent mutation score (issue #20): cargo-mutants' mechanical
//! mutants of the engine's core files, each tested by the mutation gate
//! (`harness/tests/mutation_gate.rs`), read back from cargo-mutants'
//! `mutants.out/outcomes.json`.
//!
//! The score is caught / (viable − equivalent): a mutant that fails to build
//! is unviable and does not count; a timeout is caught (a hang the suite
//! turned into a failure); equivalent mutants are excluded before the run by
//! `exclude_re` in `.cargo/mutants.toml`, one argued line each, so every
//! viable mutant in the outcomes counts. A survivor is *known* when its key
//! (the mutant's name without line and column, so that edits elsewhere in the
//! file do not change it) is in the known-survivors file: a real blind spot
//! already triaged. A survivor not in that file fails `crashfuzz
//! mutation-score` (exit 1), and with it the weekly job.
//!
//! `ci/mutants.sh` runs cargo-mutants and then this. The campaign report
//! shows the same figures from `<campaign>/mutation/` ([`for_report`]).

use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

/// Why the outcomes, the known list or the history could not be read.
#[derive(Debug)]
pub enum MutationError {
    /// The file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// JSON, but not cargo-mutants' outcomes (or a malformed history line).
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

impl fmt::Display for MutationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MutationError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            MutationError::Json { path, source } => {
                write!(f, "{}: not JSON: {source}", path.display())
            }
            MutationError::Format { path, what } => write!(f, "{}: {what}", path.display()),
        }
    }
}

impl std::error::Error for MutationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MutationError::Io { source, .. } => Some(source),
            MutationError::Json { source, .. } => Some(source),
            MutationError::Format { .. } => None,
        }
    }
}

/// What became of one mutant (cargo-mutants' `summary`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The gate failed: the suite caught it.
    Caught,
    /// The gate passed: a survivor.
    Missed,
    /// The gate ran past cargo-mutants' timeout: a hang, caught.
    Timeout,
    /// It did not build: does not count.
    Unviable,
}

impl Verdict {
    fn parse(s: &str) -> Option<Verdict> {
        Some(match s {
            "CaughtMutant" => Verdict::Caught,
            "MissedMutant" => Verdict::Missed,
            "Timeout" => Verdict::Timeout,
            "Unviable" => Verdict::Unviable,
            _ => return None,
        })
    }
}

/// One mutant's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MutantOutcome {
    /// cargo-mutants' name: `file:line:col: replace ... with ...`.
    pub name: String,
    /// The name without line and column (see [`key`]).
    pub key: String,
    /// The source file.
    pub file: String,
    /// What became of it.
    pub verdict: Verdict,
    /// Seconds of build and test.
    pub secs: f64,
}

/// A whole cargo-mutants run, as read from outcomes.json.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MutationRun {
    /// cargo-mutants' version.
    pub cargo_mutants_version: String,
    /// When the run ended (cargo-mutants' timestamp), if it did.
    pub end_time: Option<String>,
    /// Whether the unmutated tree passed the gate (false: nothing counts).
    /// True when cargo-mutants ran no baseline (`--baseline=skip`:
    /// ci/mutants.sh runs the gate on the unmutated tree before it).
    pub baseline_ok: bool,
    /// Seconds of the unmutated tree's build and test.
    pub baseline_secs: f64,
    /// Every mutant, in the order cargo-mutants tested them.
    pub mutants: Vec<MutantOutcome>,
}

/// The key of a mutant name: the name without its `:line:col`, so that the
/// known-survivors file survives edits elsewhere in the file.
/// `engine/src/doc.rs:42:5: replace f -> bool with true` →
/// `engine/src/doc.rs: replace f -> bool with true`.
pub fn key(name: &str) -> String {
    let mut parts = name.splitn(4, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(file), Some(line), Some(col), Some(rest))
            if line.parse::<u64>().is_ok() && col.parse::<u64>().is_ok() =>
        {
            format!("{file}:{rest}")
        }
        _ => name.to_string(),
    }
}

/// Parse the text of outcomes.json (`path` names it in errors).
pub fn parse_outcomes(text: &str, path: &Path) -> Result<MutationRun, MutationError> {
    let bad = |what: String| MutationError::Format {
        path: path.to_path_buf(),
        what,
    };
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|source| MutationError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    let outcomes = json["outcomes"]
        .as_array()
        .ok_or_else(|| bad("no \"outcomes\" array: not cargo-mutants' outcomes.json".into()))?;
    let mut run = MutationRun {
        baseline_ok: true,
        cargo_mutants_version: json["cargo_mutants_version"]
            .as_str()
            .unwrap_or("?")
            .to_string(),
        end_time: json["end_time"].as_str().map(String::from),
        ..MutationRun::default()
    };
    for (i, o) in outcomes.iter().enumerate() {
        let summary = o["summary"]
            .as_str()
            .ok_or_else(|| bad(format!("outcome {i}: no \"summary\"")))?;
        let secs: f64 = o["phase_results"]
            .as_array()
            .map(|phases| phases.iter().filter_map(|p| p["duration"].as_f64()).sum())
            .unwrap_or(0.0);
        let scenario = &o["scenario"];
        if scenario.as_str() == Some("Baseline") {
            run.baseline_ok = summary == "Success";
            run.baseline_secs += secs;
            continue;
        }
        let mutant = &scenario["Mutant"];
        let name = mutant["name"].as_str().ok_or_else(|| {
            bad(format!(
                "outcome {i}: neither the baseline nor a named mutant"
            ))
        })?;
        let verdict = Verdict::parse(summary)
            .ok_or_else(|| bad(format!("outcome {i} ({name}): unknown summary {summary:?}")))?;
        run.mutants.push(MutantOutcome {
            name: name.to_string(),
            key: key(name),
            file: mutant["file"].as_str().unwrap_or("?").to_string(),
            verdict,
            secs,
        });
    }
    Ok(run)
}

/// Read outcomes.json: `path` is the file, a `mutants.out/` directory, or
/// the directory holding `mutants.out/`.
pub fn read_outcomes(path: &Path) -> Result<MutationRun, MutationError> {
    let file = if path.is_dir() {
        let inner = path.join("outcomes.json");
        if inner.is_file() {
            inner
        } else {
            path.join("mutants.out/outcomes.json")
        }
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| MutationError::Io {
        path: file.clone(),
        source,
    })?;
    parse_outcomes(&text, &file)
}

/// Read a known-survivors file: one key per line ([`key`]; a full name with
/// line and column is accepted too), `#` starts a comment.
pub fn read_known(path: &Path) -> Result<BTreeSet<String>, MutationError> {
    let text = std::fs::read_to_string(path).map_err(|source| MutationError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_known(&text))
}

/// The keys of a known-survivors file's text.
pub fn parse_known(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.split_once('#').map_or(l, |(k, _)| k).trim())
        .filter(|l| !l.is_empty())
        .map(key)
        .collect()
}

/// A surviving mutant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Survivor {
    /// cargo-mutants' name.
    pub name: String,
    /// In the known-survivors file (a triaged blind spot).
    pub known: bool,
}

/// The score of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Score {
    /// A label (e.g. `shard 3/16`, `all`).
    pub label: String,
    /// When the run ended.
    pub end_time: Option<String>,
    /// Whether the unmutated tree passed the gate.
    pub baseline_ok: bool,
    /// Mutants tested.
    pub mutants: u64,
    /// Caught by the gate.
    pub caught: u64,
    /// Timed out (counted as caught).
    pub timeout: u64,
    /// Survived.
    pub missed: u64,
    /// Did not build.
    pub unviable: u64,
    /// caught + timeout + missed (equivalents are excluded before the run).
    pub viable: u64,
    /// (caught + timeout) / viable, in percent; `None` with nothing viable.
    pub percent: Option<f64>,
    /// Mean seconds of build and test per mutant.
    pub secs_per_mutant: f64,
    /// Seconds of every mutant plus the baseline.
    pub total_secs: f64,
    /// The survivors.
    pub survivors: Vec<Survivor>,
    /// Survivors not in the known list: each fails the weekly job.
    pub new_survivors: u64,
}

impl Score {
    /// Score `run` against the known survivors.
    pub fn of(run: &MutationRun, known: &BTreeSet<String>, label: &str) -> Score {
        let count = |v: Verdict| run.mutants.iter().filter(|m| m.verdict == v).count() as u64;
        let (caught, timeout, missed, unviable) = (
            count(Verdict::Caught),
            count(Verdict::Timeout),
            count(Verdict::Missed),
            count(Verdict::Unviable),
        );
        let viable = caught + timeout + missed;
        let mutant_secs: f64 = run.mutants.iter().map(|m| m.secs).sum();
        let survivors: Vec<Survivor> = run
            .mutants
            .iter()
            .filter(|m| m.verdict == Verdict::Missed)
            .map(|m| Survivor {
                name: m.name.clone(),
                known: known.contains(&m.key),
            })
            .collect();
        Score {
            label: label.to_string(),
            end_time: run.end_time.clone(),
            baseline_ok: run.baseline_ok,
            mutants: run.mutants.len() as u64,
            caught,
            timeout,
            missed,
            unviable,
            viable,
            percent: (viable > 0).then(|| 100.0 * (caught + timeout) as f64 / viable as f64),
            secs_per_mutant: mutant_secs / (run.mutants.len().max(1) as f64),
            total_secs: mutant_secs + run.baseline_secs,
            new_survivors: survivors.iter().filter(|s| !s.known).count() as u64,
            survivors,
        }
    }

    /// Whether the run passes: the baseline passed and no survivor is new.
    pub fn passes(&self) -> bool {
        self.baseline_ok && self.new_survivors == 0
    }

    /// One history line: `end_time label caught timeout missed unviable
    /// secs_per_mutant`, tab-separated.
    pub fn history_line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{:.1}",
            self.end_time.as_deref().unwrap_or("?"),
            self.label,
            self.caught,
            self.timeout,
            self.missed,
            self.unviable,
            self.secs_per_mutant
        )
    }
}

/// One past run, from the history file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// When it ended.
    pub end_time: String,
    /// Its label.
    pub label: String,
    /// Caught + timeout.
    pub caught: u64,
    /// Viable mutants.
    pub viable: u64,
    /// Survivors.
    pub missed: u64,
    /// Mean seconds per mutant.
    pub secs_per_mutant: f64,
}

impl HistoryEntry {
    /// The score in percent.
    pub fn percent(&self) -> Option<f64> {
        (self.viable > 0).then(|| 100.0 * self.caught as f64 / self.viable as f64)
    }
}

/// Parse a history file ([`Score::history_line`] per line; `#` comments).
pub fn parse_history(text: &str, path: &Path) -> Result<Vec<HistoryEntry>, MutationError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
        let (Some(caught), Some(timeout), Some(missed), Some(_unviable), Some(secs)) = (
            num(2),
            num(3),
            num(4),
            num(5),
            f.get(6).and_then(|s| s.parse::<f64>().ok()),
        ) else {
            return Err(MutationError::Format {
                path: path.to_path_buf(),
                what: format!(
                    "line {}: expected end_time, label, caught, timeout, missed, unviable, \
                     secs_per_mutant (tab-separated)",
                    n + 1
                ),
            });
        };
        out.push(HistoryEntry {
            end_time: f[0].to_string(),
            label: f[1].to_string(),
            caught: caught + timeout,
            viable: caught + timeout + missed,
            missed,
            secs_per_mutant: secs,
        });
    }
    Ok(out)
}

fn pct(p: Option<f64>) -> String {
    p.map_or("–".into(), |p| format!("{p:.1}%"))
}

/// The Markdown section: the score, time per mutant, the survivors, and
/// the trend over `history` (older runs first; the current run is not in
/// it).
pub fn to_markdown(score: &Score, history: &[HistoryEntry]) -> String {
    let mut md = String::new();
    md.push_str("## Mutation score (cargo-mutants, issue #20)\n\n");
    if !score.baseline_ok {
        md.push_str("**The unmutated engine failed the mutation gate**: no mutant was scored.\n\n");
    }
    let _ = writeln!(
        md,
        "Run `{}`: **{}** = {} caught ({} by timeout) of {} viable (equivalent mutants \
         excluded by `.cargo/mutants.toml`); {} unviable; {} mutants in {:.0} s, **{:.1} s \
         per mutant**.\n",
        score.label,
        pct(score.percent),
        score.caught + score.timeout,
        score.timeout,
        score.viable,
        score.unviable,
        score.mutants,
        score.total_secs,
        score.secs_per_mutant
    );
    if let Some(prev) = history.iter().rev().find(|h| h.label == score.label) {
        let delta = match (score.percent, prev.percent()) {
            (Some(a), Some(b)) => format!("{:+.1} points", a - b),
            _ => "–".into(),
        };
        let _ = writeln!(
            md,
            "Trend: {delta} since the last run of `{}` ({}, {}).\n",
            prev.label,
            prev.end_time,
            pct(prev.percent())
        );
    }
    if score.survivors.is_empty() {
        md.push_str("No surviving mutant.\n\n");
    } else {
        md.push_str("| surviving mutant | triage |\n|---|---|\n");
        for s in &score.survivors {
            let triage = if s.known {
                "known blind spot (ci/mutants-known-survivors.txt)"
            } else {
                "**NEW**: kill it, or argue it equivalent in .cargo/mutants.toml"
            };
            let _ = writeln!(md, "| `{}` | {triage} |", s.name.replace('|', "\\|"));
        }
        md.push('\n');
    }
    if !history.is_empty() {
        md.push_str("| run | ended | score | survivors | s/mutant |\n|---|---|---|---|---|\n");
        for h in history.iter().rev().take(14).rev() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1} |",
                h.label,
                h.end_time,
                pct(h.percent()),
                h.missed,
                h.secs_per_mutant
            );
        }
        md.push('\n');
    }
    md
}

/// What the campaign report shows: the score of
/// `<campaign>/mutation/mutants.out/outcomes.json` against
/// `<campaign>/mutation/known-survivors.txt`, labelled by
/// `<campaign>/mutation/label.txt`, with `<campaign>/mutation/history.tsv`
/// as the trend (`ci/mutants.sh --out <campaign>/mutation` writes them).
/// `None` when no mutation run is in the campaign; an error when one is
/// there but unreadable.
pub fn for_report(campaign: &Path) -> Result<Option<(Score, Vec<HistoryEntry>)>, MutationError> {
    let dir = campaign.join("mutation");
    let outcomes = dir.join("mutants.out/outcomes.json");
    if !outcomes.is_file() {
        return Ok(None);
    }
    let run = read_outcomes(&outcomes)?;
    let known_path = dir.join("known-survivors.txt");
    let known = if known_path.is_file() {
        read_known(&known_path)?
    } else {
        BTreeSet::new()
    };
    let label = std::fs::read_to_string(dir.join("label.txt"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "all".into());
    let history_path = dir.join("history.tsv");
    let mut history = match std::fs::read_to_string(&history_path) {
        Ok(text) => parse_history(&text, &history_path)?,
        Err(_) => Vec::new(),
    };
    let score = Score::of(&run, &known, &label);
    // The history file may already hold this run (ci/mutants.sh appends it).
    if history
        .last()
        .is_some_and(|h| Some(&h.end_time) == score.end_time.as_ref() && h.label == score.label)
    {
        history.pop();
    }
    Ok(Some((score, history)))
}

/// Arguments of `crashfuzz mutation-score`.
#[derive(clap::Args, Clone, Debug)]
pub struct ScoreArgs {
    /// cargo-mutants' outcomes.json, its `mutants.out/` directory, or the
    /// directory holding `mutants.out/`.
    pub outcomes: PathBuf,
    /// Known survivors (triaged blind spots), one mutant per line without
    /// line:col, `#` comments: listed, but they do not fail the run.
    #[arg(long)]
    pub known: Option<PathBuf>,
    /// A label for this run (`shard 3/16`; default `all`).
    #[arg(long, default_value = "all")]
    pub label: String,
    /// A history file: the trend is read from it and this run appended.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Write the score as JSON here.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// Write the Markdown section here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

fn write_file(path: &Path, text: &str) -> Result<(), MutationError> {
    std::fs::write(path, text).map_err(|source| MutationError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `crashfuzz mutation-score`: print the score and the survivors; exit 0
/// when the baseline passed and every survivor is known, 1 otherwise.
pub fn cmd(args: &ScoreArgs) -> Result<u8, MutationError> {
    let run = read_outcomes(&args.outcomes)?;
    let known = match &args.known {
        Some(p) => read_known(p)?,
        None => BTreeSet::new(),
    };
    let score = Score::of(&run, &known, &args.label);
    let history_text = match &args.history {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(MutationError::Io {
                    path: p.clone(),
                    source,
                })
            }
        },
        None => String::new(),
    };
    let history = match &args.history {
        Some(p) => parse_history(&history_text, p)?,
        None => Vec::new(),
    };
    let md = to_markdown(&score, &history);
    print!("{md}");
    if let Some(p) = &args.markdown {
        write_file(p, &md)?;
    }
    if let Some(p) = &args.json_out {
        let json = serde_json::to_string_pretty(&score).expect("a score serializes");
        write_file(p, &json)?;
    }
    if let Some(p) = &args.history {
        let mut text = history_text;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&score.history_line());
        text.push('\n');
        write_file(p, &text)?;
    }
    if !score.baseline_ok {
        println!("verdict: FAIL (the unmutated engine fails the gate)");
    } else if score.new_survivors > 0 {
        println!(
            "verdict: FAIL ({} surviving mutant(s) neither killed nor argued equivalent)",
            score.new_survivors
        );
    } else {
        println!("verdict: PASS");
    }
    Ok(if score.passes() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../tests/data/mutation-outcomes.json");

    fn fixture() -> MutationRun {
        parse_outcomes(FIXTURE, Path::new("fixture")).expect("the fixture parses")
    }

    #[test]
    fn key_drops_line_and_column_only() {
        assert_eq!(
            key("engine/src/doc.rs:42:5: replace f -> bool with true"),
            "engine/src/doc.rs: replace f -> bool with true"
        );
        assert_eq!(key("no position: here"), "no position: here");
        assert_eq!(key("a.rs:x:5: y"), "a.rs:x:5: y");
    }

    #[test]
    fn fixture_is_read_verdict_by_verdict() {
        let run = fixture();
        assert!(run.baseline_ok);
        assert_eq!(run.cargo_mutants_version, "27.1.0");
        let verdicts: Vec<Verdict> = run.mutants.iter().map(|m| m.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Caught,
                Verdict::Missed,
                Verdict::Unviable,
                Verdict::Timeout,
                Verdict::Caught,
                Verdict::Missed
            ]
        );
        assert_eq!(run.mutants[0].file, "engine/src/btree.rs");
        assert!((run.mutants[0].secs - 12.5).abs() < 1e-9, "build + test");
        assert!((run.baseline_secs - 100.0).abs() < 1e-9);
    }

    #[test]
    fn score_counts_timeouts_as_caught_and_ignores_unviable() {
        let known = parse_known(
            "# triaged\nengine/src/store.rs: replace Store::x -> bool with false  # why\n",
        );
        let score = Score::of(&fixture(), &known, "shard 0/16");
        assert_eq!(
            (score.caught, score.timeout, score.missed, score.unviable),
            (2, 1, 2, 1)
        );
        assert_eq!(score.viable, 5);
        assert_eq!(score.percent, Some(60.0));
        assert_eq!(score.mutants, 6);
        assert_eq!(score.survivors.len(), 2);
        assert!(score.survivors[0].known, "{:?}", score.survivors);
        assert!(!score.survivors[1].known);
        assert_eq!(score.new_survivors, 1);
        assert!(!score.passes());
        let all_known: BTreeSet<String> = score.survivors.iter().map(|s| key(&s.name)).collect();
        assert!(Score::of(&fixture(), &all_known, "x").passes());
    }

    #[test]
    fn a_failed_baseline_never_passes() {
        let text = FIXTURE.replacen("\"Success\"", "\"Failure\"", 1);
        let run = parse_outcomes(&text, Path::new("f")).unwrap();
        assert!(!run.baseline_ok);
        let keys: BTreeSet<String> = run.mutants.iter().map(|m| m.key.clone()).collect();
        assert!(!Score::of(&run, &keys, "x").passes());
    }

    #[test]
    fn bad_files_are_typed_errors() {
        let p = Path::new("x.json");
        assert!(matches!(
            parse_outcomes("{not json", p),
            Err(MutationError::Json { .. })
        ));
        assert!(matches!(
            parse_outcomes("{\"outcomes\": 3}", p),
            Err(MutationError::Format { .. })
        ));
        let no_baseline = r#"{"outcomes": [{"scenario": {"Mutant": {"name": "a.rs:1:1: m"}}, "summary": "CaughtMutant"}]}"#;
        let run = parse_outcomes(no_baseline, p).expect("--baseline=skip: no baseline outcome");
        assert!(run.baseline_ok);
        assert_eq!(run.mutants[0].verdict, Verdict::Caught);
        let nameless = r#"{"outcomes": [{"scenario": {"Mutant": {}}, "summary": "CaughtMutant"}]}"#;
        let err = parse_outcomes(nameless, p).unwrap_err();
        assert!(err.to_string().contains("outcome 0"), "{err}");
        let odd = r#"{"outcomes": [{"scenario": "Baseline", "summary": "Success"},
            {"scenario": {"Mutant": {"name": "a.rs:1:1: m"}}, "summary": "Exploded"}]}"#;
        let err = parse_outcomes(odd, p).unwrap_err();
        assert!(err.to_string().contains("Exploded"), "{err}");
        assert!(matches!(
            read_outcomes(Path::new("/nonexistent/outcomes.json")),
            Err(MutationError::Io { .. })
        ));
    }

    #[test]
    fn history_round_trips_and_shows_the_trend() {
        let score = Score::of(&fixture(), &BTreeSet::new(), "shard 0/16");
        let line = score.history_line();
        let history = parse_history(
            &format!("# end\tlabel\n2026-12-01\tshard 0/16\t4\t0\t1\t0\t20.0\n{line}\n"),
            Path::new("h"),
        )
        .unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].percent(), Some(80.0));
        assert_eq!(history[1].percent(), Some(60.0));
        let md = to_markdown(&score, &history[..1]);
        assert!(md.contains("**60.0%**"), "{md}");
        assert!(md.contains("-20.0 points"), "{md}");
        assert!(md.contains("**NEW**"), "{md}");
        assert!(parse_history("a\tb\tc\n", Path::new("h")).is_err());
    }
}
