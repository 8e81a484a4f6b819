//! The checks: one function per invariant, or per group of invariants that a
//! single comparison decides. Each says what it checks and what it leaves to
//! another check on purpose. They take the model's history as plain values
//! and never change it: `Model` decides what to adopt.

use std::collections::{BTreeMap, BTreeSet};

use crate::divergence::{render_doc, render_key, DiffLine, Divergence, HeaderRef, Invariant};
use crate::expect::{Commit, Expectation, Origin, Slot};
use crate::types::{BySeqEntry, Counters, Doc, Locals, RecoveredHeader, RecoveredStore, State};

/// What a store with no header shows: the empty state at update_seq 0.
static NO_HEADER: RecoveredHeader = RecoveredHeader {
    update_seq: 0,
    purge_seq: 0,
    timestamp_secs: 0,
    docs: BTreeMap::new(),
    by_seq: Vec::new(),
    counters: Counters {
        live: 0,
        deleted: 0,
    },
    locals: BTreeMap::new(),
};

/// The newest recovered header, or the empty state when there is none.
pub(crate) struct Tip<'a> {
    pub(crate) header: &'a RecoveredHeader,
    /// `None` when the store has no header at all.
    pub(crate) at: Option<HeaderRef>,
}

impl<'a> Tip<'a> {
    pub(crate) fn of(store: &'a RecoveredStore) -> Tip<'a> {
        match store.headers.first() {
            Some(header) => Tip {
                header,
                at: Some(HeaderRef::of(header, 0, store.headers.len())),
            },
            None => Tip {
                header: &NO_HEADER,
                at: None,
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Each header on its own
// ---------------------------------------------------------------------------

/// Runs the checks that need nothing but the recovered headers themselves:
/// index agreement and counters of every header, then ordering across them.
pub(crate) fn check_structure(store: &RecoveredStore) -> Result<(), Divergence> {
    let count = store.headers.len();
    for (position, header) in store.headers.iter().enumerate() {
        let at = HeaderRef::of(header, position, count);
        check_index_agreement(header, &at)?;
        check_counters(header, &at)?;
    }
    check_monotonic(store)
}

/// **index-agreement**: by-seq lists rising seqnos, each key once, and the
/// (seqno, deleted) of every key equals what by-id holds for it, with no key
/// in one tree and not the other.
///
/// Deliberately not checked here: whether by-id holds the right documents
/// (the state checks), and values, which by-seq does not carry.
pub(crate) fn check_index_agreement(
    header: &RecoveredHeader,
    at: &HeaderRef,
) -> Result<(), Divergence> {
    let fail = |detail: String, lines: Vec<DiffLine>| {
        let expected = RecoveredHeader::consistent(
            header.update_seq,
            header.purge_seq,
            header.timestamp_secs,
            header.docs.clone(),
            header.locals.clone(),
        );
        Divergence::of_states(
            Invariant::IndexAgreement,
            Some(at.clone()),
            detail,
            lines,
            &expected,
            header,
        )
    };
    for pair in header.by_seq.windows(2) {
        if pair[1].seqno <= pair[0].seqno {
            let detail = format!(
                "by-seq does not list rising seqnos: seqno {} follows {}",
                pair[1].seqno, pair[0].seqno
            );
            let line = DiffLine::new(
                "by-seq order",
                format!("a seqno above {}", pair[0].seqno),
                format!("seqno {}", pair[1].seqno),
            );
            return Err(fail(detail, vec![line]));
        }
    }
    // The common case without building key sets: as many entries as keys,
    // each agreeing with by-id. Then no key is listed twice (two entries of
    // one key would need two seqnos equal to its one) and none is missing,
    // which is exactly what the full comparison below accepts.
    let agrees = |entry: &BySeqEntry| {
        header
            .docs
            .get(&entry.key)
            .is_some_and(|doc| doc.seqno == entry.seqno && doc.deleted == entry.deleted)
    };
    if header.by_seq.len() == header.docs.len() && header.by_seq.iter().all(agrees) {
        return Ok(());
    }
    let mut listed: BTreeMap<&[u8], &BySeqEntry> = BTreeMap::new();
    for entry in &header.by_seq {
        if let Some(earlier) = listed.insert(&entry.key, entry) {
            let detail = format!(
                "key {} is listed twice in by-seq, at seqnos {} and {}",
                render_key(&entry.key),
                earlier.seqno,
                entry.seqno
            );
            let line = DiffLine::new(
                format!("key {}", render_key(&entry.key)),
                "one by-seq entry",
                "two",
            );
            return Err(fail(detail, vec![line]));
        }
    }
    let keys: BTreeSet<&[u8]> = header
        .docs
        .keys()
        .map(Vec::as_slice)
        .chain(listed.keys().copied())
        .collect();
    let render = |entry: Option<(u64, bool)>| match entry {
        None => "absent".to_string(),
        Some((seqno, true)) => format!("tombstone @{seqno}"),
        Some((seqno, false)) => format!("live @{seqno}"),
    };
    let lines: Vec<DiffLine> = keys
        .iter()
        .filter_map(|key| {
            let by_id = header.docs.get(*key).map(|doc| (doc.seqno, doc.deleted));
            let by_seq = listed.get(key).map(|entry| (entry.seqno, entry.deleted));
            (by_id != by_seq).then(|| {
                DiffLine::new(
                    format!("key {}", render_key(key)),
                    render(by_id),
                    render(by_seq),
                )
            })
        })
        .collect();
    if lines.is_empty() {
        return Ok(());
    }
    let detail = format!(
        "by-id (expected) and by-seq (found) disagree on {} of {} keys",
        lines.len(),
        keys.len()
    );
    Err(fail(detail, lines))
}

/// **counters**: the live and deleted counters equal a recount of by-id.
///
/// Deliberately not checked here: whether by-id itself is right.
pub(crate) fn check_counters(header: &RecoveredHeader, at: &HeaderRef) -> Result<(), Divergence> {
    let recount = Counters::recount(&header.docs);
    if recount == header.counters {
        return Ok(());
    }
    let mut lines = Vec::new();
    for (name, expected, found) in [
        ("live counter", recount.live, header.counters.live),
        ("deleted counter", recount.deleted, header.counters.deleted),
    ] {
        if expected != found {
            lines.push(DiffLine::new(name, expected.to_string(), found.to_string()));
        }
    }
    let detail = format!(
        "the counters say {} live and {} deleted, a recount of by-id gives {} and {}",
        header.counters.live, header.counters.deleted, recount.live, recount.deleted
    );
    let expected = RecoveredHeader {
        counters: recount,
        ..header.clone()
    };
    Err(Divergence::of_states(
        Invariant::Counters,
        Some(at.clone()),
        detail,
        lines,
        &expected,
        header,
    ))
}

/// **monotonic-seqno** within one store: from the oldest header to the
/// newest, update_seq strictly rises, and purge_seq and timestamps never
/// fall; no document has a seqno above its header's update_seq.
///
/// Deliberately not checked here: regressions against earlier runs (the
/// tip's update_seq against the last acknowledged commit is durability; its
/// purge_seq against the model is `check_purge_range`).
pub(crate) fn check_monotonic(store: &RecoveredStore) -> Result<(), Divergence> {
    let count = store.headers.len();
    let fail = |position: usize, detail: String, line: DiffLine| {
        let at = HeaderRef::of(&store.headers[position], position, count);
        Divergence::from_lines(Invariant::MonotonicSeqno, Some(at), detail, vec![line])
    };
    for (position, header) in store.headers.iter().enumerate() {
        if let Some((key, doc)) = header
            .docs
            .iter()
            .find(|(_, d)| d.seqno > header.update_seq)
        {
            let detail = format!(
                "key {} has seqno {}, above its header's update_seq {}",
                render_key(key),
                doc.seqno,
                header.update_seq
            );
            let line = DiffLine::new(
                format!("key {}", render_key(key)),
                format!("a seqno at most {}", header.update_seq),
                render_doc(Some(doc)),
            );
            return Err(fail(position, detail, line));
        }
    }
    for position in 0..count.saturating_sub(1) {
        let (newer, older) = (&store.headers[position], &store.headers[position + 1]);
        let fields = [
            ("update_seq", older.update_seq, newer.update_seq, true),
            (
                "timestamp",
                older.timestamp_secs,
                newer.timestamp_secs,
                false,
            ),
            ("purge_seq", older.purge_seq, newer.purge_seq, false),
        ];
        for (name, before, after, strict) in fields {
            if after < before || (strict && after == before) {
                let detail = format!(
                    "{name} goes backwards: header #{} has {after}, the older header #{} has {before}",
                    position,
                    position + 1
                );
                let bound = if strict { "above" } else { "at least" };
                let line = DiffLine::new(name, format!("{bound} {before}"), after.to_string());
                return Err(fail(position, detail, line));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The tip against the model
// ---------------------------------------------------------------------------

/// One key on which an expected and a found state differ.
struct KeyDelta<'a> {
    key: &'a [u8],
    expected: Option<&'a Doc>,
    found: Option<&'a Doc>,
}

impl KeyDelta<'_> {
    /// The expected version when the found one is older or missing: the
    /// expected mutation did not survive.
    fn lost(&self) -> Option<&Doc> {
        match (self.expected, self.found) {
            (Some(expected), None) => Some(expected),
            (Some(expected), Some(found)) if found.seqno < expected.seqno => Some(expected),
            _ => None,
        }
    }
}

/// Every key where `found` differs from `expected`, in key order. A
/// tombstone with seqno at most `purge_seq` may be absent from `found`.
fn diff_states<'a>(expected: &'a State, found: &'a State, purge_seq: u64) -> Vec<KeyDelta<'a>> {
    if expected == found {
        // Nearly always: no key set to build.
        return Vec::new();
    }
    let keys: BTreeSet<&Vec<u8>> = expected.keys().chain(found.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let (e, f) = (expected.get(key), found.get(key));
            let purged = f.is_none() && e.is_some_and(|d| d.deleted && d.seqno <= purge_seq);
            (e != f && !purged).then_some(KeyDelta {
                key,
                expected: e,
                found: f,
            })
        })
        .collect()
}

/// Whether a header's timestamp matches the commit's (unknown for a store
/// created without a header, which accepts any).
fn timestamp_matches(commit: &Commit, header: &RecoveredHeader) -> bool {
    match commit.timestamp_secs {
        Some(timestamp_secs) => timestamp_secs == header.timestamp_secs,
        None => true,
    }
}

/// The commit as the found header should show it: the allowed purges that
/// did happen applied, by-seq and counters derived.
fn expected_view(commit: &Commit, found: &RecoveredHeader) -> RecoveredHeader {
    let docs = commit
        .docs
        .iter()
        .filter(|(key, doc)| {
            let purged =
                doc.deleted && doc.seqno <= found.purge_seq && !found.docs.contains_key(*key);
            !purged
        })
        .map(|(key, doc)| (key.clone(), doc.clone()))
        .collect();
    let timestamp_secs = commit.timestamp_secs.unwrap_or(found.timestamp_secs);
    RecoveredHeader::consistent(
        commit.update_seq,
        found.purge_seq,
        timestamp_secs,
        docs,
        commit.locals.clone(),
    )
}

/// A header that differs from the commit it must equal.
struct Mismatch<'a> {
    header: &'a RecoveredHeader,
    at: Option<HeaderRef>,
    commit: &'a Commit,
    deltas: Vec<KeyDelta<'a>>,
    local_deltas: Vec<LocalDelta<'a>>,
}

/// One local document on which an expected and a found header differ.
struct LocalDelta<'a> {
    name: &'a [u8],
    expected: Option<&'a [u8]>,
    found: Option<&'a [u8]>,
}

/// Every local document where `found` differs from `expected`, by name.
fn diff_locals<'a>(expected: &'a Locals, found: &'a Locals) -> Vec<LocalDelta<'a>> {
    if expected == found {
        return Vec::new();
    }
    let names: BTreeSet<&Vec<u8>> = expected.keys().chain(found.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (e, f) = (expected.get(name), found.get(name));
            (e != f).then(|| LocalDelta {
                name,
                expected: e.map(Vec::as_slice),
                found: f.map(Vec::as_slice),
            })
        })
        .collect()
}

/// A local document's value in a diff line.
fn render_local(value: Option<&[u8]>) -> String {
    match value {
        None => "absent".to_string(),
        Some(value) => format!("value {}", render_key(value)),
    }
}

impl<'a> Mismatch<'a> {
    /// `None` when the header equals the commit, allowed purges aside.
    fn of(header: &'a RecoveredHeader, at: Option<HeaderRef>, commit: &'a Commit) -> Option<Self> {
        let deltas = diff_states(&commit.docs, &header.docs, header.purge_seq);
        let local_deltas = diff_locals(&commit.locals, &header.locals);
        let timestamp_ok = at.is_none() || timestamp_matches(commit, header);
        let same = deltas.is_empty()
            && local_deltas.is_empty()
            && timestamp_ok
            && commit.update_seq == header.update_seq;
        (!same).then_some(Mismatch {
            header,
            at,
            commit,
            deltas,
            local_deltas,
        })
    }

    fn fail(&self, invariant: Invariant, detail: String) -> Divergence {
        let mut lines = Vec::new();
        if self.commit.update_seq != self.header.update_seq {
            lines.push(DiffLine::new(
                "update_seq",
                self.commit.update_seq.to_string(),
                self.header.update_seq.to_string(),
            ));
        }
        if self.at.is_some() && !timestamp_matches(self.commit, self.header) {
            lines.push(DiffLine::new(
                "timestamp",
                format!("{}", self.commit.timestamp_secs.unwrap_or_default()),
                self.header.timestamp_secs.to_string(),
            ));
        }
        lines.extend(self.deltas.iter().map(|delta| {
            DiffLine::new(
                format!("key {}", render_key(delta.key)),
                render_doc(delta.expected),
                render_doc(delta.found),
            )
        }));
        lines.extend(self.local_deltas.iter().map(|delta| {
            DiffLine::new(
                format!("local {}", render_key(delta.name)),
                render_local(delta.expected),
                render_local(delta.found),
            )
        }));
        let expected = expected_view(self.commit, self.header);
        Divergence::of_states(
            invariant,
            self.at.clone(),
            detail,
            lines,
            &expected,
            self.header,
        )
    }

    /// The newest seqno the header holds.
    fn newest_found_seqno(&self) -> u64 {
        self.header
            .docs
            .values()
            .map(|doc| doc.seqno)
            .max()
            .unwrap_or(0)
    }
}

/// **durability** and **atomic-commit**, by update_seq alone: picks the
/// commit the tip must equal and returns its index in `history`.
///
/// Checks that the tip's update_seq is that of a commit from the last
/// acknowledged one (`history[acked]`) to the last attempted one (the end of
/// `history`). An older update_seq loses acknowledged flushes (durability);
/// any other is a partial batch or a state never committed (atomic-commit).
/// A store with no header counts as update_seq 0.
///
/// Deliberately not checked here: the tip's contents (`check_tip_state`).
pub(crate) fn check_tip_update_seq(
    tip: &Tip,
    history: &[Commit],
    acked: usize,
) -> Result<usize, Divergence> {
    let update_seq = tip.header.update_seq;
    let last_acked = &history[acked];
    if update_seq < last_acked.update_seq {
        let detail = format!(
            "the recovered tip has update_seq {update_seq}, older than the last acknowledged commit's {}: acknowledged flushes are lost",
            last_acked.update_seq
        );
        return Err(mismatch_or_bare(tip, last_acked).fail(Invariant::Durability, detail));
    }
    if let Some(offset) = history[acked..]
        .iter()
        .position(|commit| commit.update_seq == update_seq)
    {
        return Ok(acked + offset);
    }
    let last = history
        .last()
        .expect("history holds at least the empty state");
    let detail = format!(
        "update_seq {update_seq} is not that of any commit from the last acknowledged ({}) to the last attempted ({})",
        last_acked.update_seq, last.update_seq
    );
    Err(mismatch_or_bare(tip, last).fail(Invariant::AtomicCommit, detail))
}

/// A mismatch even where contents agree (only update_seq differs).
fn mismatch_or_bare<'a>(tip: &Tip<'a>, commit: &'a Commit) -> Mismatch<'a> {
    let header = tip.header;
    Mismatch::of(header, tip.at.clone(), commit).unwrap_or(Mismatch {
        header,
        at: tip.at.clone(),
        commit,
        deltas: Vec::new(),
        local_deltas: Vec::new(),
    })
}

/// Checks the tip's contents against `commit`, the state at its update_seq
/// chosen by `check_tip_update_seq`, and names the invariant a difference
/// breaks, most specific first: no-resurrection, compaction-identity (when
/// the tip should have been written by a compaction), no-holes, durability,
/// and atomic-commit for everything else. Tombstones at or below the tip's
/// own purge_seq may be absent.
///
/// Deliberately not checked here: whether that purge_seq was allowed
/// (`check_purge_range`), older headers (`check_header_history`).
pub(crate) fn check_tip_state(
    tip: &Tip,
    commit: &Commit,
    acked_seq: u64,
    compacted: bool,
) -> Result<(), Divergence> {
    let Some(mismatch) = Mismatch::of(tip.header, tip.at.clone(), commit) else {
        return Ok(());
    };
    check_no_resurrection(&mismatch, acked_seq)?;
    check_local_docs(&mismatch)?;
    check_compaction_identity(&mismatch, compacted)?;
    check_no_holes(&mismatch, acked_seq)?;
    check_durable_keys(&mismatch, acked_seq)?;
    Err(atomic_commit(&mismatch, acked_seq))
}

/// **no-resurrection**: an acknowledged tombstone neither reads as an older
/// live version nor vanishes while its seqno is above the header's
/// purge_seq. A tombstone at or below purge_seq reading absent is fine.
///
/// Deliberately not checked here: tombstones of the in-flight batch (their
/// loss is a partial batch, atomic-commit).
fn check_no_resurrection(mismatch: &Mismatch, acked_seq: u64) -> Result<(), Divergence> {
    for delta in &mismatch.deltas {
        let Some(expected) = delta.expected.filter(|d| d.deleted && d.seqno <= acked_seq) else {
            continue;
        };
        let detail = match delta.found {
            None => format!(
                "the tombstone of key {} at seqno {} (acknowledged) is gone, above purge_seq {}",
                render_key(delta.key),
                expected.seqno,
                mismatch.header.purge_seq
            ),
            Some(found) if !found.deleted && found.seqno < expected.seqno => format!(
                "key {} was deleted at seqno {} (acknowledged) but reads live at seqno {}",
                render_key(delta.key),
                expected.seqno,
                found.seqno
            ),
            Some(_) => continue,
        };
        return Err(mismatch.fail(Invariant::NoResurrection, detail));
    }
    Ok(())
}

/// **local-docs**: the tip's documents are right but its local documents
/// are not those of the commit at its update_seq: one lost, one changed, or
/// one removed and back.
///
/// Deliberately not checked here: a tip whose documents differ too (the
/// document checks name that first; the diff lists the local documents as
/// well).
fn check_local_docs(mismatch: &Mismatch) -> Result<(), Divergence> {
    let Some(delta) = mismatch.local_deltas.first() else {
        return Ok(());
    };
    if !mismatch.deltas.is_empty() {
        return Ok(());
    }
    let detail = format!(
        "local document {} is {} in the header at update_seq {}, but {} in the state committed there",
        render_key(delta.name),
        render_local(delta.found),
        mismatch.header.update_seq,
        render_local(delta.expected)
    );
    Err(mismatch.fail(Invariant::LocalDocs, detail))
}

/// **compaction-identity**: a tip written by a compaction (the new file's
/// last compaction-written header, no flush after it) equals the state at
/// its update_seq, minus allowed purges.
///
/// Deliberately not checked here: which headers the new file holds
/// (`check_header_list`), resurrected deletes (reported as such first).
fn check_compaction_identity(mismatch: &Mismatch, compacted: bool) -> Result<(), Divergence> {
    if !compacted {
        return Ok(());
    }
    let detail = format!(
        "the compaction-written tip differs from the state committed at update_seq {}",
        mismatch.commit.update_seq
    );
    Err(mismatch.fail(Invariant::CompactionIdentity, detail))
}

/// **no-holes**: no acknowledged mutation is missing while a newer one
/// (by seqno) survived in the same header.
///
/// Deliberately not checked here: a state that is merely old as a whole
/// (durability), the in-flight batch (atomic-commit).
fn check_no_holes(mismatch: &Mismatch, acked_seq: u64) -> Result<(), Divergence> {
    let newest = mismatch.newest_found_seqno();
    for delta in &mismatch.deltas {
        let Some(lost) = delta
            .lost()
            .filter(|d| d.seqno <= acked_seq && d.seqno < newest)
        else {
            continue;
        };
        let detail = format!(
            "key {} lost its acknowledged mutation at seqno {} while the newer mutation at seqno {} survived",
            render_key(delta.key),
            lost.seqno,
            newest
        );
        return Err(mismatch.fail(Invariant::NoHoles, detail));
    }
    Ok(())
}

/// **durability**, key by key: every acknowledged mutation the tip's state
/// holds survived, even when the header claims the right update_seq.
///
/// Deliberately not checked here: mutations of the in-flight batch.
fn check_durable_keys(mismatch: &Mismatch, acked_seq: u64) -> Result<(), Divergence> {
    for delta in &mismatch.deltas {
        if let Some(lost) = delta.lost().filter(|d| d.seqno <= acked_seq) {
            let detail = format!(
                "key {} lost its acknowledged mutation at seqno {}",
                render_key(delta.key),
                lost.seqno
            );
            return Err(mismatch.fail(Invariant::Durability, detail));
        }
    }
    Ok(())
}

/// **atomic-commit**: whatever difference is left means the tip is not
/// exactly one committed state. Says the most telling reason.
fn atomic_commit(mismatch: &Mismatch, acked_seq: u64) -> Divergence {
    let update_seq = mismatch.commit.update_seq;
    let partial = mismatch
        .deltas
        .iter()
        .find_map(|d| d.lost().map(|lost| (d, lost)));
    let detail = match (mismatch.deltas.first(), partial) {
        (_, Some((delta, lost))) if lost.seqno > acked_seq => format!(
            "partial batch: the header claims update_seq {update_seq} but key {} misses its mutation at seqno {} from that batch",
            render_key(delta.key),
            lost.seqno
        ),
        (Some(delta), _) => format!(
            "the tip is not the state committed at update_seq {update_seq}: key {} holds {}",
            render_key(delta.key),
            render_doc(delta.found)
        ),
        (None, _) => format!(
            "the tip's timestamp {} is not the {} its commit was given",
            mismatch.header.timestamp_secs,
            mismatch.commit.timestamp_secs.unwrap_or_default()
        ),
    };
    mismatch.fail(Invariant::AtomicCommit, detail)
}

/// **monotonic-seqno** and **purge-policy** for purge_seq: the tip's
/// purge_seq is at least what the model knows was durable (`low`) and at
/// most what the purge policies since allowed (`high`).
///
/// Deliberately not checked here: which tombstones are gone (the state
/// checks), older headers (their purge_seq is bounded by the tip's through
/// `check_monotonic`).
pub(crate) fn check_purge_range(tip: &Tip, low: u64, high: u64) -> Result<(), Divergence> {
    let purge_seq = tip.header.purge_seq;
    let (invariant, detail) = if purge_seq < low {
        let detail = format!("purge_seq went back from {low} to {purge_seq}");
        (Invariant::MonotonicSeqno, detail)
    } else if purge_seq > high {
        let detail = format!("purge_seq {purge_seq} passes the {high} the purge policy allowed");
        (Invariant::PurgePolicy, detail)
    } else {
        return Ok(());
    };
    let range = match low == high {
        true => low.to_string(),
        false => format!("from {low} to {high}"),
    };
    let line = DiffLine::new("purge_seq", range, purge_seq.to_string());
    Err(Divergence::from_lines(
        invariant,
        tip.at.clone(),
        detail,
        vec![line],
    ))
}

// ---------------------------------------------------------------------------
// The file's header list against the model
// ---------------------------------------------------------------------------

/// `[1@10, 3@20?]`: update_seq@timestamp, `?` for a header that may be absent.
fn render_slots(slots: &[Slot]) -> String {
    let items: Vec<String> = slots
        .iter()
        .map(|slot| {
            let timestamp = slot
                .timestamp_secs
                .map_or_else(|| "?".to_string(), |t| t.to_string());
            let optional = if slot.required { "" } else { "?" };
            format!("{}@{timestamp}{optional}", slot.update_seq)
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn render_headers(store: &RecoveredStore) -> String {
    let items: Vec<String> = store
        .headers
        .iter()
        .rev()
        .map(|h| format!("{}@{}", h.update_seq, h.timestamp_secs))
        .collect();
    format!("[{}]", items.join(", "))
}

/// **header-list**, and **pitr-windows** for what a PiTR compaction wrote:
/// the recovered headers, oldest first, are the expected ones in order,
/// every required one present (acknowledged flushes, the headers a
/// compaction must write, the exact PiTR list) and nothing else; optional
/// ones (an in-flight flush, a PiTR-off catch-up round) may be absent.
/// Returns where each header came from, newest first; on failure, how many
/// headers matched before it, to pick the closest of several expectations.
///
/// Deliberately not checked here: timestamps and contents of the headers
/// (`check_header_history`; the tip: `check_tip_state`).
pub(crate) fn check_header_list(
    store: &RecoveredStore,
    expectation: &Expectation,
) -> Result<Vec<Origin>, (usize, Divergence)> {
    let count = store.headers.len();
    let slots = &expectation.slots;
    let fail = |matched: usize, invariant: Invariant, detail: String| {
        let at = (matched < count).then(|| {
            let position = count - 1 - matched;
            HeaderRef::of(&store.headers[position], position, count)
        });
        let line = DiffLine::new(
            "headers (oldest first)",
            render_slots(slots),
            render_headers(store),
        );
        (
            matched,
            Divergence::from_lines(invariant, at, detail, vec![line]),
        )
    };
    let missing = |matched: usize, slot: &Slot| {
        let (invariant, what) = match slot.origin {
            Origin::PitrCompaction => (Invariant::PitrWindows, "the header the PiTR policy keeps"),
            Origin::Compaction => (Invariant::HeaderList, "the header the compaction writes"),
            Origin::Flush => (Invariant::HeaderList, "the acknowledged header"),
        };
        let timestamp = slot
            .timestamp_secs
            .map_or_else(|| "any".to_string(), |t| t.to_string());
        let detail = format!(
            "{what} at update_seq {} (timestamp {timestamp}) is missing",
            slot.update_seq
        );
        fail(matched, invariant, detail)
    };
    let mut origins = Vec::with_capacity(count);
    let mut next = 0;
    for (matched, header) in store.headers.iter().rev().enumerate() {
        while next < slots.len() && slots[next].update_seq < header.update_seq {
            if slots[next].required {
                return Err(missing(matched, &slots[next]));
            }
            next += 1;
        }
        if next == slots.len() || slots[next].update_seq != header.update_seq {
            let in_pitr_list = slots.iter().any(|slot| {
                slot.origin == Origin::PitrCompaction && slot.update_seq >= header.update_seq
            });
            let (invariant, detail) = if in_pitr_list {
                let detail = format!(
                    "the PiTR policy keeps no header at update_seq {} (timestamp {})",
                    header.update_seq, header.timestamp_secs
                );
                (Invariant::PitrWindows, detail)
            } else {
                let detail = format!(
                    "the model expects no header at update_seq {} (timestamp {})",
                    header.update_seq, header.timestamp_secs
                );
                (Invariant::HeaderList, detail)
            };
            return Err(fail(matched, invariant, detail));
        }
        origins.push(slots[next].origin);
        next += 1;
    }
    if let Some(slot) = slots[next..].iter().find(|slot| slot.required) {
        return Err(missing(count, slot));
    }
    origins.reverse();
    Ok(origins)
}

/// **header-history**, and **pitr-history** for headers a PiTR compaction
/// wrote: every header below the tip equals the committed state at its
/// update_seq, timestamp included, tombstones at or below its own purge_seq
/// optional. `origins` comes from `check_header_list`, newest first.
///
/// Deliberately not checked here: the tip (`check_tip_state` names its
/// difference more precisely), which headers exist (`check_header_list`).
pub(crate) fn check_header_history(
    store: &RecoveredStore,
    origins: &[Origin],
    history: &[Commit],
) -> Result<(), (usize, Divergence)> {
    let count = store.headers.len();
    for position in (1..count).rev() {
        let header = &store.headers[position];
        let matched = count - 1 - position;
        let at = HeaderRef::of(header, position, count);
        let Ok(index) = history.binary_search_by_key(&header.update_seq, |c| c.update_seq) else {
            let detail = format!("no committed state has update_seq {}", header.update_seq);
            let line = DiffLine::new(
                "update_seq",
                "a committed one",
                header.update_seq.to_string(),
            );
            let divergence =
                Divergence::from_lines(Invariant::HeaderHistory, Some(at), detail, vec![line]);
            return Err((matched, divergence));
        };
        let Some(mismatch) = Mismatch::of(header, Some(at), &history[index]) else {
            continue;
        };
        let invariant = match origins[position] {
            Origin::PitrCompaction => Invariant::PitrHistory,
            Origin::Flush | Origin::Compaction => Invariant::HeaderHistory,
        };
        let detail = format!(
            "the header at update_seq {} differs from the state committed then",
            header.update_seq
        );
        return Err((matched, mismatch.fail(invariant, detail)));
    }
    Ok(())
}

/// **header-history** for one header read on its own, from a file whose
/// damage decides which headers are still readable (so which of them exist
/// is not the question): a header that reads and verifies shows exactly a
/// committed state. Its update_seq is one an acknowledged flush committed
/// (or 0, the empty store), and it equals that state, timestamp included,
/// tombstones at or below its purge_seq optional; its trees agree and its
/// counters are a recount.
pub(crate) fn check_committed_header(
    header: &RecoveredHeader,
    at: HeaderRef,
    acked: &[Commit],
) -> Result<(), Divergence> {
    check_index_agreement(header, &at)?;
    check_counters(header, &at)?;
    let Ok(index) = acked.binary_search_by_key(&header.update_seq, |c| c.update_seq) else {
        let known: Vec<u64> = acked.iter().map(|c| c.update_seq).collect();
        let detail = format!(
            "the header verifies, but no acknowledged flush committed update_seq {} \
             (committed: {known:?})",
            header.update_seq
        );
        let line = DiffLine::new(
            "update_seq",
            "a committed one",
            header.update_seq.to_string(),
        );
        return Err(Divergence::from_lines(
            Invariant::HeaderHistory,
            Some(at),
            detail,
            vec![line],
        ));
    };
    match Mismatch::of(header, Some(at), &acked[index]) {
        None => Ok(()),
        Some(mismatch) => {
            let detail = format!(
                "the header verifies, but it is not the state committed with update_seq {}",
                header.update_seq
            );
            Err(mismatch.fail(Invariant::HeaderHistory, detail))
        }
    }
}

/// **reads-match** for `get` and `scan`: `found` equals `expected` (the
/// last acknowledged state on the keys read), a tombstone at or below
/// `purge_seq` optional.
pub(crate) fn check_read(
    what: &str,
    expected: &State,
    found: &State,
    purge_seq: u64,
) -> Result<(), Divergence> {
    let lines: Vec<DiffLine> = diff_states(expected, found, purge_seq)
        .iter()
        .map(|d| {
            DiffLine::new(
                format!("key {}", render_key(d.key)),
                render_doc(d.expected),
                render_doc(d.found),
            )
        })
        .collect();
    read_mismatch(what, "state", "keys", lines)
}

/// A read's divergence from its `lines` (none: the read matched).
fn read_mismatch(
    what: &str,
    state: &str,
    items: &str,
    lines: Vec<DiffLine>,
) -> Result<(), Divergence> {
    if lines.is_empty() {
        return Ok(());
    }
    let detail = format!(
        "{what} returned something other than the last acknowledged {state} ({} {items} differ)",
        lines.len()
    );
    Err(Divergence::from_lines(
        Invariant::ReadsMatch,
        None,
        detail,
        lines,
    ))
}

/// **reads-match** for local documents: `found` (what a read of the names
/// `in_range` selects returned) equals the last acknowledged local
/// documents on those names.
pub(crate) fn check_local_read(
    what: &str,
    expected: &Locals,
    found: &Locals,
) -> Result<(), Divergence> {
    let lines: Vec<DiffLine> = diff_locals(expected, found)
        .iter()
        .map(|d| {
            DiffLine::new(
                format!("local {}", render_key(d.name)),
                render_local(d.expected),
                render_local(d.found),
            )
        })
        .collect();
    read_mismatch(what, "local documents", "of them", lines)
}

/// **reads-match** for `changes_since(since)`: exactly the entries of the
/// last acknowledged state with seqno > `since`, one per key, in seqno
/// order; a tombstone at or below `purge_seq` may be missing.
pub(crate) fn check_changes_since(
    since: u64,
    state: &State,
    found: &[BySeqEntry],
    purge_seq: u64,
) -> Result<(), Divergence> {
    let mut expected: Vec<(u64, &Vec<u8>, bool)> = state
        .iter()
        .filter(|(_, d)| d.seqno > since)
        .map(|(k, d)| (d.seqno, k, d.deleted))
        .collect();
    expected.sort();
    let found_set: BTreeMap<u64, (&Vec<u8>, bool)> = found
        .iter()
        .map(|e| (e.seqno, (&e.key, e.deleted)))
        .collect();
    let mut lines = Vec::new();
    for (seqno, key, deleted) in &expected {
        match found_set.get(seqno) {
            Some((k, del)) if *k == *key && *del == *deleted => {}
            None if *deleted && *seqno <= purge_seq => {}
            other => lines.push(DiffLine::new(
                format!("seqno {seqno}"),
                format!(
                    "{} {}",
                    render_key(key),
                    if *deleted { "deleted" } else { "live" }
                ),
                other.map_or("absent".to_string(), |(k, del)| {
                    format!(
                        "{} {}",
                        render_key(k),
                        if *del { "deleted" } else { "live" }
                    )
                }),
            )),
        }
    }
    let known: BTreeSet<u64> = expected.iter().map(|(s, ..)| *s).collect();
    for e in found.iter().filter(|e| !known.contains(&e.seqno)) {
        lines.push(DiffLine::new(
            format!("seqno {}", e.seqno),
            "absent",
            render_key(&e.key),
        ));
    }
    if !found.windows(2).all(|w| w[0].seqno < w[1].seqno) {
        lines.push(DiffLine::new("order", "rising seqnos", "out of order"));
    }
    if lines.is_empty() {
        return Ok(());
    }
    let detail = format!(
        "changes_since({since}) is not the last acknowledged state's changes after seqno {since}"
    );
    Err(Divergence::from_lines(
        Invariant::ReadsMatch,
        None,
        detail,
        lines,
    ))
}

// ---------------------------------------------------------------------------
// Files and acknowledgements
// ---------------------------------------------------------------------------

/// The revision of an authoritative file name `<name>.couch.<rev>`.
fn parse_revision(name: &str) -> Option<u64> {
    let (_, revision) = name.rsplit_once(".couch.")?;
    if revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    revision.parse().ok()
}

/// **single-authority**: the directory holds exactly one authoritative file
/// `<name>.couch.<rev>`, and no `.compact` file unless `compact_allowed` (a
/// running store mid-compaction). Returns the revision.
///
/// Deliberately not checked here: whether it is the right revision
/// (`check_revision`), other files.
pub(crate) fn check_single_authority(
    files: &[String],
    compact_allowed: bool,
) -> Result<u64, Divergence> {
    let revisions: Vec<u64> = files.iter().filter_map(|n| parse_revision(n)).collect();
    let compact = files.iter().find(|name| name.ends_with(".compact"));
    let detail = match (compact, revisions.as_slice()) {
        (Some(name), _) if !compact_allowed => format!("{name} is still there after open"),
        (_, [revision]) => return Ok(*revision),
        (_, found) => format!("{} authoritative revisions: {found:?}", found.len()),
    };
    let line = DiffLine::new(
        "files",
        "one <name>.couch.<rev> and no .compact",
        format!("{files:?}"),
    );
    Err(Divergence::from_lines(
        Invariant::SingleAuthority,
        None,
        detail,
        vec![line],
    ))
}

/// **single-authority** across opens: the store opened one of the revisions
/// the model allows (the last one seen, plus one per completed switch, plus
/// one more if a switch was cut by the crash).
///
/// Deliberately not checked here: what the file holds.
pub(crate) fn check_revision(found: u64, allowed: &[u64]) -> Result<(), Divergence> {
    if allowed.contains(&found) {
        return Ok(());
    }
    let allowed: Vec<String> = allowed.iter().map(u64::to_string).collect();
    let allowed = allowed.join(" or ");
    let detail = format!("the store opened revision {found}, expected {allowed}");
    let line = DiffLine::new("revision", allowed, found.to_string());
    Err(Divergence::from_lines(
        Invariant::SingleAuthority,
        None,
        detail,
        vec![line],
    ))
}

/// **seqno-assignment**: an acknowledged flush's header carries the
/// update_seq the model assigned (the seqno of the batch's last mutation,
/// counted on from the tip) and the timestamp the flush was started with.
///
/// Deliberately not checked here: the header's contents (a later `check`).
pub(crate) fn check_acked_header(
    predicted: &Commit,
    previous_tip_seq: u64,
    update_seq: u64,
    timestamp_secs: u64,
) -> Result<(), Divergence> {
    let predicted_timestamp = predicted.timestamp_secs.unwrap_or_default();
    if update_seq == predicted.update_seq && timestamp_secs == predicted_timestamp {
        return Ok(());
    }
    let detail = if update_seq <= previous_tip_seq {
        format!(
            "the acknowledged flush reports update_seq {update_seq}, not above the previous tip's {previous_tip_seq}: seqnos were reused"
        )
    } else if update_seq != predicted.update_seq {
        format!(
            "the acknowledged flush reports update_seq {update_seq}, the model assigned {}",
            predicted.update_seq
        )
    } else {
        format!(
            "the acknowledged flush reports timestamp {timestamp_secs}, it was started at {predicted_timestamp}"
        )
    };
    let lines = vec![
        DiffLine::new(
            "update_seq",
            predicted.update_seq.to_string(),
            update_seq.to_string(),
        ),
        DiffLine::new(
            "timestamp",
            predicted_timestamp.to_string(),
            timestamp_secs.to_string(),
        ),
    ];
    let lines = lines
        .into_iter()
        .filter(|l| l.expected != l.found)
        .collect();
    Err(Divergence::from_lines(
        Invariant::SeqnoAssignment,
        None,
        detail,
        lines,
    ))
}
