//! Divergence reports are readable: the exact text of one is pinned, keys
//! that are not text print as hex, long diffs are cut and counted.

mod common;

use common::{basic, edit, key, store};
use oracle::{Doc, Invariant, Model, MAX_DIFF_LINES};

#[test]
fn the_report_of_a_resurrected_delete_reads_exactly_so() {
    let mut s = basic();
    s.crash();
    let tip = edit(&s.at(4), |docs| {
        docs.insert(key("a"), Doc::live("1", 1));
    });
    let divergence = s.model.check(&store(&[&s.at(2), &tip])).unwrap_err();
    let expected = r#"divergence [no-resurrection]: a delete is never undone; a tombstone vanishes only under the purge rule
  header: #0 of 2 (newest): update_seq 4, purge_seq 0, timestamp 20
  detail: key "a" was deleted at seqno 3 (acknowledged) but reads live at seqno 1
  diff (1 of 1):
    key "a": expected tombstone @3, found "1" @1
  sha256 expected 3255f0441da3c513cf766b5f55e65af2c3158e4f6729e437537f0d9078f8f734
  sha256 found    387e66c8f991b9b3fac4e15032dafcc7287a01b82a24e15b11d030f02dbf2225"#;
    assert_eq!(divergence.to_string(), expected);
    assert_eq!(divergence.invariant.name(), "no-resurrection");
    // The digests are those of the right header and of the one found.
    assert_eq!(divergence.expected_sha256, s.at(4).sha256());
    assert_eq!(divergence.found_sha256, tip.sha256());
}

#[test]
fn binary_keys_print_as_hex_and_long_values_are_cut() {
    let mut model = Model::new();
    model.set(&[0x00, 0xff], &[b'x'; 40]);
    model.flush_started(1);
    model.flush_acked(1, 1).unwrap();
    model.crash();
    let divergence = model.check(&Default::default()).unwrap_err();
    assert_eq!(divergence.invariant, Invariant::Durability);
    let line = &divergence.diff[1];
    assert_eq!(line.subject, "key 0x00ff");
    assert_eq!(
        line.expected,
        format!("\"{}\"... (40 bytes) @1", "x".repeat(32))
    );
    assert_eq!(line.found, "absent");
}

#[test]
fn a_long_diff_shows_the_first_keys_and_counts_all() {
    let mut model = Model::new();
    for index in 0..20u8 {
        model.set(&[b'k', b'a' + index], b"v");
    }
    model.flush_started(1);
    model.flush_acked(20, 1).unwrap();
    model.crash();
    let divergence = model.check(&Default::default()).unwrap_err();
    assert_eq!(divergence.diff.len(), MAX_DIFF_LINES);
    assert_eq!(divergence.diff_total, 21, "update_seq and 20 keys");
    assert_eq!(divergence.diff[1].subject, "key \"ka\"");
    assert!(divergence.to_string().contains("diff (8 of 21):"));
}
