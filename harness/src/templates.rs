//! Step templates: hand-shaped storylines (a compaction racing the
//! flusher with a crash armed at a boundary, PiTR windows, damage, EIO)
//! that reach states random bytes rarely do. The fuzz targets' seed corpora
//! and the explorer's templated share both draw from here.

use crate::scenario::{pause_points, Step, SwarmConfig, IO_KINDS, KEY_SPACE, LOCAL_NAMES};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Step sequences for the templated seeds.
pub(crate) struct Template<'r> {
    pub(crate) rng: &'r mut ChaCha8Rng,
}

impl Template<'_> {
    fn batch(&mut self, out: &mut Vec<Step>) {
        for _ in 0..self.rng.gen_range(1..5) {
            let key = self.rng.gen_range(0..KEY_SPACE);
            if self.rng.gen_ratio(1, 5) {
                out.push(Step::Delete { key });
            } else {
                out.push(Step::Set {
                    key,
                    len: self.rng.gen_range(0..64),
                });
            }
        }
        // Local documents ride along with a quarter of the commits (and
        // make up some commits on their own): set, and now and then removed.
        if self.rng.gen_ratio(1, 4) {
            out.push(self.local_change());
        }
        out.push(Step::Flush);
    }

    fn local_change(&mut self) -> Step {
        Step::Local {
            name: self.rng.gen_range(0..LOCAL_NAMES),
            len: self.rng.gen_range(0..64),
            delete: self.rng.gen_ratio(1, 3),
        }
    }

    /// A compaction step preempted part-way (see [`Step::Preempt`]): a
    /// writer, the flusher and sometimes a reader run while it is paused: a
    /// quarter of the time right before it takes the store lock (where a
    /// tip read too early goes stale), a quarter inside the locked final
    /// round and switch (where the flush must be refused), a quarter at
    /// another compaction failpoint, a quarter before a disk call. The
    /// points of the final round are reached by finishing the compaction.
    fn preempted_step(&mut self, out: &mut Vec<Step>) {
        let all: Vec<&str> = engine::failpoints::all().collect();
        let index = |name: &str| all.iter().position(|n| *n == name).unwrap_or(0) as u8;
        let compaction: Vec<u8> = (0..all.len() as u8)
            .filter(|i| all[usize::from(*i)].starts_with("compact::"))
            .collect();
        let locked = [
            "compact::catchup_locked",
            "compact::before_new_sync",
            "compact::after_new_sync",
            "compact::before_rename",
            "compact::after_rename_dir_sync",
        ];
        let (point, finish) = match self.rng.gen_range(0..4) {
            0 => (index("compact::before_store_lock"), true),
            1 => (index(locked[self.rng.gen_range(0..locked.len())]), true),
            2 => (compaction[self.rng.gen_range(0..compaction.len())], false),
            _ => (self.rng.gen_range(all.len() as u8..pause_points()), false),
        };
        let mut during = vec![if self.rng.gen_ratio(1, 3) {
            self.local_change()
        } else {
            Step::Set {
                key: self.rng.gen_range(0..KEY_SPACE),
                len: self.rng.gen_range(0..64),
            }
        }];
        during.push(Step::Flush);
        if self.rng.gen_ratio(1, 3) {
            during.push(Step::Read {
                kind: self.rng.gen_range(0..5),
                a: self.rng.gen(),
                b: self.rng.gen(),
            });
        }
        out.push(Step::Preempt {
            point,
            nth: self.rng.gen_range(1..3),
            steps: during.len() as u8,
        });
        out.push(if finish && self.rng.gen_ratio(2, 3) {
            Step::CompactFinish
        } else {
            Step::CompactStep {
                n: self.rng.gen_range(1..4),
            }
        });
        out.extend(during);
    }

    fn one_key_commit(&mut self, out: &mut Vec<Step>) {
        out.push(Step::Set {
            key: self.rng.gen_range(0..KEY_SPACE),
            len: self.rng.gen_range(0..64),
        });
        out.push(Step::Flush);
    }

    pub(crate) fn crash_ops(mut self, point: u8) -> Vec<Step> {
        let mut out = Vec::new();
        for _ in 0..self.rng.gen_range(2..5) {
            self.batch(&mut out);
        }
        out.push(Step::CrashAtFailpoint { point, nth: 1 });
        self.batch(&mut out);
        self.batch(&mut out);
        out.push(Step::CrashInRecovery {
            kind: self.rng.gen_range(0..IO_KINDS.len() as u8),
            nth: 1,
            repeat: self.rng.gen_range(1..=3),
        });
        out.push(Step::CrashNow);
        self.batch(&mut out);
        out.push(Step::Check);
        out
    }

    pub(crate) fn interleave(mut self, point: u8) -> Vec<Step> {
        let mut out = Vec::new();
        for _ in 0..self.rng.gen_range(2..5) {
            self.batch(&mut out);
            out.push(Step::Tick {
                secs: self.rng.gen_range(1..9),
            });
        }
        out.push(Step::CrashAtFailpoint { point, nth: 1 });
        out.push(Step::CompactStart {
            purge: self.rng.gen_range(0..4),
        });
        for _ in 0..self.rng.gen_range(2..6) {
            if self.rng.gen_ratio(1, 3) {
                self.preempted_step(&mut out);
            }
            out.push(Step::CompactStep {
                n: self.rng.gen_range(1..5),
            });
            self.batch(&mut out);
        }
        if self.rng.gen_ratio(1, 2) {
            self.preempted_step(&mut out);
        }
        out.push(Step::CompactFinish);
        self.batch(&mut out);
        out.push(Step::Check);
        out
    }

    pub(crate) fn pitr(mut self, point: u8) -> Vec<Step> {
        let mut out = Vec::new();
        for _ in 0..self.rng.gen_range(6..14) {
            out.push(Step::Tick {
                secs: self.rng.gen_range(1..9),
            });
            self.batch(&mut out);
        }
        out.push(Step::CompactStart { purge: 0 });
        for _ in 0..self.rng.gen_range(1..4) {
            out.push(Step::CompactStep { n: 2 });
            out.push(Step::Tick { secs: 3 });
            self.batch(&mut out);
        }
        out.push(Step::CompactFinish);
        for back in [0, 5, 13] {
            out.push(Step::SnapshotCheck { back });
        }
        out.push(Step::CrashAtFailpoint { point, nth: 1 });
        out.push(Step::CompactStart {
            purge: self.rng.gen_range(0..4),
        });
        self.batch(&mut out);
        out.push(Step::CompactFinish);
        out.push(Step::SnapshotCheck { back: 3 });
        out
    }

    pub(crate) fn recover_corrupt(mut self, i: u64) -> Vec<Step> {
        let mut out = Vec::new();
        for _ in 0..self.rng.gen_range(2..8) {
            self.batch(&mut out);
            out.push(Step::Tick { secs: 2 });
        }
        if i % 4 == 3 {
            out.push(Step::CompactStart { purge: 0 });
            out.push(Step::CompactFinish);
            self.batch(&mut out);
        }
        // One damage of each kind in turn, sometimes two.
        let kinds = [
            Step::CrashAtIo {
                kind: 0,
                nth: 1,
                after: false,
            },
            Step::CrashInRecovery {
                kind: 1,
                nth: 1,
                repeat: 1,
            },
            Step::Eio { sync: true, nth: 1 },
            Step::CrashNow,
            Step::CrashAtFailpoint { point: 0, nth: 1 },
            Step::CrashAtIo {
                kind: 2,
                nth: 1,
                after: true,
            },
        ];
        out.push(kinds[(i / 2) as usize % kinds.len()].clone());
        if self.rng.gen_ratio(1, 3) {
            out.push(kinds[self.rng.gen_range(0..kinds.len())].clone());
        }
        out
    }

    pub(crate) fn io_errors(mut self, i: u64) -> Vec<Step> {
        let mut out = Vec::new();
        self.batch(&mut out);
        out.push(Step::Eio {
            sync: (i / 2) % 2 == 1,
            nth: 1 + ((i / 4) % 4) as u8,
        });
        for _ in 0..self.rng.gen_range(2..5) {
            self.batch(&mut out);
        }
        if i % 4 == 3 {
            out.push(Step::CompactStart { purge: 0 });
            out.push(Step::Eio {
                sync: self.rng.gen(),
                nth: 1,
            });
            out.push(Step::CompactStep { n: 2 });
            self.batch(&mut out);
            out.push(Step::CompactFinish);
        }
        self.batch(&mut out);
        out.push(Step::Check);
        out
    }
}

/// Where a compaction story's round cuts its compaction with a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// No planned cut (the story's armed failpoint may still strike).
    None,
    /// A power loss while the compactor is paused in catch-up: the flusher
    /// commits before every single compaction step, so once the copy is
    /// done the compactor stays in its unlocked catch-up rounds. With
    /// `flush`, a crash at that flush failpoint (an index into the catalog)
    /// strikes the flusher's commit first.
    CatchUp {
        /// The flush failpoint, if the flusher's commit is cut.
        flush: Option<u8>,
    },
    /// A crash armed at a failpoint after the rename (in the switch or the
    /// unlink): the compactor has switched files.
    AfterSwitch,
}

/// How many different keys `steps` set or delete.
fn distinct_keys(steps: &[Step]) -> u32 {
    let mut seen = 0u64;
    for step in steps {
        if let Step::Set { key, .. } | Step::Delete { key } = step {
            seen |= 1 << (key % KEY_SPACE);
        }
    }
    seen.count_ones()
}

/// The failpoints a compaction hits after its switch (the rename done):
/// a crash there strikes with the compactor in its after-switch phase.
pub(crate) fn after_switch_points() -> Vec<u8> {
    let all: Vec<&str> = engine::failpoints::all().collect();
    let first = all
        .iter()
        .position(|n| *n == "compact::after_rename")
        .unwrap_or(0);
    let last = all
        .iter()
        .position(|n| *n == "compact::after_unlink_dir_sync")
        .unwrap_or(0);
    (first as u8..=last as u8).collect()
}

impl Template<'_> {
    /// Two compactions in a row with the flusher committing in between and
    /// during them, a crash armed at failpoint `point` somewhere on the
    /// way, and round `i`'s compaction cut as `cuts[i]` says: a cut in
    /// catch-up, after a switch, a second switch.
    ///
    /// `config` is the scenario's swarm configuration: a cut in catch-up
    /// counts the copy's steps from its batch size and the keys written.
    pub(crate) fn compaction_story(
        mut self,
        point: u8,
        cuts: [Cut; 2],
        config: &SwarmConfig,
    ) -> Vec<Step> {
        let mut out = Vec::new();
        for _ in 0..self.rng.gen_range(2..5) {
            self.batch(&mut out);
        }
        let arm_at = self.rng.gen_range(0..3);
        for (round, cut) in cuts.into_iter().enumerate() {
            // A reader holding the old file across the switch: on Windows
            // the unlink is refused and deferred until it lets go.
            let hold = self.rng.gen_ratio(1, 2);
            if hold {
                out.push(Step::Hold { release: false });
            }
            // A purge would shorten the copy the catch-up cut counts.
            let purge = self.rng.gen_range(0..4);
            out.push(Step::CompactStart {
                purge: if matches!(cut, Cut::CatchUp { .. }) {
                    0
                } else {
                    purge
                },
            });
            match cut {
                Cut::None => {
                    if round == arm_at {
                        out.push(Step::CrashAtFailpoint {
                            point,
                            nth: self.rng.gen_range(1..3),
                        });
                    }
                    for _ in 0..self.rng.gen_range(1..5) {
                        if self.rng.gen_ratio(1, 2) {
                            self.preempted_step(&mut out);
                        }
                        out.push(Step::CompactStep {
                            n: self.rng.gen_range(1..5),
                        });
                        self.batch(&mut out);
                        // A power loss in the middle: in the copy, in
                        // catch-up or after the switch.
                        if self.rng.gen_ratio(1, 4) {
                            out.push(Step::CompactStep {
                                n: self.rng.gen_range(1..3),
                            });
                            out.push(Step::CrashNow);
                        }
                    }
                }
                Cut::CatchUp { flush } => {
                    // The copy takes a step per batch of the documents as
                    // of the start (one more when the last batch is full);
                    // a commit behind it, the next step starts the first
                    // unlocked round. Commits of one key keep the rounds
                    // coming (and the story short).
                    let copy = distinct_keys(&out) / u32::from(config.copy_batch_docs.max(1)) + 1;
                    // Commits in PiTR windows of their own, or a round
                    // would keep none of them and pass in one step.
                    out.push(Step::Tick { secs: 8 });
                    self.one_key_commit(&mut out);
                    let mut left = copy;
                    while left > 0 {
                        let n = left.min(4) as u8;
                        out.push(Step::CompactStep { n });
                        left -= u32::from(n);
                    }
                    let rounds = 1 + self.rng.gen_range(0..2);
                    for round in 0..rounds {
                        out.push(Step::Tick { secs: 8 });
                        if let (Some(point), true) = (flush, round + 1 == rounds) {
                            // The flusher crashes in its commit instead,
                            // the compactor paused in catch-up.
                            out.push(Step::CrashAtFailpoint { point, nth: 1 });
                            self.one_key_commit(&mut out);
                        } else {
                            self.one_key_commit(&mut out);
                            out.push(Step::CompactStep { n: 1 });
                        }
                    }
                    out.push(Step::CrashNow);
                }
                Cut::AfterSwitch => {
                    let points = after_switch_points();
                    out.push(Step::CrashAtFailpoint {
                        point: points[self.rng.gen_range(0..points.len())],
                        nth: 1,
                    });
                    self.batch(&mut out);
                }
            }
            out.push(Step::CompactFinish);
            self.batch(&mut out);
            if hold {
                out.push(Step::Read {
                    kind: self.rng.gen_range(0..4),
                    a: self.rng.gen(),
                    b: self.rng.gen(),
                });
                out.push(Step::Hold { release: true });
            }
        }
        if arm_at == 2 {
            out.push(Step::CrashNow);
        }
        out
    }
}
