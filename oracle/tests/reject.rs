//! Every kind of wrong store is rejected, under the right invariant. Each
//! scenario returns its divergence; `every_invariant_has_a_rejecting_test`
//! runs them all, so a check that stops firing cannot stay green.

mod common;

use std::collections::BTreeSet;

use common::{
    basic, compaction, derived, edit, edit_locals, key, pitr_history, purged, store, with_files,
    Script,
};
use oracle::{Divergence, Doc, Invariant, Model, RecoveredStore};

/// Runs `check` on the store `build` makes from the script's commits.
fn checked(mut s: Script, build: impl FnOnce(&Script) -> RecoveredStore) -> Divergence {
    let store = build(&s);
    s.model
        .check(&store)
        .expect_err("the store must be rejected")
}

// --- the tip ---------------------------------------------------------------

fn lost_acked_flush() -> Divergence {
    let mut s = basic();
    s.crash();
    checked(s, |s| s.file(&[2]))
}

fn lost_store() -> Divergence {
    let mut s = basic();
    s.crash();
    checked(s, |_| RecoveredStore::default())
}

fn acked_mutation_lost_under_the_right_update_seq() -> Divergence {
    let mut s = basic();
    s.crash();
    let tip = edit(&s.at(4), |docs| {
        docs.remove(&key("c"));
    });
    checked(s, |s| store(&[&s.at(2), &tip]))
}

fn partial_batch() -> Divergence {
    let mut s = basic();
    s.set("d", "1");
    s.set("e", "1");
    let h6 = s.start_flush(30);
    s.crash();
    let tip = edit(&h6, |docs| {
        docs.remove(&key("e"));
    });
    checked(s, |s| store(&[&s.at(2), &s.at(4), &tip]))
}

fn partial_batch_mid_update_seq() -> Divergence {
    let mut s = basic();
    s.set("d", "1");
    s.set("e", "1");
    let h6 = s.start_flush(30);
    s.crash();
    let mut docs = h6.docs.clone();
    docs.remove(&key("e"));
    let tip = derived(5, 0, 30, docs);
    checked(s, |s| store(&[&s.at(2), &s.at(4), &tip]))
}

fn hole() -> Divergence {
    let mut s = basic();
    s.crash();
    let tip = edit(&s.at(4), |docs| {
        docs.remove(&key("b"));
    });
    checked(s, |s| store(&[&s.at(2), &tip]))
}

fn resurrected_delete() -> Divergence {
    let mut s = basic();
    s.crash();
    let tip = edit(&s.at(4), |docs| {
        docs.insert(key("a"), Doc::live("1", 1));
    });
    checked(s, |s| store(&[&s.at(2), &tip]))
}

fn tombstone_purged_above_purge_seq() -> Divergence {
    let mut s = basic();
    s.model.compaction_started(compaction(Some(2), None, 30));
    s.model.compaction_switched();
    s.crash();
    let tip = edit(&s.at(4), |docs| {
        docs.remove(&key("a"));
    });
    let tip = derived(4, 2, 20, tip.docs);
    checked(s, |_| store(&[&tip]))
}

fn compaction_loses_catch_up_mutations() -> Divergence {
    let mut s = basic();
    s.model.compaction_started(compaction(None, None, 30));
    s.set("e", "1");
    s.flush(30);
    s.model.compaction_switched();
    s.crash();
    let tip = edit(&s.at(5), |docs| {
        docs.remove(&key("e"));
    });
    checked(s, |s| store(&[&s.at(4), &tip]))
}

/// u2, then a local document set (5) and removed (6) while a compaction
/// runs; the compaction switches at 6.
fn local_history() -> Script {
    let mut s = basic();
    s.local("_local/ckpt", Some("1"));
    s.flush(25);
    s.model.compaction_started(compaction(None, None, 30));
    s.local("_local/ckpt", None);
    s.flush(30);
    s.model.compaction_switched();
    s
}

/// The compaction's catch-up carried the local document but not its
/// removal: it is back in the new file's tip.
fn local_removal_lost_by_catch_up() -> Divergence {
    let mut s = local_history();
    s.crash();
    let tip = edit_locals(&s.at(6), |locals| {
        locals.insert(key("_local/ckpt"), key("1"));
    });
    checked(s, |s| store(&[&s.at(5), &tip]))
}

/// An acknowledged local document is missing from the recovered tip.
fn acked_local_lost() -> Divergence {
    let mut s = basic();
    s.local("_local/ckpt", Some("1"));
    s.flush(25);
    s.crash();
    let tip = edit_locals(&s.at(5), |locals| {
        locals.clear();
    });
    checked(s, |s| store(&[&s.at(2), &s.at(4), &tip]))
}

/// An older header shows a local document's later value.
fn older_header_has_a_newer_local() -> Divergence {
    let mut s = basic();
    s.local("_local/ckpt", Some("1"));
    s.flush(25);
    s.local("_local/ckpt", Some("2"));
    s.flush(26);
    s.crash();
    let old = edit_locals(&s.at(5), |locals| {
        locals.insert(key("_local/ckpt"), key("2"));
    });
    checked(s, |s| store(&[&s.at(2), &s.at(4), &old, &s.at(6)]))
}

/// A local-document read returns a value that was never acknowledged.
fn stale_local_read() -> Divergence {
    let mut s = basic();
    s.local("_local/ckpt", Some("1"));
    s.flush(25);
    s.local("_local/ckpt", Some("2"));
    let found = [(key("_local/ckpt"), key("2"))].into_iter().collect();
    s.model
        .check_local_read("get_local", |n| n == b"_local/ckpt", &found)
        .expect_err("a queued value must not be read")
}

/// A tip a check saw (here an in-flight commit that landed) is durable from
/// then on: a later crash may not go back before it.
fn adopted_tip_regresses() -> Divergence {
    let mut s = basic();
    s.set("d", "1");
    s.start_flush(30);
    s.crash();
    s.model.check(&s.file(&[2, 4, 5])).unwrap();
    s.crash();
    checked(s, |s| s.file(&[2, 4]))
}

// --- each header on its own ------------------------------------------------

fn by_seq_disagreement() -> Divergence {
    let mut s = basic();
    s.crash();
    let mut tip = s.at(4);
    let entry = tip.by_seq.iter_mut().find(|e| e.key == key("a")).unwrap();
    entry.deleted = false;
    checked(s, |s| store(&[&s.at(2), &tip]))
}

fn by_seq_out_of_order() -> Divergence {
    let mut s = basic();
    s.crash();
    let mut tip = s.at(4);
    tip.by_seq.swap(0, 1);
    checked(s, |s| store(&[&s.at(2), &tip]))
}

fn by_seq_missing_entry() -> Divergence {
    let mut s = basic();
    s.crash();
    let mut older = s.at(2);
    older.by_seq.pop();
    checked(s, |s| store(&[&older, &s.at(4)]))
}

fn counter_mismatch() -> Divergence {
    let mut s = basic();
    s.crash();
    let mut tip = s.at(4);
    tip.counters.live += 1;
    checked(s, |s| store(&[&s.at(2), &tip]))
}

fn headers_out_of_order() -> Divergence {
    let mut s = basic();
    s.crash();
    checked(s, |s| store(&[&s.at(4), &s.at(2)]))
}

fn doc_newer_than_its_header() -> Divergence {
    let mut s = basic();
    s.crash();
    let mut tip = edit(&s.at(4), |docs| {
        docs.insert(key("z"), Doc::live("1", 9));
    });
    tip.update_seq = 4;
    checked(s, |s| store(&[&s.at(2), &tip]))
}

// --- across crashes and switches -------------------------------------------

fn purge_seq_goes_backwards() -> Divergence {
    let mut s = basic();
    s.model.compaction_started(compaction(Some(4), None, 30));
    s.model.compaction_switched();
    s.crash();
    s.model.check(&store(&[&purged(&s.at(4), 3)])).unwrap();
    s.crash();
    checked(s, |s| store(&[&s.at(4)]))
}

fn purge_seq_beyond_policy() -> Divergence {
    let mut s = basic();
    s.model.compaction_started(compaction(Some(2), None, 30));
    s.model.compaction_switched();
    s.crash();
    checked(s, |s| store(&[&purged(&s.at(4), 3)]))
}

fn seqno_reused_in_ack() -> Divergence {
    let mut s = basic();
    s.set("d", "1");
    s.start_flush(30);
    s.model.flush_acked(4, 30).unwrap_err()
}

fn wrong_timestamp_in_ack() -> Divergence {
    let mut s = basic();
    s.set("d", "1");
    s.start_flush(30);
    s.model.flush_acked(5, 31).unwrap_err()
}

// --- the header list -------------------------------------------------------

fn older_header_wrong() -> Divergence {
    let mut s = basic();
    s.crash();
    let older = edit(&s.at(2), |docs| {
        docs.insert(key("b"), Doc::live("x", 2));
    });
    checked(s, |s| store(&[&older, &s.at(4)]))
}

fn acked_header_missing_from_the_list() -> Divergence {
    let mut s = basic();
    s.set("d", "1");
    s.flush(30);
    s.crash();
    checked(s, |s| s.file(&[2, 5]))
}

fn unexplained_header() -> Divergence {
    let mut s = basic();
    s.crash();
    let invented = derived(3, 0, 15, s.at(2).docs);
    checked(s, |s| store(&[&s.at(2), &invented, &s.at(4)]))
}

fn initial_header_missing() -> Divergence {
    let mut model = Model::with_initial_header(0);
    model.crash();
    model.check(&RecoveredStore::default()).unwrap_err()
}

fn compaction_drops_h0() -> Divergence {
    let mut s = basic();
    s.model.compaction_started(compaction(None, None, 30));
    s.set("e", "1");
    s.flush(30);
    s.model.compaction_switched();
    s.crash();
    checked(s, |s| s.file(&[5]))
}

fn wrong_pitr_header() -> Divergence {
    let mut s = pitr_history();
    s.model.compaction_switched();
    s.crash();
    let h6 = edit(&s.at(6), |docs| {
        docs.remove(&key("k5"));
    });
    checked(s, |s| store(&[&s.at(4), &h6, &s.at(7)]))
}

fn wrong_pitr_timestamp() -> Divergence {
    let mut s = pitr_history();
    s.model.compaction_switched();
    s.crash();
    let mut h6 = s.at(6);
    h6.timestamp_secs = 38;
    checked(s, |s| store(&[&s.at(4), &h6, &s.at(7)]))
}

fn extra_pitr_header() -> Divergence {
    let mut s = pitr_history();
    s.model.compaction_switched();
    s.crash();
    checked(s, |s| s.file(&[4, 5, 6, 7]))
}

fn missing_pitr_base() -> Divergence {
    let mut s = pitr_history();
    s.model.compaction_switched();
    s.crash();
    checked(s, |s| s.file(&[6, 7]))
}

fn pitr_history_not_dropped() -> Divergence {
    let mut s = pitr_history();
    s.model.compaction_switched();
    s.crash();
    checked(s, |s| s.file(&[3, 4, 6, 7]))
}

// --- files -----------------------------------------------------------------

fn compact_file_survives_open() -> Divergence {
    let mut s = basic();
    s.crash();
    let listed = with_files(s.file(&[2, 4]), &["db.couch.1", "db.couch.2.compact"]);
    checked(s, |_| listed)
}

fn two_revisions() -> Divergence {
    let mut s = basic();
    s.crash();
    let listed = with_files(s.file(&[2, 4]), &["db.couch.1", "db.couch.2"]);
    checked(s, |_| listed)
}

fn switch_undone_by_the_crash() -> Divergence {
    let mut s = basic();
    s.model
        .check_live(&with_files(s.file(&[2, 4]), &["db.couch.1"]))
        .unwrap();
    s.model.compaction_started(compaction(None, None, 30));
    s.model.compaction_switched();
    s.crash();
    checked(s, |s| with_files(s.file(&[2, 4]), &["db.couch.1"]))
}

// ---------------------------------------------------------------------------

type Scenario = (&'static str, fn() -> Divergence, Invariant);

// --- reads ---------------------------------------------------------------

/// A get that returns an older version of a key.
fn stale_get() -> Divergence {
    let s = basic();
    let mut found = s.at(4).docs;
    found.insert(key("c"), Doc::live("0", 1));
    let found = found.into_iter().filter(|(k, _)| *k == key("c")).collect();
    s.model
        .check_read("get", |k| k == key("c").as_slice(), &found, 0)
        .expect_err("a stale get must be rejected")
}

/// A scan that misses a key the last acknowledged state has.
fn scan_misses_a_key() -> Divergence {
    let s = basic();
    let mut found = s.at(4).docs;
    found.remove(&key("b"));
    s.model
        .check_read("scan", |_| true, &found, 0)
        .expect_err("a scan missing a key must be rejected")
}

/// changes_since that leaves out the newest change.
fn changes_since_misses_the_newest() -> Divergence {
    let s = basic();
    let mut found = s.at(4).by_seq;
    found.retain(|e| e.seqno > 2);
    found.pop();
    s.model
        .check_changes_since(2, &found, 0)
        .expect_err("missing the newest change must be rejected")
}

const SCENARIOS: &[Scenario] = &[
    ("lost_acked_flush", lost_acked_flush, Invariant::Durability),
    ("lost_store", lost_store, Invariant::Durability),
    (
        "acked_mutation_lost_under_the_right_update_seq",
        acked_mutation_lost_under_the_right_update_seq,
        Invariant::Durability,
    ),
    ("partial_batch", partial_batch, Invariant::AtomicCommit),
    (
        "partial_batch_mid_update_seq",
        partial_batch_mid_update_seq,
        Invariant::AtomicCommit,
    ),
    (
        "adopted_tip_regresses",
        adopted_tip_regresses,
        Invariant::Durability,
    ),
    ("hole", hole, Invariant::NoHoles),
    (
        "resurrected_delete",
        resurrected_delete,
        Invariant::NoResurrection,
    ),
    (
        "tombstone_purged_above_purge_seq",
        tombstone_purged_above_purge_seq,
        Invariant::NoResurrection,
    ),
    (
        "compaction_loses_catch_up_mutations",
        compaction_loses_catch_up_mutations,
        Invariant::CompactionIdentity,
    ),
    (
        "by_seq_disagreement",
        by_seq_disagreement,
        Invariant::IndexAgreement,
    ),
    (
        "by_seq_out_of_order",
        by_seq_out_of_order,
        Invariant::IndexAgreement,
    ),
    (
        "by_seq_missing_entry",
        by_seq_missing_entry,
        Invariant::IndexAgreement,
    ),
    ("counter_mismatch", counter_mismatch, Invariant::Counters),
    (
        "headers_out_of_order",
        headers_out_of_order,
        Invariant::MonotonicSeqno,
    ),
    (
        "doc_newer_than_its_header",
        doc_newer_than_its_header,
        Invariant::MonotonicSeqno,
    ),
    (
        "purge_seq_goes_backwards",
        purge_seq_goes_backwards,
        Invariant::MonotonicSeqno,
    ),
    (
        "purge_seq_beyond_policy",
        purge_seq_beyond_policy,
        Invariant::PurgePolicy,
    ),
    (
        "seqno_reused_in_ack",
        seqno_reused_in_ack,
        Invariant::SeqnoAssignment,
    ),
    (
        "wrong_timestamp_in_ack",
        wrong_timestamp_in_ack,
        Invariant::SeqnoAssignment,
    ),
    (
        "older_header_wrong",
        older_header_wrong,
        Invariant::HeaderHistory,
    ),
    (
        "acked_header_missing_from_the_list",
        acked_header_missing_from_the_list,
        Invariant::HeaderList,
    ),
    (
        "unexplained_header",
        unexplained_header,
        Invariant::HeaderList,
    ),
    (
        "initial_header_missing",
        initial_header_missing,
        Invariant::HeaderList,
    ),
    (
        "compaction_drops_h0",
        compaction_drops_h0,
        Invariant::HeaderList,
    ),
    (
        "wrong_pitr_header",
        wrong_pitr_header,
        Invariant::PitrHistory,
    ),
    (
        "wrong_pitr_timestamp",
        wrong_pitr_timestamp,
        Invariant::PitrHistory,
    ),
    (
        "extra_pitr_header",
        extra_pitr_header,
        Invariant::PitrWindows,
    ),
    (
        "missing_pitr_base",
        missing_pitr_base,
        Invariant::PitrWindows,
    ),
    (
        "pitr_history_not_dropped",
        pitr_history_not_dropped,
        Invariant::PitrWindows,
    ),
    (
        "compact_file_survives_open",
        compact_file_survives_open,
        Invariant::SingleAuthority,
    ),
    ("two_revisions", two_revisions, Invariant::SingleAuthority),
    (
        "switch_undone_by_the_crash",
        switch_undone_by_the_crash,
        Invariant::SingleAuthority,
    ),
    ("stale_get", stale_get, Invariant::ReadsMatch),
    (
        "scan_misses_a_key",
        scan_misses_a_key,
        Invariant::ReadsMatch,
    ),
    (
        "changes_since_misses_the_newest",
        changes_since_misses_the_newest,
        Invariant::ReadsMatch,
    ),
    ("stale_local_read", stale_local_read, Invariant::ReadsMatch),
    (
        "local_removal_lost_by_catch_up",
        local_removal_lost_by_catch_up,
        Invariant::LocalDocs,
    ),
    ("acked_local_lost", acked_local_lost, Invariant::LocalDocs),
    (
        "older_header_has_a_newer_local",
        older_header_has_a_newer_local,
        Invariant::HeaderHistory,
    ),
];

fn run(name: &str) {
    let (_, scenario, invariant) = SCENARIOS.iter().find(|(n, ..)| *n == name).unwrap();
    let divergence = scenario();
    assert_eq!(
        divergence.invariant, *invariant,
        "{name} broke the wrong invariant:\n{divergence}"
    );
    assert_eq!(divergence.invariant.name(), invariant.name());
}

macro_rules! rejects {
    ($($name:ident),* $(,)?) => {
        mod rejects {
            $(#[test] fn $name() { super::run(stringify!($name)); })*
        }
    };
}

rejects!(
    lost_acked_flush,
    lost_store,
    acked_mutation_lost_under_the_right_update_seq,
    partial_batch,
    partial_batch_mid_update_seq,
    adopted_tip_regresses,
    hole,
    resurrected_delete,
    tombstone_purged_above_purge_seq,
    compaction_loses_catch_up_mutations,
    by_seq_disagreement,
    by_seq_out_of_order,
    by_seq_missing_entry,
    counter_mismatch,
    headers_out_of_order,
    doc_newer_than_its_header,
    purge_seq_goes_backwards,
    purge_seq_beyond_policy,
    seqno_reused_in_ack,
    wrong_timestamp_in_ack,
    older_header_wrong,
    acked_header_missing_from_the_list,
    unexplained_header,
    initial_header_missing,
    compaction_drops_h0,
    wrong_pitr_header,
    wrong_pitr_timestamp,
    extra_pitr_header,
    missing_pitr_base,
    pitr_history_not_dropped,
    compact_file_survives_open,
    two_revisions,
    switch_undone_by_the_crash,
    stale_local_read,
    local_removal_lost_by_catch_up,
    acked_local_lost,
    older_header_has_a_newer_local,
);

#[test]
fn every_invariant_has_a_rejecting_test() {
    let covered: BTreeSet<Invariant> = SCENARIOS.iter().map(|(.., i)| *i).collect();
    let all: BTreeSet<Invariant> = Invariant::ALL.into_iter().collect();
    assert_eq!(covered, all);
    for (name, scenario, invariant) in SCENARIOS {
        assert_eq!(scenario().invariant, *invariant, "{name}");
    }
}

#[test]
fn different_states_have_different_digests_and_names_are_unique() {
    let divergence = hole();
    assert_ne!(divergence.expected_sha256, divergence.found_sha256);
    assert_eq!(divergence.expected_sha256.len(), 64);
    let names: BTreeSet<&str> = Invariant::ALL.iter().map(|i| i.name()).collect();
    assert_eq!(names.len(), Invariant::ALL.len());
}

#[test]
#[ignore]
fn print_all_reports() {
    for (name, scenario, _) in SCENARIOS {
        println!("== {name}\n{}\n", scenario());
    }
}
