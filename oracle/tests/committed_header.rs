//! `Model::check_committed_header`: one header read from a damaged copy of
//! the store must be exactly an acknowledged committed state.

mod common;

use common::{basic, edit, key};
use oracle::{Doc, Invariant};

#[test]
fn every_acknowledged_state_passes() {
    let s = basic();
    for update_seq in [2, 4] {
        let header = s.at(update_seq);
        s.model
            .check_committed_header(&header, 0, 1)
            .unwrap_or_else(|d| panic!("the committed state {update_seq} was rejected:\n{d}"));
    }
}

#[test]
fn a_changed_value_is_rejected_as_header_history() {
    let s = basic();
    let header = edit(&s.at(4), |docs| {
        let seqno = docs[&key("a")].seqno;
        docs.insert(key("a"), Doc::live("forged", seqno));
    });
    let d = s
        .model
        .check_committed_header(&header, 1, 2)
        .expect_err("a header whose value no flush wrote must be rejected");
    assert_eq!(d.invariant, Invariant::HeaderHistory);
    assert!(d.to_string().contains("forged"), "{d}");
}

#[test]
fn an_update_seq_no_flush_acknowledged_is_rejected() {
    let mut s = basic();
    s.set("z", "1");
    // Written, never acknowledged.
    let in_flight = s.start_flush(50);
    let d = s
        .model
        .check_committed_header(&in_flight, 0, 1)
        .expect_err("an unacknowledged commit is no committed state");
    assert_eq!(d.invariant, Invariant::HeaderHistory);
    assert!(d.detail.contains("no acknowledged flush"), "{d}");
}

#[test]
fn a_wrong_timestamp_is_rejected() {
    let s = basic();
    let mut header = s.at(2);
    header.timestamp_secs += 1;
    let d = s
        .model
        .check_committed_header(&header, 0, 1)
        .expect_err("the committed state carries its flush's timestamp");
    assert_eq!(d.invariant, Invariant::HeaderHistory);
}
