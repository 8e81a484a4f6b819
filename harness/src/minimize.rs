//! Structure-aware minimization of a failing scenario, and the regression
//! test it turns into.
//!
//! A candidate is kept when it fails *the same way*: the same
//! [`FailureKind`] and the same invariant (the crash failpoint and the
//! message may change; the bug class may not). Runs are deterministic, so a
//! candidate is run once. Passes, repeated until none makes progress:
//!
//! 1. cut the steps after the failing one (they never ran);
//! 2. delta debugging over the steps: remove chunks of n/2, n/4, ... 1;
//! 3. simplify each step's fields toward their smallest value (crash `nth`
//!    toward 1, `CompactStep` toward one step, value lengths toward 0, ...)
//!    and replace steps by simpler ones (`CompactStep` by `CompactFinish`,
//!    an armed crash by `CrashNow`);
//! 4. remove pairs of steps that are not adjacent (a set and its flush);
//! 5. move the configuration toward [`SwarmConfig::default`], one field at
//!    a time;
//! 6. renumber the keys `0, 1, 2, ...` in order of first use and merge two
//!    keys into one.
//!
//! Passes accept only simpler candidates (fewer steps, smaller fields,
//! fields at or nearer their default, fewer keys), so the rounds stop; the
//! run budget [`MAX_RUNS`] bounds them anyway. A candidate is run only if
//! its byte encoding reads back to itself, so the minimized artifact
//! (`scenario.to_bytes()`) is exactly the scenario that failed; [`minimize`]
//! replays it from those bytes at the end and falls back to the last
//! accepted candidate that reproduces.

use crate::runner::{replay_command, run, Failure, FailureKind, RunOptions};
use crate::scenario::{failpoint_name, Damage, Place, Scenario, Step, SwarmConfig};
use crate::targets::{run_target, Target};
use std::collections::{BTreeSet, HashSet};

/// Runs [`minimize`] spends at most (a run is well under a millisecond in a
/// release build, so this bounds minimization to seconds).
pub const MAX_RUNS: u64 = 20_000;

/// A minimized failure.
#[derive(Clone, Debug)]
pub struct Minimized {
    /// The smallest scenario found that fails the same way.
    pub scenario: Scenario,
    /// Its failure.
    pub failure: Box<Failure>,
    /// Steps before minimization.
    pub steps_before: usize,
    /// Steps after.
    pub steps_after: usize,
    /// Runs spent.
    pub runs: u64,
    /// The fuzz target whose reading and running of the bytes was kept
    /// ([`Target::Interleave`]: the plain runner).
    pub target: Target,
}

/// Minimize `scenario`, keeping the failure kind and invariant. `None` if
/// the scenario does not fail at all. Scenarios run as `crashfuzz explore`
/// and the `interleave` fuzz target run them.
pub fn minimize(scenario: &Scenario, options: &RunOptions) -> Option<Minimized> {
    minimize_with_budget(Target::Interleave, scenario, options, MAX_RUNS)
}

/// [`minimize`] for an artifact of the fuzz target `target`: every
/// candidate is read and run as that target reads and runs its bytes.
pub fn minimize_target(
    target: Target,
    scenario: &Scenario,
    options: &RunOptions,
) -> Option<Minimized> {
    minimize_with_budget(target, scenario, options, MAX_RUNS)
}

/// [`minimize_target`] with an explicit run budget.
pub fn minimize_with_budget(
    target: Target,
    scenario: &Scenario,
    options: &RunOptions,
    max_runs: u64,
) -> Option<Minimized> {
    // The input as given: it need not be a fixed point of the encoding
    // (candidates must be, see `Shrinker::attempt`).
    let failure = match target {
        Target::Interleave => run(scenario, options),
        _ => run_target(target, &scenario.to_bytes(), options),
    }
    .err()?;
    let mut shrinker = Shrinker {
        target,
        options,
        kind: failure.kind,
        check: failure.check,
        best: scenario.clone(),
        original: failure.clone(),
        failure,
        accepted: vec![scenario.clone()],
        tried: HashSet::new(),
        runs: 1,
        max_runs,
    };
    // A hand-made scenario may hold out-of-range fields: prefer its encoded
    // form, which is what an artifact can carry.
    shrinker.attempt(scenario.clone());
    loop {
        let before = shrinker.best.clone();
        shrinker.cut_after_failure();
        shrinker.ddmin_steps();
        shrinker.simplify_steps();
        shrinker.remove_pairs();
        shrinker.simplify_config();
        shrinker.simplify_keys();
        if shrinker.best == before || shrinker.exhausted() {
            break;
        }
    }
    let (scenario, failure) = shrinker.reproducible_best();
    let runs = shrinker.runs;
    Some(Minimized {
        steps_before: shrinker.accepted[0].steps.len(),
        steps_after: scenario.steps.len(),
        scenario,
        failure,
        runs,
        target,
    })
}

struct Shrinker<'a> {
    target: Target,
    options: &'a RunOptions,
    kind: FailureKind,
    check: crate::failure::Check,
    /// The smallest scenario failing the same way so far.
    best: Scenario,
    /// Its failure.
    failure: Box<Failure>,
    /// The input's failure.
    original: Box<Failure>,
    /// Every scenario accepted, in order (the input first).
    accepted: Vec<Scenario>,
    /// Encodings of every candidate run (runs are deterministic).
    tried: HashSet<Vec<u8>>,
    runs: u64,
    max_runs: u64,
}

impl Shrinker<'_> {
    fn exhausted(&self) -> bool {
        self.runs >= self.max_runs
    }

    /// Run `candidate` as the target reads its bytes, and keep it if it
    /// fails the same way.
    fn attempt(&mut self, candidate: Scenario) -> bool {
        let candidate = self.target.scenario(&candidate.to_bytes());
        if candidate == self.best || self.exhausted() {
            return false;
        }
        let bytes = candidate.to_bytes();
        // Only a scenario whose bytes read back to itself can become the
        // minimized artifact.
        if self.target.scenario(&bytes) != candidate || !self.tried.insert(bytes.clone()) {
            return false;
        }
        self.runs += 1;
        match run_target(self.target, &bytes, self.options) {
            Err(f) if f.kind == self.kind && f.check == self.check => {
                self.best = candidate.clone();
                self.failure = f;
                self.accepted.push(candidate);
                true
            }
            _ => false,
        }
    }

    /// Steps after the failing one never ran: drop them.
    fn cut_after_failure(&mut self) {
        let keep = self.failure.step.saturating_add(1);
        if keep < self.best.steps.len() {
            let mut c = self.best.clone();
            c.steps.truncate(keep);
            self.attempt(c);
        }
    }

    /// Delta debugging: remove contiguous chunks, halving the chunk size.
    fn ddmin_steps(&mut self) {
        let mut chunk = (self.best.steps.len() / 2).max(1);
        loop {
            // From the end: later steps depend on earlier ones, rarely the
            // other way round.
            let mut end = self.best.steps.len();
            while end > 0 && !self.exhausted() {
                let start = end.saturating_sub(chunk);
                let mut c = self.best.clone();
                c.steps.drain(start..end);
                self.attempt(c);
                end = start.min(self.best.steps.len());
            }
            if chunk == 1 || self.exhausted() {
                return;
            }
            chunk /= 2;
        }
    }

    /// Simplify every step's fields, and replace steps by simpler ones.
    fn simplify_steps(&mut self) {
        let mut i = 0;
        while i < self.best.steps.len() && !self.exhausted() {
            let simplified = simpler_steps(&self.best.steps[i])
                .into_iter()
                .any(|replacement| {
                    let mut c = self.best.clone();
                    c.steps[i] = replacement;
                    self.attempt(c)
                });
            // A simpler step may have simpler versions still (a crash at a
            // failpoint became `CrashNow`): stay on it until none fails.
            if !simplified {
                i += 1;
            }
        }
    }

    /// Remove two steps that are not adjacent (single removals and chunks
    /// are already done): a set and the flush that commits it, an armed
    /// crash and the step it strikes in.
    fn remove_pairs(&mut self) {
        if self.best.steps.len() > 40 {
            return;
        }
        let mut j = self.best.steps.len();
        while j > 1 && !self.exhausted() {
            j -= 1;
            let mut i = j.saturating_sub(1);
            while i > 0 && j < self.best.steps.len() {
                i -= 1;
                let mut c = self.best.clone();
                c.steps.remove(j);
                c.steps.remove(i);
                if self.attempt(c) {
                    j = j.saturating_sub(1).min(self.best.steps.len());
                    break;
                }
            }
        }
    }

    /// Move each configuration field toward its default, one at a time,
    /// the default itself first.
    fn simplify_config(&mut self) {
        let d = SwarmConfig::default();
        let c = self.best.config.clone();
        self.first_that_fails(toward(c.fanout, d.fanout), |c, v| c.fanout = v);
        let batch = toward(c.copy_batch_docs, d.copy_batch_docs);
        self.first_that_fails(batch, |c, v| c.copy_batch_docs = v);
        let rounds = toward(c.catchup_rounds, d.catchup_rounds);
        self.first_that_fails(rounds, |c, v| c.catchup_rounds = v);
        if c.pitr_granularity_secs.is_some() {
            self.first_that_fails(vec![()], |c, ()| {
                c.pitr_granularity_secs = None;
                c.pitr_max_age_secs = 0;
            });
        }
        if let Some(g) = self.best.config.pitr_granularity_secs {
            self.first_that_fails(toward(g, 1), |c, v| c.pitr_granularity_secs = Some(v));
        }
        let age = toward(self.best.config.pitr_max_age_secs, d.pitr_max_age_secs);
        self.first_that_fails(age, |c, v| c.pitr_max_age_secs = v);
        let modes = match c.crash_mode {
            None => (0..7).collect(),
            Some(m) => toward(m, d.crash_mode.unwrap_or(0)),
        };
        self.first_that_fails(modes, |c, v| c.crash_mode = Some(v));
        let flags: [fn(&mut SwarmConfig, ()); 9] = [
            |c, ()| c.windows = false,
            |c, ()| c.strict_recovery = false,
            |c, ()| c.process_crashes = false,
            |c, ()| c.tear_unsynced = false,
            |c, ()| c.probe_liveness = false,
            |c, ()| c.fsync_revert = false,
            |c, ()| c.no_psow = 0,
            |c, ()| c.large = false,
            |c, ()| c.long_keys = false,
        ];
        for clear in flags {
            self.first_that_fails(vec![()], clear);
        }
        let seeds = seed_candidates(self.best.config.disk_seed);
        self.first_that_fails(seeds, |c, v| c.disk_seed = v);
        self.reseed_toward_defaults();
    }

    /// Set a configuration field to each of `values` in turn; keep the
    /// first that fails the same way.
    fn first_that_fails<T: Copy>(
        &mut self,
        values: Vec<T>,
        set: impl Fn(&mut SwarmConfig, T),
    ) -> bool {
        values.into_iter().any(|v| {
            let mut c = self.best.clone();
            set(&mut c.config, v);
            self.attempt(c)
        })
    }

    /// A field that cannot go to its default alone often can with another
    /// disk seed (the seed picks which unsynced writes survive a crash, and
    /// the field changed what was written): try both at once, small seeds.
    fn reseed_toward_defaults(&mut self) {
        for (is_default, set_default) in CONFIG_FIELDS {
            if is_default(&self.best.config) {
                continue;
            }
            self.first_that_fails((0..RESEEDS).collect(), |c, seed| {
                set_default(c);
                c.disk_seed = seed;
            });
        }
    }

    /// Renumber the keys in order of first use, then merge pairs of keys.
    fn simplify_keys(&mut self) {
        self.renumber_keys();
        let mut merged = true;
        while merged && !self.exhausted() {
            merged = false;
            let keys: Vec<u8> = keys_used(&self.best).into_iter().collect();
            'pairs: for (x, &a) in keys.iter().enumerate() {
                for &b in &keys[x + 1..] {
                    // Merge the larger key into the smaller one.
                    let c = map_keys(&self.best, |k| if k == b { a } else { k });
                    if self.attempt(c) {
                        self.renumber_keys();
                        merged = true;
                        break 'pairs;
                    }
                }
            }
        }
    }

    fn renumber_keys(&mut self) {
        let mut order: Vec<u8> = Vec::new();
        for step in &self.best.steps {
            if let Some(k) = step_key(step) {
                if !order.contains(&k) {
                    order.push(k);
                }
            }
        }
        let c = map_keys(&self.best, |k| {
            order.iter().position(|o| *o == k).unwrap_or(0) as u8
        });
        self.attempt(c);
    }

    /// The best scenario whose bytes read back to a scenario that fails the
    /// same way (the last accepted one, unless runs were not deterministic),
    /// and that failure.
    fn reproducible_best(&mut self) -> (Scenario, Box<Failure>) {
        for candidate in self.accepted.iter().rev() {
            let bytes = candidate.to_bytes();
            let read_back = self.target.scenario(&bytes);
            self.runs += 1;
            match run_target(self.target, &bytes, self.options) {
                Err(f) if f.kind == self.kind && f.check == self.check => {
                    return (read_back, f);
                }
                _ => {}
            }
        }
        // Not even the input's encoding reproduces (a hand-made scenario
        // with fields out of range, or an encoding that does not read back):
        // give the input back unchanged.
        (self.accepted[0].clone(), self.original.clone())
    }
}

/// Disk seeds tried with each field set to its default.
const RESEEDS: u64 = 16;

/// Is a field at its default; set it to its default. Every configuration
/// field but the disk seed.
type ConfigField = (fn(&SwarmConfig) -> bool, fn(&mut SwarmConfig));

const CONFIG_FIELDS: [ConfigField; 14] = [
    (
        |c| c.fanout == SwarmConfig::default().fanout,
        |c| c.fanout = SwarmConfig::default().fanout,
    ),
    (
        |c| c.copy_batch_docs == SwarmConfig::default().copy_batch_docs,
        |c| c.copy_batch_docs = SwarmConfig::default().copy_batch_docs,
    ),
    (
        |c| c.catchup_rounds == SwarmConfig::default().catchup_rounds,
        |c| c.catchup_rounds = SwarmConfig::default().catchup_rounds,
    ),
    (
        |c| c.pitr_granularity_secs.is_none() && c.pitr_max_age_secs == 0,
        |c| {
            c.pitr_granularity_secs = None;
            c.pitr_max_age_secs = 0;
        },
    ),
    (
        |c| c.crash_mode == SwarmConfig::default().crash_mode,
        |c| c.crash_mode = SwarmConfig::default().crash_mode,
    ),
    (|c| !c.windows, |c| c.windows = false),
    (|c| !c.strict_recovery, |c| c.strict_recovery = false),
    (|c| !c.process_crashes, |c| c.process_crashes = false),
    (|c| !c.tear_unsynced, |c| c.tear_unsynced = false),
    (|c| !c.probe_liveness, |c| c.probe_liveness = false),
    (|c| !c.fsync_revert, |c| c.fsync_revert = false),
    (|c| c.no_psow == 0, |c| c.no_psow = 0),
    (|c| !c.large, |c| c.large = false),
    (|c| !c.long_keys, |c| c.long_keys = false),
];

/// Values from `target` toward `from` (exclusive), nearest to `target` first.
fn toward(from: u8, target: u8) -> Vec<u8> {
    if from > target {
        (target..from).collect()
    } else {
        (from + 1..=target).rev().collect()
    }
}

/// Smaller disk seeds worth trying, smallest first.
fn seed_candidates(seed: u64) -> Vec<u64> {
    let mut out: Vec<u64> = (0..16).filter(|v| *v < seed).collect();
    for mask in [0xff, 0xffff, 0xffff_ffff] {
        let v = seed & mask;
        if v < seed && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Simpler versions of `step`, simplest first.
fn simpler_steps(step: &Step) -> Vec<Step> {
    match *step {
        Step::Set { key, len } => toward(len, 0)
            .into_iter()
            .map(|len| Step::Set { key, len })
            .collect(),
        Step::Delete { .. } | Step::Flush | Step::CompactFinish | Step::CompactAbort => vec![],
        Step::Check | Step::CrashNow | Step::Reopen => vec![],
        Step::Tick { secs } => toward(secs, 1)
            .into_iter()
            .map(|secs| Step::Tick { secs })
            .collect(),
        Step::CompactStart { purge } => toward(purge, 0)
            .into_iter()
            .map(|purge| Step::CompactStart { purge })
            .collect(),
        Step::CompactStep { n } => {
            let mut out: Vec<Step> = toward(n, 1)
                .into_iter()
                .map(|n| Step::CompactStep { n })
                .collect();
            out.push(Step::CompactFinish);
            out
        }
        Step::CrashAtFailpoint { point, nth } => {
            let mut out = vec![Step::CrashNow];
            out.extend(
                toward(nth, 1)
                    .into_iter()
                    .map(|nth| Step::CrashAtFailpoint { point, nth }),
            );
            out
        }
        Step::CrashAtIo { kind, nth, after } => {
            let mut out = vec![Step::CrashNow];
            if after {
                out.push(Step::CrashAtIo {
                    kind,
                    nth,
                    after: false,
                });
            }
            out.extend(
                toward(nth, 1)
                    .into_iter()
                    .map(|nth| Step::CrashAtIo { kind, nth, after }),
            );
            out
        }
        Step::CrashInRecovery { kind, nth, repeat } => {
            let mut out: Vec<Step> = toward(repeat, 1)
                .into_iter()
                .map(|repeat| Step::CrashInRecovery { kind, nth, repeat })
                .collect();
            out.extend(toward(nth, 1).into_iter().map(|nth| Step::CrashInRecovery {
                kind,
                nth,
                repeat,
            }));
            out
        }
        Step::Fault {
            kind,
            nth,
            recovery,
        } => toward(nth, 1)
            .into_iter()
            .map(|nth| Step::Fault {
                kind,
                nth,
                recovery,
            })
            .collect(),
        Step::Eio { sync, nth } => toward(nth, 1)
            .into_iter()
            .map(|nth| Step::Eio { sync, nth })
            .collect(),
        Step::Damage(d) => simpler_damages(d).into_iter().map(Step::Damage).collect(),
        Step::Read { kind, a, b } => {
            let mut out: Vec<Step> = toward(a, 0)
                .into_iter()
                .map(|a| Step::Read { kind, a, b })
                .collect();
            out.extend(toward(b, 0).into_iter().map(|b| Step::Read { kind, a, b }));
            out
        }
        Step::Hold { .. } => vec![],
        Step::Preempt { point, nth, steps } => {
            let mut out: Vec<Step> = toward(steps, 1)
                .into_iter()
                .map(|steps| Step::Preempt { point, nth, steps })
                .collect();
            out.extend(
                toward(nth, 1)
                    .into_iter()
                    .map(|nth| Step::Preempt { point, nth, steps }),
            );
            out
        }
        Step::Local { name, len, delete } => toward(len, 0)
            .into_iter()
            .map(|len| Step::Local { name, len, delete })
            .collect(),
        Step::EdgeCommit { key, edge } => toward(edge, 0)
            .into_iter()
            .map(|edge| Step::EdgeCommit { key, edge })
            .collect(),
        Step::Batch { count, first, len } => {
            let mut out: Vec<Step> = toward(count, 1)
                .into_iter()
                .map(|count| Step::Batch { count, first, len })
                .collect();
            out.extend(
                toward(len, 0)
                    .into_iter()
                    .map(|len| Step::Batch { count, first, len }),
            );
            out
        }
        Step::SnapshotCheck { back } => {
            let mut out = vec![Step::Check];
            out.extend(
                toward(back, 0)
                    .into_iter()
                    .map(|back| Step::SnapshotCheck { back }),
            );
            out
        }
    }
}

fn step_key(step: &Step) -> Option<u8> {
    match *step {
        Step::Set { key, .. } | Step::Delete { key } => Some(key),
        _ => None,
    }
}

fn keys_used(scenario: &Scenario) -> BTreeSet<u8> {
    scenario.steps.iter().filter_map(step_key).collect()
}

fn map_keys(scenario: &Scenario, f: impl Fn(u8) -> u8) -> Scenario {
    let steps = scenario
        .steps
        .iter()
        .map(|s| match *s {
            Step::Set { key, len } => Step::Set { key: f(key), len },
            Step::Delete { key } => Step::Delete { key: f(key) },
            ref other => other.clone(),
        })
        .collect();
    Scenario {
        config: scenario.config.clone(),
        steps,
    }
}

/// Rust source of a regression test for `min`, named `name`: a file that
/// compiles as an integration test of this crate (drop it into
/// `harness/tests/`). It passes on the correct engine and, when the failure
/// came from a seeded bug, fails with `CRASHFUZZ_MUTANT=<bug>` set.
pub fn regression_test(min: &Minimized, name: &str) -> String {
    let name = identifier(name);
    let f = &min.failure;
    let s = &min.scenario;
    let mut lines: Vec<String> = Vec::new();
    let mut doc = |line: String| {
        lines.push(if line.is_empty() {
            "//!".to_string()
        } else {
            format!("//! {line}")
        })
    };
    doc(format!(
        "Regression test `{name}`, written by `crashfuzz minimize`."
    ));
    doc(String::new());
    doc(format!(
        "What broke: {} [{}] at step {}:",
        f.kind, f.check, f.step
    ));
    doc(format!(
        "  {}",
        f.message.lines().next().unwrap_or("").trim()
    ));
    if let Some(fp) = &f.failpoint {
        doc(format!(
            "The crash before it struck after failpoint `{fp}`."
        ));
    }
    doc(String::new());
    doc(format!(
        "How it was found: crash-consistency exploration (signature {}),",
        f.signature()
    ));
    match f.mutant {
        Some(m) => {
            doc(format!(
                "with the seeded bug `{m}` switched on. It passes on the"
            ));
            doc(format!(
                "correct engine; saved as `harness/tests/{name}.rs`, it shows it"
            ));
            doc("still catches the bug with:".to_string());
            doc(format!(
                "  CRASHFUZZ_MUTANT={m} cargo test -p harness --test {name}"
            ));
        }
        None => {
            doc("on the engine as it was then. It failed until the bug was fixed".to_string());
            doc("and must pass from then on.".to_string());
        }
    }
    doc(format!(
        "Minimized from {} to {} steps in {} runs.",
        min.steps_before, min.steps_after, min.runs
    ));
    doc(String::new());
    doc("Replay:".to_string());
    doc(format!(
        "  {}",
        replay_command(min.target, &s.to_bytes(), f.mutant, None)
    ));
    lines.push(String::new());
    // Imports as rustfmt orders them, and none unused.
    let assert_fn = match min.target {
        Target::Interleave => "assert_passes",
        _ => "assert_target_passes",
    };
    let names_failpoint = s
        .steps
        .iter()
        .any(|st| matches!(st, Step::CrashAtFailpoint { .. }));
    lines.push(if names_failpoint {
        format!("use harness::regression::{{{assert_fn}, failpoint}};")
    } else {
        format!("use harness::regression::{assert_fn};")
    });
    let damages: Vec<Damage> = s
        .steps
        .iter()
        .filter_map(|st| match st {
            Step::Damage(d) => Some(*d),
            _ => None,
        })
        .collect();
    let mut names = Vec::new();
    if !damages.is_empty() {
        names.push("Damage");
    }
    let places = damages.iter().any(|d| {
        matches!(
            d,
            Damage::BitFlips { .. } | Damage::TornBlock { .. } | Damage::SwapBlocks { .. }
        )
    });
    if places {
        names.push("Place");
    }
    names.push("Scenario");
    if !s.steps.is_empty() {
        names.push("Step");
    }
    names.push("SwarmConfig");
    lines.push(format!("use harness::scenario::{{{}}};", names.join(", ")));
    if min.target != Target::Interleave {
        lines.push("use harness::targets::Target;".into());
    }
    let assert = match min.target {
        Target::Interleave => "    assert_passes(&scenario);".to_string(),
        t => format!("    assert_target_passes(Target::{t:?}, &scenario);"),
    };
    lines.push(String::new());
    lines.push("#[test]".into());
    lines.push(format!("fn {name}() {{"));
    lines.push("    let scenario = Scenario {".into());
    // The configuration's `Debug` form is its struct literal with every
    // field spelled out (so a new field is a compile error, not a silent
    // default); one field a line, as rustfmt has it.
    lines.push("        config: SwarmConfig {".into());
    lines.extend(config_fields(&s.config).map(|f| format!("            {f},")));
    lines.push("        },".into());
    if s.steps.is_empty() {
        lines.push("        steps: vec![],".into());
    } else {
        lines.push("        steps: vec![".into());
        for (i, step) in s.steps.iter().enumerate() {
            lines.push(format!("            // #{i} {step}"));
            lines.extend(step_code(step, "            "));
        }
        lines.push("        ],".into());
    }
    lines.push("    };".into());
    lines.push(assert);
    lines.push("}".into());
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `name: value` for every field of `config`, from its `Debug` form.
fn config_fields(config: &SwarmConfig) -> impl Iterator<Item = String> {
    let debug = format!("{config:?}");
    let inner = debug
        .trim_start_matches("SwarmConfig")
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim()
        .to_string();
    inner
        .split(", ")
        .map(str::to_string)
        .collect::<Vec<_>>()
        .into_iter()
}

/// The Rust expression that builds `step`, as lines indented by `indent`
/// the way rustfmt lays it out. Failpoints are named, not numbered, so the
/// test survives a reordered catalog.
fn step_code(step: &Step, indent: &str) -> Vec<String> {
    if let Step::Damage(d) = step {
        return damage_code(d, indent);
    }
    let (variant, fields) = step_fields(step);
    if fields.is_empty() {
        return vec![format!("{indent}Step::{variant},")];
    }
    let body = fields
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect::<Vec<_>>()
        .join(", ");
    // rustfmt's default `struct_lit_width`: a wider body goes one field a line.
    if body.len() <= 18 {
        return vec![format!("{indent}Step::{variant} {{ {body} }},")];
    }
    let mut lines = vec![format!("{indent}Step::{variant} {{")];
    lines.extend(
        fields
            .iter()
            .map(|(name, value)| format!("{indent}    {name}: {value},")),
    );
    lines.push(format!("{indent}}},"));
    lines
}

/// The Rust expression that builds a damage step, laid out as rustfmt
/// does (every damage with fields is wider than a short struct literal).
fn damage_code(damage: &Damage, indent: &str) -> Vec<String> {
    let place = |p: &Place| match p {
        Place::HeaderBlock(k) => format!("Place::HeaderBlock({k})"),
        Place::Anywhere => "Place::Anywhere".to_string(),
    };
    let (variant, fields): (&str, Vec<(&str, String)>) = match damage {
        Damage::BitFlips { count, place: p } => (
            "BitFlips",
            vec![("count", count.to_string()), ("place", place(p))],
        ),
        Damage::TornBlock { place: p, garbage } => (
            "TornBlock",
            vec![("place", place(p)), ("garbage", garbage.to_string())],
        ),
        Damage::GarbageTail {
            sectors,
            fake_header,
        } => (
            "GarbageTail",
            vec![
                ("sectors", sectors.to_string()),
                ("fake_header", fake_header.to_string()),
            ],
        ),
        Damage::Truncate => return vec![format!("{indent}Step::Damage(Damage::Truncate),")],
        Damage::SwapBlocks { a, b } => ("SwapBlocks", vec![("a", a.to_string()), ("b", place(b))]),
    };
    let mut lines = vec![format!("{indent}Step::Damage(Damage::{variant} {{")];
    lines.extend(
        fields
            .iter()
            .map(|(name, value)| format!("{indent}    {name}: {value},")),
    );
    lines.push(format!("{indent}}}),"));
    lines
}

/// A step's variant name and its fields as Rust expressions.
fn step_fields(step: &Step) -> (&'static str, Vec<(&'static str, String)>) {
    match *step {
        Step::Set { key, len } => (
            "Set",
            vec![("key", key.to_string()), ("len", len.to_string())],
        ),
        Step::Delete { key } => ("Delete", vec![("key", key.to_string())]),
        Step::Flush => ("Flush", vec![]),
        Step::Tick { secs } => ("Tick", vec![("secs", secs.to_string())]),
        Step::CompactStart { purge } => ("CompactStart", vec![("purge", purge.to_string())]),
        Step::CompactStep { n } => ("CompactStep", vec![("n", n.to_string())]),
        Step::CompactFinish => ("CompactFinish", vec![]),
        Step::CompactAbort => ("CompactAbort", vec![]),
        Step::CrashAtFailpoint { point, nth } => (
            "CrashAtFailpoint",
            vec![
                ("point", format!("failpoint({:?})", failpoint_name(point))),
                ("nth", nth.to_string()),
            ],
        ),
        Step::CrashAtIo { kind, nth, after } => (
            "CrashAtIo",
            vec![
                ("kind", kind.to_string()),
                ("nth", nth.to_string()),
                ("after", after.to_string()),
            ],
        ),
        Step::CrashNow => ("CrashNow", vec![]),
        Step::Reopen => ("Reopen", vec![]),
        Step::CrashInRecovery { kind, nth, repeat } => (
            "CrashInRecovery",
            vec![
                ("kind", kind.to_string()),
                ("nth", nth.to_string()),
                ("repeat", repeat.to_string()),
            ],
        ),
        Step::Fault {
            kind,
            nth,
            recovery,
        } => (
            "Fault",
            vec![
                ("kind", kind.to_string()),
                ("nth", nth.to_string()),
                ("recovery", recovery.to_string()),
            ],
        ),
        Step::Eio { sync, nth } => (
            "Eio",
            vec![("sync", sync.to_string()), ("nth", nth.to_string())],
        ),
        Step::Check => ("Check", vec![]),
        Step::SnapshotCheck { back } => ("SnapshotCheck", vec![("back", back.to_string())]),
        Step::Damage(_) => ("Damage", vec![]),
        Step::Read { kind, a, b } => (
            "Read",
            vec![
                ("kind", kind.to_string()),
                ("a", a.to_string()),
                ("b", b.to_string()),
            ],
        ),
        Step::Hold { release } => ("Hold", vec![("release", release.to_string())]),
        Step::Preempt { point, nth, steps } => (
            "Preempt",
            vec![
                ("point", point.to_string()),
                ("nth", nth.to_string()),
                ("steps", steps.to_string()),
            ],
        ),
        Step::Local { name, len, delete } => (
            "Local",
            vec![
                ("name", name.to_string()),
                ("len", len.to_string()),
                ("delete", delete.to_string()),
            ],
        ),
        Step::EdgeCommit { key, edge } => (
            "EdgeCommit",
            vec![("key", key.to_string()), ("edge", edge.to_string())],
        ),
        Step::Batch { count, first, len } => (
            "Batch",
            vec![
                ("count", count.to_string()),
                ("first", first.to_string()),
                ("len", len.to_string()),
            ],
        ),
    }
}

/// `name` as a Rust identifier (lowercase, `_` for anything else).
fn identifier(name: &str) -> String {
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
        id.insert_str(0, "regression_");
    }
    id
}

/// Simpler versions of a damage, simplest first: fewer bits, fewer sectors,
/// the newest header block. The kind stays (another kind is another story).
fn simpler_damages(damage: Damage) -> Vec<Damage> {
    let place = |p: Place| match p {
        Place::HeaderBlock(k) => toward(k, 0).into_iter().map(Place::HeaderBlock).collect(),
        Place::Anywhere => vec![],
    };
    match damage {
        Damage::BitFlips { count, place: p } => {
            let mut out: Vec<Damage> = toward(count, 1)
                .into_iter()
                .map(|count| Damage::BitFlips { count, place: p })
                .collect();
            out.extend(
                place(p)
                    .into_iter()
                    .map(|place| Damage::BitFlips { count, place }),
            );
            out
        }
        Damage::TornBlock { place: p, garbage } => place(p)
            .into_iter()
            .map(|place| Damage::TornBlock { place, garbage })
            .collect(),
        Damage::GarbageTail {
            sectors,
            fake_header,
        } => toward(sectors / 2, 1)
            .into_iter()
            .map(|n| Damage::GarbageTail {
                sectors: 2 * n,
                fake_header,
            })
            .collect(),
        Damage::Truncate => vec![],
        Damage::SwapBlocks { a, b } => toward(a, 0)
            .into_iter()
            .map(|a| Damage::SwapBlocks {
                a,
                b: match b {
                    Place::Anywhere => Place::Anywhere,
                    _ => Place::HeaderBlock(a + 1),
                },
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toward_lists_nearest_to_the_target_first() {
        assert_eq!(toward(5, 1), vec![1, 2, 3, 4]);
        assert_eq!(toward(2, 4), vec![4, 3]);
        assert!(toward(3, 3).is_empty());
    }

    #[test]
    fn identifiers_are_valid() {
        assert_eq!(identifier("regression_ab12"), "regression_ab12");
        assert_eq!(identifier("9x-y"), "regression_9x_y");
    }
}
