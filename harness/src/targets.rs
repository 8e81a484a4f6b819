//! The fuzz targets' input decoding, shared with `crashfuzz repro`: one
//! artifact file works with both.
//!
//! Every target reads its input as a [`Scenario`] (see
//! [`Scenario::from_bytes`]) and then narrows it to what the target covers
//! ([`Target::narrow`]). Narrowing is deterministic and a fixed point of the
//! encoding: `narrow(from_bytes(to_bytes(narrow(s)))) == narrow(s)`, so the
//! bytes of a narrowed scenario (a minimized artifact, a seed) replay as the
//! same scenario under the same target.
//!
//! The cargo-fuzz targets in `fuzz/fuzz_targets/` are one line each over
//! [`FuzzInput`]: its `Arbitrary` takes the raw bytes, its `Debug` (what
//! `cargo fuzz fmt` prints) is the scenario as the target reads it, and
//! [`FuzzInput::run`] panics with the failure report, which makes libFuzzer
//! save the artifact.

use crate::corrupt;
use crate::generate::{scenario_bytes, Size};
use crate::runner::{run, Failure, Outcome, RunOptions};
use crate::scenario::{Scenario, Step, SwarmConfig, IO_KINDS, MAX_STEPS};
use crate::templates::Template;
use arbitrary::{Arbitrary, Unstructured};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

pub use crate::target::Target;

impl Target {
    /// The scenario this target runs for `data`.
    pub fn scenario(self, data: &[u8]) -> Scenario {
        self.narrow(Scenario::from_bytes(data))
    }

    /// Narrow a decoded scenario to what this target covers (see the module
    /// doc for the fixed-point property).
    pub fn narrow(self, scenario: Scenario) -> Scenario {
        let mut s = match self {
            Target::Interleave => scenario,
            Target::CrashOps => narrow_crash_ops(scenario),
            Target::Pitr => narrow_pitr(scenario),
            Target::RecoverCorrupt => narrow_recover_corrupt(scenario),
            Target::IoErrors => narrow_io_errors(scenario),
        };
        s.steps.truncate(MAX_STEPS);
        s
    }
}

fn is_compaction(step: &Step) -> bool {
    matches!(
        step,
        Step::CompactStart { .. }
            | Step::CompactStep { .. }
            | Step::CompactFinish
            | Step::CompactAbort
    )
}

/// No compaction steps, no EIO; crash failpoints only in flush and recovery;
/// the compaction settings (PiTR, the liveness probe) off.
fn narrow_crash_ops(mut s: Scenario) -> Scenario {
    // Flush and recovery failpoints come first in the catalog.
    let non_compaction =
        (engine::failpoints::FLUSH.len() + engine::failpoints::RECOVERY.len()) as u8;
    s.config.pitr_granularity_secs = None;
    s.config.pitr_max_age_secs = 0;
    s.config.probe_liveness = false;
    s.steps = s
        .steps
        .into_iter()
        .filter(|st| !is_compaction(st) && !matches!(st, Step::Eio { .. } | Step::Fault { .. }))
        .map(|st| match st {
            Step::CrashAtFailpoint { point, nth } => Step::CrashAtFailpoint {
                point: point % non_compaction,
                nth,
            },
            other => other,
        })
        .collect();
    s
}

/// PiTR on; a tick since the previous flush before every flush; a snapshot
/// check after every finished compaction; a compaction at the end if there
/// is none; no EIO.
fn narrow_pitr(mut s: Scenario) -> Scenario {
    let g = match s.config.pitr_granularity_secs {
        Some(g) => g,
        None => 1 + (s.config.disk_seed % 8) as u8,
    };
    s.config.pitr_granularity_secs = Some(g);
    let mut out = Vec::with_capacity(s.steps.len() + 8);
    let mut ticked = false;
    let mut flushes = 0u8;
    let mut input = s
        .steps
        .into_iter()
        .filter(|st| !matches!(st, Step::Eio { .. } | Step::Fault { .. }))
        .peekable();
    while let Some(step) = input.next() {
        match step {
            Step::Tick { .. } => ticked = true,
            Step::Flush => {
                if !ticked {
                    // Varied gaps: several commits per window, and windows
                    // with none.
                    out.push(Step::Tick {
                        secs: 1 + flushes.wrapping_mul(5).wrapping_add(3) % 8,
                    });
                }
                ticked = false;
                flushes = flushes.wrapping_add(1);
            }
            _ => {}
        }
        let finish = step == Step::CompactFinish;
        out.push(step);
        if finish && !matches!(input.peek(), Some(Step::SnapshotCheck { .. })) {
            out.push(Step::SnapshotCheck {
                back: (out.len() as u8).wrapping_mul(7) % 32,
            });
        }
    }
    if !out.iter().any(|st| matches!(st, Step::CompactStart { .. })) {
        out.extend([
            Step::CompactStart { purge: 0 },
            Step::CompactFinish,
            Step::SnapshotCheck { back: g },
        ]);
    }
    s.steps = out;
    s
}

/// At least one EIO armed before a flush.
fn narrow_io_errors(mut s: Scenario) -> Scenario {
    let last_flush = s.steps.iter().rposition(|st| *st == Step::Flush);
    let eio_before_flush = last_flush.is_some_and(|last| {
        s.steps[..last]
            .iter()
            .any(|st| matches!(st, Step::Eio { .. } | Step::Fault { .. }))
    });
    if !eio_before_flush {
        let eio = Step::Eio {
            sync: s.config.disk_seed % 2 == 1,
            nth: 1,
        };
        match s.steps.iter().position(|st| *st == Step::Flush) {
            Some(first) => s.steps.insert(first, eio),
            None => s
                .steps
                .extend([Step::Set { key: 0, len: 8 }, eio, Step::Flush]),
        }
    }
    s
}

/// Build steps first (at least one commit), then the damage steps (at least
/// one, at most [`corrupt::MAX_DAMAGES`]); checks dropped; the crash-model settings fixed
/// (the image is built fault-free).
fn narrow_recover_corrupt(mut s: Scenario) -> Scenario {
    // Only the store's own settings matter: the crash model's are fixed, so
    // inputs differing only there are one input.
    let c = &s.config;
    s.config = SwarmConfig {
        fanout: c.fanout,
        copy_batch_docs: c.copy_batch_docs,
        catchup_rounds: c.catchup_rounds,
        pitr_granularity_secs: c.pitr_granularity_secs,
        pitr_max_age_secs: c.pitr_max_age_secs,
        disk_seed: c.disk_seed,
        strict_recovery: c.strict_recovery,
        ..SwarmConfig::default()
    };
    let mut build: Vec<Step> = s
        .steps
        .iter()
        .filter(|st| corrupt::is_build_step(st))
        .cloned()
        .collect();
    // The crash and fault opcodes read as damage, under their own names.
    let mut damage: Vec<Step> = s
        .steps
        .iter()
        .filter_map(corrupt::Damage::from_step)
        .take(corrupt::MAX_DAMAGES)
        .map(Step::Damage)
        .collect();
    if damage.is_empty() {
        // Bit flips in the newest header block.
        damage.push(Step::Damage(corrupt::Damage::BitFlips {
            count: 1 + (s.config.disk_seed % 5) as u8,
            place: corrupt::Place::HeaderBlock(0),
        }));
    }
    if !commits(&build) {
        // An image with at least one commit to damage.
        build.splice(0..0, [Step::Set { key: 0, len: 8 }, Step::Flush]);
    }
    build.truncate(MAX_STEPS - damage.len());
    build.extend(damage);
    s.steps = build;
    s
}

/// Whether some flush has a queued mutation to commit.
fn commits(steps: &[Step]) -> bool {
    let mut queued = false;
    for step in steps {
        match step {
            Step::Set { .. } | Step::Delete { .. } => queued = true,
            Step::Flush if queued => return true,
            Step::Reopen => queued = false,
            _ => {}
        }
    }
    false
}

/// Run `data` as `target` would.
pub fn run_target(
    target: Target,
    data: &[u8],
    options: &RunOptions,
) -> Result<Outcome, Box<Failure>> {
    let scenario = target.scenario(data);
    match target {
        Target::RecoverCorrupt => corrupt::run(&scenario, options),
        _ => run(&scenario, options),
    }
    .map_err(|f| Box::new(f.for_target(target, data)))
}

/// [`run_target`] on a thread of its own with a wall-clock backstop: what
/// `crashfuzz repro` and the campaign's triage run, so that both file a
/// failure under the same signature. A run still going after `hang_after`
/// (a hang that makes no disk call, which the deterministic watchdog cannot
/// see) is a [`crate::FailureKind::Hang`] of
/// [`crate::failure::HarnessCheck::WallClockWatchdog`]; its thread is left
/// behind. A panic that escapes the runner's own guard is a
/// [`crate::FailureKind::Panic`].
pub fn run_target_watched(
    target: Target,
    data: &[u8],
    options: &RunOptions,
    hang_after: std::time::Duration,
) -> Result<Outcome, Box<Failure>> {
    use crate::failure::HarnessCheck;
    use crate::FailureKind;
    let (tx, rx) = std::sync::mpsc::channel();
    let (owned, opts) = (data.to_vec(), options.clone());
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_target(target, &owned, &opts)
        }));
        let _ = tx.send(result);
    });
    let (kind, check, message) = match rx.recv_timeout(hang_after) {
        Ok(Ok(result)) => return result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => (
            FailureKind::Hang,
            HarnessCheck::WallClockWatchdog,
            format!(
                "the scenario still runs after {} s (a hang that makes no disk call)",
                hang_after.as_secs()
            ),
        ),
        Ok(Err(_)) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => (
            FailureKind::Panic,
            HarnessCheck::NoPanic,
            "the run panicked outside the runner's guard".to_string(),
        ),
    };
    let mut failure =
        Failure::new(kind, check, message, &target.scenario(data)).for_target(target, data);
    failure.mutant = options.mutant;
    Err(Box::new(failure))
}

/// A readable account of what `target` does with `data`: the scenario as
/// the target reads it (for `recover_corrupt`, the build steps and then the
/// damage steps, each under its own name).
pub fn describe(target: Target, data: &[u8]) -> String {
    let scenario = target.scenario(data);
    format!("target {target}\n{}", crate::scenario::describe(&scenario))
}

/// Write `count` seed-corpus inputs for `target` into `dir` (generated from
/// `seed`, never by hand). Returns how many files were written.
///
/// Even-numbered seeds are random scenarios (the explorer's generator),
/// odd-numbered ones follow a per-target template that reaches the target's
/// subject quickly (a compaction racing flushes, a PiTR history, damage to a
/// header, an EIO in a flush); the `i`-th template arms a crash at failpoint
/// `i` of the catalog, so the corpus starts out crashing at every one. Every
/// file holds the narrowed scenario's bytes, so it reads back as itself.
pub fn write_seed_corpus(
    target: Target,
    dir: &Path,
    seed: u64,
    count: u64,
) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    for i in 0..count {
        let scenario = seed_scenario(target, seed, i);
        std::fs::write(dir.join(format!("seed-{i:03}")), scenario.to_bytes())?;
    }
    Ok(count)
}

/// Seed `i` of `seed` for `target` (see [`write_seed_corpus`]).
pub fn seed_scenario(target: Target, seed: u64, i: u64) -> Scenario {
    let salt = (target as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    if i.is_multiple_of(2) {
        let size = match target {
            Target::Pitr | Target::Interleave => Size::Default,
            _ => Size::Small,
        };
        return target.scenario(&scenario_bytes(seed ^ salt, i, size));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ salt ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut s = Scenario::from_bytes(&scenario_bytes(seed ^ salt, i, Size::Small)[..16]);
    let failpoints = engine::failpoints::all().count() as u64;
    let point = ((i / 2) % failpoints) as u8;
    let t = Template { rng: &mut rng };
    s.steps = match target {
        Target::CrashOps => t.crash_ops(point),
        Target::Interleave => t.interleave(point),
        Target::Pitr => t.pitr(point),
        Target::RecoverCorrupt => t.recover_corrupt(i),
        Target::IoErrors => t.io_errors(i),
    };
    target.narrow(s)
}

/// A libFuzzer dictionary for `target`: the encoding of every step the
/// target keeps, with the parameters that matter, so mutations insert whole
/// steps (`crash at failpoint N`) instead of single bytes.
pub fn dictionary(target: Target) -> String {
    let mut steps = vec![
        ("flush", Step::Flush),
        ("reopen", Step::Reopen),
        ("crash_now", Step::CrashNow),
        ("check", Step::Check),
        ("set", Step::Set { key: 0, len: 8 }),
        ("delete", Step::Delete { key: 0 }),
        ("tick", Step::Tick { secs: 4 }),
        ("snapshot_check", Step::SnapshotCheck { back: 4 }),
        ("compact_start", Step::CompactStart { purge: 0 }),
        ("compact_start_purge", Step::CompactStart { purge: 3 }),
        ("compact_step", Step::CompactStep { n: 1 }),
        ("compact_finish", Step::CompactFinish),
        ("compact_abort", Step::CompactAbort),
        (
            "eio_write",
            Step::Eio {
                sync: false,
                nth: 1,
            },
        ),
        ("eio_fsync", Step::Eio { sync: true, nth: 1 }),
        ("edge_commit", Step::EdgeCommit { key: 0, edge: 0 }),
        ("edge_commit_before", Step::EdgeCommit { key: 1, edge: 1 }),
        ("edge_commit_into", Step::EdgeCommit { key: 2, edge: 2 }),
        (
            "batch",
            Step::Batch {
                count: 64,
                first: 0,
                len: 40,
            },
        ),
    ];
    steps.extend([
        (
            "local_set",
            Step::Local {
                name: 0,
                len: 8,
                delete: false,
            },
        ),
        (
            "local_delete",
            Step::Local {
                name: 0,
                len: 0,
                delete: true,
            },
        ),
        (
            "read_locals",
            Step::Read {
                kind: 4,
                a: 1,
                b: 0,
            },
        ),
    ]);
    let mut named: Vec<(String, Step)> = steps.drain(..).map(|(n, s)| (n.to_string(), s)).collect();
    for (point, name) in engine::failpoints::all().enumerate() {
        named.push((
            format!("crash_at_{}", name.replace("::", "_")),
            Step::CrashAtFailpoint {
                point: point as u8,
                nth: 1,
            },
        ));
        if name.starts_with("compact::") {
            named.push((
                format!("preempt_at_{}", name.replace("::", "_")),
                Step::Preempt {
                    point: point as u8,
                    nth: 1,
                    steps: 2,
                },
            ));
        }
    }
    for (kind, io) in IO_KINDS.iter().enumerate() {
        let kind = kind as u8;
        for after in [false, true] {
            named.push((
                format!("crash_{}_{io}", if after { "after" } else { "before" }),
                Step::CrashAtIo {
                    kind,
                    nth: 1,
                    after,
                },
            ));
        }
        named.push((
            format!("crash_in_recovery_{io}"),
            Step::CrashInRecovery {
                kind,
                nth: 1,
                repeat: 1,
            },
        ));
    }
    for (kind, fault) in crate::scenario::FAULT_STEPS.iter().enumerate() {
        for recovery in [false, true] {
            named.push((
                format!(
                    "fault_{}{}",
                    fault.replace('-', "_"),
                    if recovery { "_in_recovery" } else { "" }
                ),
                Step::Fault {
                    kind: kind as u8,
                    nth: 1,
                    recovery,
                },
            ));
        }
    }
    if target == Target::RecoverCorrupt {
        use corrupt::{Damage, Place};
        let damages = [
            (
                "damage_flip_bit_newest_header",
                Damage::BitFlips {
                    count: 1,
                    place: Place::HeaderBlock(0),
                },
            ),
            (
                "damage_flip_bits_anywhere",
                Damage::BitFlips {
                    count: 3,
                    place: Place::Anywhere,
                },
            ),
            (
                "damage_tear_newest_header",
                Damage::TornBlock {
                    place: Place::HeaderBlock(0),
                    garbage: false,
                },
            ),
            (
                "damage_garbage_tail_fake_header",
                Damage::GarbageTail {
                    sectors: 2,
                    fake_header: true,
                },
            ),
            ("damage_truncate", Damage::Truncate),
            (
                "damage_swap_header_blocks",
                Damage::SwapBlocks {
                    a: 0,
                    b: Place::HeaderBlock(1),
                },
            ),
        ];
        named.retain(|(_, step)| Damage::from_step(step).is_none());
        named.extend(
            damages
                .into_iter()
                .map(|(name, d)| (name.to_string(), Step::Damage(d))),
        );
    }
    let mut out = format!(
        "# libFuzzer dictionary for the {target} target: whole encoded steps.\n\
         # Generated by `CRASHFUZZ_BLESS=1 cargo test -p harness dictionaries`; do not edit.\n"
    );
    let base = Scenario::default();
    for (name, step) in named {
        let one = Scenario {
            config: base.config.clone(),
            steps: vec![step.clone()],
        };
        // Keep the step only if the target keeps it.
        let kept = target.narrow(one.clone()).steps.contains(&step);
        if !kept {
            continue;
        }
        let bytes = one.to_bytes()[crate::scenario::CONFIG_BYTES..].to_vec();
        let escaped: String = bytes.iter().map(|b| format!("\\x{b:02X}")).collect();
        out.push_str(&format!("{name}=\"{escaped}\"\n"));
    }
    out
}

/// The options the fuzz targets run with: the correct engine, or the seeded
/// bug named by the `CRASHFUZZ_MUTANT` environment variable (read once, as
/// [`crate::mutant_env::mutant_from_env`] reads it for regression tests).
pub fn fuzz_options() -> &'static RunOptions {
    static OPTIONS: OnceLock<RunOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mutant = crate::mutant_env::mutant_from_env();
        if let Some(m) = mutant {
            eprintln!("crashfuzz: seeded bug {m} is ON");
        }
        RunOptions {
            mutant,
            ..RunOptions::default()
        }
    })
}

/// A fuzz target's input: the raw bytes, run as `Target::ALL[T]`. Its
/// `Debug` is what `cargo fuzz fmt` prints: the scenario as the target reads
/// it.
#[derive(Clone, PartialEq, Eq)]
pub struct FuzzInput<const T: usize> {
    /// The bytes, exactly as libFuzzer gave them.
    pub bytes: Vec<u8>,
}

/// `crash_ops` input.
pub type CrashOpsInput = FuzzInput<0>;
/// `interleave` input.
pub type InterleaveInput = FuzzInput<1>;
/// `pitr` input.
pub type PitrInput = FuzzInput<2>;
/// `recover_corrupt` input.
pub type RecoverCorruptInput = FuzzInput<3>;
/// `io_errors` input.
pub type IoErrorsInput = FuzzInput<4>;

impl<const T: usize> FuzzInput<T> {
    /// The target this input is for.
    pub const TARGET: Target = Target::ALL[T];

    /// Run the input with [`fuzz_options`]; panic with the failure report if
    /// it fails (libFuzzer then saves it as an artifact).
    pub fn run(&self) {
        let target = Self::TARGET;
        if let Err(failure) = run_target(target, &self.bytes, fuzz_options()) {
            let mutant = failure
                .mutant
                .map_or(String::new(), |m| format!(" --mutant {m}"));
            panic!(
                "{failure}\ncrashfuzz: replay the saved artifact with \
                 `cargo run --release --bin crashfuzz -- repro --target {target}{mutant} <artifact>`"
            );
        }
    }
}

impl<'a, const T: usize> Arbitrary<'a> for FuzzInput<T> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.len();
        Ok(FuzzInput {
            bytes: u.bytes(len)?.to_vec(),
        })
    }

    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(FuzzInput {
            bytes: u.take_rest().to_vec(),
        })
    }
}

impl<const T: usize> fmt::Debug for FuzzInput<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(Self::TARGET, &self.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_aliases_match_targets() {
        assert_eq!(CrashOpsInput::TARGET, Target::CrashOps);
        assert_eq!(InterleaveInput::TARGET, Target::Interleave);
        assert_eq!(PitrInput::TARGET, Target::Pitr);
        assert_eq!(RecoverCorruptInput::TARGET, Target::RecoverCorrupt);
        assert_eq!(IoErrorsInput::TARGET, Target::IoErrors);
    }

    #[test]
    fn narrowing_is_a_fixed_point_of_the_encoding() {
        for target in Target::ALL {
            for i in 0..400 {
                let size = [Size::Small, Size::Default, Size::Large][i as usize % 3];
                let narrowed = target.scenario(&scenario_bytes(99, i, size));
                let again = target.scenario(&narrowed.to_bytes());
                assert_eq!(narrowed, again, "{target} input {i}");
            }
        }
    }

    /// Every damage a crash or fault step can stand for encodes back to a
    /// step that reads as the same damage: damage steps are as invertible as
    /// every other step.
    #[test]
    fn damage_steps_are_invertible() {
        let mut seen = std::collections::BTreeSet::new();
        for first in 0..=255u8 {
            for a in [0u8, 1, 3, 7, 128, 131, 200, 255] {
                for b in [0u8, 1, 2, 3, 9, 15, 200, 255] {
                    let bytes = [first, a, b];
                    let s = Scenario::from_bytes(
                        &[vec![0; crate::scenario::CONFIG_BYTES], bytes.to_vec()].concat(),
                    );
                    let Some(step) = s.steps.first() else {
                        continue;
                    };
                    let Some(d) = corrupt::Damage::from_step(step) else {
                        continue;
                    };
                    let back = corrupt::Damage::from_step(&d.as_encoded_step());
                    assert_eq!(back, Some(d), "{step:?} read as {d:?}");
                    seen.insert(format!("{d:?}"));
                }
            }
        }
        // All five kinds, with their places, are reachable.
        assert!(seen.len() > 30, "only {} damages reachable", seen.len());
        for kind in [
            "BitFlips",
            "TornBlock",
            "GarbageTail",
            "Truncate",
            "SwapBlocks",
        ] {
            assert!(
                seen.iter().any(|d| d.starts_with(kind)),
                "{kind} never decoded"
            );
        }
    }

    /// `recover_corrupt`'s damage has its own name in the scenario and in the
    /// trace, not the crash step whose bytes it shares.
    #[test]
    fn damage_is_named_in_the_scenario_and_the_trace() {
        let damage = corrupt::Damage::BitFlips {
            count: 2,
            place: corrupt::Place::HeaderBlock(0),
        };
        let scenario = Scenario {
            config: SwarmConfig::default(),
            steps: vec![
                Step::Set { key: 1, len: 8 },
                Step::Flush,
                Step::Damage(damage),
            ],
        };
        let bytes = scenario.to_bytes();
        let read = Target::RecoverCorrupt.scenario(&bytes);
        assert_eq!(read.steps.last(), Some(&Step::Damage(damage)));
        let text = describe(Target::RecoverCorrupt, &bytes);
        assert!(
            text.contains("damage: flip 2 bit(s) in the newest header block"),
            "{text}"
        );
        assert!(!text.contains("arm crash"), "{text}");
        let options = RunOptions {
            keep_trace: true,
            ..RunOptions::default()
        };
        let outcome =
            run_target(Target::RecoverCorrupt, &bytes, &options).unwrap_or_else(|f| panic!("{f}"));
        let trace = outcome.trace.join("\n");
        assert!(
            trace.contains("damage #0: flip 2 bit(s) in the newest header block: flipped"),
            "{trace}"
        );
        assert!(trace.contains("acked update_seq=1"), "{trace}");
        // The build ran through the one runner: its checks count.
        assert!(outcome.checks >= 1, "{trace}");
    }

    #[test]
    fn narrowing_keeps_each_target_on_its_subject() {
        for i in 0..300 {
            let bytes = scenario_bytes(5, i, Size::Default);
            let c = Target::CrashOps.scenario(&bytes);
            assert!(!c
                .steps
                .iter()
                .any(|s| is_compaction(s) || matches!(s, Step::Eio { .. } | Step::Fault { .. })));
            let p = Target::Pitr.scenario(&bytes);
            assert!(p.config.pitr_granularity_secs.is_some());
            let io = Target::IoErrors.scenario(&bytes);
            assert!(io
                .steps
                .iter()
                .any(|s| matches!(s, Step::Eio { .. } | Step::Fault { .. })));
            let rc = Target::RecoverCorrupt.scenario(&bytes);
            assert!(!corrupt::plan(&rc).is_empty());
            let first_damage = rc
                .steps
                .iter()
                .position(|s| corrupt::Damage::from_step(s).is_some());
            assert!(first_damage.is_some_and(|d| rc.steps[d..]
                .iter()
                .all(|s| corrupt::Damage::from_step(s).is_some())));
        }
    }

    #[test]
    fn seeds_read_back_as_themselves_and_pass() {
        for target in Target::ALL {
            for i in 0..6 {
                let s = seed_scenario(target, 1, i);
                assert_eq!(target.scenario(&s.to_bytes()), s, "{target} seed {i}");
                if let Err(f) = run_target(target, &s.to_bytes(), &RunOptions::default()) {
                    panic!("{target} seed {i} fails on the correct engine:\n{f}");
                }
            }
        }
    }

    #[test]
    fn recover_corrupt_without_damage_sees_only_committed_states() {
        // Every damage kind, many images: on the correct engine nothing fails.
        for i in 0..200 {
            let bytes = scenario_bytes(11, i, Size::Default);
            if let Err(f) = run_target(Target::RecoverCorrupt, &bytes, &RunOptions::default()) {
                panic!("input {i}:\n{f}");
            }
        }
    }

    /// The committed dictionaries in `fuzz/dict/` are generated; regenerate
    /// with `CRASHFUZZ_BLESS=1`.
    #[test]
    fn dictionaries() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/dict");
        let bless = std::env::var_os("CRASHFUZZ_BLESS").is_some();
        for target in Target::ALL {
            let path = dir.join(format!("{target}.dict"));
            let want = dictionary(target);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
            }
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                have == want,
                "{} is stale: run CRASHFUZZ_BLESS=1 cargo test -p harness dictionaries",
                path.display()
            );
        }
    }
}
