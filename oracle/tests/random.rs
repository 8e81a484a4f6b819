//! Seeded random histories of sets, deletes, flushes, failed flushes and
//! crashes. The script computes what a correct engine's file holds; every
//! outcome it allows must be accepted, and a store spoiled in one place must
//! be rejected, under the invariant that place belongs to.

mod common;

use common::{edit, store, Script};
use oracle::{Doc, InFlight, Invariant, RecoveredHeader, RecoveredStore};

/// xorshift64*: enough randomness for histories, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    fn coin(&mut self) -> bool {
        self.below(2) == 0
    }
}

fn file_of(headers: &[RecoveredHeader]) -> RecoveredStore {
    store(&headers.iter().collect::<Vec<_>>())
}

/// Spoils the recovered file in one place and checks that a copy of the
/// model rejects it.
fn assert_spoiled_files_rejected(s: &Script, headers: &[RecoveredHeader], tip_acked: bool) {
    let reject = |spoiled: Vec<RecoveredHeader>| {
        let mut model = s.model.clone();
        model
            .check(&file_of(&spoiled))
            .expect_err("a spoiled store")
    };
    let Some(tip) = headers.last() else { return };
    let older = &headers[..headers.len() - 1];
    if let Some((newest_key, _)) = tip.docs.iter().max_by_key(|(_, d)| d.seqno) {
        let spoiled = edit(tip, |docs| {
            docs.remove(newest_key);
        });
        reject([older, &[spoiled]].concat());
        let spoiled = edit(tip, |docs| {
            let doc = docs.get_mut(newest_key).unwrap();
            *doc = Doc::live("spoiled", doc.seqno);
        });
        reject([older, &[spoiled]].concat());
        let mut spoiled = tip.clone();
        spoiled.by_seq.last_mut().unwrap().deleted ^= true;
        let divergence = reject([older, &[spoiled]].concat());
        assert_eq!(divergence.invariant, Invariant::IndexAgreement);
    }
    if tip_acked && tip.update_seq > 0 {
        let divergence = reject(older.to_vec());
        assert_eq!(divergence.invariant, Invariant::Durability, "{divergence}");
    }
    if let Some(first) = older.first().filter(|h| !h.docs.is_empty()) {
        let spoiled = edit(first, |docs| {
            let doc = docs.values_mut().next().unwrap();
            *doc = Doc::live("spoiled", doc.seqno);
        });
        let divergence = reject([&[spoiled], &headers[1..]].concat());
        assert_eq!(
            divergence.invariant,
            Invariant::HeaderHistory,
            "{divergence}"
        );
    }
}

fn run(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut s = Script::new();
    let mut timestamp_secs = 0;
    for _ in 0..80 {
        let name = format!("k{}", rng.below(6));
        match rng.below(12) {
            0..=4 => {
                let value = format!("v{}", rng.below(100));
                s.set(&name, &value);
            }
            5..=6 => {
                s.delete(&name);
            }
            7..=8 if s.queued() > 0 => {
                timestamp_secs += rng.below(3);
                s.flush(timestamp_secs);
            }
            9 => {
                let acked = s.committed.clone();
                let in_flight = (s.queued() > 0 && rng.coin()).then(|| {
                    timestamp_secs += rng.below(3);
                    s.start_flush(timestamp_secs)
                });
                match in_flight.is_some() && rng.coin() {
                    true => s.model.flush_failed(),
                    false => s.crash(),
                }
                let landed = in_flight.is_some() && rng.coin();
                let headers = if landed { s.committed.clone() } else { acked };
                assert_spoiled_files_rejected(&s, &headers, !landed);
                let report = s
                    .model
                    .check(&file_of(&headers))
                    .unwrap_or_else(|d| panic!("seed {seed}: a correct store rejected:\n{d}"));
                let expected = match in_flight {
                    None => InFlight::Nothing,
                    Some(h) if landed => InFlight::Landed {
                        update_seq: h.update_seq,
                    },
                    Some(h) => InFlight::Lost {
                        update_seq: h.update_seq,
                    },
                };
                assert_eq!(report.in_flight, expected, "seed {seed}");
                let tip = headers.last().map_or(0, |h| h.update_seq);
                assert_eq!(report.tip_update_seq, tip);
                s.recovered_at(tip);
            }
            10 => {
                let file = file_of(&s.committed);
                s.model
                    .check_live(&file)
                    .unwrap_or_else(|d| panic!("seed {seed}: a live store rejected:\n{d}"));
            }
            _ => {}
        }
        for (key, doc) in s.model.expected_state() {
            let value = (!doc.deleted).then_some(doc.value.as_slice());
            assert_eq!(s.model.expected_get(key), value);
        }
    }
}

#[test]
fn random_histories_accept_correct_stores_and_reject_spoiled_ones() {
    for seed in 0..300 {
        run(seed);
    }
}
