//! What a failure is, single-sourced: its kind (and exit code), the check it
//! broke (an oracle [`Invariant`] or one of the harness's own
//! [`HarnessCheck`]s), where the last crash struck, and the one
//! [`Failure::signature`] and [`Failure::replay_command`] every tool uses.
//!
//! The signature is the campaign's de-duplication key: the first 16 hex
//! digits of SHA-256 over `kind|check|crash point`. The crash point is the
//! failpoint the last crash came after, normalised so that two crashes at
//! the same instant of the engine get one signature:
//! - a crash *after* the I/O call that `<phase>::before_<x>` and
//!   `<phase>::after_<x>` bracket is a crash at `after_<x>`;
//! - failpoints on consecutive source lines (no statement between them, e.g.
//!   `flush::after_header` and `flush::before_header_sync`) are one instant:
//!   the first of the run names it.

use crate::scenario::Scenario;
use crate::target::Target;
use engine::mutants::Mutant;
use oracle::Invariant;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

/// How a failure is classified; each kind has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// The oracle (or `verify`) found a broken invariant.
    Divergence,
    /// The engine panicked.
    Panic,
    /// Something did not finish, or the flusher starved (liveness).
    Hang,
    /// Recovery failed on a disk the fault model says must recover.
    RecoveryError,
    /// The engine refused, aborted or failed something and no fault the run
    /// injected explains it.
    UnexpectedError,
}

impl FailureKind {
    /// Every kind.
    pub const ALL: [FailureKind; 5] = [
        FailureKind::Divergence,
        FailureKind::Panic,
        FailureKind::Hang,
        FailureKind::RecoveryError,
        FailureKind::UnexpectedError,
    ];

    /// The process exit code for this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::Divergence => 3,
            FailureKind::Panic => 4,
            FailureKind::Hang => 5,
            FailureKind::RecoveryError => 6,
            FailureKind::UnexpectedError => 7,
        }
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Divergence => "divergence",
            FailureKind::Panic => "panic",
            FailureKind::Hang => "hang",
            FailureKind::RecoveryError => "recovery-error",
            FailureKind::UnexpectedError => "unexpected-error",
        }
    }

    /// Parse a [`FailureKind::name`].
    pub fn from_name(name: &str) -> Option<FailureKind> {
        FailureKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An engine call whose error the runner judges (see
/// [`HarnessCheck::ExplainedError`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `Store::set`.
    Set,
    /// `Store::delete`.
    Delete,
    /// `Store::queue_len`.
    QueueLength,
    /// `Store::flush`.
    Flush,
    /// `Store::start_compaction`.
    StartCompaction,
    /// `Compaction::step`.
    CompactionStep,
    /// `Compaction::abort`.
    CompactionAbort,
    /// `Store::open` under the strict recovery policy.
    StrictOpen,
    /// Anything the background flusher and compactor do (`crashfuzz
    /// stress`, where kills are the only injected faults).
    Background,
    /// `Store::retry_pending_deletions`.
    RetryDeletions,
    /// `Store::set_local`.
    SetLocal,
    /// `Store::delete_local`.
    DeleteLocal,
}

impl Op {
    /// The name in a check's name (`explained-error:<op>`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::Delete => "delete",
            Op::QueueLength => "queue length",
            Op::Flush => "flush",
            Op::StartCompaction => "start compaction",
            Op::CompactionStep => "compaction step",
            Op::CompactionAbort => "compaction abort",
            Op::StrictOpen => "strict-open",
            Op::Background => "background",
            Op::RetryDeletions => "retry deletions",
            Op::SetLocal => "set local",
            Op::DeleteLocal => "delete local",
        }
    }
}

/// The harness's own checks, beside the oracle's invariants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HarnessCheck {
    /// The engine never panics.
    NoPanic,
    /// A step ends within the watchdog's budget of disk calls and bytes.
    Watchdog,
    /// A scenario ends within the explorer's wall-clock backstop.
    WallClockWatchdog,
    /// The process stays under the explorer's memory ceiling.
    MemoryCeiling,
    /// The flusher commits while the compactor is in an unlocked phase.
    Liveness,
    /// A compaction ends within a bound of its work.
    BoundedCompaction,
    /// A compaction ends within its catch-up rounds plus the locked one.
    BoundedCatchup,
    /// Recovery does not crash more often than the scenario allows.
    RecoveryProgress,
    /// An open succeeds on a disk the fault model says must recover.
    Recoverable,
    /// `verify` passes on every header.
    Verify,
    /// The header list is readable.
    Readable,
    /// `snapshot_at` opens the header the model expects.
    SnapshotAt,
    /// A flush of an empty queue commits nothing.
    EmptyFlush,
    /// A flush of a non-empty queue commits it.
    LostQueue,
    /// After a failed flush the store refuses writes until reopened.
    PoisonAfterError,
    /// At most one compaction runs at a time.
    SingleCompaction,
    /// Every engine error is explained by a fault the run injected.
    ExplainedError(Op),
    /// The harness's own state is consistent (a harness bug otherwise).
    HarnessState,
    /// An open that cannot read the revision it chose removes no other.
    FailedOpenKeepsRevisions,
    /// `recover_corrupt`: the undamaged image builds and opens.
    CleanBuild,
    /// `recover_corrupt`: damage gives a typed error, never a wrong answer.
    TypedError,
    /// `recover_corrupt`: a tolerant open of a damaged tail succeeds.
    TolerantOpen,
    /// `recover_corrupt`: the header chain terminates.
    HeaderChainTerminates,
    /// `recover_corrupt`: what opens is a committed state.
    CommittedState,
    /// `recover_corrupt`: the recovered store accepts writes.
    WritableAfterRecovery,
    /// `recover_corrupt`: damage after the last acknowledged commit loses it.
    AckedAfterDamage,
    /// `recover_corrupt`: damage that moved no block is reported as a
    /// checksum or structure error, never trusted.
    DamageReportedAsCorruption,
    /// Real processes: the events a child reported can be put in one order
    /// the oracle accepts.
    EventOrder,
    /// Real processes: every line a child sends parses.
    PipeProtocol,
    /// Real processes: acknowledged seqnos rise.
    SeqnoOrder,
    /// Real processes: an acknowledged flush's header is what the child
    /// said it committed.
    AckedHeader,
    /// Real processes: a child reports within its deadline.
    ChildHang,
    /// Crash images: the open of an image ends within its deadline.
    OpenHang,
}

impl HarnessCheck {
    /// The stable name (part of the signature: never change one).
    pub fn name(self) -> String {
        let s = match self {
            HarnessCheck::NoPanic => "no-panic",
            HarnessCheck::Watchdog => "watchdog",
            HarnessCheck::WallClockWatchdog => "wall-clock-watchdog",
            HarnessCheck::MemoryCeiling => "memory-ceiling",
            HarnessCheck::Liveness => "liveness",
            HarnessCheck::BoundedCompaction => "bounded-compaction",
            HarnessCheck::BoundedCatchup => "bounded-catchup",
            HarnessCheck::RecoveryProgress => "recovery-progress",
            HarnessCheck::Recoverable => "recoverable",
            HarnessCheck::Verify => "verify",
            HarnessCheck::Readable => "readable",
            HarnessCheck::SnapshotAt => "snapshot-at",
            HarnessCheck::EmptyFlush => "empty-flush",
            HarnessCheck::LostQueue => "lost-queue",
            HarnessCheck::PoisonAfterError => "poison-after-error",
            HarnessCheck::SingleCompaction => "single-compaction",
            HarnessCheck::ExplainedError(op) => return format!("explained-error:{}", op.name()),
            HarnessCheck::HarnessState => "harness",
            HarnessCheck::FailedOpenKeepsRevisions => "failed-open-keeps-revisions",
            HarnessCheck::CleanBuild => "clean-build",
            HarnessCheck::TypedError => "typed-error",
            HarnessCheck::TolerantOpen => "tolerant-open",
            HarnessCheck::HeaderChainTerminates => "header-chain-terminates",
            HarnessCheck::CommittedState => "committed-state",
            HarnessCheck::WritableAfterRecovery => "writable-after-recovery",
            HarnessCheck::AckedAfterDamage => "acked-after-damage",
            HarnessCheck::DamageReportedAsCorruption => "damage-reported-as-corruption",
            HarnessCheck::EventOrder => "event-order",
            HarnessCheck::PipeProtocol => "pipe-protocol",
            HarnessCheck::SeqnoOrder => "seqno-order",
            HarnessCheck::AckedHeader => "acked-header",
            HarnessCheck::ChildHang => "child-hang",
            HarnessCheck::OpenHang => "open-hang",
        };
        s.to_string()
    }
}

/// What a failure broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// One of the oracle's invariants (SPEC section 2).
    Oracle(Invariant),
    /// One of the harness's own checks.
    Harness(HarnessCheck),
}

impl Check {
    /// The stable name: the oracle invariant's, or the harness check's.
    pub fn name(&self) -> String {
        match self {
            Check::Oracle(i) => i.name().to_string(),
            Check::Harness(h) => h.name(),
        }
    }
}

impl From<Invariant> for Check {
    fn from(i: Invariant) -> Check {
        Check::Oracle(i)
    }
}

impl From<HarnessCheck> for Check {
    fn from(h: HarnessCheck) -> Check {
        Check::Harness(h)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A failed run: what broke, where, and the trace up to it.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The fuzz target whose input this is (`interleave` for the explorer).
    pub target: Target,
    /// The class of failure.
    pub kind: FailureKind,
    /// What broke.
    pub check: Check,
    /// The full report.
    pub message: String,
    /// The step (0-based) at which it was found.
    pub step: usize,
    /// The failpoint last hit before the crash that preceded it, if any.
    pub failpoint: Option<String>,
    /// Whether that crash struck just after an I/O call took effect.
    pub crash_after_call: bool,
    /// The trace up to and including the failure.
    pub trace: Vec<String>,
    /// The scenario that failed.
    pub scenario: Scenario,
    /// The target's input bytes (what `repro --target` reads back).
    pub input: Vec<u8>,
    /// The seeded bug that was on, if any.
    pub mutant: Option<Mutant>,
}

impl Failure {
    /// A failure of `scenario` (run as the `interleave` target, until
    /// [`Failure::for_target`] says otherwise).
    pub fn new(
        kind: FailureKind,
        check: impl Into<Check>,
        message: String,
        scenario: &Scenario,
    ) -> Failure {
        Failure {
            target: Target::Interleave,
            kind,
            check: check.into(),
            message,
            step: 0,
            failpoint: None,
            crash_after_call: false,
            trace: Vec::new(),
            scenario: scenario.clone(),
            input: scenario.to_bytes(),
            mutant: None,
        }
    }

    /// The same failure, found by `target` from `input`.
    pub fn for_target(mut self, target: Target, input: &[u8]) -> Failure {
        self.target = target;
        self.input = input.to_vec();
        self
    }

    /// The name of the check (the oracle's invariant or the harness's).
    pub fn invariant(&self) -> String {
        self.check.name()
    }

    /// The crash point of the last crash: its failpoint, normalised (see
    /// the module doc); `-` when no crash preceded the failure.
    pub fn crash_point(&self) -> String {
        match &self.failpoint {
            Some(fp) => crash_point(fp, self.crash_after_call),
            None => "-".into(),
        }
    }

    /// The de-duplication signature: 16 hex digits of SHA-256 over
    /// `kind|check|crash point`. The one signature of the suite: the
    /// explorer's artifact names, the campaign's triage and the regression
    /// tests' names all use it.
    pub fn signature(&self) -> String {
        let text = format!("{}|{}|{}", self.kind, self.check, self.crash_point());
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }

    /// The command that replays this failure from its input bytes: always
    /// with its target and its seeded bug.
    pub fn replay_command(&self) -> String {
        replay_command(self.target, &self.input, self.mutant, None)
    }

    /// The command that replays this failure from `artifact`, a file
    /// holding [`Failure::input`].
    pub fn replay_command_from(&self, artifact: &Path) -> String {
        replay_command(self.target, &self.input, self.mutant, Some(artifact))
    }

    /// The structured form (`repro --json`, `minimize --json`, the
    /// campaign).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.target.name(),
            "kind": self.kind.name(),
            "exit_code": self.kind.exit_code(),
            "invariant": self.invariant(),
            "signature": self.signature(),
            "failpoint": self.failpoint,
            "crash_point": self.crash_point(),
            "step": self.step,
            "steps": self.scenario.steps.len(),
            "mutant": self.mutant.map(|m| m.name()),
            "message": self.message,
            "replay": self.replay_command(),
        })
    }
}

/// The campaign's signature of an artifact that does not fail when
/// replayed (a crash, timeout or OOM of the fuzz process that `crashfuzz`
/// does not reproduce): one per target and libFuzzer kind (`crash`,
/// `timeout`, `oom`, ..., the artifact name's prefix), 16 hex digits of
/// SHA-256 over `unreproduced|<target>|<kind>`.
pub fn unreproduced_signature(target: Target, kind: &str) -> String {
    let text = format!("unreproduced|{}|{kind}", target.name());
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// The command line that replays `input` as `target`'s input (from
/// `artifact` when it was written to a file, else from its hex bytes).
pub fn replay_command(
    target: Target,
    input: &[u8],
    mutant: Option<Mutant>,
    artifact: Option<&Path>,
) -> String {
    let mutant = mutant.map_or(String::new(), |m| format!(" --mutant {}", m.name()));
    let source = match artifact {
        Some(path) => path.display().to_string(),
        None => format!("--hex {}", hex::encode(input)),
    };
    // A thread-schedule artifact names its own kind (its first line).
    let target = if crate::target::is_threads_artifact(input) {
        String::new()
    } else {
        format!(" --target {}", target.name())
    };
    format!("cargo run --release --bin crashfuzz -- repro {source}{target}{mutant}")
}

/// The crash point of a crash after failpoint `fp` (see the module doc).
pub fn crash_point(fp: &str, after_call: bool) -> String {
    let mut point = fp.to_string();
    if after_call {
        if let Some(closing) = fp
            .split_once("::before_")
            .map(|(phase, x)| format!("{phase}::after_{x}"))
        {
            if engine::failpoints::all().any(|n| n == closing) {
                point = closing;
            }
        }
    }
    // Walk up a run of failpoints on consecutive source lines.
    loop {
        let at = crate::catalog::locations(&point);
        let [only] = at.as_slice() else {
            return point;
        };
        let Some((file, line)) = only.rsplit_once(':') else {
            return point;
        };
        let Ok(line) = line.parse::<u64>() else {
            return point;
        };
        let previous = format!("{file}:{}", line.saturating_sub(1));
        match engine::failpoints::all()
            .find(|n| crate::catalog::locations(n).as_slice() == [previous.as_str()])
        {
            Some(up) if up != point => point = up.to_string(),
            _ => return point,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "FAILURE {} [{}] at step {} (signature {})",
            self.kind,
            self.check,
            self.step,
            self.signature()
        )?;
        writeln!(f, "target: {}", self.target.name())?;
        if let Some(m) = self.mutant {
            writeln!(f, "seeded bug on: {m}")?;
        }
        if let Some(fp) = &self.failpoint {
            writeln!(
                f,
                "crash after failpoint: {fp} (crash point {})",
                self.crash_point()
            )?;
        }
        writeln!(f, "{}", self.message.trim_end())?;
        writeln!(f, "replay: {}", self.replay_command())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_points_merge_one_instant() {
        // Consecutive lines: one instant, named by the first.
        assert_eq!(
            crash_point("flush::before_header_sync", false),
            "flush::after_header"
        );
        assert_eq!(
            crash_point("flush::after_header", false),
            "flush::after_header"
        );
        // After the call bracketed by before_/after_: the after_ point.
        assert_eq!(
            crash_point("flush::before_header", true),
            "flush::after_header"
        );
        assert_eq!(
            crash_point("flush::before_header", false),
            "flush::after_data_sync"
        );
    }

    #[test]
    fn replay_always_names_target_and_mutant() {
        let s = Scenario::from_bytes(&[1, 2, 3]);
        let mut f = Failure::new(
            FailureKind::Divergence,
            Invariant::Durability,
            "x".into(),
            &s,
        )
        .for_target(Target::RecoverCorrupt, &[9, 9]);
        f.mutant = Some(Mutant::SeqnoReused);
        let cmd = f.replay_command();
        assert!(cmd.contains("--hex 0909"), "{cmd}");
        assert!(cmd.contains("--target recover_corrupt"), "{cmd}");
        assert!(cmd.contains("--mutant seqno-reused"), "{cmd}");
        assert_eq!(f.invariant(), "durability");
        assert_eq!(f.signature().len(), 16);
    }

    #[test]
    fn unreproduced_signature_is_the_shell_formula() {
        // printf 'unreproduced|crash_ops|timeout' | sha256sum | cut -c1-16
        assert_eq!(
            unreproduced_signature(Target::CrashOps, "timeout"),
            "6b9fde5b12f6e2f9"
        );
    }

    #[test]
    fn names_are_stable() {
        assert_eq!(
            HarnessCheck::ExplainedError(Op::CompactionStep).name(),
            "explained-error:compaction step"
        );
        for k in FailureKind::ALL {
            assert_eq!(FailureKind::from_name(k.name()), Some(k));
        }
    }
}
