//! A flipped bit anywhere gives a typed error or a fallback, never a panic
//! and never a wrong answer.
//!
//! For every byte of a small store file (one seeded bit each, every bit of
//! the newest header chunk), and for thousands of seeded positions of a
//! larger one, we flip the bit in a copy, open it (tolerant, and sometimes
//! strict) and read everything: the tip's documents, `verify`,
//! `changes_since`, the counters, every header of `headers()` with its
//! snapshot and `verify`. Allowed outcomes:
//! - Ok, and every state read equals the model's state of a committed
//!   header (the newest, or an older one after a fallback);
//! - a typed `engine::Error` (recovery only checks the roots, so damage
//!   deeper in a tree or in a body surfaces on reads as `ChecksumMismatch`
//!   or `Corrupted`).
//!
//! A panic (caught with `catch_unwind`) or an Ok with a state no commit had
//! fails the test with the offset and bit printed.

mod common;

use common::{Model, State};
use engine::{Error, ManualClock, RecoveryPolicy, SeqEntry};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

struct Built {
    bytes: Vec<u8>,
    /// Every committed state, the empty one first.
    states: Vec<State>,
    /// Offset of the newest header block.
    last_header: u64,
    fanout: usize,
}

/// A store of `commits` commits of `docs_per_commit` mutations over
/// `key_space` keys, with a few large bodies if `big_bodies`.
fn build(
    seed: u64,
    fanout: usize,
    commits: usize,
    docs_per_commit: usize,
    key_space: u32,
    big_bodies: bool,
) -> Built {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(100));
    let store = common::open(
        dir.path(),
        common::config(fanout, RecoveryPolicy::default(), &clock),
    )
    .unwrap();
    let mut model = Model::new();
    let mut states = vec![State::empty()];
    for _ in 0..commits {
        for _ in 0..docs_per_commit {
            let key = format!("doc-{}", rng.gen_range(0..key_space)).into_bytes();
            if rng.gen_bool(0.2) {
                model.delete(&store, &key).unwrap();
            } else {
                let len = if big_bodies && rng.gen_bool(0.05) {
                    rng.gen_range(3_000..6_000)
                } else {
                    rng.gen_range(0..40)
                };
                let mut value = vec![0u8; len];
                rng.fill(value.as_mut_slice());
                model.set(&store, &key, &value).unwrap();
            }
        }
        clock.advance(1);
        model.flush(&store).unwrap();
        states.push(model.state());
    }
    let last_header = store.headers().unwrap()[0].pos;
    let bytes = std::fs::read(common::db_path(dir.path())).unwrap();
    Built {
        bytes,
        states,
        last_header,
        fanout,
    }
}

/// Why reading a damaged copy did not give a clean Ok.
enum Failure {
    /// A typed engine error: allowed.
    Engine(Error),
    /// Ok with something no commit had: a test failure.
    Wrong(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Engine(e)
    }
}

/// What one probe gave.
#[derive(Debug)]
enum Outcome {
    /// Every read Ok; the tip is committed state number `usize`.
    Recovered(usize),
    /// A typed error (the variant's name).
    Error(&'static str),
}

fn find_state(built: &Built, state: &State, what: &str) -> Result<usize, Failure> {
    built
        .states
        .iter()
        .position(|s| s == state)
        .ok_or_else(|| Failure::Wrong(format!("{what} read a state no commit had: {state:?}")))
}

fn wrong(cond: bool, msg: impl FnOnce() -> String) -> Result<(), Failure> {
    if cond {
        Ok(())
    } else {
        Err(Failure::Wrong(msg()))
    }
}

fn read_everything(dir: &Path, built: &Built, policy: RecoveryPolicy) -> Result<usize, Failure> {
    let clock = Arc::new(ManualClock::new(1_000));
    let store = common::open(dir, common::config(built.fanout, policy, &clock))?;
    let snap = store.snapshot()?;
    let state = common::read_state(&snap)?;
    let index = find_state(built, &state, "the tip")?;
    let report = snap.verify()?;
    state.check_report(&report).map_err(Failure::Wrong)?;
    let mut by_seq = state.docs.clone();
    by_seq.sort_by_key(|d| d.seqno);
    let want: Vec<SeqEntry> = by_seq
        .iter()
        .map(|d| SeqEntry {
            seqno: d.seqno,
            key: d.key.clone(),
            deleted: d.deleted,
        })
        .collect();
    let changes = snap.changes_since(0)?;
    wrong(changes == want, || {
        format!("changes_since(0) gave {changes:?}, want {want:?}")
    })?;
    if let Some(c) = snap.counters()? {
        let counts = state.counts();
        wrong((c.live, c.deleted) == counts, || {
            format!("counters {c:?}, want {counts:?}")
        })?;
    }
    let headers = store.headers()?;
    wrong(headers.len() == index, || {
        format!("{} headers for commit #{index}", headers.len())
    })?;
    for h in headers {
        let old = store.snapshot_at_header(h.pos)?;
        let old_state = common::read_state(&old)?;
        let i = find_state(built, &old_state, "an old header")?;
        wrong(old_state.update_seq == h.header.update_seq, || {
            format!("header at {} read as commit #{i}", h.pos)
        })?;
        old.verify()?;
    }
    Ok(index)
}

fn error_name(e: &Error) -> &'static str {
    match e {
        Error::ChecksumMismatch { .. } => "ChecksumMismatch",
        Error::Corrupted { .. } => "Corrupted",
        Error::NoValidHeader { .. } => "NoValidHeader",
        Error::Verify(_) => "Verify",
        Error::Io { .. } => "Io",
        _ => "other",
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-string panic".into())
}

/// Flip `bit` of byte `at` in a copy in `dir`, open and read everything.
fn probe(built: &Built, dir: &Path, at: usize, bit: u8, policy: RecoveryPolicy) -> Outcome {
    let mut bytes = built.bytes.clone();
    bytes[at] ^= 1 << bit;
    std::fs::write(common::db_path(dir), &bytes).unwrap();
    let ctx = format!(
        "flip of bit {bit} at offset {at} (block {}, byte {}) of a {}-byte file, {policy:?}",
        at / 4096,
        at % 4096,
        built.bytes.len()
    );
    match catch_unwind(AssertUnwindSafe(|| read_everything(dir, built, policy))) {
        Err(panic) => panic!("{ctx}: the engine PANICKED: {}", panic_message(&panic)),
        Ok(Err(Failure::Wrong(msg))) => panic!("{ctx}: wrong answer with Ok: {msg}"),
        Ok(Err(Failure::Engine(e))) => {
            assert!(
                common::is_expected_damage_error(&e),
                "{ctx}: unexpected error kind {e:?}"
            );
            if policy == RecoveryPolicy::TolerateCorruptTail {
                assert!(
                    !matches!(e, Error::NoValidHeader { .. }),
                    "{ctx}: tolerant open found no header although older ones are intact"
                );
            }
            Outcome::Error(error_name(&e))
        }
        Ok(Ok(index)) => Outcome::Recovered(index),
    }
}

/// Tally of outcomes, printed with `--nocapture`.
#[derive(Default, Debug)]
struct Tally {
    newest: usize,
    older: usize,
    errors: std::collections::BTreeMap<&'static str, usize>,
}

impl Tally {
    fn add(&mut self, built: &Built, outcome: Outcome) {
        match outcome {
            Outcome::Recovered(i) if i + 1 == built.states.len() => self.newest += 1,
            Outcome::Recovered(_) => self.older += 1,
            Outcome::Error(name) => *self.errors.entry(name).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.newest += other.newest;
        self.older += other.older;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

/// Run `probes` (offset, bit, policy) over two threads.
fn run_probes(built: &Built, probes: &[(usize, u8, RecoveryPolicy)]) -> Tally {
    let mut total = Tally::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = probes
            .chunks(probes.len().div_ceil(2))
            .map(|part| {
                s.spawn(move || {
                    let dir = common::scratch_dir();
                    let mut tally = Tally::default();
                    for &(at, bit, policy) in part {
                        tally.add(built, probe(built, dir.path(), at, bit, policy));
                    }
                    tally
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(t) => total.merge(t),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    total
}

fn policy(rng: &mut ChaCha8Rng) -> RecoveryPolicy {
    if rng.gen_bool(0.25) {
        RecoveryPolicy::Strict
    } else {
        RecoveryPolicy::TolerateCorruptTail
    }
}

#[test]
fn flip_every_byte_of_a_small_file() {
    let built = build(0xB17F_1100, 2, 3, 8, 10, false);
    let mut rng = ChaCha8Rng::seed_from_u64(0xB17F_1101);
    let mut probes: Vec<(usize, u8, RecoveryPolicy)> = (0..built.bytes.len())
        .map(|at| (at, rng.gen_range(0..8), policy(&mut rng)))
        .collect();
    // Every bit of the newest header chunk, under both policies.
    for at in built.last_header as usize..built.bytes.len() {
        for bit in 0..8 {
            probes.push((at, bit, RecoveryPolicy::TolerateCorruptTail));
            probes.push((at, bit, RecoveryPolicy::Strict));
        }
    }
    let tally = run_probes(&built, &probes);
    eprintln!(
        "{} probes of a {}-byte file: {tally:?}",
        probes.len(),
        built.bytes.len()
    );
    assert!(tally.older > 0, "some flip made recovery fall back");
    assert!(!tally.errors.is_empty(), "some flip surfaced as an error");
}

#[test]
fn flip_sampled_bytes_of_a_larger_file() {
    let built = build(0xB17F_2200, 4, 6, 60, 150, true);
    let mut rng = ChaCha8Rng::seed_from_u64(0xB17F_2201);
    let len = built.bytes.len();
    let probes: Vec<(usize, u8, RecoveryPolicy)> = (0..4_000)
        .map(|_| {
            // Half the probes in the newest commit's last block, where the
            // header and the roots recovery checks live.
            let at = if rng.gen_bool(0.5) {
                rng.gen_range(len.saturating_sub(4096)..len)
            } else {
                rng.gen_range(0..len)
            };
            (at, rng.gen_range(0..8), policy(&mut rng))
        })
        .collect();
    let tally = run_probes(&built, &probes);
    eprintln!("{} probes of a {len}-byte file: {tally:?}", probes.len());
    assert!(tally.older > 0, "some flip made recovery fall back");
    assert!(!tally.errors.is_empty(), "some flip surfaced as an error");
}
