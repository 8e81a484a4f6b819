//! Every outcome a correct engine may show is accepted, and the report says
//! which one it was.

mod common;

use common::{basic, compaction, derived, pitr_history, purged, store, with_files, Script};
use oracle::{CompactionOutcome, CompactionParams, InFlight, Model, Pitr, RecoveredStore, State};

#[test]
fn acknowledged_history_survives_a_crash() {
    let mut s = basic();
    s.crash();
    let report = s.model.check(&s.file(&[2, 4])).unwrap();
    assert_eq!(report.tip_update_seq, 4);
    assert_eq!(report.in_flight, InFlight::Nothing);
    assert_eq!(report.compaction, CompactionOutcome::NotRunning);
}

#[test]
fn a_clean_reopen_needs_no_crash_event() {
    let mut s = basic();
    s.model.check(&s.file(&[2, 4])).unwrap();
}

#[test]
fn an_in_flight_commit_may_land_or_not_and_the_report_says_which() {
    let mut s = basic();
    s.set("d", "1");
    s.start_flush(30);
    s.crash();
    let mut lost = s.model.clone();
    let report = lost.check(&s.file(&[2, 4])).unwrap();
    assert_eq!(report.in_flight, InFlight::Lost { update_seq: 5 });
    assert_eq!(
        report.to_string(),
        "recovered update_seq 4; the in-flight commit 5 was lost"
    );
    let mut landed = s.model.clone();
    let report = landed.check(&s.file(&[2, 4, 5])).unwrap();
    assert_eq!(report.in_flight, InFlight::Landed { update_seq: 5 });
    assert_eq!(landed.tip_update_seq(), 5);
}

#[test]
fn a_failed_flush_may_land_or_not() {
    let mut s = basic();
    s.set("d", "1");
    s.start_flush(30);
    s.model.flush_failed();
    let mut lost = s.model.clone();
    assert_eq!(
        lost.check(&s.file(&[2, 4])).unwrap().in_flight,
        InFlight::Lost { update_seq: 5 }
    );
    let mut landed = s.model.clone();
    assert_eq!(
        landed.check(&s.file(&[2, 4, 5])).unwrap().in_flight,
        InFlight::Landed { update_seq: 5 }
    );
}

#[test]
fn queued_mutations_are_invisible_and_lost_and_seqnos_restart_after_the_tip() {
    let mut s = basic();
    s.set("x", "queued");
    assert_eq!(s.model.expected_get(b"x"), None);
    assert_eq!(s.model.next_seqno(), 6);
    s.crash();
    s.model.check(&s.file(&[2, 4])).unwrap();
    s.recovered_at(4);
    assert_eq!(s.model.next_seqno(), 5);
    assert_eq!(s.set("y", "1"), 5);
    s.flush(30);
    s.crash();
    s.model.check(&s.file(&[2, 4, 5])).unwrap();
}

#[test]
fn seqnos_of_a_lost_in_flight_commit_are_given_again() {
    let mut s = basic();
    s.set("d", "1");
    s.start_flush(30);
    s.crash();
    s.model.check(&s.file(&[2, 4])).unwrap();
    s.recovered_at(4);
    assert_eq!(s.set("e", "1"), 5);
    s.flush(31);
    s.crash();
    s.model.check(&s.file(&[2, 4, 5])).unwrap();
}

#[test]
fn reads_see_the_acknowledged_state() {
    let mut s = basic();
    assert_eq!(s.model.expected_get(b"a"), None, "deleted");
    assert_eq!(s.model.expected_get(b"b"), Some(&b"1"[..]));
    assert_eq!(s.model.tip_update_seq(), 4);
    assert!(s.model.expected_state()[&b"a"[..]].deleted);
    s.set("b", "2");
    s.start_flush(30);
    assert_eq!(s.model.expected_get(b"b"), Some(&b"1"[..]), "in flight");
    s.model.flush_acked(5, 30).unwrap();
    assert_eq!(s.model.expected_get(b"b"), Some(&b"2"[..]));
}

#[test]
fn a_later_mutation_in_a_batch_replaces_the_earlier_one() {
    let mut s = Script::new();
    s.set("k", "1");
    s.set("k", "2");
    s.delete("gone");
    let header = s.flush(10);
    assert_eq!(header.update_seq, 3);
    assert_eq!(header.docs[&b"k"[..]].seqno, 2);
    assert!(
        header.docs[&b"gone"[..]].deleted,
        "a delete of a new key writes a tombstone"
    );
    s.crash();
    s.model.check(&s.file(&[3])).unwrap();
}

#[test]
fn a_fresh_store_may_have_no_header_or_an_initial_one() {
    let mut model = Model::new();
    model.crash();
    let report = model.check(&RecoveredStore::default()).unwrap();
    assert_eq!(report.tip_update_seq, 0);
    let mut model = Model::with_initial_header(7);
    model.crash();
    model
        .check(&store(&[&derived(0, 0, 7, State::new())]))
        .unwrap();
}

#[test]
fn a_purged_tombstone_may_be_absent_or_present() {
    let mut s = basic();
    s.model.compaction_started(compaction(Some(4), None, 30));
    s.model.compaction_switched();
    s.crash();
    let h4 = s.at(4);
    for header in [
        purged(&h4, 3),
        purged(&h4, 0),
        derived(4, 3, 20, h4.docs.clone()),
    ] {
        let mut model = s.model.clone();
        model.check(&store(&[&header])).unwrap();
    }
}

#[test]
fn a_plain_compaction_writes_h0_any_catch_up_rounds_and_the_tip() {
    let mut s = basic();
    s.model.compaction_started(compaction(None, None, 30));
    s.set("e", "1");
    s.flush(30);
    s.set("f", "1");
    s.flush(40);
    s.model.compaction_switched();
    s.set("g", "1");
    s.flush(50);
    s.crash();
    for file in [&[4, 6, 7][..], &[4, 5, 6, 7]] {
        let mut model = s.model.clone();
        model.check(&s.file(file)).unwrap();
    }
}

#[test]
fn a_cut_compaction_may_leave_either_file_and_the_revision_says_which() {
    let mut s = basic();
    s.model
        .check_live(&with_files(s.file(&[2, 4]), &["db.couch.1"]))
        .unwrap();
    s.model.compaction_started(compaction(Some(4), None, 30));
    s.set("e", "1");
    s.flush(30);
    s.crash();
    let old = s.file(&[2, 4, 5]);
    let new = store(&[&purged(&s.at(4), 3), &purged(&s.at(5), 3)]);
    let mut model = s.model.clone();
    let report = model.check(&old).unwrap();
    assert_eq!(report.compaction, CompactionOutcome::OldFile);
    let mut model = s.model.clone();
    let report = model.check(&new).unwrap();
    assert_eq!(report.compaction, CompactionOutcome::NewFile);
    assert_eq!(
        report.to_string(),
        "recovered update_seq 5; no flush in flight; the cut compaction's file won"
    );
    // With the directory listed, each file must come with its revision.
    let mut model = s.model.clone();
    model
        .check(&with_files(new.clone(), &["db.couch.2", "lock"]))
        .unwrap();
    let mut model = s.model.clone();
    model.check(&with_files(old, &["db.couch.1"])).unwrap();
    let mut model = s.model.clone();
    let divergence = model.check(&with_files(new, &["db.couch.1"])).unwrap_err();
    // Revision 1 is the old file, which never had a purge.
    assert_eq!(divergence.invariant.name(), "purge-policy");
}

#[test]
fn a_completed_switch_advances_the_revision() {
    let mut s = basic();
    s.model
        .check_live(&with_files(s.file(&[2, 4]), &["db.couch.1"]))
        .unwrap();
    s.model.compaction_started(compaction(None, None, 30));
    s.model.compaction_switched();
    s.crash();
    s.model
        .check(&with_files(s.file(&[4]), &["db.couch.2"]))
        .unwrap();
}

#[test]
fn pitr_keeps_the_base_and_the_last_header_of_each_window() {
    let mut s = pitr_history();
    s.model.compaction_switched();
    s.crash();
    s.model.check(&s.file(&[4, 6, 7])).unwrap();
    s.set("k8", "v");
    s.flush(60);
    s.crash();
    s.model.check(&s.file(&[4, 6, 7, 8])).unwrap();
}

#[test]
fn a_cut_pitr_compaction_may_leave_either_file() {
    let mut s = pitr_history();
    s.crash();
    let mut model = s.model.clone();
    let report = model.check(&s.file(&[1, 2, 3, 4, 5, 6, 7])).unwrap();
    assert_eq!(report.compaction, CompactionOutcome::OldFile);
    let report = s.model.check(&s.file(&[4, 6, 7])).unwrap();
    assert_eq!(report.compaction, CompactionOutcome::NewFile);
}

#[test]
fn pitr_with_no_header_before_the_cutoff_starts_from_the_oldest() {
    let mut s = Script::new();
    for (index, timestamp) in [101, 104, 115].into_iter().enumerate() {
        s.set(&format!("k{index}"), "v");
        s.flush(timestamp);
    }
    s.model.compaction_started(CompactionParams {
        purge_upto: None,
        pitr: Some(Pitr {
            granularity_secs: 10,
            max_age_secs: 50,
        }),
        now_secs: 120,
    });
    s.model.compaction_switched();
    s.crash();
    // Cutoff 70: no header before it, so base is u1 (t101, window 10), which
    // u2 (t104) replaces in its window; u3 (t115) is alone in window 11.
    s.model.check(&s.file(&[2, 3])).unwrap();
}

#[test]
fn check_live_accepts_a_running_store_mid_compaction() {
    let mut s = basic();
    s.model
        .check_live(&with_files(s.file(&[2, 4]), &["db.couch.1"]))
        .unwrap();
    s.model.compaction_started(compaction(None, None, 30));
    s.set("e", "1");
    s.flush(30);
    s.model
        .check_live(&with_files(
            s.file(&[2, 4, 5]),
            &["db.couch.1", "db.couch.2.compact"],
        ))
        .unwrap();
    s.model.compaction_switched();
    // The live check fixes which catch-up rounds wrote a header.
    s.model
        .check_live(&with_files(s.file(&[4, 5]), &["db.couch.2"]))
        .unwrap();
}

#[test]
fn an_aborted_compaction_leaves_the_old_file() {
    let mut s = basic();
    s.model.compaction_started(compaction(Some(4), None, 30));
    s.model.compaction_aborted();
    s.crash();
    s.model.check(&s.file(&[2, 4])).unwrap();
}

/// Every read of the last acknowledged state passes: get, scan of a range,
/// changes since any seqno.
#[test]
fn reads_of_the_acknowledged_state_pass() {
    let s = common::basic();
    let tip = s.at(4);
    s.model
        .check_read("scan", |_| true, &tip.docs, 0)
        .expect("a full scan of the tip");
    let c: oracle::State = tip
        .docs
        .iter()
        .filter(|(k, _)| k.as_slice() == b"c")
        .map(|(k, d)| (k.clone(), d.clone()))
        .collect();
    s.model
        .check_read("get", |k| k == b"c", &c, 0)
        .expect("a get of the tip");
    for since in 0..=4 {
        let found: Vec<_> = tip
            .by_seq
            .iter()
            .filter(|e| e.seqno > since)
            .cloned()
            .collect();
        s.model
            .check_changes_since(since, &found, 0)
            .unwrap_or_else(|d| panic!("changes since {since}:\n{d}"));
    }
}

#[test]
fn local_documents_follow_their_commits_through_a_compaction() {
    let mut s = basic();
    s.local("_local/ckpt", Some("1"));
    s.local("_local/other", Some("x"));
    let h6 = s.flush(25);
    assert_eq!(h6.update_seq, 6, "a local change takes a seqno");
    s.model.compaction_started(compaction(None, None, 30));
    s.local("_local/ckpt", None);
    s.flush(30);
    s.model.compaction_switched();
    let expected: oracle::Locals = [(b"_local/other".to_vec(), b"x".to_vec())]
        .into_iter()
        .collect();
    assert_eq!(s.model.expected_locals(), &expected);
    s.model
        .check_local_read("locals", |_| true, &expected)
        .unwrap();
    s.crash();
    // The new file: H0 and the tip.
    s.model.check(&s.file(&[6, 7])).unwrap();
}
