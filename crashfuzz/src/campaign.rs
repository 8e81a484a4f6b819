//! `crashfuzz campaign`: the nightly crash-consistency campaign, what CI runs
//! every night and what anyone runs locally with the same result
//! (`ci/nightly.sh` only builds crashfuzz and runs this).
//!
//! 1. installs the nightly toolchain and cargo-fuzz if missing
//!    (`--no-install` skips it);
//! 2. builds every fuzz target (`cargo +nightly fuzz build`, flags from
//!    `FUZZ_BUILD_FLAGS`; `--no-build` skips it; `crashfuzz` itself is
//!    what runs this);
//! 3. restores each target's corpus from the cache directory (a CI cache);
//! 4. fuzzes every target for its share of the budget, libFuzzer fork mode
//!    over `--jobs` processes, crashes saved and fuzzing continued;
//! 5. merges and minimizes each corpus (libFuzzer `-merge=1`, what `cargo
//!    fuzz cmin` runs) and saves it back to the cache (not in a canary);
//! 6. runs the stable explorer and the seeded-bug benchmark, in process;
//! 7. triages every crash, in process: each artifact is replayed
//!    ([`run_target_watched`], what `crashfuzz repro` runs) and filed under
//!    one [`signature`] (the failure's own, [`Failure::signature`]); the
//!    smallest artifact of each signature is minimized into an artifact and
//!    a regression test; with `--verify-tests` (a canary's default) each
//!    test runs in a temporary copy of the source tree, never the checkout;
//! 8. writes the report ([`crate::report`]): report.md, report.json, plots/.
//!
//! Budget: 70% fuzzing (split evenly over the targets), 15% explorer, 15%
//! the seeded-bug benchmark ([`Shares`]). Builds and triage come on top.
//!
//! Exit: 0 the campaign passed; 1 the report's verdict failed (a new unique
//! crash, an escaped seeded bug, a target that did not run, a failpoint
//! never crashed at, a canary not found); 2 the campaign could not run.
//!
//! The campaign directory's layout is the one [`crate::report`] reads:
//! `campaign.txt`, `logs/`, `corpus/`, `artifacts/`, `explore/`,
//! `mutants/`, `triage/<signature>/` (`artifact`, `minimized`, `repro.txt`
//! and `repro.json`, `minimize.txt` and `minimize.json`, `meta.txt`,
//! `regression_*.rs`), `report.md`, `report.json`, `plots/`.

use crate::report::ReportArgs;
use engine::mutants::Mutant;
use harness::explore::{describe, explore, write_artifact, ExploreOptions};
use harness::failure::{unreproduced_signature, Check, Failure, HarnessCheck};
use harness::minimize::{minimize_target, regression_test, Minimized};
use harness::runner::{replay_command, Outcome, RunOptions};
use harness::targets::{run_target_watched, write_seed_corpus, Target};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The seeded bug of `--canary`.
pub const CANARY: &str = "header-before-data-sync";
/// cargo-fuzz's version when it has to be installed.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The fuzz build's flags when neither the environment's nor
/// [`LIMITS_FILE`]'s `FUZZ_BUILD_FLAGS` says otherwise (a test keeps the
/// two equal).
pub const FUZZ_BUILD_FLAGS: &str = "-O --debug-assertions --sanitizer none --no-trace-compares";
/// The file holding libFuzzer's per-input limits (also sourced by
/// `ci/fuzz-smoke.sh` and `.clusterfuzzlite/build.sh`).
pub const LIMITS_FILE: &str = "ci/fuzz-limits.sh";

/// Arguments of `crashfuzz campaign`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CampaignArgs {
    /// Seconds of fuzzing, exploration and seeded-bug benchmark.
    #[arg(long, default_value_t = 3600)]
    pub budget: u64,
    /// libFuzzer fork-mode processes and explorer threads (default: cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// The campaign directory (default: target/nightly-report).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The corpus and signature-history cache (default: $CRASHFUZZ_CACHE,
    /// else ~/.cache/crashfuzz-nightly).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Only these fuzz targets, separated by spaces (default: all).
    #[arg(long)]
    pub targets: Option<String>,
    /// Canary: switch the seeded bug header-before-data-sync on; the
    /// campaign passes only if it finds it.
    #[arg(long, conflicts_with = "mutant")]
    pub canary: bool,
    /// Switch this seeded bug on (a canary campaign).
    #[arg(long)]
    pub mutant: Option<String>,
    /// Known signatures, one per line (default: ci/known-crashes.txt).
    #[arg(long)]
    pub known: Option<PathBuf>,
    /// The explorer's seed (default: the date, YYYYMMDD).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run each written regression test (default in a canary).
    #[arg(long, overrides_with = "no_verify_tests")]
    pub verify_tests: bool,
    /// Do not run the written regression tests.
    #[arg(long, overrides_with = "verify_tests")]
    pub no_verify_tests: bool,
    /// Also triage crashes found elsewhere: DIR/<fuzz target>/<files>.
    #[arg(long)]
    pub import: Option<PathBuf>,
    /// Do not install the nightly toolchain or cargo-fuzz.
    #[arg(long)]
    pub no_install: bool,
    /// Do not build the fuzz targets.
    #[arg(long)]
    pub no_build: bool,
    /// The repository root (default: the one holding the current directory,
    /// else the one crashfuzz was built from).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

/// The budget's shares, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shares {
    /// Fuzzing per target: 70% over the targets, at least 10.
    pub fuzz_secs_per_target: u64,
    /// The explorer: 15%, at least 5.
    pub explore_secs: u64,
    /// Each seeded bug: 15% over the bugs, at least 5.
    pub mutants_secs_per_bug: u64,
}

/// The shares of `budget` seconds over `targets` fuzz targets and `bugs`
/// seeded bugs.
pub fn shares(budget: u64, targets: usize, bugs: usize) -> Shares {
    Shares {
        fuzz_secs_per_target: (budget * 70 / 100 / targets.max(1) as u64).max(10),
        explore_secs: (budget * 15 / 100).max(5),
        mutants_secs_per_bug: (budget * 15 / 100 / bugs.max(1) as u64).max(5),
    }
}

/// libFuzzer's per-input limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `-timeout`.
    pub timeout_secs: u64,
    /// `-rss_limit_mb`.
    pub rss_limit_mb: u64,
}

/// The limits in [`LIMITS_FILE`]'s `FUZZ_TIMEOUT_SECS=` and
/// `FUZZ_RSS_LIMIT_MB=` lines.
pub fn parse_limits(text: &str) -> Result<Limits, String> {
    let values = crate::report::parse_key_values(text);
    let get = |key: &str| {
        values
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{LIMITS_FILE}: no whole number {key}="))
    };
    Ok(Limits {
        timeout_secs: get("FUZZ_TIMEOUT_SECS")?,
        rss_limit_mb: get("FUZZ_RSS_LIMIT_MB")?,
    })
}

/// `FUZZ_BUILD_FLAGS=` of [`LIMITS_FILE`] under `root` (quotes removed):
/// the one place the fuzz build is set, shared with `ci/fuzz-smoke.sh`.
pub fn build_flags_in(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join(LIMITS_FILE)).ok()?;
    let values = crate::report::parse_key_values(&text);
    let flags = values.get("FUZZ_BUILD_FLAGS")?.trim_matches(['"', '\'']);
    (!flags.trim().is_empty()).then(|| flags.trim().to_string())
}

/// A campaign, resolved from its arguments and the environment.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The repository root.
    pub root: PathBuf,
    /// The campaign directory (absolute).
    pub out: PathBuf,
    /// The cache directory.
    pub cache: PathBuf,
    /// The fuzz targets.
    pub targets: Vec<Target>,
    /// The seeded bug on, if any.
    pub mutant: Option<Mutant>,
    /// The known-signatures file.
    pub known: PathBuf,
    /// The explorer's seed.
    pub seed: u64,
    /// Whether to run the written regression tests.
    pub verify: bool,
    /// Crashes to import.
    pub import: Option<PathBuf>,
    /// Install missing tools.
    pub install: bool,
    /// Build the fuzz targets.
    pub build: bool,
    /// Budget in seconds.
    pub budget: u64,
    /// Fork-mode processes and explorer threads.
    pub jobs: usize,
    /// The budget's shares.
    pub shares: Shares,
    /// `cargo fuzz build` flags.
    pub fuzz_build_flags: String,
    /// The workspace's target directory (the regression tests build there).
    pub cargo_target: PathBuf,
    /// The fuzz targets' target directory.
    pub fuzz_target_dir: PathBuf,
}

/// The repository root: the nearest ancestor of `start` holding
/// `fuzz/Cargo.toml` and [`LIMITS_FILE`], else the one this crate was built
/// in.
pub fn find_root(start: &Path) -> PathBuf {
    let is_root = |d: &Path| d.join("fuzz/Cargo.toml").is_file() && d.join(LIMITS_FILE).is_file();
    start
        .ancestors()
        .find(|d| is_root(d))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| {
            let built = Path::new(env!("CARGO_MANIFEST_DIR"));
            built.parent().unwrap_or(built).to_path_buf()
        })
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Resolve `args` (`env` reads environment variables: `CRASHFUZZ_CACHE`,
/// `XDG_CACHE_HOME`, `HOME`, `FUZZ_BUILD_FLAGS`, `CARGO_TARGET_DIR`,
/// `FUZZ_TARGET_DIR`). Bad usage is an error; nothing is written.
pub fn plan(args: &CampaignArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Plan, String> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    let root = absolute(
        &args
            .root
            .clone()
            .unwrap_or_else(|| find_root(&absolute(Path::new(".")))),
    );
    let names: Vec<&str> = args
        .targets
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let targets = if names.is_empty() {
        Target::ALL.to_vec()
    } else {
        names
            .iter()
            .map(|n| Target::from_name(n).ok_or_else(|| format!("unknown fuzz target {n:?}")))
            .collect::<Result<Vec<_>, _>>()?
    };
    let mutant_name = if args.canary {
        Some(CANARY.to_string())
    } else {
        args.mutant.clone()
    };
    let mutant =
        match mutant_name.as_deref() {
            None => None,
            Some(_) if !cfg!(feature = "mutants") => {
                return Err("seeded bugs need the `mutants` feature".into())
            }
            Some(n) => Some(Mutant::from_name(n).ok_or_else(|| {
                format!("unknown seeded bug {n:?} (see `crashfuzz mutants --list`)")
            })?),
        };
    let cache = match (&args.cache, env("CRASHFUZZ_CACHE")) {
        (Some(c), _) => c.clone(),
        (None, Some(c)) => PathBuf::from(c),
        (None, None) => env("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cache")))
            .ok_or("no cache directory: give --cache (HOME is not set)")?
            .join("crashfuzz-nightly"),
    };
    let cargo_target = env("CARGO_TARGET_DIR").map(PathBuf::from);
    let fuzz_target_dir = env("FUZZ_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| cargo_target.as_ref().map(|t| t.join("fuzz")))
        .unwrap_or_else(|| root.join("fuzz/target"));
    let verify = if args.verify_tests {
        true
    } else if args.no_verify_tests {
        false
    } else {
        mutant.is_some()
    };
    Ok(Plan {
        out: absolute(
            &args
                .out
                .clone()
                .unwrap_or_else(|| root.join("target/nightly-report")),
        ),
        cache: absolute(&cache),
        shares: shares(args.budget, targets.len(), Mutant::ALL.len()),
        targets,
        mutant,
        known: args
            .known
            .clone()
            .unwrap_or_else(|| root.join("ci/known-crashes.txt")),
        seed: args.seed.unwrap_or_else(|| {
            let (y, m, d) = civil_date(unix_secs());
            y as u64 * 10_000 + m as u64 * 100 + d as u64
        }),
        verify,
        import: args.import.clone(),
        install: !args.no_install,
        build: !args.no_build,
        budget: args.budget,
        jobs,
        fuzz_build_flags: env("FUZZ_BUILD_FLAGS")
            .or_else(|| build_flags_in(&root))
            .unwrap_or_else(|| FUZZ_BUILD_FLAGS.into()),
        cargo_target: absolute(&cargo_target.unwrap_or_else(|| root.join("target"))),
        fuzz_target_dir: absolute(&fuzz_target_dir),
        root,
    })
}

// ------------------------------------------------------------ small tools

fn say(message: &str) {
    eprintln!("== {message}");
}

fn warn(message: &str) {
    eprintln!("campaign: {message}");
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The UTC (year, month, day) of `secs` since the epoch.
pub fn civil_date(secs: u64) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD` and `YYYY-MM-DD HH:MM UTC` of `secs` since the epoch.
pub fn date_strings(secs: u64) -> (String, String) {
    let (y, m, d) = civil_date(secs);
    let date = format!("{y:04}-{m:02}-{d:02}");
    let started = format!("{date} {:02}:{:02} UTC", secs / 3600 % 24, secs / 60 % 60);
    (date, started)
}

/// The campaign's `campaign.txt`: `key=value` lines, appended in order
/// (read by [`crate::report`]).
#[derive(Clone, Debug)]
pub struct Meta {
    path: PathBuf,
}

impl Meta {
    /// Append to `path`.
    pub fn new(path: &Path) -> Meta {
        Meta {
            path: path.to_path_buf(),
        }
    }

    /// Append `key=value` (a line break in the value becomes a space).
    pub fn set(&self, key: &str, value: impl std::fmt::Display) -> Result<(), String> {
        let value = value.to_string().replace(['\n', '\r'], " ");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| writeln!(f, "{key}={value}"))
            .map_err(|e| format!("writing {}: {e}", self.path.display()))
    }
}

/// The first line of a command's stdout, if it ran and succeeded.
fn output_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    })
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_visible(cmd: &mut Command, what: &str) -> Result<(), String> {
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{what} failed ({s})")),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// Regular files directly in `dir` (0 if it does not exist).
pub fn count_files(dir: &Path) -> u64 {
    files_in(dir).len() as u64
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
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

/// Copy the tree under `from` into `to` (merging with what is there).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

fn io<T>(what: &Path, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{}: {e}", what.display()))
}

/// Wait for `child` until `deadline`; then SIGTERM its process group, and
/// SIGKILL it `grace` later (the child must lead its own group).
fn wait_with_deadline(
    child: &mut std::process::Child,
    deadline: Duration,
    grace: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let start = Instant::now();
    let mut signalled = false;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(if signalled { None } else { Some(status) });
        }
        let elapsed = start.elapsed();
        if elapsed >= deadline + grace {
            signal_group(child.id(), "KILL");
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        if elapsed >= deadline && !signalled {
            signal_group(child.id(), "TERM");
            signalled = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn signal_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), "--".into(), format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

fn own_process_group(cmd: &mut Command) -> &mut Command {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    cmd
}

// ------------------------------------------------------------ the campaign

/// Run the campaign: exit 0 passed, 1 the verdict failed; an error is a
/// campaign that could not run (exit 2).
pub fn run(args: &CampaignArgs) -> Result<u8, String> {
    let plan = plan(args, &|k| std::env::var(k).ok())?;
    let start = Instant::now();
    let limits = parse_limits(&io(
        &plan.root.join(LIMITS_FILE),
        std::fs::read_to_string(plan.root.join(LIMITS_FILE)),
    )?)?;
    let out = &plan.out;
    // A campaign directory holds one campaign: start clean.
    for name in [
        "campaign.txt",
        "logs",
        "corpus",
        "artifacts",
        "explore",
        "mutants",
        "triage",
        "work",
        "plots",
        "imported",
        "report.md",
        "report.json",
    ] {
        let path = out.join(name);
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
    for dir in [
        "logs",
        "corpus",
        "artifacts",
        "explore",
        "mutants",
        "triage",
        "work",
    ] {
        io(out, std::fs::create_dir_all(out.join(dir)))?;
    }
    io(
        &plan.cache,
        std::fs::create_dir_all(plan.cache.join("corpus")),
    )?;

    if plan.install {
        ensure_tools()?;
    }
    let host = Command::new("rustc")
        .arg("-vV")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        })
        .ok_or("cannot ask rustc for the host triple (rustc -vV)")?;
    let fuzz_bin = plan.fuzz_target_dir.join(host).join("release");
    let build_start = Instant::now();
    if plan.build {
        say(&format!(
            "building the fuzz targets (cargo fuzz build {})",
            plan.fuzz_build_flags
        ));
        run_visible(
            Command::new("cargo")
                .args(["+nightly", "fuzz", "build"])
                .args(plan.fuzz_build_flags.split_whitespace())
                .arg("--target-dir")
                .arg(&plan.fuzz_target_dir)
                .current_dir(plan.root.join("fuzz")),
            "cargo fuzz build",
        )
        .map_err(|e| format!("build failed: {e}"))?;
    }
    let build_secs = if plan.build {
        build_start.elapsed().as_secs()
    } else {
        0
    };
    for t in &plan.targets {
        if !fuzz_bin.join(t.name()).is_file() {
            return Err(format!(
                "fuzz target {t} is not built ({})",
                fuzz_bin.join(t.name()).display()
            ));
        }
    }

    let meta = Meta::new(&out.join("campaign.txt"));
    write_header(&plan, &meta, build_secs)?;

    say(&format!("corpus: restoring from {}", plan.cache.display()));
    let seeds = out.join("work/seeds");
    for &t in &plan.targets {
        io(
            &seeds,
            write_seed_corpus(t, &seeds.join(t.name()), plan.seed, 64),
        )?;
        let corpus = out.join("corpus").join(t.name());
        io(&corpus, std::fs::create_dir_all(&corpus))?;
        let cached = plan.cache.join("corpus").join(t.name());
        if cached.is_dir() {
            io(&cached, copy_dir(&cached, &corpus))?;
        }
        meta.set(&format!("corpus_before.{t}"), count_files(&corpus))?;
    }
    for &t in &plan.targets {
        fuzz_target(&plan, &fuzz_bin, t, limits)?;
        meta.set(
            &format!("corpus_after_fuzz.{t}"),
            count_files(&out.join("corpus").join(t.name())),
        )?;
        cmin_target(&plan, &fuzz_bin, t, limits)?;
    }
    if plan.mutant.is_none() {
        say(&format!("corpus: saving to {}", plan.cache.display()));
        for t in &plan.targets {
            let cached = plan.cache.join("corpus").join(t.name());
            let fresh = plan.cache.join("corpus").join(format!("{t}.new"));
            let _ = std::fs::remove_dir_all(&fresh);
            io(&fresh, copy_dir(&out.join("corpus").join(t.name()), &fresh))?;
            let _ = std::fs::remove_dir_all(&cached);
            io(&cached, std::fs::rename(&fresh, &cached))?;
        }
    } else {
        say("corpus: canary campaign, the cache is left as it was");
    }

    explore_share(&plan)?;
    mutants_share(&plan)?;
    exhaust_share(&plan)?;

    if let Some(import) = &plan.import {
        for t in &plan.targets {
            let from = import.join(t.name());
            let files = files_in(&from);
            if files.is_empty() {
                continue;
            }
            let to = out.join("imported").join(t.name());
            io(&to, std::fs::create_dir_all(&to))?;
            for f in files {
                let dest = to.join(f.file_name().unwrap_or_default());
                io(&f, std::fs::copy(&f, dest))?;
            }
        }
        let imported: u64 = plan
            .targets
            .iter()
            .map(|t| count_files(&out.join("imported").join(t.name())))
            .sum();
        meta.set("imported", imported)?;
    }
    triage(out, &plan.targets, plan.mutant)?;
    if plan.verify {
        verify_tests(&plan.root, out, plan.mutant, &plan.cargo_target)?;
    }

    meta.set("wall_secs", start.elapsed().as_secs())?;
    say("report");
    let code = crate::report::cmd(&ReportArgs {
        campaign: out.clone(),
        out: None,
        known: plan.known.is_file().then(|| plan.known.clone()),
        history: Some(plan.cache.join("signatures.tsv")),
        no_replay: false,
        // A canary's explorer stops at the bug: its failpoint coverage is
        // partial.
        strict_failpoints: plan.mutant.is_none(),
    })
    .map_err(|e| format!("the report failed: {e}"))?;
    println!("report: {}", out.join("report.md").display());
    Ok(code)
}

/// The nightly toolchain and cargo-fuzz, installed when missing.
fn ensure_tools() -> Result<(), String> {
    if !succeeds(Command::new("cargo").arg("--version")) {
        return Err("cargo is not installed (https://rustup.rs)".into());
    }
    if !succeeds(Command::new("cargo").args(["+nightly", "--version"])) {
        if !succeeds(Command::new("rustup").arg("--version")) {
            return Err("no nightly toolchain and no rustup to install it".into());
        }
        say("installing the nightly toolchain");
        run_visible(
            Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ]),
            "rustup toolchain install nightly",
        )?;
    }
    if !succeeds(Command::new("cargo").args(["fuzz", "--version"])) {
        say("installing cargo-fuzz");
        let version =
            std::env::var("CARGO_FUZZ_VERSION").unwrap_or_else(|_| CARGO_FUZZ_VERSION.into());
        run_visible(
            Command::new("cargo").args([
                "install",
                "cargo-fuzz",
                "--locked",
                "--version",
                &version,
            ]),
            "cargo install cargo-fuzz",
        )?;
    }
    Ok(())
}

/// campaign.txt's first lines (the keys [`crate::report`] reads).
fn write_header(plan: &Plan, meta: &Meta, build_secs: u64) -> Result<(), String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&plan.root)
            .args(args)
            .output()
    };
    let commit = output_line(Command::new("git").arg("-C").arg(&plan.root).args([
        "rev-parse",
        "--short",
        "HEAD",
    ]))
    .unwrap_or_else(|| "unknown".into());
    let dirty = git(&["diff", "--quiet", "HEAD"]).is_ok_and(|o| !o.status.success());
    let (date, started) = date_strings(unix_secs());
    let targets: Vec<&str> = plan.targets.iter().map(|t| t.name()).collect();
    meta.set("date", date)?;
    meta.set("started", started)?;
    meta.set(
        "commit",
        format!("{commit}{}", if dirty { "+dirty" } else { "" }),
    )?;
    meta.set(
        "host",
        output_line(Command::new("uname").arg("-n")).unwrap_or_else(|| "unknown".into()),
    )?;
    meta.set("budget_secs", plan.budget)?;
    meta.set("jobs", plan.jobs)?;
    meta.set("mutant", plan.mutant.map_or("none", |m| m.name()))?;
    meta.set("targets", targets.join(" "))?;
    meta.set("fuzz_secs_per_target", plan.shares.fuzz_secs_per_target)?;
    meta.set("explore_secs", plan.shares.explore_secs)?;
    meta.set("explore_seed", plan.seed)?;
    meta.set("mutants_secs_per_bug", plan.shares.mutants_secs_per_bug)?;
    meta.set("fuzz_build_flags", &plan.fuzz_build_flags)?;
    meta.set("build_secs", build_secs)?;
    meta.set(
        "toolchain",
        output_line(Command::new("cargo").args(["+nightly", "--version"]))
            .unwrap_or_else(|| "?".into()),
    )
}

fn fuzz_env(cmd: &mut Command, mutant: Option<Mutant>) -> &mut Command {
    match mutant {
        Some(m) => cmd.env(harness::regression::MUTANT_ENV, m.name()),
        None => cmd.env_remove(harness::regression::MUTANT_ENV),
    }
}

/// Fuzz one target for its share in fork mode over `jobs` processes. New
/// inputs go to the first corpus directory; crashes, timeouts and OOMs are
/// saved to artifacts/<target>/ and fuzzing goes on.
fn fuzz_target(plan: &Plan, fuzz_bin: &Path, target: Target, limits: Limits) -> Result<(), String> {
    let (out, name) = (&plan.out, target.name());
    let secs = plan.shares.fuzz_secs_per_target;
    let corpus = out.join("corpus").join(name);
    let artifacts = out.join("artifacts").join(name);
    io(&artifacts, std::fs::create_dir_all(&artifacts))?;
    let seeds: Vec<PathBuf> = [
        out.join("work/seeds").join(name),
        plan.root.join("fuzz/seeds").join(name),
    ]
    .into_iter()
    .filter(|d| d.is_dir())
    .collect();
    let dict = plan.root.join("fuzz/dict").join(format!("{name}.dict"));
    let log_path = out.join("logs").join(format!("fuzz-{name}.log"));
    let log = io(&log_path, std::fs::File::create(&log_path))?;
    let log2 = io(&log_path, log.try_clone())?;
    say(&format!("fuzzing {name} for {secs}s (-fork={})", plan.jobs));
    let mut cmd = Command::new(fuzz_bin.join(name));
    cmd.arg(format!("-fork={}", plan.jobs))
        .args(["-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1"])
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-timeout={}", limits.timeout_secs))
        .arg(format!("-rss_limit_mb={}", limits.rss_limit_mb))
        .arg("-print_final_stats=1");
    if dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    cmd.arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&corpus)
        .args(&seeds)
        .current_dir(plan.out.join("work"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    fuzz_env(own_process_group(&mut cmd), plan.mutant);
    let mut child = io(&fuzz_bin.join(name), cmd.spawn())?;
    // The parent stops itself at -max_total_time; the deadline only guards
    // a hang.
    let status = io(
        &log_path,
        wait_with_deadline(
            &mut child,
            Duration::from_secs(secs + 120),
            Duration::from_secs(30),
        ),
    )?;
    match status.and_then(|s| s.code()) {
        // Fork mode exits with -error_exitcode (77) when it saved crashes.
        Some(0 | 77) => {}
        Some(code) => warn(&format!(
            "{name}: libFuzzer exited with {code} (see logs/fuzz-{name}.log)"
        )),
        None => warn(&format!(
            "{name}: libFuzzer was stopped by a signal or the deadline (see logs/fuzz-{name}.log)"
        )),
    }
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let progress = |l: &&str| {
        l.strip_prefix('#')
            .and_then(|r| r.split_once(": "))
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(last) = text.lines().rfind(progress) {
        eprintln!("{last}");
    }
    Ok(())
}

/// Merge and minimize a target's corpus (what `cargo fuzz cmin` does): keep
/// the smallest set of inputs with the same coverage.
fn cmin_target(plan: &Plan, fuzz_bin: &Path, target: Target, limits: Limits) -> Result<(), String> {
    let name = target.name();
    let corpus = plan.out.join("corpus").join(name);
    let merged = plan.out.join("work/cmin").join(name);
    let _ = std::fs::remove_dir_all(&merged);
    io(&merged, std::fs::create_dir_all(&merged))?;
    let log_path = plan.out.join("logs").join(format!("cmin-{name}.log"));
    let log = io(&log_path, std::fs::File::create(&log_path))?;
    let log2 = io(&log_path, log.try_clone())?;
    // A corpus input that fails (a canary's) is written here, not to the
    // current directory.
    let crashes = plan.out.join("work/cmin-artifacts").join(name);
    io(&crashes, std::fs::create_dir_all(&crashes))?;
    let mut cmd = Command::new(fuzz_bin.join(name));
    cmd.arg("-merge=1")
        .arg(format!("-artifact_prefix={}/", crashes.display()))
        .arg(format!("-timeout={}", limits.timeout_secs))
        .arg(format!("-rss_limit_mb={}", limits.rss_limit_mb))
        .arg(&merged)
        .arg(&corpus)
        .current_dir(plan.out.join("work"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    fuzz_env(own_process_group(&mut cmd), plan.mutant);
    let ok = cmd.spawn().ok().is_some_and(|mut child| {
        let deadline = Duration::from_secs(plan.shares.fuzz_secs_per_target + 120);
        wait_with_deadline(&mut child, deadline, Duration::from_secs(30))
            .ok()
            .flatten()
            .is_some_and(|s| s.success())
    });
    if ok && count_files(&merged) > 0 {
        io(&corpus, std::fs::remove_dir_all(&corpus))?;
        io(&merged, std::fs::rename(&merged, &corpus))?;
    } else {
        warn(&format!(
            "{name}: cmin failed, keeping the unminimized corpus (logs/cmin-{name}.log)"
        ));
    }
    Ok(())
}

/// The stable explorer's share: explore/summary.json, coverage.txt and the
/// artifact of what it found.
fn explore_share(plan: &Plan) -> Result<(), String> {
    let dir = plan.out.join("explore");
    let secs = plan.shares.explore_secs;
    say(&format!("stable explorer: {secs}s, seed {}", plan.seed));
    let report = explore(&ExploreOptions {
        seed: plan.seed,
        time: Some(Duration::from_secs(secs)),
        iterations: None,
        jobs: plan.jobs,
        mutant: plan.mutant,
        progress: None,
        ..ExploreOptions::default()
    });
    io(
        &dir,
        std::fs::write(dir.join("coverage.txt"), report.coverage.to_text()),
    )?;
    io(
        &dir,
        std::fs::write(dir.join("summary.json"), format!("{}\n", report.to_json())),
    )?;
    let mut log = format!(
        "{} scenarios in {:.1}s ({:.0}/s), {} crash states checked, {} oracle checks\n",
        report.iterations,
        report.elapsed.as_secs_f64(),
        report.execs_per_sec(),
        report.crash_states,
        report.checks
    );
    if let Some(found) = &report.failure {
        let path = io(
            &dir,
            write_artifact(&dir.join("artifacts"), &found.bytes, &found.failure),
        )?;
        log.push_str(&format!("{}artifact: {}\n", found.failure, path.display()));
        warn(&format!(
            "the explorer found {} [{}] (triaged below)",
            found.failure.kind, found.failure.check
        ));
    }
    eprint!(
        "{}",
        log.lines()
            .next()
            .map_or(String::new(), |l| format!("{l}\n"))
    );
    io(&dir, std::fs::write(dir.join("explore.log"), log))
}

/// The seeded-bug benchmark's share: mutants/mutants.json and mutants.md.
fn mutants_share(plan: &Plan) -> Result<(), String> {
    let dir = plan.out.join("mutants");
    let secs = plan.shares.mutants_secs_per_bug;
    if !cfg!(feature = "mutants") {
        warn("no seeded-bug benchmark: crashfuzz was built without the `mutants` feature");
        return Ok(());
    }
    say(&format!("seeded-bug benchmark: up to {secs}s per bug"));
    let results = crate::mutants::bench(
        &Mutant::ALL,
        &crate::mutants::BenchOptions {
            time_per_bug: Duration::from_secs(secs),
            seeds: 1,
            first_seed: 1,
            jobs: plan.jobs,
            progress: false,
        },
    );
    let escaped: Vec<&str> = results
        .iter()
        .filter(|r| !r.detected())
        .map(|r| r.mutant.name())
        .collect();
    if !escaped.is_empty() {
        warn(&format!("seeded bug(s) escaped: {}", escaped.join(", ")));
    }
    io(
        &dir,
        std::fs::write(
            dir.join("mutants.md"),
            crate::mutants::to_markdown(&results),
        ),
    )?;
    io(
        &dir,
        std::fs::write(
            dir.join("mutants.json"),
            format!("{}\n", crate::mutants::to_json(&results)),
        ),
    )
}

/// The nightly bounded-exhaustive check's bound (workload length).
pub const NIGHTLY_EXHAUST_MAX_OPS: usize = 4;
/// Its fixed budget (at most; a tenth of a smaller campaign's budget):
/// past it the check stops, and the report says which bound it reached
/// (resume with `exhaust --from <next>`).
pub const NIGHTLY_EXHAUST_SECS: u64 = 600;

/// The bounded-exhaustive share: exhaust/exhaust.json (the report shows
/// the bound reached).
fn exhaust_share(plan: &Plan) -> Result<(), String> {
    let dir = plan.out.join("exhaust");
    io(&dir, std::fs::create_dir_all(&dir))?;
    let secs = NIGHTLY_EXHAUST_SECS.min(plan.budget / 10).max(1);
    say(&format!(
        "bounded-exhaustive check: workloads of <= {NIGHTLY_EXHAUST_MAX_OPS} ops, up to {secs}s"
    ));
    let options = harness::exhaust::ExhaustOptions {
        max_ops: NIGHTLY_EXHAUST_MAX_OPS,
        jobs: plan.jobs,
        deadline: Some(std::time::Instant::now() + Duration::from_secs(secs)),
        ..harness::exhaust::ExhaustOptions::default()
    };
    let report = harness::exhaust::exhaust(&options).map_err(|e| e.to_string())?;
    if !report.failures.is_empty() {
        warn(&format!(
            "exhaust found {} failing run(s); the first: {}",
            report.failures.len(),
            harness::exhaust::replay_command(
                &report.failures[0],
                &crate::exhaust::bounds_flags(&options.bounds)
            )
        ));
    }
    say(&report.statement());
    let json = report.to_json(&crate::exhaust::bounds_flags(&options.bounds));
    io(
        &dir,
        std::fs::write(dir.join("exhaust.json"), format!("{json}\n")),
    )
}

// ------------------------------------------------------------ triage

/// Where an artifact came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// libFuzzer saved it this campaign (artifacts/<target>/).
    Fuzz,
    /// Given with `--import` (imported/<target>/).
    Imported,
    /// The stable explorer found it (explore/artifacts/).
    Explorer,
}

/// One artifact to triage.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The target it replays as.
    pub target: Target,
    /// The file.
    pub path: PathBuf,
    /// Where it came from.
    pub source: Source,
    /// Its size in bytes.
    pub size: u64,
}

impl Artifact {
    /// What found it, as the report lists it: the target, `imported:<t>`
    /// or `explorer`.
    pub fn found_by(&self) -> String {
        match self.source {
            Source::Fuzz => self.target.name().to_string(),
            Source::Imported => format!("imported:{}", self.target),
            Source::Explorer => "explorer".to_string(),
        }
    }

    /// libFuzzer's kind of artifact: its name up to the first `-`.
    pub fn libfuzzer_kind(&self) -> String {
        let name = self
            .path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        name.split('-').next().unwrap_or("").to_string()
    }
}

/// The campaign signature of an artifact and its replay: the failure's own
/// ([`Failure::signature`], the one `crashfuzz repro` prints), or for an
/// artifact that does not fail, one per target and libFuzzer kind
/// ([`unreproduced_signature`]).
pub fn signature(artifact: &Artifact, failure: Option<&Failure>) -> String {
    match failure {
        Some(f) => f.signature(),
        None => unreproduced_signature(artifact.target, &artifact.libfuzzer_kind()),
    }
}

/// Every artifact of a campaign directory: artifacts/<t>/* and
/// imported/<t>/* of `targets`, and the explorer's crash-* (not its .txt).
pub fn collect_artifacts(out: &Path, targets: &[Target]) -> Vec<Artifact> {
    let mut list = Vec::new();
    let mut add = |target, path: PathBuf, source| {
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        list.push(Artifact {
            target,
            path,
            source,
            size,
        });
    };
    for &t in targets {
        for p in files_in(&out.join("artifacts").join(t.name())) {
            add(t, p, Source::Fuzz);
        }
        for p in files_in(&out.join("imported").join(t.name())) {
            add(t, p, Source::Imported);
        }
    }
    for p in files_in(&out.join("explore/artifacts")) {
        let name = p
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        if name.starts_with("crash-") && !name.ends_with(".txt") {
            add(Target::Interleave, p, Source::Explorer);
        }
    }
    list
}

/// One artifact, replayed.
#[derive(Debug)]
pub struct Triaged {
    /// The artifact.
    pub artifact: Artifact,
    /// Its replay (no trace kept).
    pub result: Result<Outcome, Box<Failure>>,
}

impl Triaged {
    /// Its failure, if it reproduced.
    pub fn failure(&self) -> Option<&Failure> {
        self.result.as_ref().err().map(|f| &**f)
    }

    /// Its [`signature`].
    pub fn signature(&self) -> String {
        signature(&self.artifact, self.failure())
    }
}

fn replay(
    target: Target,
    bytes: &[u8],
    mutant: Option<Mutant>,
    trace: bool,
) -> Result<Outcome, Box<Failure>> {
    let options = RunOptions {
        keep_trace: trace,
        mutant,
        echo: false,
        ..RunOptions::default()
    };
    let hang_after = Duration::from_secs(harness::explore::DEFAULT_HANG_SECS);
    run_target_watched(target, bytes, &options, hang_after)
}

/// Replay every artifact and group them by [`signature`].
pub fn group(artifacts: Vec<Artifact>, mutant: Option<Mutant>) -> BTreeMap<String, Vec<Triaged>> {
    let mut groups: BTreeMap<String, Vec<Triaged>> = BTreeMap::new();
    for artifact in artifacts {
        let bytes = match std::fs::read(&artifact.path) {
            Ok(b) => b,
            Err(e) => {
                warn(&format!("{}: {e}", artifact.path.display()));
                continue;
            }
        };
        let result = replay(artifact.target, &bytes, mutant, false);
        let t = Triaged { artifact, result };
        groups.entry(t.signature()).or_default().push(t);
    }
    groups
}

/// Reproduce every artifact of the campaign directory `out`, group them by
/// [`signature`] into triage/<signature>/, then minimize the smallest of
/// each group and write its regression test. Returns the signatures.
pub fn triage(
    out: &Path,
    targets: &[Target],
    mutant: Option<Mutant>,
) -> Result<Vec<String>, String> {
    let artifacts = collect_artifacts(out, targets);
    say(&format!("triage: {} artifact(s)", artifacts.len()));
    let groups = group(artifacts, mutant);
    for (sig, members) in &groups {
        triage_one(&out.join("triage").join(sig), sig, members, mutant)?;
    }
    Ok(groups.into_keys().collect())
}

/// The text `crashfuzz repro --quiet` prints.
fn repro_text(result: &Result<Outcome, Box<Failure>>) -> String {
    match result {
        Ok(o) => format!(
            "no failure: {} crash states, {} checks, trace digest {}\n",
            o.crash_states, o.checks, o.trace_digest
        ),
        Err(f) => format!("{f}\n"),
    }
}

/// The object `crashfuzz repro --json` prints.
fn repro_json(result: &Result<Outcome, Box<Failure>>) -> serde_json::Value {
    match result {
        Ok(o) => serde_json::json!({
            "failure": null,
            "crash_states": o.crash_states,
            "checks": o.checks,
            "trace_digest": o.trace_digest,
        }),
        Err(f) => serde_json::json!({ "failure": f.to_json(), "trace": f.trace }),
    }
}

/// The object `crashfuzz minimize --json` prints (and the campaign keeps as
/// `minimize.json`).
pub fn minimize_json(
    min: &Minimized,
    artifact: &Path,
    test: &Path,
    test_name: &str,
    replay: &str,
) -> serde_json::Value {
    serde_json::json!({
        "failure": min.failure.to_json(),
        "scenario": describe(&min.scenario),
        "steps_before": min.steps_before,
        "steps_after": min.steps_after,
        "runs": min.runs,
        "artifact": artifact.display().to_string(),
        "regression_test": test.display().to_string(),
        "test_name": test_name,
        "replay": replay,
    })
}

/// One signature: the smallest artifact stands for all of them.
fn triage_one(
    dir: &Path,
    sig: &str,
    members: &[Triaged],
    mutant: Option<Mutant>,
) -> Result<(), String> {
    io(dir, std::fs::create_dir_all(dir))?;
    let rep = members
        .iter()
        .min_by(|a, b| {
            (a.artifact.size, &a.artifact.path).cmp(&(b.artifact.size, &b.artifact.path))
        })
        .expect("a group has a member");
    let (target, rep_path) = (rep.artifact.target, &rep.artifact.path);
    let bytes = io(rep_path, std::fs::read(rep_path))?;
    io(dir, std::fs::write(dir.join("artifact"), &bytes))?;
    // Again with its trace, for repro.json (runs are deterministic).
    let result = replay(target, &bytes, mutant, true);
    io(
        dir,
        std::fs::write(dir.join("repro.txt"), repro_text(&result)),
    )?;
    io(
        dir,
        std::fs::write(dir.join("repro.json"), format!("{}\n", repro_json(&result))),
    )?;
    let found_by: BTreeSet<String> = members.iter().map(|m| m.artifact.found_by()).collect();
    let failpoints: BTreeSet<String> = members
        .iter()
        .map(|m| {
            m.failure()
                .and_then(|f| f.failpoint.clone())
                .unwrap_or_else(|| "-".into())
        })
        .collect();
    let found_by = found_by.into_iter().collect::<Vec<_>>().join(",");
    let failpoints = failpoints.into_iter().collect::<Vec<_>>().join(",");
    let rep_name = rep_path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let meta = Meta::new(&dir.join("meta.txt"));
    let _ = std::fs::remove_file(dir.join("meta.txt"));
    meta.set("signature", sig)?;
    meta.set("target", target)?;
    meta.set("targets", &found_by)?;
    meta.set("failpoints", &failpoints)?;
    meta.set("artifacts", members.len())?;
    meta.set(
        "representative",
        format!("{rep_name} ({} bytes)", rep.artifact.size),
    )?;
    let count = members.len();
    let Err(failure) = &result else {
        say(&format!(
            "triage {sig}: did not reproduce ({count} artifact(s) of {found_by}, e.g. {rep_name})"
        ));
        return meta.set(
            "kind",
            format!("unreproduced-{}", rep.artifact.libfuzzer_kind()),
        );
    };
    say(&format!(
        "triage {sig}: {} [{}] at step {} [{count} artifact(s): {found_by}; failpoints {failpoints}]",
        failure.kind, failure.check, failure.step
    ));
    if mutant.is_some() {
        // Does it need the seeded bug? If not, it is a real crash.
        if replay(target, &bytes, None, false).is_err() {
            meta.set("without_bug", "fails")?;
            say(&format!(
                "triage {sig}: fails without the seeded bug too: a real crash"
            ));
        } else {
            meta.set("without_bug", "passes")?;
        }
    }
    let mut input = "artifact";
    // A hang the disk-call watchdog cannot see would hang minimization too.
    if failure.check != Check::Harness(HarnessCheck::WallClockWatchdog) {
        if let Some(test) = minimize_into(dir, target, &bytes, mutant)? {
            meta.set("test", test)?;
            input = "minimized";
        }
    }
    meta.set(
        "replay",
        format!(
            "cargo run --release --bin crashfuzz -- repro triage/{sig}/{input} --target {target}{}",
            mutant.map_or(String::new(), |m| format!(" --mutant {m}"))
        ),
    )
}

/// Minimize `bytes` into dir/minimized and its regression test (named as
/// `crashfuzz minimize` names it), with minimize.txt and minimize.json as
/// `crashfuzz minimize` prints them. Returns the test's file name.
fn minimize_into(
    dir: &Path,
    target: Target,
    bytes: &[u8],
    mutant: Option<Mutant>,
) -> Result<Option<String>, String> {
    let options = RunOptions {
        mutant,
        ..RunOptions::default()
    };
    let scenario = target.scenario(bytes);
    let min: Option<Minimized> = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        minimize_target(target, &scenario, &options)
    }))
    .unwrap_or_else(|_| {
        warn(&format!("minimizing {} panicked", dir.display()));
        None
    });
    let Some(min) = min else {
        io(
            dir,
            std::fs::write(
                dir.join("minimize.txt"),
                "the artifact does not fail: nothing to minimize\n",
            ),
        )?;
        return Ok(None);
    };
    let output = dir.join("minimized");
    let min_bytes = min.scenario.to_bytes();
    io(&output, std::fs::write(&output, &min_bytes))?;
    let name = format!("regression_{}", min.failure.signature());
    let test = dir.join(format!("{name}.rs"));
    io(&test, std::fs::write(&test, regression_test(&min, &name)))?;
    let replay = replay_command(target, &min_bytes, mutant, Some(&output));
    let text = format!(
        "minimized {} [{}]: steps {} -> {} in {} runs\n{}\nartifact: {}\nregression test: {}\nreplay: {replay}\n",
        min.failure.kind,
        min.failure.invariant(),
        min.steps_before,
        min.steps_after,
        min.runs,
        describe(&min.scenario),
        output.display(),
        test.display(),
    );
    io(dir, std::fs::write(dir.join("minimize.txt"), text))?;
    let json = minimize_json(&min, &output, &test, &name, &replay);
    io(
        dir,
        std::fs::write(dir.join("minimize.json"), format!("{json}\n")),
    )?;
    Ok(Some(format!("{name}.rs")))
}

// ------------------------------------------------------------ verification

/// A temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A fresh directory under the system's temporary directory.
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{nanos}-{n}", std::process::id()));
        std::fs::create_dir(&path)?;
        Ok(TempDir { path })
    }

    /// The directory `path`, emptied first if it exists.
    pub fn at(path: &Path) -> std::io::Result<TempDir> {
        if path.exists() {
            std::fs::remove_dir_all(path)?;
        }
        std::fs::create_dir_all(path)?;
        Ok(TempDir {
            path: path.to_path_buf(),
        })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Copy the source tree of the git checkout `root` (its tracked files and
/// the untracked ones git does not ignore, as they are in the working tree)
/// into `dest`. Reads the checkout, never writes it. Returns the files
/// copied.
pub fn copy_source_tree(root: &Path, dest: &Path) -> Result<u64, String> {
    let listing = Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .map_err(|e| format!("git ls-files: {e}"))?;
    if !listing.status.success() {
        return Err(format!(
            "git ls-files in {} failed: {}",
            root.display(),
            String::from_utf8_lossy(&listing.stderr).trim()
        ));
    }
    let mut copied = 0;
    for rel in listing.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).map_err(|e| e.to_string())?);
        let from = root.join(rel);
        // Deleted in the working tree, or a submodule: not part of the copy.
        if !from.is_file() {
            continue;
        }
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            io(parent, std::fs::create_dir_all(parent))?;
        }
        io(&from, std::fs::copy(&from, &to))?;
        // Keep the time: cargo's fingerprints compare it.
        if let Ok(modified) = std::fs::metadata(&from).and_then(|m| m.modified()) {
            let _ = std::fs::File::options()
                .write(true)
                .open(&to)
                .and_then(|f| f.set_modified(modified));
        }
        copied += 1;
    }
    Ok(copied)
}

/// Run each written regression test as an integration test of the harness,
/// in a temporary copy of the source tree at `root` (builds go to
/// `cargo_target`): with the seeded bug on it must fail; on the engine as
/// it is, a canary's test must pass and a real bug's test fails until the
/// bug is fixed. Appends test_with_bug= and test_current= to meta.txt.
pub fn verify_tests(
    root: &Path,
    out: &Path,
    mutant: Option<Mutant>,
    cargo_target: &Path,
) -> Result<(), String> {
    let mut tests = Vec::new();
    for dir in std::fs::read_dir(out.join("triage"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    {
        let meta = crate::report::parse_key_values(
            &std::fs::read_to_string(dir.join("meta.txt")).unwrap_or_default(),
        );
        if let Some(test) = meta
            .get("test")
            .map(|t| dir.join(t))
            .filter(|t| t.is_file())
        {
            tests.push((dir, test));
        }
    }
    tests.sort();
    if tests.is_empty() {
        return Ok(());
    }
    // A fixed place under the target directory, removed afterwards: with
    // the files' times kept, the next campaign's copy needs no rebuild of
    // the unchanged crates, and builds do not pile up under new paths.
    let tree = TempDir::at(&cargo_target.join("campaign-tree"))
        .map_err(|e| format!("temporary directory: {e}"))?;
    say(&format!(
        "regression tests: {} file(s) of {} copied to {}",
        copy_source_tree(root, tree.path())?,
        root.display(),
        tree.path().display()
    ));
    for (dir, test) in &tests {
        let sig = dir
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        // A name of our own: the test's own may be committed already.
        let name = format!("nightly_{sig}");
        let dest = tree.path().join("harness/tests").join(format!("{name}.rs"));
        io(&dest, std::fs::copy(test, &dest))?;
        let meta = Meta::new(&dir.join("meta.txt"));
        let mut results = Vec::new();
        let runs: Vec<(&str, Option<Mutant>, &str)> = match mutant {
            Some(m) => vec![
                ("test_with_bug", Some(m), "test-with-bug.txt"),
                ("test_current", None, "test-current.txt"),
            ],
            None => vec![("test_current", None, "test-current.txt")],
        };
        for (key, bug, log) in runs {
            let log_path = dir.join(log);
            let log_file = io(&log_path, std::fs::File::create(&log_path))?;
            let log2 = io(&log_path, log_file.try_clone())?;
            let mut cmd = Command::new("cargo");
            cmd.args(["test", "-q", "-p", "harness", "--test", &name])
                .current_dir(tree.path())
                .env("CARGO_TARGET_DIR", cargo_target)
                .stdin(Stdio::null())
                .stdout(log_file)
                .stderr(log2);
            fuzz_env(&mut cmd, bug);
            let passed = cmd.status().is_ok_and(|s| s.success());
            let verdict = if passed { "passes" } else { "fails" };
            meta.set(key, verdict)?;
            results.push(format!("{key}={verdict}"));
        }
        say(&format!("regression test {sig}: {}", results.join(" ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: CampaignArgs,
    }

    fn parse(argv: &[&str]) -> Result<CampaignArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("campaign").chain(argv.iter().copied())).map(|c| c.args)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn budget_shares() {
        assert_eq!(
            shares(3600, 5, 10),
            Shares {
                fuzz_secs_per_target: 504,
                explore_secs: 540,
                mutants_secs_per_bug: 54
            }
        );
        // The floors of a tiny budget.
        assert_eq!(
            shares(10, 5, 10),
            Shares {
                fuzz_secs_per_target: 10,
                explore_secs: 5,
                mutants_secs_per_bug: 5
            }
        );
        assert_eq!(shares(300, 5, 0).mutants_secs_per_bug, 45);
        assert_eq!(shares(300, 0, 1).fuzz_secs_per_target, 210);
    }

    #[test]
    fn limits_come_from_the_shell_file() {
        let text = "# comment\nFUZZ_TIMEOUT_SECS=30\nFUZZ_RSS_LIMIT_MB=2048\n";
        assert_eq!(
            parse_limits(text),
            Ok(Limits {
                timeout_secs: 30,
                rss_limit_mb: 2048
            })
        );
        assert!(parse_limits("FUZZ_TIMEOUT_SECS=30\n").is_err());
        // The repository's own file parses, and sets the fuzz build.
        let root = find_root(Path::new(env!("CARGO_MANIFEST_DIR")));
        let own = std::fs::read_to_string(root.join(LIMITS_FILE)).unwrap();
        assert!(parse_limits(&own).is_ok());
        assert_eq!(build_flags_in(&root).as_deref(), Some(FUZZ_BUILD_FLAGS));
    }

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        // 2025-01-02 02:17:05 UTC.
        assert_eq!(
            date_strings(1_735_784_225),
            ("2025-01-02".to_string(), "2025-01-02 02:17 UTC".to_string())
        );
    }

    #[test]
    fn meta_lines_append_in_order() {
        let dir = TempDir::new("crashfuzz-meta").unwrap();
        let meta = Meta::new(&dir.path().join("campaign.txt"));
        meta.set("date", "2025-01-02").unwrap();
        meta.set("budget_secs", 300).unwrap();
        meta.set("fuzz_build_flags", "-O\n--x").unwrap();
        let text = std::fs::read_to_string(dir.path().join("campaign.txt")).unwrap();
        assert_eq!(
            text,
            "date=2025-01-02\nbudget_secs=300\nfuzz_build_flags=-O --x\n"
        );
        let kv = crate::report::parse_key_values(&text);
        assert_eq!(kv["budget_secs"], "300");
    }

    #[test]
    fn arguments_and_defaults() {
        let a = parse(&[]).unwrap();
        let env = |k: &str| match k {
            "HOME" => Some("/home/x".to_string()),
            "CARGO_TARGET_DIR" => Some("/t".to_string()),
            _ => None,
        };
        let p = plan(&a, &env).unwrap();
        assert_eq!(p.budget, 3600);
        assert_eq!(p.targets, Target::ALL.to_vec());
        assert_eq!(p.mutant, None);
        assert!(!p.verify && p.install && p.build);
        assert_eq!(p.cache, Path::new("/home/x/.cache/crashfuzz-nightly"));
        assert_eq!(p.fuzz_target_dir, Path::new("/t/fuzz"));
        assert_eq!(p.cargo_target, Path::new("/t"));
        assert_eq!(p.fuzz_build_flags, FUZZ_BUILD_FLAGS);
        assert!(p.out.ends_with("target/nightly-report"));
        assert!(p.seed > 20_200_000, "{}", p.seed);

        let a = parse(&[
            "--canary",
            "--budget",
            "300",
            "--jobs",
            "2",
            "--targets",
            "crash_ops pitr",
            "--seed",
            "7",
            "--no-install",
            "--no-build",
            "--cache",
            "/c",
        ])
        .unwrap();
        let p = plan(&a, &no_env).unwrap();
        assert_eq!(p.mutant.map(|m| m.name()), Some(CANARY));
        assert!(p.verify, "a canary verifies its tests by default");
        assert_eq!(p.targets, vec![Target::CrashOps, Target::Pitr]);
        assert_eq!((p.budget, p.jobs, p.seed), (300, 2, 7));
        assert!(!p.install && !p.build);
        assert_eq!(p.shares.fuzz_secs_per_target, 105);
        // The last of --verify-tests / --no-verify-tests wins.
        let a = parse(&[
            "--canary",
            "--verify-tests",
            "--no-verify-tests",
            "--cache",
            "/c",
        ])
        .unwrap();
        assert!(!plan(&a, &no_env).unwrap().verify);
        let a = parse(&["--no-verify-tests", "--verify-tests", "--cache", "/c"]).unwrap();
        assert!(plan(&a, &no_env).unwrap().verify);
        // --targets "" is every target, as in the shell script.
        let a = parse(&["--targets", "", "--cache", "/c"]).unwrap();
        assert_eq!(plan(&a, &no_env).unwrap().targets.len(), Target::ALL.len());
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        for argv in [
            &["--budget", "ten"][..],
            &["--jobs", "-1"],
            &["--frobnicate"],
            &["--canary", "--mutant", "seqno-reused"],
            &["--budget"],
        ] {
            let e = parse(argv).expect_err(&format!("{argv:?}"));
            assert_eq!(e.exit_code(), 2, "{argv:?}");
        }
        let bad = |argv: &[&str], needle: &str| {
            let e = plan(&parse(argv).unwrap(), &no_env).expect_err(&format!("{argv:?}"));
            assert!(e.contains(needle), "{argv:?}: {e}");
        };
        bad(&["--jobs", "0", "--cache", "/c"], "--jobs");
        bad(
            &["--targets", "crash_ops nope", "--cache", "/c"],
            "unknown fuzz target \"nope\"",
        );
        bad(
            &["--mutant", "no-such-bug", "--cache", "/c"],
            "unknown seeded bug",
        );
        bad(&[], "--cache");
    }

    fn artifact(target: Target, name: &str, source: Source) -> Artifact {
        Artifact {
            target,
            path: PathBuf::from(format!("/x/{name}")),
            source,
            size: 1,
        }
    }

    #[test]
    fn one_signature_function() {
        let s = harness::Scenario::from_bytes(&[1, 2, 3]);
        let mut f = Failure::new(
            harness::FailureKind::Divergence,
            oracle::Invariant::Durability,
            "x".into(),
            &s,
        );
        f.failpoint = Some("flush::before_header_sync".into());
        let a = artifact(Target::CrashOps, "crash-1", Source::Fuzz);
        // A failure: its own signature, whatever found it.
        assert_eq!(signature(&a, Some(&f)), f.signature());
        let e = artifact(Target::Interleave, "crash-2", Source::Explorer);
        assert_eq!(signature(&e, Some(&f)), signature(&a, Some(&f)));
        // One crash point for failpoints on consecutive lines.
        let mut g = f.clone();
        g.failpoint = Some("flush::after_header".into());
        assert_eq!(signature(&a, Some(&g)), signature(&a, Some(&f)));
        // Not reproduced: one per target and libFuzzer kind.
        let t1 = artifact(Target::CrashOps, "timeout-aa", Source::Fuzz);
        let t2 = artifact(Target::CrashOps, "timeout-bb", Source::Imported);
        let o = artifact(Target::CrashOps, "oom-aa", Source::Fuzz);
        let p = artifact(Target::Pitr, "timeout-aa", Source::Fuzz);
        assert_eq!(signature(&t1, None), signature(&t2, None));
        assert_eq!(signature(&t1, None), "6b9fde5b12f6e2f9");
        assert_ne!(signature(&t1, None), signature(&o, None));
        assert_ne!(signature(&t1, None), signature(&p, None));
        assert_eq!(t2.found_by(), "imported:crash_ops");
        assert_eq!(e.found_by(), "explorer");
        assert_eq!(t1.found_by(), "crash_ops");
        assert_eq!(
            artifact(Target::Pitr, "weird", Source::Fuzz).libfuzzer_kind(),
            "weird"
        );
    }

    #[test]
    fn grouping_replays_and_files_by_signature() {
        let dir = TempDir::new("crashfuzz-group").unwrap();
        let out = dir.path();
        // Three passing seeds of two targets: not reproduced, grouped per
        // target and libFuzzer kind.
        write_seed_corpus(Target::CrashOps, &out.join("artifacts/crash_ops"), 3, 2).unwrap();
        std::fs::rename(
            out.join("artifacts/crash_ops/seed-000"),
            out.join("artifacts/crash_ops/crash-a"),
        )
        .unwrap();
        std::fs::rename(
            out.join("artifacts/crash_ops/seed-001"),
            out.join("artifacts/crash_ops/crash-b"),
        )
        .unwrap();
        write_seed_corpus(Target::Pitr, &out.join("imported/pitr"), 3, 1).unwrap();
        std::fs::create_dir_all(out.join("explore/artifacts")).unwrap();
        std::fs::write(out.join("explore/artifacts/crash-x.txt"), "trace").unwrap();
        let list = collect_artifacts(out, &[Target::CrashOps, Target::Pitr]);
        assert_eq!(list.len(), 3, "{list:?}");
        let groups = group(list, None);
        let keys: Vec<&String> = groups.keys().collect();
        let mut want = [
            unreproduced_signature(Target::CrashOps, "crash"),
            unreproduced_signature(Target::Pitr, "seed"),
        ];
        want.sort();
        assert_eq!(keys, want.iter().collect::<Vec<_>>());
        assert_eq!(groups[&want[0]].len() + groups[&want[1]].len(), 3);
    }

    #[test]
    fn the_source_copy_leaves_the_checkout_alone() {
        let repo = TempDir::new("crashfuzz-repo").unwrap();
        let r = repo.path();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(r)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        std::fs::create_dir_all(r.join("src/deep")).unwrap();
        std::fs::write(r.join(".gitignore"), "/target\n").unwrap();
        std::fs::write(r.join("src/deep/a.rs"), "a").unwrap();
        std::fs::write(r.join("tracked.txt"), "t").unwrap();
        std::fs::write(r.join("gone.txt"), "g").unwrap();
        git(&["add", "."]);
        std::fs::remove_file(r.join("gone.txt")).unwrap();
        std::fs::write(r.join("untracked.txt"), "u").unwrap();
        std::fs::create_dir_all(r.join("target")).unwrap();
        std::fs::write(r.join("target/ignored"), "i").unwrap();
        let snapshot = |root: &Path| {
            let mut all = Vec::new();
            let mut stack = vec![root.to_path_buf()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap().flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        all.push((p.clone(), std::fs::read(&p).unwrap()));
                    }
                }
            }
            all.sort();
            all
        };
        let before = snapshot(r);
        let dest = TempDir::new("crashfuzz-copy").unwrap();
        let n = copy_source_tree(r, dest.path()).unwrap();
        assert_eq!(n, 4, "tracked, untracked, .gitignore, src/deep/a.rs");
        assert_eq!(
            std::fs::read(dest.path().join("src/deep/a.rs")).unwrap(),
            b"a"
        );
        assert!(dest.path().join("untracked.txt").is_file());
        assert!(!dest.path().join("gone.txt").exists());
        assert!(!dest.path().join("target").exists());
        // Writing into the copy leaves the checkout as it was.
        std::fs::write(dest.path().join("src/deep/new.rs"), "n").unwrap();
        assert_eq!(snapshot(r), before);
        let kept = dest.path().to_path_buf();
        drop(dest);
        assert!(!kept.exists(), "the temporary tree is removed");
        // Not a checkout: an error, no panic.
        let plain = TempDir::new("crashfuzz-plain").unwrap();
        let elsewhere = TempDir::new("crashfuzz-dest").unwrap();
        assert!(copy_source_tree(plain.path(), elsewhere.path()).is_err());
    }
}
