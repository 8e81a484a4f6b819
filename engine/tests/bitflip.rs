//! A flipped bit anywhere gives a typed error or a fallback, never a panic
//! and never a wrong answer.
//!
//! For every byte of a small store file (one seeded bit each, every bit of
//! the newest header chunk), and for thousands of seeded positions of a
//! larger one, we flip the bit in a copy, open it (tolerant, and sometimes
//! strict) and read everything: the tip's documents, `verify`,
//! `changes_since`, the counters, every header of `headers()` with its
//! snapshot's documents. Allowed outcomes:
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
    // Every bit of the newest header chunk, both policies in turn.
    for at in built.last_header as usize..built.bytes.len() {
        for bit in 0..8 {
            let policy = if (at + bit as usize).is_multiple_of(2) {
                RecoveryPolicy::TolerateCorruptTail
            } else {
                RecoveryPolicy::Strict
            };
            probes.push((at, bit, policy));
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
    let built = build(0xB17F_2200, 4, 4, 40, 100, true);
    let mut rng = ChaCha8Rng::seed_from_u64(0xB17F_2201);
    let len = built.bytes.len();
    let probes: Vec<(usize, u8, RecoveryPolicy)> = (0..2_000)
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

// ---- forged damage: bad bytes under a correct checksum ---------------------
//
// CRC32C catches every single-bit flip, so the probes above never get past
// the checksum into the decoders. Here the damage is followed by rewriting
// the chunk's checksum, as a buggy writer or a malicious file would: every
// decoder and every structural check (key order, child below parent,
// reduces, header fields) then sees the bad bytes. Wrong answers are
// possible by construction (a forged body is just another body), so the
// only property is: a typed error or Ok, never a panic.

/// A chunk in the file: where its checksum and payload bytes are (raw
/// offsets, block markers skipped).
struct ChunkAt {
    /// The position the checksum is bound to: the block for a header, the
    /// chunk's first byte otherwise.
    at: u64,
    header: bool,
    crc: Vec<usize>,
    payload: Vec<usize>,
}

/// Raw offsets of `n` logical bytes from `pos`, skipping block markers.
fn logical(pos: usize, n: usize) -> Vec<usize> {
    (pos..).filter(|p| p % 4096 != 0).take(n).collect()
}

/// Walk the file's chunks front to back: data chunks follow each other,
/// zeros pad up to each header block, a header chunk sits right after a
/// header marker.
fn chunks(bytes: &[u8]) -> Vec<ChunkAt> {
    use engine::layout::MARKER_HEADER;
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        if pos.is_multiple_of(4096) && bytes[pos] == MARKER_HEADER {
            let len = u32::from_be_bytes(bytes[pos + 1..pos + 5].try_into().unwrap()) as usize;
            out.push(ChunkAt {
                at: pos as u64,
                header: true,
                crc: (pos + 5..pos + 9).collect(),
                payload: (pos + 9..pos + 9 + len).collect(),
            });
            // The rest of a header's block is never written: the next
            // chunk starts at the next block (a header's block is its own).
            pos = (pos / 4096 + 1) * 4096;
            continue;
        }
        let boundary = (pos / 4096 + 1) * 4096;
        let padding = bytes[pos..boundary.min(bytes.len())]
            .iter()
            .all(|b| *b == 0)
            && bytes.get(boundary).is_none_or(|b| *b == MARKER_HEADER);
        if padding {
            pos = boundary;
            continue;
        }
        let at = pos as u64;
        let prefix = logical(pos, 8);
        let len_bytes: Vec<u8> = prefix[..4].iter().map(|p| bytes[*p]).collect();
        let len = u32::from_be_bytes(len_bytes.try_into().unwrap()) as usize;
        let payload = logical(prefix[7] + 1, len);
        pos = payload.last().map_or(prefix[7] + 1, |p| p + 1);
        out.push(ChunkAt {
            at,
            header: false,
            crc: prefix[4..].to_vec(),
            payload,
        });
    }
    out
}

/// Apply `damage` to the payload of `chunk` and rewrite its checksum.
fn forge(bytes: &mut [u8], chunk: &ChunkAt, damage: impl FnOnce(&mut [u8])) {
    let mut payload: Vec<u8> = chunk.payload.iter().map(|p| bytes[*p]).collect();
    damage(&mut payload);
    for (p, b) in chunk.payload.iter().zip(&payload) {
        bytes[*p] = *b;
    }
    let crc = engine::layout::checksum_at(chunk.at, &payload).to_be_bytes();
    for (p, b) in chunk.crc.iter().zip(crc) {
        bytes[*p] = b;
    }
}

#[test]
fn chunk_walker_finds_every_chunk() {
    // Every chunk the walker finds has a good checksum, and it finds the
    // three headers: so the forged test below really hits chunk payloads.
    let built = build(0xB17F_1100, 2, 3, 8, 10, false);
    let found = chunks(&built.bytes);
    for c in &found {
        let payload: Vec<u8> = c.payload.iter().map(|p| built.bytes[*p]).collect();
        let crc: Vec<u8> = c.crc.iter().map(|p| built.bytes[*p]).collect();
        assert_eq!(
            engine::layout::checksum_at(c.at, &payload)
                .to_be_bytes()
                .to_vec(),
            crc
        );
    }
    let headers = found.iter().filter(|c| c.header).count();
    assert_eq!(headers, 3);
    assert!(found.len() > 30, "found {} chunks", found.len());
}

/// Open the forged `bytes` and read everything; panics only if the engine did.
fn forged_open(built: &Built, dir: &Path, bytes: &[u8], policy: RecoveryPolicy, ctx: &str) {
    std::fs::write(common::db_path(dir), bytes).unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| read_everything(dir, built, policy)));
    if let Err(panic) = outcome {
        panic!(
            "{ctx}: the engine PANICKED reading: {}",
            panic_message(&panic)
        );
    }
    // Writing on top of forged trees rewrites paths through the bad nodes.
    std::fs::write(common::db_path(dir), bytes).unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| write_on_top(dir, built, policy)));
    if let Err(panic) = outcome {
        panic!(
            "{ctx}: the engine PANICKED writing: {}",
            panic_message(&panic)
        );
    }
}

/// Overwrite, delete and add a few keys, flush, read the result back.
fn write_on_top(dir: &Path, built: &Built, policy: RecoveryPolicy) -> engine::Result<()> {
    let clock = Arc::new(ManualClock::new(1_000));
    let store = common::open(dir, common::config(built.fanout, policy, &clock))?;
    for key in ["doc-0", "doc-3", "doc-7", "zzz-new", ""] {
        store.set(key.as_bytes(), b"over")?;
    }
    store.delete(b"doc-5")?;
    store.flush()?;
    store.snapshot()?.all_docs()?;
    store.verify()?;
    Ok(())
}

const EXTREME_WORDS: [u64; 6] = [0, 1, u64::MAX, u64::MAX - 4095, 1 << 63, 4097];

fn forged_probe(built: &Built, dir: &Path, rng: &mut ChaCha8Rng, found: &[ChunkAt]) {
    let chunk = &found[rng.gen_range(0..found.len())];
    let mut bytes = built.bytes.clone();
    let kind = rng.gen_range(0..4);
    let n = chunk.payload.len();
    if n == 0 {
        return;
    }
    let at = rng.gen_range(0..n);
    let bit = rng.gen_range(0..8);
    let word = EXTREME_WORDS[rng.gen_range(0..EXTREME_WORDS.len())];
    let random = rng.gen::<u8>();
    forge(&mut bytes, chunk, |p| match kind {
        0 => p[at] ^= 1 << bit,
        1 => p[at] = random,
        2 => {
            // An extreme u64 at any offset (counts, positions, seqnos).
            let start = at.min(n.saturating_sub(8));
            let end = (start + 8).min(n);
            p[start..end].copy_from_slice(&word.to_be_bytes()[..end - start]);
        }
        _ => p[at..].fill(0),
    });
    let ctx = format!(
        "forged damage kind {kind} at payload byte {at} (raw {}) of the chunk with checksum at {}",
        chunk.payload[at], chunk.crc[0]
    );
    let policy = policy(rng);
    forged_open(built, dir, &bytes, policy, &ctx);
}

/// Every extreme u64 at every payload offset of each of `chunks`, under a
/// correct checksum: positions past the end, near `u64::MAX` or not at a
/// block start, counts that overflow when summed, seqnos out of order.
fn forge_words_everywhere(built: &Built, chunks: &[ChunkAt]) {
    let dir = common::scratch_dir();
    for chunk in chunks {
        for at in 0..chunk.payload.len() {
            for word in EXTREME_WORDS {
                let mut bytes = built.bytes.clone();
                forge(&mut bytes, chunk, |p| {
                    let end = (at + 8).min(p.len());
                    p[at..end].copy_from_slice(&word.to_be_bytes()[..end - at]);
                });
                let ctx = format!(
                    "word {word:#x} at payload byte {at} of the chunk with checksum at {}",
                    chunk.crc[0]
                );
                forged_open(
                    built,
                    dir.path(),
                    &bytes,
                    RecoveryPolicy::TolerateCorruptTail,
                    &ctx,
                );
            }
        }
    }
}

/// Regression: a header with update_seq u64::MAX overflowed computing the
/// next seqno on open; a previous-header offset not at a block start hit a
/// debug assert in `headers()`; summing forged child reduces overflowed
/// when a flush rewrote the path. Found by this test.
#[test]
fn forged_words_in_the_newest_header_and_roots_give_errors_not_panics() {
    // The newest header and the three chunks before it: the local, by-seq
    // and by-id roots.
    let built = build(0xB17F_1100, 2, 3, 8, 10, false);
    let found = chunks(&built.bytes);
    forge_words_everywhere(&built, &found[found.len() - 4..]);
}

/// Regression: a body position near u64::MAX in a by-id entry overflowed
/// computing the chunk's span on disk. Found by the random forged probes.
#[test]
fn forged_words_in_every_chunk_of_a_one_doc_store_give_errors_not_panics() {
    // One document: every tree is a single leaf, so the body position and
    // length, seqnos and flags are all in chunks the loop forges.
    let built = build(0xB17F_4400, 2, 1, 1, 1, false);
    let found = chunks(&built.bytes);
    assert_eq!(found.len(), 5, "body, three leaves, header");
    forge_words_everywhere(&built, &found);
}

#[test]
fn forged_checksums_give_errors_not_panics() {
    for (seed, built) in [
        (0xF0_0001, build(0xB17F_1100, 2, 3, 8, 10, false)),
        (0xF0_0002, build(0xB17F_3300, 3, 3, 30, 60, true)),
    ] {
        let found = chunks(&built.bytes);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dir = common::scratch_dir();
        for _ in 0..1_000 {
            forged_probe(&built, dir.path(), &mut rng, &found);
        }
    }
}

/// Test the tester: with header checksums unchecked (a seeded bug), some
/// flip in the newest header must come back as an Ok with a wrong state,
/// and the probe must call that out.
#[cfg(feature = "mutants")]
#[test]
fn flip_test_catches_an_unchecked_header_checksum() {
    use engine::mutants::{self, Mutant};
    let built = build(0xB17F_1100, 2, 3, 8, 10, false);
    let dir = common::scratch_dir();
    // Bytes 1..=9 of the update_seq field (after marker, prefix, version).
    let update_seq_low_byte = built.last_header as usize + 1 + 8 + 1 + 7;
    mutants::set(Some(Mutant::TornHeaderAccepted));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        probe(
            &built,
            dir.path(),
            update_seq_low_byte,
            6,
            RecoveryPolicy::TolerateCorruptTail,
        )
    }));
    mutants::set(None);
    let panic = outcome.expect_err("a forged update_seq went unnoticed");
    let msg = panic_message(&panic);
    assert!(msg.contains("wrong answer with Ok"), "{msg}");
}
