//! Engine contracts the random runs cannot judge, each a small deterministic
//! test, part of the mutation gate (`.cargo/mutants.toml`, issue #20):
//!
//! - the reports and accessors say what the store did (`OpenReport`,
//!   `CompactionReport`, `Stats`, `Store::config`): the explorer drives the
//!   store through them but never compares them with what happened;
//! - recovery's own checks against damage the fault model never makes: a
//!   header whose checksum is good but whose root node is damaged, a header
//!   chunk with trailing bytes (SPEC 1: "the newest header whose checksum is
//!   good and whose roots verify"; every reader reports a typed error);
//! - catch-up's bounded unlocked rounds (SPEC 1, step 3): mutations
//!   committed during the copy are replayed without the store lock, so the
//!   final locked round replays only what came after the last unlocked one.
//!
//! Each was found by a surviving cargo-mutants mutant (BENCHMARKS.md,
//! "Mutation score"); each tests the contract, not the mutant.

use engine::layout::{checksum_at, BLOCK_BYTES, CHUNK_PREFIX_BYTES, MARKER_DATA, MARKER_HEADER};
use engine::{
    CompactionOptions, Config, Header, ManualClock, OpenMode, Phase, Progress, Store, VfsFile,
};
use failpoints::SimVfs;
use harness::runner::{DB_DIR, DB_NAME};
use std::sync::Arc;

fn config() -> Config {
    Config {
        fanout: 4,
        clock: Arc::new(ManualClock::new(1_000)),
        copy_batch_docs: 3,
        max_unlocked_catchup_rounds: 2,
        ..Config::default()
    }
}

fn open(sim: &SimVfs) -> (Store, engine::OpenReport) {
    Store::open_with_report(sim.as_vfs(), DB_DIR, DB_NAME, config()).expect("open")
}

/// Set `n` keys (`prefix` i) and flush them as one commit.
fn commit(store: &Store, prefix: &str, n: u32) -> engine::CommitInfo {
    for i in 0..n {
        store
            .set(
                format!("{prefix}{i}").as_bytes(),
                format!("value {prefix}{i}").as_bytes(),
            )
            .expect("set");
    }
    store.flush().expect("flush").expect("a commit")
}

#[test]
fn reports_and_accessors_say_what_happened() {
    let sim = SimVfs::new(1);
    let (store, report) = open(&sim);
    assert_eq!(report.rev, 1, "a new store is revision 1");
    assert_eq!(store.rev().unwrap(), 1);
    assert_eq!(
        store.config().fanout,
        4,
        "Store::config is the configuration given"
    );
    assert_eq!(store.config().copy_batch_docs, 3);
    commit(&store, "a", 5);
    commit(&store, "b", 5);
    let h0 = store.snapshot().unwrap().header().update_seq;
    assert_eq!(h0, 10);

    let c = store
        .start_compaction(CompactionOptions::default())
        .expect("start");
    assert_eq!(c.h0_update_seq(), h0);
    assert_eq!(
        c.report().new_rev,
        2,
        "the report names the revision it builds"
    );
    assert_eq!(c.report().h0_update_seq, h0);
    let done = run(c);
    assert_eq!(done.new_rev, 2);
    assert_eq!(done.h0_update_seq, h0);
    assert_eq!(done.final_update_seq, h0);
    assert_eq!(
        store.rev().unwrap(),
        2,
        "the switch made the report's revision"
    );
    let stats = store.stats().unwrap();
    assert_eq!(stats.commits, 2);
    assert_eq!(stats.compactions, 1);
    assert_eq!(
        stats.last_catchup_rounds, 1,
        "no flush during the copy: the locked round only"
    );
    assert_eq!(stats.last_locked_replay, 0);
    drop(store);

    let (store, report) = open(&sim);
    assert_eq!(report.rev, 2, "the open report names the revision it chose");
    assert_eq!(store.rev().unwrap(), 2);
    assert!(
        report.removed.is_empty(),
        "the switch removed revision 1 already"
    );
}

/// Run a compaction to its end in at most 1,000 steps (`Compaction::run`
/// would loop forever on a compaction that stops making progress; the
/// mutation gate wants a failure, not a hang).
fn run(mut c: engine::Compaction) -> engine::CompactionReport {
    for _ in 0..1_000 {
        if let Progress::Done(report) = c.step().expect("compaction step") {
            return report;
        }
    }
    panic!(
        "the compaction did not finish in 1,000 steps: {:?}",
        c.report()
    );
}

/// Step `c` until `done` says so; every step before must leave it running.
fn step_until(c: &mut engine::Compaction, done: impl Fn(&engine::CompactionReport) -> bool) {
    for _ in 0..100 {
        if done(c.report()) {
            return;
        }
        match c.step().expect("compaction step") {
            Progress::Running(_) => {}
            Progress::Done(report) => panic!("the compaction switched early: {report:?}"),
        }
    }
    panic!("no progress in 100 steps: {:?}", c.report());
}

#[test]
fn unlocked_catchup_rounds_replay_what_the_flusher_committed() {
    let sim = SimVfs::new(2);
    let (store, _) = open(&sim);
    commit(&store, "a", 7);
    let mut c = store
        .start_compaction(CompactionOptions::default())
        .expect("start");
    // Committed after H0, while the copy runs.
    commit(&store, "b", 4);
    // The copy of H0, then the first unlocked round replays "b".
    step_until(&mut c, |r| r.headers_written == 2);
    assert_eq!(c.phase(), Phase::CatchUp);
    assert_eq!(c.report().catchup_rounds, 1, "one unlocked round");
    assert_eq!(c.report().docs_written, 7 + 4);
    commit(&store, "c", 2);
    step_until(&mut c, |r| r.headers_written == 3);
    assert_eq!(c.report().catchup_rounds, 2, "two unlocked rounds");
    assert_eq!(c.report().docs_written, 7 + 4 + 2);
    // No unlocked round is left: this one is the locked round's.
    commit(&store, "d", 3);
    let done = run(c);
    assert_eq!(
        done.catchup_rounds, 3,
        "two unlocked rounds and the locked one"
    );
    assert_eq!(
        done.locked_replay_docs, 3,
        "the locked round replays only what came after the unlocked rounds"
    );
    assert_eq!(done.headers_written, 4);
    assert_eq!(done.final_update_seq, 7 + 4 + 2 + 3);
    let stats = store.stats().unwrap();
    assert_eq!(stats.last_locked_replay, 3);
    assert_eq!(stats.last_catchup_rounds, 3);
    assert_eq!(stats.commits, 4);
}

/// The raw offset of logical byte `i` of the chunk at `pos` (block starts
/// hold markers, not chunk bytes).
fn raw_offset(pos: u64, i: u64) -> u64 {
    let mut at = pos;
    let mut left = i;
    loop {
        if at.is_multiple_of(BLOCK_BYTES) {
            at += 1;
            continue;
        }
        if left == 0 {
            return at;
        }
        left -= 1;
        at += 1;
    }
}

fn reopen_file(sim: &SimVfs, store: Store) -> Arc<dyn VfsFile> {
    let path = store.current_path().expect("path");
    drop(store);
    sim.as_vfs()
        .open(&path, OpenMode::ReadWrite)
        .expect("open the store file")
}

#[test]
fn a_header_whose_root_is_damaged_is_skipped() {
    let sim = SimVfs::new(3);
    let (store, _) = open(&sim);
    let first = commit(&store, "a", 5);
    commit(&store, "b", 5);
    let snap = store.snapshot().unwrap();
    let newest_pos = snap.header_pos().expect("a header");
    let root = snap.header().by_id.expect("a by-id root").pos;
    drop(snap);
    let file = reopen_file(&sim, store);
    // Flip a bit of the root node's checksum: the header itself is intact.
    let at = raw_offset(root, CHUNK_PREFIX_BYTES as u64 - 1);
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x10], at).unwrap();
    drop(file);

    let (store, report) = open(&sim);
    assert_eq!(
        store.snapshot().unwrap().header().update_seq,
        first.update_seq,
        "recovery must fall back past a header whose root does not verify"
    );
    assert_eq!(report.damaged_headers, vec![newest_pos]);
    assert!(report.truncated_bytes > 0, "the damaged commit is cut off");
    store.verify().expect("the recovered header verifies");
}

/// Append a header block at the next block boundary whose payload is
/// `header` encoded plus `trailing` bytes, with a good checksum.
fn append_header(file: &Arc<dyn VfsFile>, header: &Header, trailing: &[u8]) -> u64 {
    let at = file.len().unwrap().div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
    let mut payload = header.encode();
    payload.extend_from_slice(trailing);
    let mut block = vec![MARKER_HEADER];
    block.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    block.extend_from_slice(&checksum_at(at, &payload).to_be_bytes());
    block.extend_from_slice(&payload);
    file.write_all_at(&block, at).unwrap();
    at
}

#[test]
fn a_header_chunk_with_trailing_bytes_is_damaged() {
    for trailing in [&[][..], &[0u8][..]] {
        let sim = SimVfs::new(4);
        let (store, _) = open(&sim);
        commit(&store, "a", 5);
        let snap = store.snapshot().unwrap();
        let good = snap.header().clone();
        let good_pos = snap.header_pos().expect("a header");
        drop(snap);
        let file = reopen_file(&sim, store);
        let forged = Header {
            timestamp: good.timestamp + 60,
            prev_header: Some(good_pos),
            ..good.clone()
        };
        let forged_pos = append_header(&file, &forged, trailing);
        drop(file);

        let (store, report) = open(&sim);
        let got = store.snapshot().unwrap().header().timestamp;
        if trailing.is_empty() {
            // The control: the same header without the extra byte is valid.
            assert_eq!(got, forged.timestamp, "a well-formed header is taken");
            assert!(report.damaged_headers.is_empty());
        } else {
            assert_eq!(
                got, good.timestamp,
                "a header with trailing bytes is damaged"
            );
            assert_eq!(report.damaged_headers, vec![forged_pos]);
            assert!(report.truncated_bytes > 0);
        }
    }
}

#[test]
fn an_empty_store_file_opens_empty() {
    // A crash after the file was created and its name made durable, before
    // anything was written to it.
    let sim = SimVfs::new(5);
    let vfs = sim.as_vfs();
    vfs.create_dir_all(DB_DIR.as_ref()).unwrap();
    let path = std::path::Path::new(DB_DIR).join(engine::layout::file_name(DB_NAME, 1));
    vfs.open(&path, OpenMode::Create).unwrap();
    let (store, report) = open(&sim);
    assert_eq!(report.rev, 1);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(store.snapshot().unwrap().header().update_seq, 0);
    let info = commit(&store, "a", 2);
    assert_eq!(info.update_seq, 2);
}

/// `verify` checks that by-id and by-seq agree one to one (SPEC 2.5). A
/// header whose by-id root is one commit's and whose by-seq root another's
/// (every node intact) must fail it. Each commit rewrites key `k`: with a
/// value of the same length (commits 1 and 2), then as a tombstone (3 and
/// 4, body position and length 0 both times, and `other` unchanged in
/// 4): between two such commits only the seqnos tell the trees apart, and
/// the counts agree.
#[test]
fn verify_refuses_trees_of_different_commits() {
    let sim = SimVfs::new(6);
    let (store, _) = open(&sim);
    for (i, v) in ["v1", "v2", "-", "-"].into_iter().enumerate() {
        if v == "-" {
            store.delete(b"k").unwrap();
        } else {
            store.set(b"k", v.as_bytes()).unwrap();
        }
        if i < 3 {
            store.set(b"other", format!("o{i}").as_bytes()).unwrap();
        }
        store.flush().unwrap().expect("a commit");
    }
    let mut headers: Vec<Header> = store
        .headers()
        .unwrap()
        .into_iter()
        .map(|h| h.header)
        .collect();
    headers.sort_by_key(|h| h.update_seq);
    assert_eq!(headers.len(), 4);
    let newest = headers.last().unwrap().clone();
    let file = reopen_file(&sim, store);
    let base_len = file.len().unwrap();
    let prev = base_len.div_ceil(BLOCK_BYTES) * BLOCK_BYTES - BLOCK_BYTES;
    for (i, a) in headers.iter().enumerate() {
        for (j, b) in headers.iter().enumerate() {
            if i == j {
                continue;
            }
            file.set_len(base_len).unwrap();
            let forged = Header {
                by_id: a.by_id,
                by_seq: b.by_seq,
                prev_header: Some(prev),
                ..newest.clone()
            };
            append_header(&file, &forged, &[]);
            let (store, report) = open(&sim);
            assert!(
                report.damaged_headers.is_empty(),
                "the forged header is well formed"
            );
            assert_eq!(store.snapshot().unwrap().header().by_id, a.by_id);
            let verdict = store.verify();
            assert!(
                matches!(verdict, Err(engine::Error::Verify(_))),
                "by-id of commit {} with by-seq of commit {} passed verify: {verdict:?}",
                i + 1,
                j + 1
            );
        }
    }
}

/// Lay out data chunks from the next block boundary on, markers included,
/// as the engine's writer does; returns each chunk's position.
fn append_chunks(file: &Arc<dyn VfsFile>, payloads: &[Vec<u8>]) -> Vec<u64> {
    let start = file.len().unwrap().div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
    let mut raw = Vec::new();
    let mut positions = Vec::new();
    let end = |raw: &Vec<u8>| start + raw.len() as u64;
    for payload in payloads {
        let pos = end(&raw);
        positions.push(pos);
        let mut logical = (payload.len() as u32).to_be_bytes().to_vec();
        logical.extend_from_slice(&checksum_at(pos, payload).to_be_bytes());
        logical.extend_from_slice(payload);
        for b in logical {
            if end(&raw).is_multiple_of(BLOCK_BYTES) {
                raw.push(MARKER_DATA);
            }
            raw.push(b);
        }
    }
    file.write_all_at(&raw, start).unwrap();
    positions
}

/// An interior node with one child (the engine's node encoding: kind,
/// count, then per entry the separator key, the child's position and its
/// reduce).
fn one_child_interior(last_key: &[u8], child_pos: u64, reduce: [u64; 3]) -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&(last_key.len() as u32).to_be_bytes());
    out.extend_from_slice(last_key);
    out.extend_from_slice(&child_pos.to_be_bytes());
    for v in reduce {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

/// Forge a header over a real store: `setup` fills the store (committing
/// at least once) and sees it last; `lay` appends chunks to the closed
/// store's file and returns the header to append after the newest real one
/// (`prev_header` is set to it), given what `setup` returned. The store is
/// opened again over the forgery.
fn forged_store<T>(
    seed: u64,
    setup: impl FnOnce(&Store) -> T,
    lay: impl FnOnce(&Arc<dyn VfsFile>, &Header, T) -> Header,
) -> (Store, engine::OpenReport, Header) {
    let sim = SimVfs::new(seed);
    let (store, _) = open(&sim);
    let made = setup(&store);
    let snap = store.snapshot().unwrap();
    let header = snap.header().clone();
    let header_pos = snap.header_pos().unwrap();
    drop(snap);
    let file = reopen_file(&sim, store);
    let forged = Header {
        prev_header: Some(header_pos),
        ..lay(&file, &header, made)
    };
    append_header(&file, &forged, &[]);
    drop(file);
    let (store, report) = open(&sim);
    (store, report, forged)
}

/// `header` with its by-id root (or its local root) under `levels`
/// one-child interior nodes laid one above the other (each separator
/// `last_key`, each child's reduce the root's).
fn chained(
    file: &Arc<dyn VfsFile>,
    header: &Header,
    local: bool,
    last_key: &[u8],
    levels: usize,
) -> Header {
    let mut out = header.clone();
    let root = if local {
        &mut out.local
    } else {
        &mut out.by_id
    };
    let top = root.as_mut().expect("a root");
    let reduce = [top.reduce.live, top.reduce.deleted, top.reduce.bytes];
    // Positions are known only once laid out: one node at a time.
    for _ in 0..levels {
        let node = one_child_interior(last_key, top.pos, reduce);
        top.pos = append_chunks(file, &[node])[0];
    }
    out
}

/// A by-id tree deeper than any real one (a chain of one-child interior
/// nodes above the real root, every chunk intact, every child below its
/// parent): every walk refuses it with a typed error instead of following
/// it down (a long enough chain would overflow the stack).
#[test]
fn a_tree_deeper_than_any_real_one_is_refused() {
    // The control: 30 levels are deep but walkable (so the chain is well
    // formed, and 60 is refused for its depth alone).
    for (levels, refuse) in [(30, false), (60, true)] {
        deep_chain(levels, refuse);
        deep_local_chain(levels, refuse);
    }
}

/// A walk of a forged tree (`tree` says which): refused as corrupt when
/// `refuse`, else walked without error.
fn judge_walk(refuse: bool, tree: &str, what: &str, r: engine::Result<()>) {
    if refuse {
        assert!(
            matches!(r, Err(engine::Error::Corrupted { .. })),
            "{what} walked {tree}: {r:?}"
        );
    } else {
        r.unwrap_or_else(|e| panic!("{what} refused {tree}: {e}"));
    }
}

/// [`deep_chain`] on the local-documents tree: a local-document change
/// modifies that tree alone (a document write reads the by-id tree first).
fn deep_local_chain(levels: usize, refuse: bool) {
    let (store, report, forged) = forged_store(
        11,
        |store| {
            for i in 0..6 {
                store
                    .set_local(format!("_local/l{i}").as_bytes(), b"v")
                    .unwrap();
            }
            commit(store, "a", 2);
            let locals = store.snapshot().unwrap().locals().unwrap();
            locals.into_iter().map(|(k, _)| k).max().expect("locals")
        },
        |file, header, last_key| chained(file, header, true, &last_key, levels),
    );
    assert!(report.damaged_headers.is_empty());
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.header().local, forged.local);
    let judge =
        |what: &str, r| judge_walk(refuse, &format!("a {levels}-level local chain"), what, r);
    judge("locals", snap.locals().map(|l| assert_eq!(l.len(), 7)));
    judge("verify", snap.verify().map(|_| ()));
    judge("a local-document flush", {
        store.set_local(b"_local/l3", b"new").unwrap();
        store.flush().map(|_| ())
    });
}

fn deep_chain(levels: usize, refuse: bool) {
    let (store, report, forged) = forged_store(
        7,
        |store| {
            commit(store, "a", 9);
        },
        |file, header, ()| chained(file, header, false, b"a8", levels),
    );
    assert!(
        report.damaged_headers.is_empty(),
        "the forged header is well formed"
    );
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.header().by_id, forged.by_id);
    let judge = |what: &str, r| judge_walk(refuse, &format!("a {levels}-level chain"), what, r);
    judge("all_docs", snap.all_docs().map(|d| assert_eq!(d.len(), 9)));
    judge(
        "scan",
        snap.scan(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
            .map(|d| assert_eq!(d.len(), 9)),
    );
    judge("get", snap.get(b"a3").map(|d| assert!(d.is_some())));
    judge("verify", snap.verify().map(|_| ()));
    judge("a flush", {
        store.set(b"a3", b"new").unwrap();
        store.flush().map(|_| ())
    });
}

/// The verify of a forged header: the truthful control passes (its report
/// is returned), anything else is refused as a verify error.
fn judge_verify(
    truthful: bool,
    what: &str,
    verdict: engine::Result<engine::VerifyReport>,
) -> Option<engine::VerifyReport> {
    if truthful {
        return Some(verdict.unwrap_or_else(|e| panic!("the truthful control refused: {e}")));
    }
    assert!(
        matches!(verdict, Err(engine::Error::Verify(_))),
        "{what} passed verify: {verdict:?}"
    );
    None
}

/// An interior node whose entry for its child lies, the chunk intact: a
/// reduce that is not the child's recount, or a separator that is not the
/// child's last key. Verify must refuse both (SPEC 3: a header's trees
/// verify), with a truthful copy of the same node as the control.
#[test]
fn verify_refuses_a_parent_entry_that_lies_about_its_child() {
    type Lie = fn([u64; 3]) -> [u64; 3];
    let lies: [(&str, &[u8], Lie); 4] = [
        ("the truth", b"a8", |r| r),
        ("one more live document", b"a8", |r| [r[0] + 1, r[1], r[2]]),
        ("one byte fewer", b"a8", |r| [r[0], r[1], r[2] - 1]),
        ("a separator past the last key", b"a9", |r| r),
    ];
    for (lie, separator, reduce) in lies {
        let (store, report, forged) = forged_store(
            8,
            |store| {
                commit(store, "a", 9);
            },
            |file, header, ()| {
                let mut top = header.by_id.expect("a by-id root");
                let r = top.reduce;
                let node =
                    one_child_interior(separator, top.pos, reduce([r.live, r.deleted, r.bytes]));
                top.pos = append_chunks(file, &[node])[0];
                Header {
                    by_id: Some(top),
                    ..header.clone()
                }
            },
        );
        assert!(report.damaged_headers.is_empty(), "{lie}: well formed");
        let snap = store.snapshot().unwrap();
        assert_eq!(
            snap.header().by_id,
            forged.by_id,
            "{lie}: the forged header"
        );
        judge_verify(
            lie == "the truth",
            &format!("a parent entry with {lie}"),
            snap.verify(),
        );
    }
}

/// The memoized walk (`verify_with_contents_memo`, the harness's extract
/// cache) answers as the plain one at the depth limit: with the memo warmed
/// by the real tree, a chain of one-child nodes is laid above it so that its
/// leaves sit at the deepest allowed depth (48) or one past it. A memoized
/// subtree may be reused only where walking it would be allowed, so both
/// walks accept the first and refuse the second.
#[test]
fn a_warm_memo_refuses_what_a_walk_refuses_at_the_depth_limit() {
    const MAX_DEPTH: usize = 48;
    // 9 keys at fanout 4: leaves under one root; 40: two interior levels.
    for (keys, height) in [(9u32, 1usize), (40, 2)] {
        for levels in [MAX_DEPTH - height, MAX_DEPTH + 1 - height] {
            let mut memo = engine::ChunkMemo::default();
            let last_key = (0..keys).map(|i| format!("a{i}")).max().unwrap();
            let (store, _, forged) = forged_store(
                12,
                |store| {
                    commit(store, "a", keys);
                    let snap = store.snapshot().unwrap();
                    snap.verify_with_contents_memo(&mut memo)
                        .expect("the real tree");
                },
                |file, header, ()| chained(file, header, false, last_key.as_bytes(), levels),
            );
            let snap = store.snapshot().unwrap();
            assert_eq!(snap.header().by_id, forged.by_id);
            let what = format!("{levels} levels above a tree of height {height}");
            let plain = snap.verify();
            let (_, _, served_before) = memo.counts();
            let memoized = snap.verify_with_contents_memo(&mut memo).map(|(r, _)| r);
            let (_, _, served) = memo.counts();
            if levels + height > MAX_DEPTH {
                assert!(
                    matches!(plain, Err(engine::Error::Corrupted { .. })),
                    "verify walked {what}: {plain:?}"
                );
                assert!(
                    matches!(memoized, Err(engine::Error::Corrupted { .. })),
                    "the memoized walk accepted {what} (verify refuses it): {memoized:?}"
                );
            } else {
                let plain = plain.unwrap_or_else(|e| panic!("verify refused {what}: {e}"));
                let memoized =
                    memoized.unwrap_or_else(|e| panic!("the memoized walk refused {what}: {e}"));
                assert_eq!(plain, memoized, "{what}");
                // The real tree below the chain and the by-seq tree are
                // unchanged and allowed: served from memory.
                assert!(served > served_before, "{what}: the memo served no subtree");
            }
        }
    }
}

/// The format's chunk limit holds both ways. The longest value the store
/// takes (a chunk of exactly the limit) under the longest key is
/// acknowledged and reads back after a reopen; one byte more of a key, a
/// value or a local-document value, or a fanout past the limit, is refused
/// when given (a longer value would be acknowledged and then unreadable).
/// A chunk whose length field is past the limit (a damaged length) is
/// refused for that length, before anything is read or allocated for it.
#[test]
fn the_chunk_limit_holds_both_ways() {
    use engine::{MAX_FANOUT, MAX_KEY_BYTES, MAX_LOCAL_VALUE, MAX_VALUE_BYTES};
    let sim = SimVfs::new(17);
    let (store, _) = open(&sim);
    let key = vec![b'k'; MAX_KEY_BYTES];
    let value: Vec<u8> = (0..MAX_VALUE_BYTES).map(|i| (i % 251) as u8).collect();
    store.set(&key, &value).unwrap();
    store.flush().unwrap().expect("a commit");
    drop(store);
    let (store, _) = open(&sim);
    let got = store
        .get(&key)
        .unwrap()
        .expect("the document at the limits");
    assert!(got.value == value, "the value at the limit reads back");
    let refused = [
        ("a key", store.set(&[b'k'; MAX_KEY_BYTES + 1], b"v")),
        ("a deleted key", store.delete(&[b'k'; MAX_KEY_BYTES + 1])),
        ("a value", store.set(b"k", &vec![0; MAX_VALUE_BYTES + 1])),
        (
            "a local value",
            store.set_local(b"_local/x", &vec![0; MAX_LOCAL_VALUE + 1]),
        ),
    ];
    for (what, r) in refused {
        assert!(
            matches!(r, Err(engine::Error::Invalid(_))),
            "{what} one byte past the limit: {r:?}"
        );
    }
    assert_eq!(store.queue_len().unwrap(), 0, "nothing refused was queued");
    // The documented limits (README, "Limits"), as literals.
    assert_eq!(
        (MAX_KEY_BYTES, MAX_VALUE_BYTES, MAX_LOCAL_VALUE, MAX_FANOUT),
        (4096, 64 << 20, 32 << 10, 1024)
    );
    store
        .set_local(b"_local/x", &vec![1; MAX_LOCAL_VALUE])
        .expect("a local value at the limit");
    let wide = Store::open_with_report(
        sim.as_vfs(),
        DB_DIR,
        "wide",
        Config {
            fanout: MAX_FANOUT + 1,
            ..config()
        },
    );
    assert!(
        matches!(wide, Err(engine::Error::Invalid(_))),
        "a fanout past the limit: {:?}",
        wide.map(|_| ())
    );
    let widest = Config {
        fanout: MAX_FANOUT,
        ..config()
    };
    Store::open_with_report(sim.as_vfs(), DB_DIR, "widest", widest).expect("the widest fanout");

    // A by-id root whose chunk says it is 4 GiB long, in a file of a few
    // blocks, under a header appended behind the open store's back: reading
    // that header refuses it for the length itself.
    let sim = SimVfs::new(18);
    let (store, _) = open(&sim);
    commit(&store, "a", 3);
    let snap = store.snapshot().unwrap();
    let mut forged = snap.header().clone();
    let prev = snap.header_pos().unwrap();
    drop(snap);
    let path = store.current_path().unwrap();
    let file = sim.as_vfs().open(&path, OpenMode::ReadWrite).unwrap();
    let at = file.len().unwrap().div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
    let mut raw = vec![MARKER_DATA];
    raw.extend_from_slice(&u32::MAX.to_be_bytes());
    raw.extend_from_slice(&[0; 4]);
    raw.extend_from_slice(b"short");
    file.write_all_at(&raw, at).unwrap();
    forged.by_id.as_mut().expect("a by-id root").pos = at + 1;
    forged.prev_header = Some(prev);
    let pos = append_header(&file, &forged, &[]);
    let refusal = store.snapshot_at_header(pos).map(|_| ());
    assert!(
        matches!(&refusal, Err(engine::Error::Corrupted { what, .. }) if what.starts_with("chunk length")),
        "a 4 GiB chunk length is refused for its length: {refusal:?}"
    );
    // The same for a header block whose length field says 4 GiB.
    let at = file.len().unwrap().div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
    let mut raw = vec![MARKER_HEADER];
    raw.extend_from_slice(&u32::MAX.to_be_bytes());
    raw.extend_from_slice(&[0; 4]);
    raw.extend_from_slice(b"short");
    file.write_all_at(&raw, at).unwrap();
    let refusal = engine::layout::read_header(file.as_ref(), at, true).map(|_| ());
    assert!(
        matches!(&refusal, Err(engine::Error::Corrupted { what, .. }) if what.starts_with("header length")),
        "a 4 GiB header length is refused for its length: {refusal:?}"
    );
}

/// Verify refuses a header whose fields belong to different commits, each
/// case one check: an update_seq below its trees' seqnos, a counters
/// document of an older commit, no counters document over documents. The
/// report of the truthful header counts what is there.
#[test]
fn verify_refuses_a_header_mixing_commits() {
    type Forge = fn(&Header, &Header) -> Header;
    let cases: [(&str, Forge); 4] = [
        ("the truth", |_, newest| newest.clone()),
        ("an older update_seq", |older, newest| Header {
            update_seq: older.update_seq,
            ..newest.clone()
        }),
        ("an older counters document", |older, newest| Header {
            local: older.local,
            ..newest.clone()
        }),
        ("no local tree", |_, newest| Header {
            local: None,
            ..newest.clone()
        }),
    ];
    for (case, forge) in cases {
        let (store, report, _) = forged_store(
            20,
            |store| {
                commit(store, "a", 3);
                let older = store.snapshot().unwrap().header().clone();
                store.delete(b"a1").unwrap();
                commit(store, "b", 3);
                older
            },
            |_, newest, older| forge(&older, newest),
        );
        assert!(report.damaged_headers.is_empty(), "{case}: well formed");
        let what = format!("a header with {case}");
        if let Some(r) = judge_verify(case == "the truth", &what, store.verify()) {
            assert_eq!((r.live, r.deleted, r.by_seq_entries), (5, 1, 6), "{r:?}");
            assert_eq!(r.local_docs, 1, "the counters document: {r:?}");
        }
    }
}

/// Recovery finds the newest valid header however far below the end it
/// is: above it, more than three of its 64-block scan windows of torn
/// commits (data blocks, and every fifth block a header block whose
/// checksum is wrong). Each damaged header is reported once, newest first,
/// and the tail is cut off, exactly.
#[test]
fn recovery_finds_a_header_below_a_long_tail() {
    let sim = SimVfs::new(19);
    let (store, _) = open(&sim);
    let info = commit(&store, "a", 3);
    let file = reopen_file(&sim, store);
    let end = file.len().unwrap();
    let first = end.div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
    let mut damaged = Vec::new();
    let mut tail = Vec::new();
    for i in 0..200u64 {
        let mut block = vec![MARKER_DATA; BLOCK_BYTES as usize];
        if i % 5 == 4 {
            block[0] = MARKER_HEADER;
            block[1..5].copy_from_slice(&40u32.to_be_bytes());
            block[5..9].copy_from_slice(&[0xAB; 4]);
            damaged.push(first + i * BLOCK_BYTES);
        }
        tail.extend_from_slice(&block);
    }
    file.write_all_at(&tail, first).unwrap();
    let cut = file.len().unwrap() - end;
    assert!(cut > 3 * 64 * BLOCK_BYTES);
    drop(file);
    let (store, report) = open(&sim);
    let snap = store.snapshot().unwrap();
    // (Recovery writes its fresh copy of that header after the cut.)
    assert_eq!(
        snap.header().update_seq,
        info.update_seq,
        "the newest commit"
    );
    damaged.reverse();
    assert_eq!(report.damaged_headers, damaged, "each damaged header once");
    assert_eq!(report.truncated_bytes, cut, "the whole tail, no more");
}

/// changed_docs_range (compaction's bounded copy steps) returns at most
/// `limit` documents: the first ones after `since`, in seqno order.
#[test]
fn changed_docs_range_returns_at_most_its_limit() {
    let sim = SimVfs::new(22);
    let (store, _) = open(&sim);
    commit(&store, "a", 5);
    let snap = store.snapshot().unwrap();
    let all = snap.changed_docs_since(0).unwrap();
    assert_eq!(all.len(), 5);
    let seqnos = |docs: &[engine::DocInfo]| docs.iter().map(|d| d.seqno).collect::<Vec<_>>();
    for since in [0, all[1].seqno] {
        let after: Vec<_> = all.iter().filter(|d| d.seqno > since).cloned().collect();
        for limit in 0..=6 {
            let got = snap.changed_docs_range(since, limit).unwrap();
            let want = &after[..limit.min(after.len())];
            assert_eq!(seqnos(&got), seqnos(want), "since {since}, limit {limit}");
        }
    }
}

/// A flush made by a user thread, with the background flusher running,
/// wakes the threads waiting for their mutations to be durable: in every
/// schedule shuttle tries, a writer that set a key and waits for it
/// returns (the flush that committed its mutation may be the user's, after
/// which the background flusher finds the queue empty and sleeps; without
/// the user flush's wake-up every thread would wait: shuttle reports the
/// deadlock).
#[test]
fn a_user_flush_wakes_the_durability_waiters() {
    use engine::sync::shuttle;
    let mut config = shuttle::Config::new();
    config.stack_size = 4 << 20;
    config.silence_warnings = true;
    let scheduler = shuttle::scheduler::RandomScheduler::new_from_seed(23, 300);
    shuttle::Runner::new(scheduler, config).run(|| {
        let sim = SimVfs::new(23);
        let (store, _) = open(&sim);
        let bg = store
            .start_background(engine::BackgroundConfig {
                compact_every_commits: None,
                ..engine::BackgroundConfig::default()
            })
            .unwrap();
        let seqno = store.set(b"k", b"v").unwrap();
        let flusher = store.clone();
        let user = shuttle::thread::spawn(move || flusher.flush().map(|_| ()));
        assert!(store.wait_durable(seqno).unwrap() >= seqno);
        user.join().unwrap().unwrap();
        bg.shutdown().unwrap();
    });
}

/// `verify_all` verifies every header of the file, not only the newest:
/// an older header whose root node is damaged (the newest commit replaced
/// that node, so the newest header still verifies) fails it.
#[test]
fn verify_all_walks_every_header() {
    let sim = SimVfs::new(24);
    let (store, _) = open(&sim);
    commit(&store, "a", 5);
    let older_root = store
        .snapshot()
        .unwrap()
        .header()
        .by_id
        .expect("a root")
        .pos;
    commit(&store, "b", 5);
    assert_ne!(
        store.snapshot().unwrap().header().by_id.unwrap().pos,
        older_root
    );
    store.verify_all().expect("an intact file verifies");
    let path = store.current_path().unwrap();
    let file = sim.as_vfs().open(&path, OpenMode::ReadWrite).unwrap();
    let at = raw_offset(older_root, CHUNK_PREFIX_BYTES as u64 - 1);
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x10], at).unwrap();
    store
        .verify()
        .expect("the newest header does not use the damaged node");
    assert!(
        store.verify_all().is_err(),
        "verify_all passed over an older header with a damaged root"
    );
}

/// A local document's name is `_local/` and at least one byte, at most
/// MAX_LOCAL_NAME bytes, and not the store's own counters document: any
/// other is refused, by a set and by a delete, and nothing is queued.
#[test]
fn local_document_names_are_checked() {
    let sim = SimVfs::new(25);
    let (store, _) = open(&sim);
    let long = [b"_local/".as_slice(), &[b'n'; engine::MAX_LOCAL_NAME]].concat();
    let bad: [&[u8]; 5] = [b"plain", b"_local/", b"_local", &long, engine::COUNTERS_DOC];
    for name in bad {
        let set = store.set_local(name, b"v");
        let delete = store.delete_local(name);
        for (what, r) in [("set", set), ("delete", delete)] {
            assert!(
                matches!(r, Err(engine::Error::Invalid(_))),
                "{what} of local name {:?}: {r:?}",
                String::from_utf8_lossy(&name[..name.len().min(20)])
            );
        }
    }
    assert_eq!(store.queue_len().unwrap(), 0);
    let longest = &long[..engine::MAX_LOCAL_NAME];
    store.set_local(longest, b"v").expect("the longest name");
    store.set_local(b"_local/x", b"v").expect("a short name");
}

/// `memory_lock_free` (the probe a single-threaded harness asks before it
/// pauses an engine call part-way) is false inside a flush, which holds the
/// memory lock through its commit, and true around it.
#[test]
fn memory_lock_free_is_false_inside_a_flush() {
    let sim = SimVfs::new(26);
    let (store, _) = open(&sim);
    assert!(store.memory_lock_free(), "an idle store");
    let _bound = failpoints::bind_thread(&sim);
    let seen = Arc::new(std::sync::Mutex::new(None));
    let (probe, out) = (store.clone(), seen.clone());
    sim.arm_pause(
        failpoints::PausePoint::Failpoint("flush::after_data_sync"),
        1,
        Arc::new(move |_| *out.lock().unwrap() = Some(probe.memory_lock_free())),
    );
    commit(&store, "a", 2);
    assert_eq!(
        *seen.lock().unwrap(),
        Some(false),
        "the flush's own failpoint, with the memory lock held"
    );
    assert!(store.memory_lock_free(), "after the flush");
}

/// A store's name is one path component: empty or with a `/` is refused.
#[test]
fn a_store_name_is_one_path_component() {
    let sim = SimVfs::new(21);
    for name in ["", "a/b", "/abs"] {
        let r = Store::open_with_report(sim.as_vfs(), DB_DIR, name, config());
        assert!(
            matches!(r, Err(engine::Error::Invalid(_))),
            "store name {name:?}: {:?}",
            r.map(|_| ())
        );
    }
    open(&sim);
}

/// A PiTR compaction of a file whose own retained history purged a
/// tombstone between two headers (the file a purging PiTR compaction
/// wrote): "changes since" cannot show a purged delete, so the replay must
/// remove the key itself, or the delete is resurrected in every later
/// header and at the tip (SPEC 2.4).
#[test]
fn a_purge_between_retained_headers_is_replayed() {
    let clock = Arc::new(ManualClock::new(100));
    let config = Config {
        clock: clock.clone(),
        pitr: Some(engine::PitrConfig {
            granularity_secs: 10,
            max_history_age_secs: 1_000,
        }),
        ..config()
    };
    let sim = SimVfs::new(8);
    let store = Store::open(sim.as_vfs(), DB_DIR, DB_NAME, config).expect("open");
    store.set(b"gone", b"live").unwrap();
    store.set(b"kept", b"1").unwrap();
    store.flush().unwrap().expect("commit at 100");
    clock.set(110);
    store.delete(b"gone").unwrap();
    store.flush().unwrap().expect("commit at 110");
    clock.set(120);
    store.set(b"kept", b"2").unwrap();
    store.flush().unwrap().expect("commit at 120");
    clock.set(130);
    // Keeps one header per window, purging the tombstone at the 110 one.
    let purging = CompactionOptions {
        purge_upto: Some(u64::MAX),
        ..CompactionOptions::default()
    };
    run(store.start_compaction(purging).unwrap());
    let purge_seqs: Vec<u64> = store
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.header.purge_seq)
        .collect();
    // Newest first: the purge happened at the 110 header, after the 100 one.
    assert_eq!(purge_seqs.len(), 3);
    assert!(purge_seqs[2] == 0 && purge_seqs[1] > 0, "{purge_seqs:?}");
    // Copies that history: the first header has "gone" live, the second
    // must not.
    clock.set(140);
    run(store
        .start_compaction(CompactionOptions::default())
        .unwrap());
    assert_eq!(
        store.get(b"gone").unwrap(),
        None,
        "the purged delete came back at the tip"
    );
    let at_110 = store.snapshot_at(115).unwrap().expect("the 110 header");
    assert_eq!(at_110.get(b"gone").unwrap(), None);
    let at_100 = store.snapshot_at(105).unwrap().expect("the 100 header");
    assert!(
        at_100.get(b"gone").unwrap().is_some(),
        "history before the delete"
    );
    store.verify_all().expect("every retained header verifies");
}

/// The store's read and queue APIs say the same as each other: what is
/// queued before a flush (and its seqnos), the changed documents after a
/// seqno with their bodies, local documents by name; after a failed fsync
/// the store says why it refuses writes.
#[test]
fn read_and_queue_apis_agree() {
    let sim = SimVfs::new(9);
    let (store, _) = open(&sim);
    commit(&store, "a", 4);
    assert_eq!(store.queue_len().unwrap(), 0);
    let s1 = store.set(b"a1", b"changed").unwrap();
    let s2 = store.delete(b"a2").unwrap();
    let s3 = store.set_local(b"_local/x", b"local value").unwrap();
    assert_eq!((s1, s2), (5, 6));
    assert_eq!(
        store.queue_len().unwrap(),
        3,
        "two mutations and a local change"
    );
    let queued: Vec<(Vec<u8>, u64, bool)> = store
        .queued()
        .unwrap()
        .into_iter()
        .map(|d| (d.key, d.seqno, d.deleted))
        .collect();
    assert_eq!(
        queued,
        vec![(b"a1".to_vec(), 5, false), (b"a2".to_vec(), 6, true)]
    );
    let locals = store.queued_locals().unwrap();
    assert_eq!(locals.len(), 1);
    assert_eq!(
        (
            locals[0].name.as_slice(),
            locals[0].value.as_deref(),
            locals[0].seqno
        ),
        (&b"_local/x"[..], Some(&b"local value"[..]), s3)
    );
    store.flush().unwrap().expect("a commit");
    assert_eq!(store.queue_len().unwrap(), 0);
    assert_eq!(
        store.get_local(b"_local/x").unwrap().as_deref(),
        Some(&b"local value"[..])
    );
    let snap = store.snapshot().unwrap();
    let changed: Vec<(Vec<u8>, u64, bool, Vec<u8>)> = snap
        .changed_docs_since(4)
        .unwrap()
        .into_iter()
        .map(|d| (d.key, d.seqno, d.deleted, d.value))
        .collect();
    assert_eq!(
        changed,
        vec![
            (b"a1".to_vec(), 5, false, b"changed".to_vec()),
            (b"a2".to_vec(), 6, true, Vec::new()),
        ]
    );
    let entries: Vec<u64> = snap
        .changes_since(0)
        .unwrap()
        .iter()
        .map(|e| e.seqno)
        .collect();
    assert_eq!(entries, vec![1, 4, 5, 6], "a0, a3, then a1 and a2 again");
    assert_eq!(store.poisoned().unwrap(), None);

    // A failed fsync poisons the store, and it says so.
    sim.set_faults(failpoints::FaultConfig {
        eio_sync_nth: Some(1),
        ..failpoints::FaultConfig::default()
    });
    store.set(b"a0", b"lost?").unwrap();
    assert!(store.flush().is_err(), "the fsync failed");
    assert!(
        store.poisoned().unwrap().is_some(),
        "the store refuses writes"
    );
    assert!(store.set(b"a0", b"refused").is_err());
}

/// A flush while the compactor holds the store lock (its final round and
/// switch) is refused with `Busy` at once, and counted; the mutation stays
/// queued and goes to the new file after the switch.
#[test]
fn a_flush_during_the_locked_switch_is_busy_and_counted() {
    let sim = SimVfs::new(10);
    let (store, _) = open(&sim);
    commit(&store, "a", 3);
    let _bound = failpoints::bind_thread(&sim);
    let seen = Arc::new(std::sync::Mutex::new(None));
    let (during, seen_in_hook) = (store.clone(), seen.clone());
    sim.arm_pause(
        failpoints::PausePoint::Failpoint("compact::before_rename"),
        1,
        Arc::new(move |_| {
            // Another call would wait for a memory lock the paused
            // compaction holds (a deadlock, not a test failure).
            if !during.memory_lock_free() {
                *seen_in_hook.lock().unwrap() = Some(Err(engine::Error::Invalid(
                    "the compactor holds the memory lock through the switch".into(),
                )));
                return;
            }
            during.set(b"during", b"the switch").unwrap();
            let flushed = during.flush().map(|_| ());
            *seen_in_hook.lock().unwrap() = Some(flushed);
        }),
    );
    run(store
        .start_compaction(CompactionOptions::default())
        .unwrap());
    let flushed = seen.lock().unwrap().take().expect("the pause was reached");
    assert!(matches!(flushed, Err(engine::Error::Busy)), "{flushed:?}");
    assert_eq!(store.stats().unwrap().busy_flushes, 1);
    assert_eq!(store.poisoned().unwrap(), None, "Busy does not poison");
    let info = store.flush().unwrap().expect("the queued mutation");
    assert_eq!((info.rev, info.update_seq), (2, 4));
}

/// A compaction's steps after its end: a finished one answers `Done` with
/// its report again and touches nothing; a failed one (aborted, its
/// `.compact` file removed) answers `Aborted` and the old file stays
/// authoritative.
#[test]
fn steps_after_the_end_change_nothing() {
    let sim = SimVfs::new(12);
    let (store, _) = open(&sim);
    commit(&store, "a", 5);
    let mut c = store
        .start_compaction(CompactionOptions::default())
        .unwrap();
    let report = (0..1_000)
        .find_map(|_| match c.step().unwrap() {
            Progress::Done(report) => Some(report),
            Progress::Running(_) => None,
        })
        .expect("the compaction finishes in 1,000 steps");
    let files_before = sim.files();
    let io_before = sim.io_counts();
    assert_eq!(c.step().unwrap(), Progress::Done(report.clone()));
    assert_eq!(c.phase(), Phase::Done);
    assert_eq!(sim.files(), files_before);
    assert_eq!(sim.io_counts(), io_before, "a done compaction does no I/O");
    drop(c);
    assert_eq!(store.rev().unwrap(), 2);

    let sim = SimVfs::new(13);
    let (store, _) = open(&sim);
    commit(&store, "a", 5);
    let mut c = store
        .start_compaction(CompactionOptions::default())
        .unwrap();
    sim.set_faults(failpoints::FaultConfig {
        eio_write_nth: Some(1),
        ..failpoints::FaultConfig::default()
    });
    let failed = (0..1_000)
        .find_map(|_| match c.step() {
            Ok(Progress::Running(_)) => None,
            Ok(done) => panic!("the compaction ended despite the EIO: {done:?}"),
            Err(e) => Some(e),
        })
        .expect("the EIO ends the compaction");
    assert!(matches!(failed, engine::Error::Io { .. }), "{failed:?}");
    assert_eq!(c.phase(), Phase::Aborted);
    sim.set_faults(failpoints::FaultConfig::default());
    assert!(matches!(c.step(), Err(engine::Error::Aborted)));
    assert_eq!(store.rev().unwrap(), 1, "the old file stays authoritative");
    let names: Vec<String> = sim
        .files()
        .keys()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names, vec!["db.couch.1"], "the .compact file is gone");
}

/// A store of nine documents and a stop-the-world compaction of it, not
/// yet stepped.
fn stop_the_world(seed: u64) -> (SimVfs, Store, engine::Compaction) {
    let sim = SimVfs::new(seed);
    let (store, _) = open(&sim);
    commit(&store, "a", 9);
    let c = store
        .start_compaction(CompactionOptions {
            stop_the_world: true,
            ..CompactionOptions::default()
        })
        .unwrap();
    (sim, store, c)
}

/// Stop-the-world (the benchmarks' baseline without MB-38428): the first
/// step copies, catches up and switches under the lock.
#[test]
fn stop_the_world_switches_in_its_first_step() {
    let (_sim, store, mut c) = stop_the_world(14);
    assert_eq!(c.step().unwrap(), Progress::Running(Phase::Unlink));
    assert_eq!(store.rev().unwrap(), 2);
    assert_eq!(c.report().catchup_rounds, 1);
    assert_eq!(c.report().docs_written, 9);
    assert_eq!(
        c.report().locked_replay_docs,
        0,
        "the copy loop copied everything; nothing committed since (the flusher waits)"
    );
    assert!(matches!(c.step().unwrap(), Progress::Done(_)));

    // An error before the switch aborts, and the store goes on; an error
    // after the rename (its directory fsync) poisons the store.
    for (faults, switched) in [
        (
            failpoints::FaultConfig {
                eio_write_nth: Some(1),
                ..failpoints::FaultConfig::default()
            },
            false,
        ),
        (
            failpoints::FaultConfig {
                eio_sync_dir_nth: Some(1),
                ..failpoints::FaultConfig::default()
            },
            true,
        ),
    ] {
        let (sim, store, mut c) = stop_the_world(15);
        sim.set_faults(faults);
        assert!(c.step().is_err(), "the injected EIO fails the step");
        sim.set_faults(failpoints::FaultConfig::default());
        assert_eq!(
            store.poisoned().unwrap().is_some(),
            switched,
            "poisoned exactly when the error came after the rename"
        );
    }
}

/// The unlink of the old file after the switch: "busy" (Windows, a reader
/// still has it open) defers it; any other error is reported, not
/// deferred.
#[test]
fn an_unlink_error_that_is_not_busy_is_reported() {
    let sim = SimVfs::new(16);
    let (store, _) = open(&sim);
    commit(&store, "a", 5);
    let mut c = store
        .start_compaction(CompactionOptions::default())
        .unwrap();
    for _ in 0..1_000 {
        if c.phase() == Phase::Unlink {
            break;
        }
        c.step().expect("compaction step");
    }
    assert_eq!(c.phase(), Phase::Unlink);
    sim.set_faults(failpoints::FaultConfig {
        eio_remove_nth: Some(1),
        ..failpoints::FaultConfig::default()
    });
    let unlinked = c.step();
    assert!(
        matches!(unlinked, Err(engine::Error::Io { .. })),
        "an EIO on the unlink is not 'busy': {unlinked:?}"
    );
    assert!(!c.report().unlink_deferred);
    assert!(store.pending_deletions().unwrap().is_empty());
}
