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
//! Every pass only accepts candidates that are smaller in a well-founded
//! order (fewer steps, smaller fields, fields closer to their default, fewer
//! distinct keys), so the fixpoint is reached; a run budget bounds it anyway.
//! Candidates are normalised through the byte encoding, so the minimized
//! artifact (`scenario.to_bytes()`) reads back to the very scenario that was
//! run; [`minimize`] checks that at the end.

use crate::runner::{replay_command, run, Failure, FailureKind, RunOptions};
use crate::scenario::{failpoint_name, Scenario, Step, SwarmConfig};
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
}

/// Minimize `scenario`, keeping the failure kind and invariant. `None` if
/// the scenario does not fail at all.
pub fn minimize(scenario: &Scenario, options: &RunOptions) -> Option<Minimized> {
    minimize_with_budget(scenario, options, MAX_RUNS)
}

/// [`minimize`] with an explicit run budget.
pub fn minimize_with_budget(
    scenario: &Scenario,
    options: &RunOptions,
    max_runs: u64,
) -> Option<Minimized> {
    let failure = run(scenario, options).err()?;
    let mut shrinker = Shrinker {
        options,
        kind: failure.kind,
        invariant: failure.invariant.clone(),
        best: scenario.clone(),
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
    })
}

struct Shrinker<'a> {
    options: &'a RunOptions,
    kind: FailureKind,
    invariant: String,
    /// The smallest scenario failing the same way so far.
    best: Scenario,
    /// Its failure.
    failure: Box<Failure>,
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

    /// Run `candidate` (normalised) and keep it if it fails the same way.
    fn attempt(&mut self, candidate: Scenario) -> bool {
        let candidate = candidate.normalized();
        if candidate == self.best || self.exhausted() {
            return false;
        }
        if !self.tried.insert(candidate.to_bytes()) {
            return false;
        }
        self.runs += 1;
        match run(&candidate, self.options) {
            Err(f) if f.kind == self.kind && f.invariant == self.invariant => {
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
            for replacement in simpler_steps(&self.best.steps[i]) {
                let mut c = self.best.clone();
                c.steps[i] = replacement;
                if self.attempt(c) {
                    // The list was made for the old step: start over on
                    // the new one (its candidates are all simpler still).
                    break;
                }
            }
            i += 1;
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

    /// Move each configuration field toward its default, one at a time.
    fn simplify_config(&mut self) {
        let d = SwarmConfig::default();
        let c = self.best.config.clone();
        for v in toward(c.fanout, d.fanout) {
            self.try_config(|c| c.fanout = v);
        }
        for v in toward(self.best.config.copy_batch_docs, d.copy_batch_docs) {
            self.try_config(|c| c.copy_batch_docs = v);
        }
        for v in toward(self.best.config.catchup_rounds, d.catchup_rounds) {
            self.try_config(|c| c.catchup_rounds = v);
        }
        if self.best.config.pitr_granularity_secs.is_some() {
            self.try_config(|c| {
                c.pitr_granularity_secs = None;
                c.pitr_max_age_secs = 0;
            });
        }
        if let Some(g) = self.best.config.pitr_granularity_secs {
            for v in toward(g, 1) {
                self.try_config(|c| c.pitr_granularity_secs = Some(v));
            }
        }
        for v in toward(self.best.config.pitr_max_age_secs, d.pitr_max_age_secs) {
            self.try_config(|c| c.pitr_max_age_secs = v);
        }
        match self.best.config.crash_mode {
            None => {
                for m in 0..7 {
                    if self.try_config(|c| c.crash_mode = Some(m)) {
                        break;
                    }
                }
            }
            Some(m) => {
                for v in toward(m, d.crash_mode.unwrap_or(0)) {
                    self.try_config(|c| c.crash_mode = Some(v));
                }
            }
        }
        if self.best.config.windows {
            self.try_config(|c| c.windows = false);
        }
        if self.best.config.strict_recovery {
            self.try_config(|c| c.strict_recovery = false);
        }
        if self.best.config.process_crashes {
            self.try_config(|c| c.process_crashes = false);
        }
        if self.best.config.tear_unsynced {
            self.try_config(|c| c.tear_unsynced = false);
        }
        let seed = self.best.config.disk_seed;
        for v in seed_candidates(seed) {
            if self.try_config(|c| c.disk_seed = v) {
                break;
            }
        }
    }

    fn try_config(&mut self, change: impl FnOnce(&mut SwarmConfig)) -> bool {
        let mut c = self.best.clone();
        change(&mut c.config);
        self.attempt(c)
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
            let read_back = Scenario::from_bytes(&candidate.to_bytes());
            self.runs += 1;
            match run(&read_back, self.options) {
                Err(f) if f.kind == self.kind && f.invariant == self.invariant => {
                    return (read_back, f);
                }
                _ => {}
            }
        }
        // Not even the input's encoding reproduces (a hand-made scenario
        // with fields out of range): give the input back unchanged.
        let input = self.accepted[0].clone();
        let failure = self.failure.clone();
        (input, failure)
    }
}

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
        Step::CrashInRecovery { kind, nth } => toward(nth, 1)
            .into_iter()
            .map(|nth| Step::CrashInRecovery { kind, nth })
            .collect(),
        Step::Eio { sync, nth } => toward(nth, 1)
            .into_iter()
            .map(|nth| Step::Eio { sync, nth })
            .collect(),
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
        f.kind, f.invariant, f.step
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
                "with the seeded bug `{m}` switched on. This test passes on"
            ));
            doc("the correct engine; to see it catch the bug:".to_string());
            doc(format!(
                "  CRASHFUZZ_MUTANT={m} cargo test -p harness --test <this file>"
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
    doc(format!("  {}", replay_command(s, f.mutant, None)));
    lines.push(String::new());
    lines.push("use harness::regression::{assert_passes, failpoint};".into());
    lines.push("use harness::scenario::{Scenario, Step, SwarmConfig};".into());
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
            lines.push(format!("            {}, // #{i} {step}", step_code(step)));
        }
        lines.push("        ],".into());
    }
    lines.push("    };".into());
    lines.push("    assert_passes(&scenario);".into());
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

/// The Rust expression that builds `step`. Failpoints are named, not
/// numbered, so the test survives a reordered catalog.
fn step_code(step: &Step) -> String {
    match *step {
        Step::Set { key, len } => format!("Step::Set {{ key: {key}, len: {len} }}"),
        Step::Delete { key } => format!("Step::Delete {{ key: {key} }}"),
        Step::Flush => "Step::Flush".into(),
        Step::Tick { secs } => format!("Step::Tick {{ secs: {secs} }}"),
        Step::CompactStart { purge } => format!("Step::CompactStart {{ purge: {purge} }}"),
        Step::CompactStep { n } => format!("Step::CompactStep {{ n: {n} }}"),
        Step::CompactFinish => "Step::CompactFinish".into(),
        Step::CompactAbort => "Step::CompactAbort".into(),
        Step::CrashAtFailpoint { point, nth } => format!(
            "Step::CrashAtFailpoint {{ point: failpoint({:?}), nth: {nth} }}",
            failpoint_name(point)
        ),
        Step::CrashAtIo { kind, nth, after } => {
            format!("Step::CrashAtIo {{ kind: {kind}, nth: {nth}, after: {after} }}")
        }
        Step::CrashNow => "Step::CrashNow".into(),
        Step::Reopen => "Step::Reopen".into(),
        Step::CrashInRecovery { kind, nth } => {
            format!("Step::CrashInRecovery {{ kind: {kind}, nth: {nth} }}")
        }
        Step::Eio { sync, nth } => format!("Step::Eio {{ sync: {sync}, nth: {nth} }}"),
        Step::Check => "Step::Check".into(),
        Step::SnapshotCheck { back } => format!("Step::SnapshotCheck {{ back: {back} }}"),
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
