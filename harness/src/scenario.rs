//! Scenarios: a swarm configuration and a list of steps.
//!
//! The byte encoding is ours and exactly invertible: [`Scenario::from_bytes`]
//! reads one byte per field (running out of input reads zeroes), and
//! [`Scenario::to_bytes`] writes the bytes that read back to the same
//! scenario. So the explorer's random bytes, a cargo-fuzz artifact and a
//! minimized repro are all the same kind of file, and `Arbitrary` (used by the
//! fuzz targets) is this same decoder.
//!
//! Steps run in order on one thread: that order *is* the schedule of the
//! flusher and the compactor (a `CompactStep` between two `Flush`es is the
//! compactor running while the flusher commits).

use arbitrary::{Arbitrary, Unstructured};
use std::fmt;

/// Keys are `k00`..`k{KEY_SPACE-1}`: few keys, so updates and deletes collide.
pub const KEY_SPACE: u8 = 48;

/// Local documents are `_local/l0`..`_local/l{LOCAL_NAMES-1}`: a handful, so
/// sets and removals of one name meet, across compaction phases too.
pub const LOCAL_NAMES: u8 = 4;

/// The name of local document `n` (modulo [`LOCAL_NAMES`]).
pub fn local_name(n: u8) -> Vec<u8> {
    format!("_local/l{}", n % LOCAL_NAMES).into_bytes()
}
/// At most this many steps per scenario.
pub const MAX_STEPS: usize = 96;
/// Bytes of the fixed configuration prefix.
pub const CONFIG_BYTES: usize = 16;

/// The per-scenario configuration (swarm testing: every seed gets its own).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SwarmConfig {
    /// Tree fan-out, 2..=9.
    pub fanout: u8,
    /// Documents per compaction copy step, 1..=8.
    pub copy_batch_docs: u8,
    /// Unlocked catch-up rounds, 0..=3.
    pub catchup_rounds: u8,
    /// PiTR granularity in seconds, 1..=8, if PiTR is on.
    pub pitr_granularity_secs: Option<u8>,
    /// PiTR maximum history age in seconds, 0..=31.
    pub pitr_max_age_secs: u8,
    /// The crash mode index into `failpoints::CrashMode::ALL`, or None for
    /// "chosen per crash from the seed".
    pub crash_mode: Option<u8>,
    /// The simulated disk's seed.
    pub disk_seed: u64,
    /// Windows mode: renaming or unlinking an open file fails.
    pub windows: bool,
    /// Strict recovery policy instead of tolerating a corrupt tail.
    pub strict_recovery: bool,
    /// Sub-sector tears: after each power loss, one bit of a byte that was
    /// never synced (a header block's, when there is one) is flipped. Disks
    /// without sector atomicity do this; only unacknowledged bytes change, so
    /// a correct engine must survive it.
    pub tear_unsynced: bool,
    /// Triggered crashes (at a failpoint or an I/O call) kill the process,
    /// not the machine: unsynced pages survive, still unsynced, until a later
    /// power loss (`CrashNow`, the final crash) may drop them.
    pub process_crashes: bool,
    /// Liveness probe: after every compaction step that leaves the compactor
    /// in an unlocked phase (copy, catch-up), queue a marker and flush; the
    /// flush must commit (a refusal is a hang, exit code 5).
    pub probe_liveness: bool,
    /// A failed fsync reverts the unsynced bytes instead of Linux's
    /// behaviour (failed pages kept in the page cache, marked clean).
    pub fsync_revert: bool,
    /// No power-safe overwrite: a torn write damages its whole unit, synced
    /// bytes sharing it included. 0: off; 1: 512-byte sectors; 2: 4 KiB
    /// pages.
    pub no_psow: u8,
    /// The large profile: a value's length code is log-uniform from 0 bytes
    /// to 64 KiB ([`value_len`]) instead of 0..=63 bytes, and a batch takes
    /// up to 255 mutations instead of 16 ([`batch_len`]), so value chunks
    /// straddle several block boundaries and files grow to megabytes, past
    /// recovery's first scan window.
    pub large: bool,
    /// Long keys: 1 to 255 bytes ([`key_bytes`]) instead of 3.
    pub long_keys: bool,
}

/// The value length a `Set`'s `len` code (0..=63) stands for: itself, or
/// with big values log-uniform from 0 to 64 KiB (`len` 63 is 65,536 bytes).
pub fn value_len(config: &SwarmConfig, len: u8) -> usize {
    let len = len % 64;
    if !config.large || len == 0 {
        return usize::from(len);
    }
    2f64.powf(f64::from(len) * 16.0 / 63.0).round() as usize
}

/// The mutations a [`Step::Batch`] of `count` queues: up to 16, or up to
/// 255 in the large profile.
pub fn batch_len(config: &SwarmConfig, count: u8) -> u32 {
    let count = u32::from(count.max(1));
    if config.large {
        count
    } else {
        1 + (count - 1) % 16
    }
}

/// The bytes of key number `key` (0..=255): `k00`..`k47` for the small key
/// space, `b0000`.. for batch keys (numbers from 256 up); with long keys
/// padded or cut to 1..=255 bytes, a length fixed per key.
pub fn key_bytes(config: &SwarmConfig, key: u32) -> Vec<u8> {
    let mut k = if key < 256 {
        format!("k{:02}", key % u32::from(KEY_SPACE)).into_bytes()
    } else {
        format!("b{:04}", key - 256).into_bytes()
    };
    if config.long_keys {
        let len = 1 + (key.wrapping_mul(2_654_435_761) >> 8) % 255;
        k.resize(len as usize, b'a' + (key % 26) as u8);
    }
    k
}

impl Default for SwarmConfig {
    fn default() -> SwarmConfig {
        SwarmConfig {
            fanout: 4,
            copy_batch_docs: 4,
            catchup_rounds: 2,
            pitr_granularity_secs: None,
            pitr_max_age_secs: 0,
            crash_mode: Some(0),
            disk_seed: 0,
            windows: false,
            strict_recovery: false,
            tear_unsynced: false,
            process_crashes: false,
            probe_liveness: false,
            fsync_revert: false,
            no_psow: 0,
            large: false,
            long_keys: false,
        }
    }
}

/// I/O call kinds a crash can be placed at (`failpoints::IoKind` by name):
/// every kind of call the engine makes. (130, the "after" offset of the
/// encoding, is a multiple of the length.)
pub const IO_KINDS: [&str; 10] = [
    "write",
    "sync",
    "rename",
    "remove",
    "sync_dir",
    "set_len",
    "open",
    "read",
    "create_dir",
    "len",
];

/// Faults short of a crash a [`Step::Fault`] injects, by index.
pub const FAULT_STEPS: [&str; 9] = [
    "read-eio",
    "latent-sector-error",
    "eio-open",
    "eio-set-len",
    "eio-rename",
    "eio-remove",
    "eio-sync-dir",
    "short-write",
    "enospc",
];

/// One step of a scenario.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Queue a set of key `key` with a value of `len` bytes.
    Set {
        /// Key index.
        key: u8,
        /// Value length, 0..=63.
        len: u8,
    },
    /// Queue a delete of key `key`.
    Delete {
        /// Key index.
        key: u8,
    },
    /// Flush the queue as one commit.
    Flush,
    /// Advance the logical clock.
    Tick {
        /// Seconds, 1..=8.
        secs: u8,
    },
    /// Start a compaction; `purge` of 0 purges nothing, otherwise tombstones
    /// up to `update_seq * purge / 3` (so 3 purges everything allowed).
    CompactStart {
        /// 0..=3.
        purge: u8,
    },
    /// Run `n` compaction steps (1..=4).
    CompactStep {
        /// Steps.
        n: u8,
    },
    /// Run the compaction to the end.
    CompactFinish,
    /// Abort the compaction.
    CompactAbort,
    /// Arm a crash at the `nth` hit of failpoint number `point` of the catalog.
    CrashAtFailpoint {
        /// Index into `engine::failpoints::all()` (modulo its length).
        point: u8,
        /// 1..=4.
        nth: u8,
    },
    /// Arm a crash at the `nth` I/O call of kind `IO_KINDS[kind]`.
    CrashAtIo {
        /// Index into [`IO_KINDS`].
        kind: u8,
        /// 1..=16.
        nth: u8,
        /// Crash after the call took effect rather than before.
        after: bool,
    },
    /// Crash now.
    CrashNow,
    /// Restart the process: the queue is lost, the page cache is not.
    Reopen,
    /// Arm a crash that strikes during the next recovery, at the `nth` I/O
    /// call of kind `IO_KINDS[kind]`; re-armed for each of the next
    /// `repeat` recovery attempts.
    CrashInRecovery {
        /// Index into [`IO_KINDS`].
        kind: u8,
        /// 1..=4.
        nth: u8,
        /// Successive recovery attempts it strikes, 1..=3.
        repeat: u8,
    },
    /// Inject the fault `FAULT_STEPS[kind]` at the `nth` call of its kind
    /// (for `enospc`: the disk fills `nth` KiB from now), now or, with
    /// `recovery`, during the next recovery.
    Fault {
        /// Index into [`FAULT_STEPS`].
        kind: u8,
        /// 1..=8.
        nth: u8,
        /// Strike during the next recovery instead of now.
        recovery: bool,
    },
    /// Fail the `nth` next write (or fsync, if `sync`) with EIO.
    Eio {
        /// fsync rather than write.
        sync: bool,
        /// 1..=4.
        nth: u8,
    },
    /// Check the running store against the oracle (every header).
    Check,
    /// Read the snapshot at `now - back` seconds and check it.
    SnapshotCheck {
        /// Seconds back, 0..=31.
        back: u8,
    },
    /// Queue a set of key `key` whose value is sized so that the commit's
    /// data ends at a block edge, then flush: `edge` 0 ends exactly on a
    /// block boundary, 1 one byte before one, 2 one data byte into a block
    /// (the runner sizes the value by a dry run of the flush on a copy of
    /// the disk).
    EdgeCommit {
        /// Key index.
        key: u8,
        /// 0..=2.
        edge: u8,
    },
    /// Read the running store through a public read API and compare with
    /// the model's last acknowledged state: `kind` 0 `get(k{a})`, 1
    /// `scan(k{a}..k{b})`, 2 `changes_since(tip * a / 255)`, 3
    /// `snapshot_at_seqno(tip * a / 255)` (its state must be the committed
    /// one at its update_seq), 4 local documents: `get_local(l{b})` for an
    /// even `a`, every local document for an odd one.
    Read {
        /// 0..=4.
        kind: u8,
        /// First argument.
        a: u8,
        /// Second argument.
        b: u8,
    },
    /// Open a snapshot and hold it (a reader keeping the file open across
    /// compaction steps and the switch), or, with `release`, read it back,
    /// drop it and retry the deletions it deferred.
    Hold {
        /// Release instead of take.
        release: bool,
    },
    /// Commit a batch: queue sets of batch keys (a key space of 4,096,
    /// starting at a position given by `first`) with values of length code
    /// `len` (`count` of them in the large profile, else
    /// `1 + (count - 1) % 16`, see [`batch_len`]), then flush.
    Batch {
        /// Mutations, 1..=255.
        count: u8,
        /// Where in the batch key space the keys start.
        first: u8,
        /// Value length code, as `Set`'s.
        len: u8,
    },
    /// Preempt the next compaction step: it pauses at the `nth` occurrence
    /// of pause point `point` (see [`pause_point`]: a failpoint of the
    /// catalog, or a disk call of a kind, before it takes effect), and the
    /// `steps` scenario steps after that compaction step run while it is
    /// paused (other actors: writers, the flusher, readers, a crash); then it
    /// resumes. A step that cannot be judged while a step of the engine is
    /// under way ends the pause early: a process restart, and a second
    /// compaction start (the engine may accept one once the paused step's
    /// own failure ended its compaction, which the runner cannot see
    /// mid-step). If the step never reaches the point, nothing pauses.
    Preempt {
        /// Index into the pause points, modulo their number.
        point: u8,
        /// 1..=4.
        nth: u8,
        /// 1..=4.
        steps: u8,
    },
    /// Queue a change of local document `_local/l{name}`: a set to a value
    /// of `len` bytes, or with `delete` its removal.
    Local {
        /// Name index, 0..LOCAL_NAMES.
        name: u8,
        /// Value length, 0..=63 (ignored for a removal).
        len: u8,
        /// Remove instead of set.
        delete: bool,
    },
    /// Damage the finished image (the `recover_corrupt` target only: its
    /// decoding reads the crash and fault opcodes as damage, see
    /// [`Damage::from_step`]; other runs ignore it).
    Damage(Damage),
}

/// Where in the file a damage lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Place {
    /// The `k`-th header block counted from the end (0 = the newest), modulo
    /// the number of header blocks; any block if there is none.
    HeaderBlock(u8),
    /// A block or byte chosen uniformly.
    Anywhere,
}

/// One kind of damage to the image of the store file (the
/// `recover_corrupt` target's steps after the build).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Damage {
    /// Flip `count` single bits.
    BitFlips {
        /// Bits flipped, 1..=5.
        count: u8,
        /// Where: a header block 0..=15 back, or anywhere.
        place: Place,
    },
    /// A block whose write was torn: its first sectors survive, the rest hold
    /// zeroes or garbage.
    TornBlock {
        /// Which block: a header block 0..=3 back, or anywhere.
        place: Place,
        /// Lost sectors are garbage rather than zeroes.
        garbage: bool,
    },
    /// Bytes appended after the end: plain garbage, or a block that starts
    /// with a header marker and a made-up chunk prefix.
    GarbageTail {
        /// Sectors appended: 2, 4, 6 or 8.
        sectors: u8,
        /// Start a block that looks like a header.
        fake_header: bool,
    },
    /// Cut the file short, in or just after a header block.
    Truncate,
    /// Swap two blocks.
    SwapBlocks {
        /// The first block: header block `k`, 0..=7 back.
        a: u8,
        /// The second: header block `k + 1` or `k + 2`, or anywhere.
        b: Place,
    },
}

impl Damage {
    /// The damage the `recover_corrupt` target reads a step as: the crash and
    /// fault opcodes of the common encoding, each standing for one kind of
    /// damage (so every input decodes, and a damage encodes back to the same
    /// bytes). `None` for other steps.
    pub fn from_step(step: &Step) -> Option<Damage> {
        match *step {
            Step::Damage(d) => Some(d.normalized()),
            Step::CrashAtIo { kind, nth, after } => Some(Damage::BitFlips {
                count: 1 + kind % 5,
                place: if after {
                    Place::Anywhere
                } else {
                    Place::HeaderBlock(nth.saturating_sub(1) % 16)
                },
            }),
            Step::CrashInRecovery { kind, nth, .. } => Some(Damage::TornBlock {
                place: if kind % 5 < 3 {
                    Place::HeaderBlock(nth.saturating_sub(1) % 4)
                } else {
                    Place::Anywhere
                },
                garbage: kind % 2 == 1,
            }),
            Step::Eio { sync, nth } => Some(Damage::GarbageTail {
                sectors: 2 * nth.clamp(1, 4),
                fake_header: sync,
            }),
            Step::CrashNow => Some(Damage::Truncate),
            Step::CrashAtFailpoint { point, nth } => Some(Damage::SwapBlocks {
                a: point % 8,
                b: match nth {
                    1 => Place::HeaderBlock(point % 8 + 1),
                    2 => Place::HeaderBlock(point % 8 + 2),
                    _ => Place::Anywhere,
                },
            }),
            _ => None,
        }
    }

    /// The common-encoding step this damage is written as (the inverse of
    /// [`Damage::from_step`]).
    pub fn as_encoded_step(&self) -> Step {
        match self.normalized() {
            Damage::BitFlips { count, place } => Step::CrashAtIo {
                kind: count - 1,
                nth: match place {
                    Place::HeaderBlock(k) => k + 1,
                    Place::Anywhere => 1,
                },
                after: place == Place::Anywhere,
            },
            Damage::TornBlock { place, garbage } => Step::CrashInRecovery {
                kind: match (place, garbage) {
                    (Place::HeaderBlock(_), false) => 0,
                    (Place::HeaderBlock(_), true) => 1,
                    (Place::Anywhere, false) => 4,
                    (Place::Anywhere, true) => 3,
                },
                nth: match place {
                    Place::HeaderBlock(k) => k + 1,
                    Place::Anywhere => 1,
                },
                repeat: 1,
            },
            Damage::GarbageTail {
                sectors,
                fake_header,
            } => Step::Eio {
                sync: fake_header,
                nth: sectors / 2,
            },
            Damage::Truncate => Step::CrashNow,
            Damage::SwapBlocks { a, b } => Step::CrashAtFailpoint {
                point: a,
                nth: match b {
                    Place::HeaderBlock(k) if k == a + 1 => 1,
                    Place::HeaderBlock(_) => 2,
                    Place::Anywhere => 3,
                },
            },
        }
    }

    /// Fields in range (what decoding the encoded step gives back).
    fn normalized(self) -> Damage {
        match self {
            Damage::BitFlips { count, place } => Damage::BitFlips {
                count: 1 + count.saturating_sub(1) % 5,
                place: match place {
                    Place::HeaderBlock(k) => Place::HeaderBlock(k % 16),
                    Place::Anywhere => Place::Anywhere,
                },
            },
            Damage::TornBlock { place, garbage } => Damage::TornBlock {
                place: match place {
                    Place::HeaderBlock(k) => Place::HeaderBlock(k % 4),
                    Place::Anywhere => Place::Anywhere,
                },
                garbage,
            },
            Damage::GarbageTail {
                sectors,
                fake_header,
            } => Damage::GarbageTail {
                sectors: 2 * (sectors / 2).clamp(1, 4),
                fake_header,
            },
            Damage::Truncate => Damage::Truncate,
            Damage::SwapBlocks { a, b } => {
                let a = a % 8;
                Damage::SwapBlocks {
                    a,
                    b: match b {
                        Place::HeaderBlock(k) if k == a + 2 => Place::HeaderBlock(a + 2),
                        Place::HeaderBlock(_) => Place::HeaderBlock(a + 1),
                        Place::Anywhere => Place::Anywhere,
                    },
                }
            }
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::HeaderBlock(0) => write!(f, "the newest header block"),
            Place::HeaderBlock(k) => write!(f, "header block {k} before the newest"),
            Place::Anywhere => write!(f, "anywhere"),
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::BitFlips { count, place } => write!(f, "flip {count} bit(s) in {place}"),
            Damage::TornBlock { place, garbage } => write!(
                f,
                "tear a block ({place}), its lost sectors {}",
                if *garbage { "garbage" } else { "zeroed" }
            ),
            Damage::GarbageTail {
                sectors,
                fake_header,
            } => write!(
                f,
                "append {sectors} sectors of garbage{}",
                if *fake_header {
                    " starting a fake header block"
                } else {
                    ""
                }
            ),
            Damage::Truncate => write!(f, "truncate in or just after a header block"),
            Damage::SwapBlocks { a, b } => {
                write!(f, "swap two blocks: {} and {b}", Place::HeaderBlock(*a))
            }
        }
    }
}

/// A whole scenario.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Scenario {
    /// The swarm configuration.
    pub config: SwarmConfig,
    /// The steps, in schedule order.
    pub steps: Vec<Step>,
}

/// Opcodes by weight: the first byte of a step picks `OPCODES[b % len]`.
/// The first 32 are the original table (so a step written by `to_bytes`
/// before the table grew reads back the same); the second half has the same
/// mix with sets traded for a block-edge commit, a batch and a held
/// snapshot, and a flush for a read.
const OPCODES: [u8; 64] = [
    0, 0, 0, 0, 0, 0, 0, // set
    1, 1, // delete
    2, 2, 2, 2, 2, // flush
    3, 3, // tick
    4, // compact start
    5, 5, 5, // compact step
    6, // compact finish
    7, // compact abort
    8, 8,  // crash at failpoint
    9,  // crash at io
    10, // crash now
    11, // reopen
    12, // crash in recovery
    13, // eio
    14, // check
    16, // fault
    15, // snapshot check
    0, 0, 0,  // set
    21, // local document
    17, // edge commit
    18, // batch
    20, // hold or release a snapshot
    1, 1,  // delete
    19, // read
    2, 2, 2, 2,  // flush
    3,  // tick
    22, // preempt the next compaction step
    4,  // compact start
    5, 5, 5, // compact step
    6, // compact finish
    7, // compact abort
    8, 8,  // crash at failpoint
    9,  // crash at io
    10, // crash now
    11, // reopen
    12, // crash in recovery
    13, // eio
    14, // check
    16, // fault
    15, // snapshot check
];

/// Pause points of [`Step::Preempt`]: every failpoint of the catalog, then
/// a disk call of every kind of [`IO_KINDS`].
pub fn pause_points() -> u8 {
    (engine::failpoints::all().count() + IO_KINDS.len()) as u8
}

/// Pause point `index` (modulo [`pause_points`]).
pub fn pause_point(index: u8) -> failpoints::PausePoint {
    let failpoints = engine::failpoints::all().count();
    let i = usize::from(index % pause_points());
    if i < failpoints {
        failpoints::PausePoint::Failpoint(failpoint_name(i as u8))
    } else {
        let name = IO_KINDS[i - failpoints];
        failpoints::PausePoint::Io(
            failpoints::IoKind::from_name(name).unwrap_or(failpoints::IoKind::Write),
        )
    }
}

struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn exhausted(&self) -> bool {
        self.at >= self.data.len()
    }
}

impl Scenario {
    /// Decode any bytes into a scenario (total: every input is valid).
    pub fn from_bytes(data: &[u8]) -> Scenario {
        let mut b = Bytes { data, at: 0 };
        let fanout = 2 + b.byte() % 8;
        let copy_batch_docs = 1 + b.byte() % 8;
        let catchup_rounds = b.byte() % 4;
        let pitr = b.byte();
        let pitr_granularity_secs = (pitr % 2 == 1).then_some(1 + (pitr / 2) % 8);
        let pitr_max_age_secs = b.byte() % 32;
        let mode = b.byte() % 8;
        let crash_mode = (mode < 7).then_some(mode);
        let mut seed = [0u8; 8];
        for s in &mut seed {
            *s = b.byte();
        }
        let flags = b.byte();
        let damage = b.byte();
        let config = SwarmConfig {
            fanout,
            copy_batch_docs,
            catchup_rounds,
            pitr_granularity_secs,
            pitr_max_age_secs,
            crash_mode,
            disk_seed: u64::from_le_bytes(seed),
            windows: flags & 1 != 0,
            strict_recovery: flags & 2 != 0,
            process_crashes: flags & 4 != 0,
            fsync_revert: flags & 8 != 0,
            no_psow: (flags >> 4) % 4 % 3,
            tear_unsynced: damage % 2 == 1,
            probe_liveness: damage & 2 != 0,
            // One scenario in 16: large scenarios cost many small ones.
            large: (damage >> 2) & 15 == 15,
            // One in four.
            long_keys: flags >> 6 == 3,
        };
        let mut steps = Vec::new();
        while !b.exhausted() && steps.len() < MAX_STEPS {
            steps.push(decode_step(&mut b));
        }
        Scenario { config, steps }
    }

    /// Encode so that `from_bytes(to_bytes(s)) == s` for every decodable `s`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let c = &self.config;
        let mut out = vec![
            c.fanout.saturating_sub(2) % 8,
            c.copy_batch_docs.saturating_sub(1) % 8,
            c.catchup_rounds % 4,
            match c.pitr_granularity_secs {
                Some(g) => 1 + 2 * (g.saturating_sub(1) % 8),
                None => 0,
            },
            c.pitr_max_age_secs % 32,
            c.crash_mode.map_or(7, |m| m % 7),
        ];
        out.extend_from_slice(&c.disk_seed.to_le_bytes());
        out.push(
            u8::from(c.windows)
                | u8::from(c.strict_recovery) << 1
                | u8::from(c.process_crashes) << 2
                | u8::from(c.fsync_revert) << 3
                | (c.no_psow % 3) << 4
                | if c.long_keys { 3 << 6 } else { 0 },
        );
        out.push(
            u8::from(c.tear_unsynced)
                | u8::from(c.probe_liveness) << 1
                | if c.large { 15 << 2 } else { 0 },
        );
        debug_assert_eq!(out.len(), CONFIG_BYTES);
        for step in &self.steps {
            encode_step(step, &mut out);
        }
        out
    }

    /// The scenario normalised through the encoding (fields in range).
    pub fn normalized(&self) -> Scenario {
        Scenario::from_bytes(&self.to_bytes())
    }
}

fn opcode_byte(op: u8) -> u8 {
    OPCODES.iter().position(|o| *o == op).unwrap_or(0) as u8
}

fn decode_step(b: &mut Bytes<'_>) -> Step {
    match OPCODES[usize::from(b.byte()) % OPCODES.len()] {
        0 => Step::Set {
            key: b.byte() % KEY_SPACE,
            len: b.byte() % 64,
        },
        1 => Step::Delete {
            key: b.byte() % KEY_SPACE,
        },
        2 => Step::Flush,
        3 => Step::Tick {
            secs: 1 + b.byte() % 8,
        },
        4 => Step::CompactStart {
            purge: b.byte() % 4,
        },
        5 => Step::CompactStep {
            n: 1 + b.byte() % 4,
        },
        6 => Step::CompactFinish,
        7 => Step::CompactAbort,
        8 => Step::CrashAtFailpoint {
            point: b.byte() % engine::failpoints::all().count() as u8,
            nth: 1 + b.byte() % 4,
        },
        9 => {
            let kind = b.byte();
            Step::CrashAtIo {
                kind: kind % IO_KINDS.len() as u8,
                nth: 1 + b.byte() % 16,
                after: kind >= 128,
            }
        }
        10 => Step::CrashNow,
        11 => Step::Reopen,
        12 => {
            let kind = b.byte() % IO_KINDS.len() as u8;
            let x = b.byte();
            Step::CrashInRecovery {
                kind,
                nth: 1 + x % 4,
                repeat: 1 + (x / 4) % 3,
            }
        }
        13 => {
            let x = b.byte();
            Step::Eio {
                sync: x % 2 == 1,
                nth: 1 + (x / 2) % 4,
            }
        }
        14 => Step::Check,
        17 => Step::EdgeCommit {
            key: b.byte() % KEY_SPACE,
            edge: b.byte() % 3,
        },
        19 => Step::Read {
            kind: b.byte() % 5,
            a: b.byte(),
            b: b.byte(),
        },
        20 => Step::Hold {
            release: b.byte() % 2 == 1,
        },
        22 => {
            let point = b.byte() % pause_points();
            let x = b.byte();
            Step::Preempt {
                point,
                nth: 1 + x % 4,
                steps: 1 + (x / 4) % 4,
            }
        }
        21 => {
            let x = b.byte();
            Step::Local {
                name: x % LOCAL_NAMES,
                // 128 is a multiple of LOCAL_NAMES.
                delete: x >= 128,
                len: b.byte() % 64,
            }
        }
        18 => Step::Batch {
            count: 1 + b.byte() % 255,
            first: b.byte(),
            len: b.byte() % 64,
        },
        16 => {
            let kind = b.byte();
            Step::Fault {
                kind: kind % FAULT_STEPS.len() as u8,
                nth: 1 + b.byte() % 8,
                // 126 is a multiple of FAULT_STEPS.len().
                recovery: kind >= 126,
            }
        }
        _ => Step::SnapshotCheck {
            back: b.byte() % 32,
        },
    }
}

fn encode_step(step: &Step, out: &mut Vec<u8>) {
    match *step {
        Step::Set { key, len } => out.extend([opcode_byte(0), key % KEY_SPACE, len % 64]),
        Step::Delete { key } => out.extend([opcode_byte(1), key % KEY_SPACE]),
        Step::Flush => out.push(opcode_byte(2)),
        Step::Tick { secs } => out.extend([opcode_byte(3), secs.saturating_sub(1) % 8]),
        Step::CompactStart { purge } => out.extend([opcode_byte(4), purge % 4]),
        Step::CompactStep { n } => out.extend([opcode_byte(5), n.saturating_sub(1) % 4]),
        Step::CompactFinish => out.push(opcode_byte(6)),
        Step::CompactAbort => out.push(opcode_byte(7)),
        Step::CrashAtFailpoint { point, nth } => {
            out.extend([opcode_byte(8), point, nth.saturating_sub(1) % 4])
        }
        Step::CrashAtIo { kind, nth, after } => out.extend([
            opcode_byte(9),
            // 130 is a multiple of IO_KINDS.len(): the kind survives the modulo.
            kind % IO_KINDS.len() as u8 + if after { 130 } else { 0 },
            nth.saturating_sub(1) % 16,
        ]),
        Step::CrashNow => out.push(opcode_byte(10)),
        Step::Reopen => out.push(opcode_byte(11)),
        Step::CrashInRecovery { kind, nth, repeat } => out.extend([
            opcode_byte(12),
            kind % IO_KINDS.len() as u8,
            nth.saturating_sub(1) % 4 + 4 * (repeat.saturating_sub(1) % 3),
        ]),
        Step::Fault {
            kind,
            nth,
            recovery,
        } => out.extend([
            opcode_byte(16),
            kind % FAULT_STEPS.len() as u8 + if recovery { 126 } else { 0 },
            nth.saturating_sub(1) % 8,
        ]),
        Step::Eio { sync, nth } => out.extend([
            opcode_byte(13),
            u8::from(sync) + 2 * (nth.saturating_sub(1) % 4),
        ]),
        Step::Check => out.push(opcode_byte(14)),
        Step::SnapshotCheck { back } => out.extend([opcode_byte(15), back % 32]),
        Step::EdgeCommit { key, edge } => out.extend([opcode_byte(17), key % KEY_SPACE, edge % 3]),
        Step::Read { kind, a, b } => out.extend([opcode_byte(19), kind % 5, a, b]),
        Step::Preempt { point, nth, steps } => out.extend([
            opcode_byte(22),
            point % pause_points(),
            nth.saturating_sub(1) % 4 + 4 * (steps.saturating_sub(1) % 4),
        ]),
        Step::Local { name, len, delete } => out.extend([
            opcode_byte(21),
            name % LOCAL_NAMES + if delete { 128 } else { 0 },
            len % 64,
        ]),
        Step::Hold { release } => out.extend([opcode_byte(20), u8::from(release)]),
        Step::Batch { count, first, len } => out.extend([
            opcode_byte(18),
            count.saturating_sub(1) % 255,
            first,
            len % 64,
        ]),
        Step::Damage(d) => encode_step(&d.as_encoded_step(), out),
    }
}

impl<'a> Arbitrary<'a> for Scenario {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Scenario> {
        let len = u.len();
        Ok(Scenario::from_bytes(u.bytes(len)?))
    }

    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Scenario> {
        Ok(Scenario::from_bytes(u.take_rest()))
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Set { key, len } => write!(f, "set k{key:02} ({len} bytes)"),
            Step::Delete { key } => write!(f, "delete k{key:02}"),
            Step::Flush => write!(f, "flush"),
            Step::Tick { secs } => write!(f, "tick +{secs}s"),
            Step::CompactStart { purge } => write!(f, "compact start (purge {purge}/3)"),
            Step::CompactStep { n } => write!(f, "compact step x{n}"),
            Step::CompactFinish => write!(f, "compact finish"),
            Step::CompactAbort => write!(f, "compact abort"),
            Step::CrashAtFailpoint { point, nth } => {
                write!(f, "arm crash at {} hit #{nth}", failpoint_name(*point))
            }
            Step::CrashAtIo { kind, nth, after } => write!(
                f,
                "arm crash {} {} call #{nth}",
                if *after { "after" } else { "before" },
                IO_KINDS[usize::from(*kind) % IO_KINDS.len()]
            ),
            Step::CrashNow => write!(f, "crash now"),
            Step::Reopen => write!(f, "reopen (process restart)"),
            Step::CrashInRecovery { kind, nth, repeat } => write!(
                f,
                "arm crash in recovery at {} call #{nth}{}",
                IO_KINDS[usize::from(*kind) % IO_KINDS.len()],
                if *repeat > 1 {
                    format!(", for {repeat} recovery attempts")
                } else {
                    String::new()
                }
            ),
            Step::Fault {
                kind,
                nth,
                recovery,
            } => {
                let name = FAULT_STEPS[usize::from(*kind) % FAULT_STEPS.len()];
                let when = if *recovery {
                    " in the next recovery"
                } else {
                    ""
                };
                if name == "enospc" {
                    write!(f, "disk full {nth} KiB from now{when}")
                } else {
                    write!(f, "{name} at call #{nth}{when}")
                }
            }
            Step::Eio { sync, nth } => {
                write!(f, "EIO on {} #{nth}", if *sync { "fsync" } else { "write" })
            }
            Step::Check => write!(f, "check"),
            Step::SnapshotCheck { back } => write!(f, "snapshot check now-{back}s"),
            Step::EdgeCommit { key, edge } => write!(
                f,
                "edge commit k{key:02}: data ends {}",
                match edge % 3 {
                    0 => "exactly on a block boundary",
                    1 => "one byte before a block boundary",
                    _ => "one byte into a block",
                }
            ),
            Step::Read { kind, a, b } => match kind % 5 {
                0 => write!(f, "read get k{:02}", a % KEY_SPACE),
                1 => write!(f, "read scan k{:02}..k{:02}", a % KEY_SPACE, b % KEY_SPACE),
                2 => write!(f, "read changes since tip*{a}/255"),
                3 => write!(f, "read snapshot at seqno tip*{a}/255"),
                _ if a.is_multiple_of(2) => write!(f, "read local document l{}", b % LOCAL_NAMES),
                _ => write!(f, "read every local document"),
            },
            Step::Local {
                name, delete: true, ..
            } => write!(f, "remove local document l{}", name % LOCAL_NAMES),
            Step::Preempt { point, nth, steps } => write!(
                f,
                "preempt the next compaction step at {} (occurrence {nth}) for the next {steps} step(s)",
                pause_point(*point)
            ),
            Step::Local { name, len, .. } => {
                write!(
                    f,
                    "set local document l{} ({len} bytes)",
                    name % LOCAL_NAMES
                )
            }
            Step::Hold { release: false } => write!(f, "hold a snapshot"),
            Step::Hold { release: true } => write!(f, "release the held snapshot"),
            Step::Batch { count, first, len } => {
                write!(
                    f,
                    "commit a batch of {count} sets from b{first}.. (length code {len})"
                )
            }
            Step::Damage(d) => write!(f, "damage: {d}"),
        }
    }
}

/// The scenario as numbered readable steps.
pub fn describe(scenario: &Scenario) -> String {
    let mut out = format!("config {:?}\n", scenario.config);
    for (i, step) in scenario.steps.iter().enumerate() {
        out.push_str(&format!("  #{i:<3} {step}\n"));
    }
    out
}

/// The catalog name a `point` byte selects.
pub fn failpoint_name(point: u8) -> &'static str {
    let all: Vec<&'static str> = engine::failpoints::all().collect();
    all[usize::from(point) % all.len()]
}
