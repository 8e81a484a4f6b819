//! `crashfuzz`: the crash-consistency explorer and its tools.
//!
//! Exit codes, for every subcommand: 0 nothing found; 2 bad usage or
//! unreadable input; 3 oracle divergence; 4 engine panic; 5 hang (watchdog,
//! liveness, bounded compaction); 6 recovery error; 7 an engine error no
//! injected fault explains.
#![forbid(unsafe_code)]

// The explorer allocates many small, short-lived buffers per scenario;
// mimalloc makes a run about a quarter cheaper than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use engine::mutants::Mutant;
use harness::explore::{describe, explore, write_artifact, ExploreOptions, ThreadsMode};
use harness::generate::Size;
use harness::minimize::{minimize_target, regression_test};
use harness::runner::{replay_command, RunOptions};
use harness::targets::Target;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit code: bad usage or unreadable input.
const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "crashfuzz",
    version,
    about = "Crash-consistency fuzzing of a couchstore-style store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run random scenarios from one seed until a failure or a budget.
    Explore {
        /// The seed (default: from the clock, printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Time budget in seconds (default 60 when --iterations is absent).
        #[arg(long)]
        time: Option<u64>,
        /// Scenario budget.
        #[arg(long)]
        iterations: Option<u64>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Print one JSON summary object as the last line of stdout.
        #[arg(long)]
        json: bool,
        /// Where failure artifacts go.
        #[arg(long, default_value = "crashfuzz-artifacts")]
        out: PathBuf,
        /// Scenario size: small, default or large.
        #[arg(long, default_value = "default")]
        size: String,
        /// Switch a seeded bug on (see `crashfuzz mutants --list`).
        #[arg(long)]
        mutant: Option<String>,
        /// Write failpoint coverage (hits and crashes) to this file.
        #[arg(long)]
        coverage: Option<PathBuf>,
        /// Wall-clock backstop: a scenario running longer than this is a
        /// hang (the deterministic watchdog, a budget of disk calls per
        /// step, catches nearly every hang long before).
        #[arg(long, default_value_t = harness::explore::DEFAULT_HANG_SECS)]
        hang_secs: u64,
        /// Memory ceiling: past this resident size the longest-running
        /// scenario is a hang.
        #[arg(long, default_value_t = harness::explore::DEFAULT_MAX_RSS_MB)]
        max_rss_mb: u64,
        /// Only thread schedules: the background flusher and compactor with
        /// writers under shuttle's random or PCT scheduler, seeded from the
        /// scenario seed (by default one scenario in --thread-share is one).
        #[arg(long)]
        threads: bool,
        /// One scenario in this many is a thread schedule (0: none).
        #[arg(long, default_value_t = harness::explore::DEFAULT_THREAD_SHARE)]
        thread_share: u64,
    },
    /// Bounded-exhaustive check: every workload of at most --max-ops
    /// operations, every crash point of its last operation, every crash
    /// image the disk model allows there, recovery crashes; with counts.
    Exhaust {
        /// Longest workload.
        #[arg(long, default_value_t = 3)]
        max_ops: usize,
        /// Keys (1..=3).
        #[arg(long, default_value_t = 2)]
        keys: u8,
        /// Value sizes of a set (one or two, 0..=63).
        #[arg(long, default_value = "4,40")]
        sizes: String,
        /// Operations (set,delete,flush,tick,compact-start,compact-step,
        /// compact-finish,compact-abort,reopen; and, not by default, the
        /// faults eio-sync,eio-write,short-write,eio-remove,
        /// read-eio-recovery).
        #[arg(
            long,
            default_value = "set,delete,flush,tick,compact-start,compact-step,compact-finish,compact-abort,reopen"
        )]
        ops: String,
        /// PiTR: off, on or both.
        #[arg(long, default_value = "both")]
        pitr: String,
        /// Strict recovery (refuse a damaged tail) instead of tolerant.
        #[arg(long)]
        strict: bool,
        /// Torn-sector fills: none, or a list of old,zero,garbage.
        #[arg(long, default_value = "zero")]
        fills: String,
        /// Files with more unsynced operations get prefixes only.
        #[arg(long, default_value_t = 4)]
        max_subset_ops: usize,
        /// Crash images enumerated per crash, at most.
        #[arg(long, default_value_t = 4096)]
        max_images: u64,
        /// No crashes during recovery.
        #[arg(long)]
        no_recovery_crashes: bool,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// First item of the order (resume from a report's `next`).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Stop at the first failure (a shortest failing workload).
        #[arg(long)]
        first: bool,
        /// Switch a seeded bug on.
        #[arg(long)]
        mutant: Option<String>,
        /// Run against every seeded bug and print the table.
        #[arg(long)]
        all_mutants: bool,
        /// Replay a failure's id (`<scenario hex>:<picks>`) with its trace.
        #[arg(long)]
        replay: Option<String>,
        /// Print the JSON report as the last line of stdout.
        #[arg(long)]
        json: bool,
    },
    /// Replay an artifact deterministically and print its trace.
    Repro {
        /// The artifact (raw scenario bytes, as cargo-fuzz writes them).
        artifact: Option<PathBuf>,
        /// The scenario bytes in hex instead of a file.
        #[arg(long)]
        hex: Option<String>,
        /// The fuzz target the artifact came from (default: interleave).
        #[arg(long)]
        target: Option<String>,
        /// Switch a seeded bug on.
        #[arg(long)]
        mutant: Option<String>,
        /// Print only the verdict, not the trace.
        #[arg(long)]
        quiet: bool,
        /// Wall-clock backstop: report a hang (exit 5) after this long.
        #[arg(long, default_value_t = harness::explore::DEFAULT_HANG_SECS)]
        hang_secs: u64,
        /// Print the verdict as one JSON object (kind, invariant, signature,
        /// crash point, replay command, trace) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Shrink a failing artifact and write a regression test.
    Minimize {
        /// The failing artifact.
        artifact: PathBuf,
        /// Where the minimized artifact goes (default: <artifact>.min).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Where the regression test goes (default: regression_<signature>.rs
        /// next to the output; drop it into harness/tests/).
        #[arg(long)]
        test_out: Option<PathBuf>,
        /// The fuzz target the artifact came from.
        #[arg(long)]
        target: Option<String>,
        /// Switch a seeded bug on.
        #[arg(long)]
        mutant: Option<String>,
        /// Print the result as one JSON object (the failure, steps before and
        /// after, the artifact, the regression test, the replay command).
        #[arg(long)]
        json: bool,
    },
    /// List every failpoint and where it sits; with a coverage file, its hits
    /// and crashes.
    Catalog {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// A coverage file written by `explore --coverage`.
        #[arg(long)]
        coverage: Option<PathBuf>,
    },
    /// List a store file's headers, verify its trees.
    Inspect {
        /// A `<name>.couch.<rev>` file.
        file: PathBuf,
    },
    /// Run the seeded-bug benchmark: does exploration find every bug?
    Mutants {
        /// Time budget per seeded bug, seconds.
        #[arg(long, default_value_t = 60)]
        time_per_bug: u64,
        /// Independent seeds per bug (the median is over these).
        #[arg(long, default_value_t = 3)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Only these bugs (by name); default all.
        #[arg(long)]
        only: Vec<String>,
        /// Print one JSON object as the last line of stdout.
        #[arg(long)]
        json: bool,
        /// Also write the Markdown table here.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Worker threads per exploration (default 1: the benchmark's unit).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// List the seeded bugs and exit.
        #[arg(long)]
        list: bool,
    },
    /// Write generated seed corpora for the fuzz targets.
    Corpus {
        /// The corpus root (one directory per target is made below it).
        #[arg(long, default_value = "fuzz/corpus")]
        out: PathBuf,
        /// Inputs per target.
        #[arg(long, default_value_t = 32)]
        count: u64,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write a nightly campaign's report (report.md, report.json, SVG plots)
    /// from the directory `crashfuzz campaign` filled; exit 1 when its
    /// verdict fails.
    Report(crashfuzz::report::ReportArgs),
    /// The cargo-mutants score (ci/mutants.sh): caught / viable, time per
    /// mutant, survivors; exit 1 when a survivor is not a known one.
    MutationScore(crashfuzz::mutation::ScoreArgs),
    /// Crash the real thing: child processes run the engine over the real
    /// file system (writers, background flusher and compactor) and are
    /// killed (SIGKILL, or at a failpoint); each reopen is checked by the
    /// oracle against every acknowledged flush. Honours FAILPOINTS.
    Stress {
        /// The seed (default: from the clock, printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Kill/reopen rounds.
        #[arg(long)]
        rounds: Option<u64>,
        /// Time budget in seconds (default 60 when --rounds is absent).
        #[arg(long)]
        time: Option<u64>,
        /// The store's directory, on the file system to test (must hold no
        /// store; default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print one JSON summary object as the last line of stdout.
        #[arg(long)]
        json: bool,
    },
    /// Record a workload's I/O on the real file system, build crash images
    /// from it under the simulator's persistence rules, open each over
    /// StdVfs in a fresh process and check it with the oracle.
    ReplayCrashes {
        /// The workload: a scenario file (raw bytes, as artifacts are).
        #[arg(long)]
        workload: Option<PathBuf>,
        /// Seed of the crash points and modes (and of the workload, if no
        /// --workload).
        #[arg(long)]
        seed: Option<u64>,
        /// Crash images to check.
        #[arg(long, default_value_t = 100)]
        max_images: usize,
        /// Print one JSON summary object as the last line of stdout.
        #[arg(long)]
        json: bool,
    },
    /// (internal) One `stress` child.
    #[command(hide = true)]
    StressChild {
        /// The store's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The plan, JSON.
        #[arg(long)]
        plan: String,
        /// Only open, report, exit.
        #[arg(long)]
        check_only: bool,
    },
    /// (internal) Open a crash image and report it.
    #[command(hide = true)]
    OpenImage {
        /// The image's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Tree fan-out.
        #[arg(long)]
        fanout: usize,
        /// Strict recovery.
        #[arg(long)]
        strict: bool,
    },
    /// Run the nightly campaign (ci/nightly.sh is its bootstrap): fuzz,
    /// explore, benchmark, triage, report. Exit 0 passed, 1 the verdict
    /// failed, 2 the campaign could not run.
    Campaign(crashfuzz::campaign::CampaignArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The fail crate's own interface, FAILPOINTS=name=actions;... : checked
    // here (a bad value is bad usage, not a panic). `stress` hands it to
    // its children (which set it up themselves); every other command sets
    // it up for itself, and the runner leaves configured names alone.
    let _failpoints = match std::env::var("FAILPOINTS") {
        Ok(value) if !value.trim().is_empty() => {
            if let Err(message) = harness::stress::validate_failpoints(&value) {
                eprintln!("crashfuzz: {message}");
                return ExitCode::from(EXIT_USAGE);
            }
            match cli.command {
                Command::Stress { .. } | Command::StressChild { .. } => None,
                _ => Some(fail::FailScenario::setup()),
            }
        }
        _ => None,
    };
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("crashfuzz: {message}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

type CmdResult = Result<u8, String>;

fn dispatch(command: Command) -> CmdResult {
    match command {
        Command::Explore {
            seed,
            time,
            iterations,
            jobs,
            json,
            out,
            size,
            mutant,
            coverage,
            hang_secs,
            max_rss_mb,
            threads,
            thread_share,
        } => {
            let seed = seed.unwrap_or_else(seed_from_clock);
            let options = ExploreOptions {
                seed,
                time: match (time, iterations) {
                    (None, None) => Some(Duration::from_secs(60)),
                    (t, _) => t.map(Duration::from_secs),
                },
                iterations,
                jobs: jobs
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                size: Size::from_name(&size).ok_or_else(|| format!("unknown --size {size:?}"))?,
                mutant: parse_mutant(mutant.as_deref())?,
                progress: crashfuzz::progress::Bar::sink(
                    !json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
                    "scenarios",
                ),
                hang_after: Duration::from_secs(hang_secs.max(1)),
                max_rss_bytes: max_rss_mb.saturating_mul(1 << 20),
                threads: match (threads, thread_share) {
                    (true, _) => ThreadsMode::Only,
                    (false, 0) => ThreadsMode::Off,
                    (false, n) => ThreadsMode::Share(n),
                },
            };
            cmd_explore(&options, json, &out, coverage.as_deref())
        }
        Command::Exhaust {
            max_ops,
            keys,
            sizes,
            ops,
            pitr,
            strict,
            fills,
            max_subset_ops,
            max_images,
            no_recovery_crashes,
            jobs,
            from,
            first,
            mutant,
            all_mutants,
            replay,
            json,
        } => {
            let bounds = harness::exhaust::ImageBounds {
                max_subset_ops,
                fills: crashfuzz::exhaust::parse_fills(&fills)?,
                max_images,
            };
            let mutant = parse_mutant(mutant.as_deref())?;
            if let Some(id) = replay {
                return cmd_exhaust_replay(&id, &bounds, mutant);
            }
            let options = harness::exhaust::ExhaustOptions {
                max_ops,
                alphabet: crashfuzz::exhaust::alphabet(keys, &sizes, &ops, &pitr, strict)?,
                bounds,
                recovery_crashes: !no_recovery_crashes,
                jobs: match jobs {
                    Some(0) => return Err("--jobs must be at least 1".into()),
                    Some(j) => j,
                    None => std::thread::available_parallelism().map_or(1, |n| n.get()),
                },
                from,
                stop_at_first: first,
                deadline: None,
                mutant,
                progress: crashfuzz::progress::Bar::sink(
                    !json && !all_mutants && std::io::IsTerminal::is_terminal(&std::io::stderr()),
                    "items",
                ),
            };
            if all_mutants {
                let rows = crashfuzz::exhaust::mutant_table(&options)?;
                println!("| seeded bug | found | shortest workload ; crash point | check | runs |");
                println!("|---|---|---|---|---|");
                for row in &rows {
                    println!("{}", row.markdown());
                }
                return Ok(0);
            }
            cmd_exhaust(&options, json)
        }
        Command::Repro {
            artifact,
            hex,
            target,
            mutant,
            quiet,
            hang_secs,
            json,
        } => {
            let (bytes, path) = read_input(artifact.as_deref(), hex.as_deref())?;
            let mutant = parse_mutant(mutant.as_deref())?;
            if harness::threads::is_artifact(&bytes) {
                return cmd_repro_threads(&bytes, mutant, quiet || json, json);
            }
            let target = parse_target(target.as_deref(), path.as_deref())?;
            cmd_repro(
                target,
                &bytes,
                mutant,
                quiet || json,
                Duration::from_secs(hang_secs.max(1)),
                json,
            )
        }
        Command::Minimize {
            artifact,
            output,
            test_out,
            target,
            mutant,
            json,
        } => {
            let (bytes, _) = read_input(Some(&artifact), None)?;
            let mutant = parse_mutant(mutant.as_deref())?;
            let output = output.unwrap_or_else(|| artifact.with_extension("min"));
            if harness::threads::is_artifact(&bytes) {
                return cmd_minimize_threads(&bytes, mutant, &output, json);
            }
            let target = parse_target(target.as_deref(), Some(&artifact))?;
            cmd_minimize(target, &bytes, mutant, &output, test_out.as_deref(), json)
        }
        Command::Catalog { json, coverage } => crashfuzz::catalog::print(json, coverage.as_deref()),
        Command::Inspect { file } => cmd_inspect(&file),
        Command::Mutants {
            time_per_bug,
            seeds,
            seed,
            only,
            json,
            markdown,
            jobs,
            list,
        } => {
            if list {
                for m in Mutant::ALL {
                    println!("{m}");
                }
                return Ok(0);
            }
            let bugs = if only.is_empty() {
                Mutant::ALL.to_vec()
            } else {
                only.iter()
                    .map(|n| parse_mutant(Some(n)).map(|m| m.into_iter().collect::<Vec<_>>()))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .flatten()
                    .collect()
            };
            let options = crashfuzz::mutants::BenchOptions {
                time_per_bug: Duration::from_secs(time_per_bug),
                seeds,
                first_seed: seed,
                jobs,
                progress: !json,
            };
            crashfuzz::mutants::cmd(&bugs, &options, json, markdown.as_deref())
        }
        Command::Corpus { out, count, seed } => {
            for target in Target::ALL {
                let dir = out.join(target.name());
                let n = harness::targets::write_seed_corpus(target, &dir, seed, count)
                    .map_err(|e| format!("writing {}: {e}", dir.display()))?;
                println!("{}: {n} inputs in {}", target, dir.display());
            }
            Ok(0)
        }
        Command::Report(args) => crashfuzz::report::cmd(&args),
        Command::MutationScore(args) => crashfuzz::mutation::cmd(&args).map_err(|e| e.to_string()),
        Command::Stress {
            seed,
            rounds,
            time,
            dir,
            json,
        } => cmd_stress(seed, rounds, time, dir, json),
        Command::ReplayCrashes {
            workload,
            seed,
            max_images,
            json,
        } => cmd_replay_crashes(workload.as_deref(), seed, max_images, json),
        Command::StressChild {
            dir,
            plan,
            check_only,
        } => {
            let plan: harness::stress::ChildPlan =
                serde_json::from_str(&plan).map_err(|e| format!("--plan: {e}"))?;
            std::process::exit(harness::stress::child_main(&dir, &plan, check_only))
        }
        Command::OpenImage {
            dir,
            fanout,
            strict,
        } => std::process::exit(harness::crash_images::open_image_main(&dir, fanout, strict)),
        Command::Campaign(args) => crashfuzz::campaign::run(&args),
    }
}

fn current_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the crashfuzz binary: {e}"))
}

fn cmd_stress(
    seed: Option<u64>,
    rounds: Option<u64>,
    time: Option<u64>,
    dir: Option<PathBuf>,
    json: bool,
) -> CmdResult {
    let seed = seed.unwrap_or_else(seed_from_clock);
    let user_failpoints = std::env::var("FAILPOINTS")
        .ok()
        .filter(|v| !v.trim().is_empty());
    if let Some(fp) = &user_failpoints {
        harness::stress::validate_failpoints(fp)?;
    }
    harness::realfs::mutant_from_env()?;
    let options = harness::stress::StressOptions {
        seed,
        rounds,
        time: match (time, rounds) {
            (None, None) => Some(Duration::from_secs(60)),
            (t, _) => t.map(Duration::from_secs),
        },
        dir,
        progress: crashfuzz::progress::Bar::sink(
            !json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            "rounds",
        ),
        exe: current_exe()?,
        user_failpoints: user_failpoints.clone(),
    };
    eprintln!(
        "crashfuzz stress: seed {seed}{}{}",
        user_failpoints.map_or(String::new(), |f| format!(", FAILPOINTS={f}")),
        harness::realfs::mutant_prefix()
            .trim()
            .split_once('=')
            .map_or(String::new(), |(_, m)| format!(", seeded bug {m}"))
    );
    let report = harness::stress::run(&options)?;
    print_real_report(&report.failures, &report, json, || {
        harness::stress::summary(&report)
    })?;
    Ok(report.exit_code())
}

fn cmd_replay_crashes(
    workload: Option<&Path>,
    seed: Option<u64>,
    max_images: usize,
    json: bool,
) -> CmdResult {
    let seed = seed.unwrap_or_else(seed_from_clock);
    let (scenario, workload_arg) = match workload {
        Some(path) => {
            let (bytes, _) = read_input(Some(path), None)?;
            (
                harness::Scenario::from_bytes(&bytes),
                format!(" --workload {}", path.display()),
            )
        }
        None => (
            harness::generate::scenario(seed, 0, Size::Large),
            String::new(),
        ),
    };
    let options = harness::crash_images::ReplayOptions {
        scenario,
        workload_arg,
        seed,
        max_images,
        exe: current_exe()?,
        progress: crashfuzz::progress::Bar::sink(
            !json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            "images",
        ),
    };
    eprintln!("crashfuzz replay-crashes: seed {seed}, up to {max_images} images");
    let report = harness::crash_images::run(&options)?;
    print_real_report(&report.failures, &report, json, || {
        harness::crash_images::summary(&report)
    })?;
    Ok(report.exit_code())
}

/// The end of a real-file run (`stress`, `replay-crashes`): each failure on
/// stderr, then the JSON report or the one-line summary on stdout.
fn print_real_report(
    failures: &[harness::realfs::RealFailure],
    report: &impl serde::Serialize,
    json: bool,
    summary: impl FnOnce() -> String,
) -> Result<(), String> {
    for failure in failures {
        eprintln!("{failure}");
    }
    if json {
        let text = serde_json::to_string(report).map_err(|e| format!("json: {e}"))?;
        println!("{text}");
    } else {
        println!("{}", summary());
    }
    Ok(())
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn cmd_exhaust(options: &harness::exhaust::ExhaustOptions, json: bool) -> CmdResult {
    let started = std::time::Instant::now();
    let report = harness::exhaust::exhaust(options).map_err(|e| e.to_string())?;
    let flags = crashfuzz::exhaust::bounds_flags(&options.bounds);
    for f in &report.failures {
        eprintln!(
            "FAIL item {} ({} ops{}): {}; {}\n  {}: {}\n  replay: {}",
            f.item,
            f.workload.len(),
            if f.pitr { ", PiTR on" } else { "" },
            f.workload
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            f.crash_point,
            f.failure.kind,
            f.failure.message.lines().next().unwrap_or(""),
            harness::exhaust::replay_command(f, &flags)
        );
    }
    let c = &report.counts;
    println!(
        "items {}..{} of {}; workloads {} (skipped: {} by key renaming, {} no-op); crash points {} \
         (not fired {}, through the arm hook {}); crash images raw {} unique {} (beyond bound {}); \
         recovery crash points {} (through the arm hook {}) images raw {} unique {}; runs {}; oracle checks {}; failures {}; \
         {:.1}s",
        report.from,
        report.next,
        report.total_items,
        c.workloads,
        c.skipped_key_renaming,
        c.skipped_noop,
        c.crash_points,
        c.crash_points_not_fired,
        c.crash_points_via_arm_hook,
        c.images_raw,
        c.images_unique,
        c.images_beyond_bound,
        c.recovery_crash_points,
        c.recovery_crash_points_via_arm_hook,
        c.recovery_images_raw,
        c.recovery_images_unique,
        c.runs,
        c.checks,
        c.failures,
        started.elapsed().as_secs_f64()
    );
    for n in &report.not_fired {
        println!("did not fire: {n}");
    }
    if json {
        println!("{}", report.to_json(&flags));
    }
    println!("{}", report.statement());
    Ok(match report.failures.first() {
        Some(f) => f.failure.kind.exit_code() as u8,
        None => 0,
    })
}

fn cmd_exhaust_replay(
    id: &str,
    bounds: &harness::exhaust::ImageBounds,
    mutant: Option<Mutant>,
) -> CmdResult {
    let id: harness::exhaust::ReplayId = id
        .parse()
        .map_err(|e: harness::exhaust::ExhaustError| e.to_string())?;
    print!("{}", harness::scenario::describe(&id.scenario));
    println!("images picked at each power loss: {:?}", id.picks);
    match harness::exhaust::replay(&id, bounds, mutant, true) {
        Ok(outcome) => {
            for line in &outcome.trace {
                println!("{line}");
            }
            println!(
                "passed: {} crash states, {} checks",
                outcome.crash_states, outcome.checks
            );
            Ok(0)
        }
        Err(f) => {
            for line in &f.trace {
                println!("{line}");
            }
            println!("FAILED {}: {}", f.kind, f.message);
            Ok(f.kind.exit_code() as u8)
        }
    }
}

fn parse_mutant(name: Option<&str>) -> Result<Option<Mutant>, String> {
    match name {
        None => Ok(None),
        Some(n) => {
            if !cfg!(feature = "mutants") {
                return Err("seeded bugs need the `mutants` feature".into());
            }
            Mutant::from_name(n)
                .map(Some)
                .ok_or_else(|| format!("unknown seeded bug {n:?} (see `crashfuzz mutants --list`)"))
        }
    }
}

fn parse_target(name: Option<&str>, artifact: Option<&Path>) -> Result<Target, String> {
    if let Some(n) = name {
        return Target::from_name(n).ok_or_else(|| format!("unknown target {n:?}"));
    }
    // cargo-fuzz keeps artifacts in fuzz/artifacts/<target>/.
    let from_path = artifact
        .and_then(|p| p.parent())
        .and_then(|d| d.file_name())
        .and_then(|d| Target::from_name(&d.to_string_lossy()));
    Ok(from_path.unwrap_or(Target::Interleave))
}

fn read_input(
    path: Option<&Path>,
    hex: Option<&str>,
) -> Result<(Vec<u8>, Option<PathBuf>), String> {
    match (path, hex) {
        (Some(p), None) => std::fs::read(p)
            .map(|b| (b, Some(p.to_path_buf())))
            .map_err(|e| format!("cannot read {}: {e}", p.display())),
        (None, Some(h)) => hex::decode(h.trim())
            .map(|b| (b, None))
            .map_err(|e| format!("--hex is not hex: {e}")),
        (Some(_), Some(_)) => Err("give an artifact or --hex, not both".into()),
        (None, None) => Err("give an artifact path or --hex".into()),
    }
}

fn cmd_explore(
    options: &ExploreOptions,
    json: bool,
    out: &Path,
    coverage: Option<&Path>,
) -> CmdResult {
    eprintln!(
        "crashfuzz explore: seed {} on {} worker(s){}",
        options.seed,
        options.jobs,
        options
            .mutant
            .map_or(String::new(), |m| format!(", seeded bug {m}"))
    );
    let report = explore(options);
    if let Some(path) = coverage {
        std::fs::write(path, report.coverage.to_text())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let total = engine::failpoints::all().count();
    let summary = format!(
        "{} scenarios in {:.1}s ({:.0}/s), {} crash states checked, {} oracle checks, failpoints hit {}/{total}, crashed at {}/{total}",
        report.iterations,
        report.elapsed.as_secs_f64(),
        report.execs_per_sec(),
        report.crash_states,
        report.checks,
        total - report.coverage.unhit().len(),
        total - report.coverage.uncrashed().len(),
    );
    let mut code = 0;
    match &report.failure {
        Some(found) => {
            let path = write_artifact(out, &found.bytes, &found.failure)
                .map_err(|e| format!("writing artifact to {}: {e}", out.display()))?;
            eprintln!("{}", found.failure);
            let scenario = match harness::threads::parse_artifact(&found.bytes) {
                Ok(a) => format!("thread schedule {}", a.scenario),
                Err(_) => describe(&found.failure.scenario),
            };
            eprintln!(
                "scenario {} of seed {}:\n{scenario}",
                found.index, report.seed,
            );
            eprintln!(
                "artifact: {} (trace in {})",
                path.display(),
                path.with_extension("txt").display()
            );
            eprintln!("replay: {}", found.failure.replay_command_from(&path));
            code = found.failure.kind.exit_code() as u8;
        }
        None => eprintln!("no failure found"),
    }
    if json {
        println!("{}", report.to_json());
    } else {
        println!("{summary}");
    }
    Ok(code)
}

fn cmd_repro(
    target: Target,
    bytes: &[u8],
    mutant: Option<Mutant>,
    quiet: bool,
    hang_after: Duration,
    json: bool,
) -> CmdResult {
    let options = RunOptions {
        keep_trace: true,
        mutant,
        echo: !quiet,
        ..RunOptions::default()
    };
    let scenario = target.scenario(bytes);
    if !quiet {
        eprintln!("target {target}\n{}", describe(&scenario));
    }
    // On a thread of its own, so that a hang the disk-call watchdog cannot
    // see (a loop with no disk call) still ends the repro.
    let result = harness::targets::run_target_watched(target, bytes, &options, hang_after);
    match result {
        Ok(outcome) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "failure": null,
                        "crash_states": outcome.crash_states,
                        "checks": outcome.checks,
                        "trace_digest": outcome.trace_digest,
                    })
                );
            } else {
                println!(
                    "no failure: {} crash states, {} checks, trace digest {}",
                    outcome.crash_states, outcome.checks, outcome.trace_digest
                );
            }
            Ok(0)
        }
        Err(failure) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "failure": failure.to_json(), "trace": failure.trace })
                );
            } else {
                println!("{failure}");
            }
            Ok(failure.kind.exit_code() as u8)
        }
    }
}

/// `repro` of a thread-schedule artifact: replay its schedule under
/// shuttle (deterministic), print the trace and the verdict.
fn cmd_repro_threads(bytes: &[u8], mutant: Option<Mutant>, quiet: bool, json: bool) -> CmdResult {
    let artifact = harness::threads::parse_artifact(bytes)?;
    if !quiet {
        eprintln!(
            "thread schedule {}\nschedule: {}",
            artifact.scenario,
            artifact
                .schedule
                .as_deref()
                .unwrap_or("(none: the scenario's first schedule)")
        );
    }
    match harness::threads::replay_artifact(bytes, mutant)? {
        Ok(()) => {
            if json {
                println!("{}", serde_json::json!({ "failure": null }));
            } else {
                println!("no failure: the schedule passes");
            }
            Ok(0)
        }
        Err(found) => {
            let failure = found.to_failure();
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "failure": failure.to_json(), "trace": failure.trace })
                );
            } else {
                if !quiet {
                    for line in &failure.trace {
                        println!("  {line}");
                    }
                }
                println!("{failure}");
            }
            Ok(failure.kind.exit_code() as u8)
        }
    }
}

/// `minimize` of a thread-schedule artifact: fewer writers, operations and
/// compactions, no pause, no purge, keeping the scheduler and its seed;
/// writes the smallest failing scenario with its schedule.
fn cmd_minimize_threads(
    bytes: &[u8],
    mutant: Option<Mutant>,
    output: &Path,
    json: bool,
) -> CmdResult {
    let artifact = harness::threads::parse_artifact(bytes)?;
    let found = match harness::threads::replay_artifact(bytes, mutant)? {
        Err(found) => found,
        Ok(()) => match harness::threads::run(
            artifact.scenario,
            mutant,
            harness::threads::MINIMIZE_SCHEDULES,
        ) {
            Err(found) => found,
            Ok(_) => {
                if json {
                    println!("{}", serde_json::json!({ "failure": null }));
                } else {
                    println!("the artifact does not fail: nothing to minimize");
                }
                return Ok(0);
            }
        },
    };
    let min = harness::threads::minimize(&found);
    std::fs::write(output, min.artifact())
        .map_err(|e| format!("writing {}: {e}", output.display()))?;
    let failure = min.to_failure();
    let replay = failure.replay_command_from(output);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "failure": failure.to_json(),
                "ops_before": found.scenario.ops(),
                "ops_after": min.scenario.ops(),
                "artifact": output.display().to_string(),
                "replay": replay,
            })
        );
    } else {
        println!(
            "minimized {} [{}]: {} -> {} (writer operations {} -> {})",
            failure.kind,
            failure.invariant(),
            found.scenario,
            min.scenario,
            found.scenario.ops(),
            min.scenario.ops()
        );
        for line in &min.trace {
            println!("  {line}");
        }
        println!("artifact: {}\nreplay: {replay}", output.display());
    }
    Ok(failure.kind.exit_code() as u8)
}

fn cmd_minimize(
    target: Target,
    bytes: &[u8],
    mutant: Option<Mutant>,
    output: &Path,
    test_out: Option<&Path>,
    json: bool,
) -> CmdResult {
    let scenario = target.scenario(bytes);
    let options = RunOptions {
        mutant,
        ..RunOptions::default()
    };
    let Some(min) = minimize_target(target, &scenario, &options) else {
        if json {
            println!("{}", serde_json::json!({ "failure": null }));
        } else {
            println!("the artifact does not fail: nothing to minimize");
        }
        return Ok(0);
    };
    std::fs::write(output, min.scenario.to_bytes())
        .map_err(|e| format!("writing {}: {e}", output.display()))?;
    let name = format!("regression_{}", min.failure.signature());
    // Named as the generated header says: harness/tests/<name>.rs.
    let default_test = output.with_file_name(format!("{name}.rs"));
    let test_out = test_out.unwrap_or(&default_test);
    std::fs::write(test_out, regression_test(&min, &name))
        .map_err(|e| format!("writing {}: {e}", test_out.display()))?;
    let replay = replay_command(target, &min.scenario.to_bytes(), mutant, Some(output));
    if json {
        println!(
            "{}",
            crashfuzz::campaign::minimize_json(&min, output, test_out, &name, &replay)
        );
        return Ok(min.failure.kind.exit_code() as u8);
    }
    println!(
        "minimized {} [{}]: steps {} -> {} in {} runs",
        min.failure.kind,
        min.failure.invariant(),
        min.steps_before,
        min.steps_after,
        min.runs
    );
    println!("{}", describe(&min.scenario));
    println!(
        "artifact: {}\nregression test: {}",
        output.display(),
        test_out.display()
    );
    println!("replay: {replay}");
    Ok(min.failure.kind.exit_code() as u8)
}

fn cmd_inspect(file: &Path) -> CmdResult {
    let report = engine::inspect::inspect(&engine::StdVfs, file)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    print!("{report}");
    Ok(if report.all_good() { 0 } else { 3 })
}
