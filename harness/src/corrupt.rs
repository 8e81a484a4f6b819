//! The `recover_corrupt` target: build a valid store image from a scenario
//! with the one runner, damage its bytes, then open, verify and read
//! everything.
//!
//! The scenario is read in two parts (see [`crate::targets::Target::scenario`],
//! which puts them in this order and reads the crash and fault opcodes of the
//! common encoding as [`Damage`] steps):
//! - **build steps** (`Set`, `Delete`, `Flush`, `Tick`, the compaction steps,
//!   `Reopen`) run through [`crate::runner`] on a fault-free simulated disk,
//!   judged as every run is; the oracle's model sees every acknowledged
//!   commit through the runner's event stream;
//! - **damage steps** ([`Step::Damage`]), each one kind of damage to the
//!   finished image: bit flips, a torn block, a garbage tail, a truncation,
//!   two blocks swapped. The exact positions come from a generator seeded by
//!   the scenario's disk seed and the damage's index, aimed at header blocks
//!   where the step says so.
//!
//! Then the damaged image is opened with the scenario's recovery policy.
//! What must hold:
//! - nothing panics (the caller turns a panic into [`FailureKind::Panic`]) and
//!   nothing loops forever (the header chain is walked with a bound first);
//! - a strict open may refuse with a typed corruption error; an open that
//!   tolerates a corrupt tail must succeed (that is its documented promise);
//! - every header whose trees verify shows exactly a committed state: the
//!   oracle's [`oracle::Model::check_committed_header`] (header-history):
//!   its `update_seq` is one a flush acknowledged (or 0, the empty store),
//!   with that flush's timestamp and documents, trees in agreement and
//!   counters a recount;
//! - a store whose tip verified still works: a new flush is acknowledged and
//!   survives a crash that drops everything unsynced
//!   ([`HarnessCheck::AckedAfterDamage`]).
//!
//! `verify` failing on an old header is allowed (recovery checks only the
//! roots of the header it picks): it must fail with a typed error, which is
//! all the types allow.

use crate::events::{Event, Journal};
use crate::extract::{oracle_value, recovered_header};
use crate::failure::{Check, HarnessCheck};
use crate::runner::{build_image, Built};
use crate::runner::{Failure, FailureKind, Outcome, RunOptions, DB_DIR, DB_NAME};
pub use crate::scenario::{Damage, Place};
use crate::scenario::{Scenario, Step};
use engine::layout::{self, BLOCK_BYTES, MARKER_HEADER};
use engine::layout::{classify, FileKind};
use engine::{Config, ManualClock, OpenMode, RecoveryPolicy, Store};
use failpoints::{CrashMode, SimVfs};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

/// At most this many damage steps are applied (the rest of a long scenario
/// builds the image).
pub const MAX_DAMAGES: usize = 8;
/// Bytes per simulated sector (torn writes and garbage tails use it).
const SECTOR_BYTES: usize = 512;
/// The key of the flush made after a successful open.
const PROBE_KEY: &[u8] = b"probe";

/// Live documents of one committed state: key -> (seqno, value).
type Docs = BTreeMap<Vec<u8>, (u64, Vec<u8>)>;

/// Whether `step` builds the image (as opposed to damaging it or being
/// ignored by this target).
pub fn is_build_step(step: &Step) -> bool {
    matches!(
        step,
        Step::Set { .. }
            | Step::Delete { .. }
            | Step::Flush
            | Step::Tick { .. }
            | Step::CompactStart { .. }
            | Step::CompactStep { .. }
            | Step::CompactFinish
            | Step::CompactAbort
            | Step::Reopen
            | Step::EdgeCommit { .. }
            | Step::Batch { .. }
    )
}

/// The damage plan of a (narrowed) scenario, in the order it is applied.
pub fn plan(scenario: &Scenario) -> Vec<Damage> {
    scenario
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Damage(d) => Some(*d),
            _ => None,
        })
        .take(MAX_DAMAGES)
        .collect()
}

/// Run the `recover_corrupt` target on a scenario already narrowed by
/// [`crate::targets::Target::scenario`]. Never panics: an engine panic
/// becomes a [`FailureKind::Panic`] failure.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<Outcome, Box<Failure>> {
    crate::runner::guarded(
        scenario,
        options,
        "engine panicked on a damaged image",
        || {
            let built = build_image(scenario, options)?;
            Corrupt::new(scenario, options, built).run_all()
        },
    )
}

type CResult<T> = Result<T, Box<Failure>>;

struct Corrupt<'a> {
    scenario: &'a Scenario,
    options: &'a RunOptions,
    /// The model that saw the image built, and the trace so far.
    journal: Journal,
    step: usize,
    clock: Arc<ManualClock>,
    config: Config,
    checks: u64,
    /// The built image, until it is damaged.
    files: BTreeMap<PathBuf, Vec<u8>>,
    /// The damage plan swaps blocks: intact records can land where others
    /// are expected, so logical (`Verify`) errors are possible too.
    moved_blocks: bool,
}

impl<'a> Corrupt<'a> {
    fn new(scenario: &'a Scenario, options: &'a RunOptions, built: Built) -> Corrupt<'a> {
        Corrupt {
            scenario,
            options,
            journal: built.journal,
            step: built.steps,
            clock: built.clock,
            config: built.config,
            checks: built.checks,
            files: built.files,
            moved_blocks: plan(scenario)
                .iter()
                .any(|d| matches!(d, Damage::SwapBlocks { .. })),
        }
    }

    fn log(&mut self, line: String) {
        self.journal.note(Event::Observed(line));
    }

    fn fail(
        &mut self,
        kind: FailureKind,
        check: impl Into<Check>,
        message: String,
    ) -> Box<Failure> {
        let mut failure = self
            .journal
            .fail(kind, check.into(), message, self.scenario, self.step);
        failure.mutant = self.options.mutant;
        Box::new(failure)
    }

    fn run_all(&mut self) -> CResult<Outcome> {
        let image = std::mem::take(&mut self.files);
        let damaged = self.damage(image);
        let sim = SimVfs::new(self.scenario.config.disk_seed);
        for (path, bytes) in &damaged {
            if let Err(e) = sim.put_file(path, bytes) {
                let msg = format!("cannot load the damaged image: {e}");
                return Err(self.fail(FailureKind::RecoveryError, HarnessCheck::HarnessState, msg));
            }
        }
        let _binding = failpoints::bind_thread(&sim);
        self.open_and_check(&sim)?;
        let (trace_digest, trace) = if self.options.keep_trace {
            (self.journal.digest(), self.journal.lines())
        } else {
            (String::new(), Vec::new())
        };
        Ok(Outcome {
            trace_digest,
            crash_states: 1,
            checks: self.checks,
            coverage: sim.coverage(),
            trace,
            sanity: Default::default(),
        })
    }

    // ---- damaging it ----------------------------------------------------

    fn damage(&mut self, mut files: BTreeMap<PathBuf, Vec<u8>>) -> BTreeMap<PathBuf, Vec<u8>> {
        let main = authoritative(&files);
        for (i, damage) in plan(self.scenario).into_iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.scenario.config.disk_seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            // Mostly the file recovery will read; sometimes another one
            // (a leftover `.compact`, an old revision not yet removed).
            let others: Vec<PathBuf> = files
                .keys()
                .filter(|p| Some(*p) != main.as_ref())
                .cloned()
                .collect();
            let path = match (&main, others.is_empty() || rng.gen_ratio(3, 4)) {
                (Some(m), true) => m.clone(),
                _ if !others.is_empty() => others[rng.gen_range(0..others.len())].clone(),
                _ => {
                    self.journal.note(Event::Damaged {
                        index: i,
                        damage,
                        what: "no file to damage".into(),
                    });
                    continue;
                }
            };
            let Some(bytes) = files.get_mut(&path) else {
                continue;
            };
            let what = apply(damage, bytes, &mut rng);
            self.journal.note(Event::Damaged {
                index: i,
                damage,
                what: format!("{what} in {}", path.display()),
            });
        }
        files
    }

    // ---- opening and judging --------------------------------------------

    fn open_damaged(&mut self, sim: &SimVfs) -> CResult<Store> {
        // The watchdog: recovery of a damaged image must end within the
        // per-step budget of disk calls (an endless scan is a hang).
        let watch = crate::watch::Watch::new(
            crate::watch::DEFAULT_CALL_BUDGET,
            crate::watch::DEFAULT_DISK_CEILING,
            crate::runner::is_injected,
        );
        let vfs = std::sync::Arc::new(crate::watch::WatchVfs::new(sim.as_vfs(), watch));
        let opened = Store::open_with_report(vfs, DB_DIR, DB_NAME, self.config.clone());
        match opened {
            Ok((store, report)) => {
                self.log(format!(
                    "   opened rev {} (removed {:?}, truncated {} bytes, damaged headers {:?})",
                    report.rev, report.removed, report.truncated_bytes, report.damaged_headers
                ));
                Ok(store)
            }
            Err(e) if self.config.recovery == RecoveryPolicy::Strict => {
                if !e.is_corruption() {
                    let msg = format!("strict open failed with a non-corruption error: {e}");
                    return Err(self.fail(
                        FailureKind::RecoveryError,
                        HarnessCheck::TypedError,
                        msg,
                    ));
                }
                self.log(format!("   strict open refused: {e}; reopening tolerant"));
                self.config.recovery = RecoveryPolicy::TolerateCorruptTail;
                self.open_damaged(sim)
            }
            Err(e) => {
                let msg =
                    format!("an open that tolerates a corrupt tail failed on a damaged image: {e}");
                Err(self.fail(FailureKind::RecoveryError, HarnessCheck::TolerantOpen, msg))
            }
        }
    }

    fn open_and_check(&mut self, sim: &SimVfs) -> CResult<()> {
        let store = self.open_damaged(sim)?;
        if let Some(cycle) = header_chain_cycle(sim, &store) {
            let msg = format!(
                "the chain of previous-header offsets loops ({cycle}): Store::headers(), \
                 verify_all and snapshot_at would never return"
            );
            return Err(self.fail(FailureKind::Hang, HarnessCheck::HeaderChainTerminates, msg));
        }
        match store.verify_all() {
            Ok(()) => self.log("   verify_all ok".into()),
            Err(e) => {
                self.log(format!("   verify_all: {e}"));
                self.expect_corruption("verify_all", &e)?;
            }
        }
        let tip = store
            .snapshot()
            .map(|s| (s.header().clone(), s.header_pos()));
        let mut positions = match store.headers() {
            Ok(h) => h.into_iter().map(|h| Some(h.pos)).collect(),
            Err(e) => {
                self.log(format!("   headers: {e}"));
                self.expect_corruption("headers", &e)?;
                Vec::new()
            }
        };
        if positions.is_empty() {
            positions.push(tip.as_ref().ok().and_then(|(_, pos)| *pos));
        }
        let mut tip_state = None;
        let count = positions.len();
        for (n, pos) in positions.into_iter().enumerate() {
            let snap = match pos {
                Some(pos) => store.snapshot_at_header(pos),
                None => store.snapshot(),
            };
            let snap = match snap {
                Ok(s) => s,
                Err(e) => {
                    self.log(format!("   header @{pos:?}: {e}"));
                    self.expect_corruption("snapshot_at_header", &e)?;
                    continue;
                }
            };
            // Read everything a user can, whatever verify says.
            let docs = snap.all_docs();
            let reads = [
                ("all_docs", docs.as_ref().err()),
                ("changes_since", snap.changes_since(0).err().as_ref()),
                ("locals", snap.locals().err().as_ref()),
                ("counters", snap.counters().err().as_ref()),
            ]
            .into_iter()
            .filter_map(|(what, e)| e.map(|e| (what, e.to_string(), e.is_corruption())))
            .collect::<Vec<_>>();
            for (what, e, corruption) in reads {
                self.log(format!("   header @{pos:?} {what}: {e}"));
                if !corruption && !self.moved_blocks {
                    let msg = format!("{what} at header {pos:?} failed with {e}");
                    return Err(self.not_corruption(msg));
                }
            }
            // Verified while read, as every check reads (one walk).
            let recovered = match recovered_header(&snap, |value, _| oracle_value(value)) {
                Ok(h) => h,
                Err(e) => {
                    self.log(format!("header @{pos:?} verify: {e}"));
                    self.expect_corruption("verify", &e)?;
                    continue;
                }
            };
            if docs.is_err() {
                continue;
            }
            if let Err(d) = self
                .journal
                .model
                .check_committed_header(&recovered, n, count)
            {
                return Err(self.fail(FailureKind::Divergence, d.invariant, d.to_string()));
            }
            self.checks += 1;
            self.log(format!(
                "header @{pos:?} update_seq={} ts={}: the committed state ({} documents)",
                recovered.update_seq,
                recovered.timestamp_secs,
                recovered.docs.len()
            ));
            if n == 0 {
                tip_state = Some(
                    recovered
                        .docs
                        .into_iter()
                        .filter(|(_, d)| !d.deleted)
                        .map(|(k, d)| (k, (d.seqno, d.value)))
                        .collect::<Docs>(),
                );
            }
        }
        match tip_state {
            Some(live) => self.probe(sim, store, live),
            None => Ok(()),
        }
    }

    /// Damage that moves no block can only break checksums and structure;
    /// every error it causes must say so (a `Verify` error there means two
    /// intact records disagree: the engine trusted a damaged one).
    fn expect_corruption(&mut self, what: &str, e: &engine::Error) -> CResult<()> {
        if self.moved_blocks || e.is_corruption() {
            return Ok(());
        }
        Err(self.not_corruption(format!("{what} failed with {e}")))
    }

    fn not_corruption(&mut self, detail: String) -> Box<Failure> {
        let msg = format!(
            "{detail}: the damage moved no block, so only checksum or structure errors \
             (ChecksumMismatch, Corrupted, NoValidHeader) can be right; the store trusted \
             damaged bytes somewhere"
        );
        self.fail(
            FailureKind::Divergence,
            HarnessCheck::DamageReportedAsCorruption,
            msg,
        )
    }

    /// The store opened on a damaged image must still take a flush, and the
    /// acknowledged flush must survive a crash.
    fn probe(&mut self, sim: &SimVfs, store: Store, base: Docs) -> CResult<()> {
        self.clock.advance(1);
        let queued = store.set(PROBE_KEY, b"after-damage");
        let flushed = queued.and_then(|seqno| store.flush().map(|info| (seqno, info)));
        let (seqno, info) = match flushed {
            Ok((seqno, Some(info))) => (seqno, info),
            Ok((_, None)) => {
                let msg = "a queued probe write committed nothing".to_string();
                return Err(self.fail(
                    FailureKind::Divergence,
                    HarnessCheck::WritableAfterRecovery,
                    msg,
                ));
            }
            Err(e) => {
                let msg = format!(
                    "the store opened on a damaged image verified, but a flush failed: {e}"
                );
                return Err(self.fail(
                    FailureKind::RecoveryError,
                    HarnessCheck::WritableAfterRecovery,
                    msg,
                ));
            }
        };
        self.log(format!(
            "   probe flush acked update_seq={} ts={}",
            info.update_seq, info.timestamp
        ));
        drop(store);
        sim.set_crash_mode(Some(CrashMode::DropUnsynced));
        sim.crash();
        let record = sim.reboot();
        self.log(format!("   {record}"));
        self.config.recovery = RecoveryPolicy::TolerateCorruptTail;
        let store = self.open_damaged(sim)?;
        let got = store.snapshot().and_then(|s| {
            let seq = s.header().update_seq;
            s.all_docs().map(|d| (seq, d))
        });
        let mut expected = base;
        expected.insert(PROBE_KEY.to_vec(), (seqno, b"after-damage".to_vec()));
        match got {
            Ok((seq, docs)) => {
                let live: Docs = docs
                    .into_iter()
                    .filter(|d| !d.deleted)
                    .map(|d| (d.key, (d.seqno, oracle_value(d.value))))
                    .collect();
                if seq != info.update_seq || live != expected {
                    let msg = format!(
                        "an acknowledged flush after a damaged open was lost by a crash: \
                         expected update_seq {} with {}, recovered update_seq {seq} with {}",
                        info.update_seq,
                        show(&expected),
                        show(&live)
                    );
                    return Err(self.fail(
                        FailureKind::Divergence,
                        HarnessCheck::AckedAfterDamage,
                        msg,
                    ));
                }
                self.checks += 1;
                self.log("   probe survived the crash".into());
                Ok(())
            }
            Err(e) => {
                let msg = format!("reading the store after the probe flush failed: {e}");
                Err(self.fail(FailureKind::Divergence, HarnessCheck::AckedAfterDamage, msg))
            }
        }
    }
}

/// The file `Store::open` will read: the highest complete revision.
fn authoritative(files: &BTreeMap<PathBuf, Vec<u8>>) -> Option<PathBuf> {
    files
        .keys()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            match classify(DB_NAME, name) {
                Some(FileKind::Revision(rev)) => Some((rev, p.clone())),
                _ => None,
            }
        })
        .max()
        .map(|(_, p)| p)
}

/// Offsets of the blocks that start with a header marker, oldest first.
fn header_blocks(bytes: &[u8]) -> Vec<usize> {
    (0..bytes.len())
        .step_by(BLOCK_BYTES as usize)
        .filter(|&at| bytes[at] == MARKER_HEADER)
        .collect()
}

/// The block (offset) `place` names in `bytes`; `None` for an empty file.
fn block_at(place: Place, bytes: &[u8], rng: &mut ChaCha8Rng) -> Option<usize> {
    if bytes.is_empty() {
        return None;
    }
    let headers = header_blocks(bytes);
    match place {
        Place::HeaderBlock(k) if !headers.is_empty() => {
            let k = usize::from(k) % headers.len();
            Some(headers[headers.len() - 1 - k])
        }
        _ => {
            let blocks = bytes.len().div_ceil(BLOCK_BYTES as usize);
            Some(rng.gen_range(0..blocks) * BLOCK_BYTES as usize)
        }
    }
}

/// Apply `damage` to `bytes`; say what was done.
fn apply(damage: Damage, bytes: &mut Vec<u8>, rng: &mut ChaCha8Rng) -> String {
    let block = BLOCK_BYTES as usize;
    match damage {
        Damage::BitFlips { count, place } => {
            let mut done = Vec::new();
            for _ in 0..count {
                let at = match place {
                    Place::HeaderBlock(_) => block_at(place, bytes, rng).map(|b| {
                        // The marker, the chunk prefix and the header fields.
                        let end = (b + 128).min(bytes.len());
                        rng.gen_range(b..end)
                    }),
                    Place::Anywhere => (!bytes.is_empty()).then(|| rng.gen_range(0..bytes.len())),
                };
                if let Some(at) = at {
                    let bit = rng.gen_range(0..8u8);
                    bytes[at] ^= 1 << bit;
                    done.push(format!("{at}.{bit}"));
                }
            }
            format!("flipped byte.bit {}", done.join(" "))
        }
        Damage::TornBlock { place, garbage } => {
            let Some(start) = block_at(place, bytes, rng) else {
                return "empty file, nothing to tear".into();
            };
            let end = (start + block).min(bytes.len());
            let sectors = (end - start).div_ceil(SECTOR_BYTES).max(1);
            let kept = rng.gen_range(0..sectors);
            let from = (start + kept * SECTOR_BYTES).min(end);
            if garbage {
                rng.fill_bytes(&mut bytes[from..end]);
            } else {
                bytes[from..end].fill(0);
            }
            format!("block at {start}: bytes {from}..{end} lost")
        }
        Damage::GarbageTail {
            sectors,
            fake_header,
        } => {
            let old = bytes.len();
            if fake_header {
                let pad = old.next_multiple_of(block) - old;
                let mut fill = vec![0u8; pad];
                rng.fill_bytes(&mut fill);
                bytes.extend_from_slice(&fill);
            }
            let at = bytes.len();
            let mut tail = vec![0u8; usize::from(sectors) * SECTOR_BYTES];
            rng.fill_bytes(&mut tail);
            if fake_header {
                // A header marker and a plausible chunk length: only the
                // checksum can tell.
                tail[0] = MARKER_HEADER;
                let len = rng.gen_range(40u32..120);
                tail[1..5].copy_from_slice(&len.to_be_bytes());
            }
            bytes.extend_from_slice(&tail);
            format!("{} bytes appended at {at} (was {old})", bytes.len() - old)
        }
        Damage::Truncate => {
            let old = bytes.len();
            let headers = header_blocks(bytes);
            let to = if !headers.is_empty() && rng.gen_ratio(3, 4) {
                let h = headers[headers.len() - 1 - rng.gen_range(0..headers.len().min(3))];
                (h + rng.gen_range(0..160)).min(old)
            } else {
                rng.gen_range(0..=old)
            };
            bytes.truncate(to);
            format!("cut from {old} to {to} bytes")
        }
        Damage::SwapBlocks { a, b } => {
            let a = Place::HeaderBlock(a);
            let (Some(x), Some(y)) = (block_at(a, bytes, rng), block_at(b, bytes, rng)) else {
                return "empty file, nothing to swap".into();
            };
            if x == y {
                return format!("block {x} with itself (no change)");
            }
            let (lo, hi) = (x.min(y), x.max(y));
            let n = block.min(bytes.len() - hi);
            let (head, tail) = bytes.split_at_mut(hi);
            head[lo..lo + n].swap_with_slice(&mut tail[..n]);
            format!("{n} bytes at {lo} and {hi} swapped")
        }
    }
}

/// Walk the previous-header chain from the store's tip the way
/// `Store::headers` does, with a bound: `Some` if it comes back to an offset
/// it already visited.
fn header_chain_cycle(sim: &SimVfs, store: &Store) -> Option<String> {
    let path = store.current_path().ok()?;
    let file = sim.as_vfs().open(&path, OpenMode::Read).ok()?;
    let len = file.len().ok()?;
    let snap = store.snapshot().ok()?;
    let mut seen = BTreeSet::new();
    seen.extend(snap.header_pos());
    let mut next = snap.header().prev_header;
    let bound = len / BLOCK_BYTES + 2;
    for _ in 0..bound {
        let pos = next?;
        if !seen.insert(pos) {
            let mut path: Vec<u64> = seen.into_iter().collect();
            path.sort_unstable();
            return Some(format!("back to {pos}; visited {path:?}"));
        }
        next = layout::read_header(file.as_ref(), pos, true)
            .ok()?
            .prev_header;
    }
    Some(format!("more than {bound} headers in a {len}-byte file"))
}

fn show(docs: &Docs) -> String {
    let items: Vec<String> = docs
        .iter()
        .map(|(k, (seq, v))| {
            format!(
                "{}@{seq}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(&v[..v.len().min(8)])
            )
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}
