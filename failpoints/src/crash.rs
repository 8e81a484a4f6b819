//! What a crash does to the state that was not yet synced.
//!
//! [`CrashMode`] names the modes; the functions here turn a file's durable
//! bytes plus its log of unsynced operations into its post-crash bytes, and
//! decide how much of a directory's unsynced history survives. All choices
//! come from the PRNG passed in, so one seed gives one image.

use std::fmt;

use rand::seq::SliceRandom;
use rand::Rng;

use crate::fault::TearUnit;

/// Torn writes are torn at this granularity: a disk writes a 512-byte sector
/// entirely or not at all, but a longer write may reach the disk in part.
/// Sectors are aligned to absolute file offsets (sector `k` is the bytes
/// `k * 512 .. (k + 1) * 512`).
pub const SECTOR_BYTES: u64 = 512;

/// The page-cache page: a failed fsync's kept pages, and the tear unit of
/// [`crate::TearUnit::Page`], are tracked at this granularity, aligned to
/// absolute file offsets like sectors.
pub const PAGE_BYTES: u64 = 4096;

/// What the lost sectors of a torn write hold after the crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TornFill {
    /// What they held before the write (zeroes past the old end of the file).
    Old,
    /// Zeroes: the file system sized the file but never wrote the sector.
    Zero,
    /// Seeded random bytes: the sector held stale data from elsewhere.
    Garbage,
}

/// How a crash treats what was not synced. [`CrashMode::choose`] picks one
/// per crash from the seed; a run can also force one.
///
/// Whatever the mode, everything synced survives: the bytes and length of a
/// file as of its last successful `sync`, and a directory's entries as of its
/// last successful `sync_dir`. The modes differ only in what else survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CrashMode {
    /// Nothing unsynced survives: no unsynced write or `set_len`, no unsynced
    /// create, rename or unlink. Exactly one image.
    DropUnsynced,
    /// Everything survives, as after a process crash that left the kernel
    /// running: the image is the state the engine last saw.
    KeepAll,
    /// A seed-chosen subset of each file's unsynced writes and `set_len`s
    /// survives, applied in a seed-chosen order (reordering within the last
    /// sync barrier); of each directory's unsynced entry changes, a
    /// seed-chosen prefix survives (a journal commits them in order).
    KeepSubset,
    /// As [`CrashMode::KeepSubset`], and each surviving write may be torn:
    /// a seed-chosen subset of its 512-byte sectors reaches the disk, the
    /// others hold [`TornFill`]. A torn write still extends the file to its
    /// end. On a device with power-safe overwrite (the default) the fill
    /// touches only the bytes the write covered, so a torn append cannot
    /// damage what was synced before it; without it
    /// ([`crate::FaultConfig::no_power_safe_overwrite`]) a lost sector (or
    /// page) is damaged whole, neighbouring synced bytes included.
    Torn {
        /// What the lost sectors hold.
        fill: TornFill,
    },
    /// Every unsynced write survives, in order, but no unsynced `set_len`
    /// does (a lost growth or truncation); directories as in
    /// [`CrashMode::KeepSubset`].
    LoseSetLen,
}

impl CrashMode {
    /// Every mode, in the order [`CrashMode::choose`] indexes them.
    pub const ALL: [CrashMode; 7] = [
        CrashMode::DropUnsynced,
        CrashMode::KeepAll,
        CrashMode::KeepSubset,
        CrashMode::Torn {
            fill: TornFill::Old,
        },
        CrashMode::Torn {
            fill: TornFill::Zero,
        },
        CrashMode::Torn {
            fill: TornFill::Garbage,
        },
        CrashMode::LoseSetLen,
    ];

    /// One mode, uniformly, from the PRNG.
    pub fn choose<R: Rng + ?Sized>(rng: &mut R) -> CrashMode {
        CrashMode::ALL[rng.gen_range(0..CrashMode::ALL.len())]
    }

    /// A short kebab-case name for command lines and reports.
    pub fn name(self) -> &'static str {
        match self {
            CrashMode::DropUnsynced => "drop-unsynced",
            CrashMode::KeepAll => "keep-all",
            CrashMode::KeepSubset => "keep-subset",
            CrashMode::Torn {
                fill: TornFill::Old,
            } => "torn-old",
            CrashMode::Torn {
                fill: TornFill::Zero,
            } => "torn-zero",
            CrashMode::Torn {
                fill: TornFill::Garbage,
            } => "torn-garbage",
            CrashMode::LoseSetLen => "lose-set-len",
        }
    }

    /// Parse a [`CrashMode::name`].
    pub fn from_name(name: &str) -> Option<CrashMode> {
        CrashMode::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for CrashMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One unsynced change to a file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FileOp {
    /// `write_all_at(bytes, offset)`.
    Write { offset: u64, bytes: Vec<u8> },
    /// `set_len(len)`.
    SetLen { len: u64 },
}

// Offsets and lengths below fit in usize: the simulator refuses any write or
// set_len whose end exceeds `sim::MAX_FILE_BYTES` (1 GiB) before logging it.

/// Apply one operation exactly as the engine saw it take effect.
pub(crate) fn apply_op(image: &mut Vec<u8>, op: &FileOp) {
    match op {
        FileOp::Write { offset, bytes } => write_at(image, *offset as usize, bytes),
        FileOp::SetLen { len } => image.resize(*len as usize, 0),
    }
}

fn write_at(image: &mut Vec<u8>, start: usize, bytes: &[u8]) {
    if start > image.len() {
        // A hole before the write reads as zeroes.
        image.resize(start, 0);
    }
    // The part over existing bytes is copied in place, the rest appended
    // (no zero fill of bytes about to be overwritten).
    let over = (image.len() - start).min(bytes.len());
    image[start..start + over].copy_from_slice(&bytes[..over]);
    image.extend_from_slice(&bytes[over..]);
}

/// What the tears of one crash image did, for the fault counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TearStats {
    /// Lost units that damaged bytes outside the write (no power-safe
    /// overwrite), by sector.
    pub(crate) whole_sectors: u64,
    /// The same, by page.
    pub(crate) whole_pages: u64,
}

/// A write of which each sector (or each unit of `whole`) reaches the disk
/// with probability 1/2. A lost piece holds `fill`; with `whole` set, the
/// lost piece is the whole aligned unit, bytes outside the write included
/// (clipped to the image's length: a unit past the end of the file has no
/// bytes to damage).
fn torn_write<R: Rng + ?Sized>(
    image: &mut Vec<u8>,
    start: usize,
    bytes: &[u8],
    fill: TornFill,
    whole: Option<TearUnit>,
    stats: &mut TearStats,
    rng: &mut R,
) {
    let unit = whole.map_or(SECTOR_BYTES, TearUnit::bytes) as usize;
    let end = start + bytes.len();
    let before = image.clone();
    if image.len() < end {
        image.resize(end, 0);
    }
    let mut pos = start;
    while pos < end {
        let unit_start = pos / unit * unit;
        let piece_end = ((pos / unit + 1) * unit).min(end);
        if rng.gen_bool(0.5) {
            image[pos..piece_end].copy_from_slice(&bytes[pos - start..piece_end - start]);
        } else {
            // The range the loss damages: the write's piece, or the whole
            // unit when the device has no power-safe overwrite.
            let (lo, hi) = match whole {
                Some(_) => (unit_start, (unit_start + unit).min(image.len())),
                None => (pos, piece_end),
            };
            match fill {
                TornFill::Old => {
                    // What the unit held before the write: zeroes past the
                    // old end of the file.
                    for (at, byte) in image[lo..hi].iter_mut().enumerate() {
                        *byte = before.get(lo + at).copied().unwrap_or(0);
                    }
                }
                TornFill::Zero => image[lo..hi].fill(0),
                TornFill::Garbage => rng.fill_bytes(&mut image[lo..hi]),
            }
            if (lo < start || hi > end) && fill != TornFill::Old {
                match whole {
                    Some(TearUnit::Sector) => stats.whole_sectors += 1,
                    Some(TearUnit::Page) => stats.whole_pages += 1,
                    None => {}
                }
            }
        }
        pos = piece_end;
    }
}

/// A seed-chosen subset of `pending`, in a seed-chosen order. The keep
/// probability is itself drawn per file, so both sparse and dense subsets
/// are common.
fn subset_reordered<'a, R: Rng + ?Sized>(pending: &'a [FileOp], rng: &mut R) -> Vec<&'a FileOp> {
    if pending.is_empty() {
        return Vec::new();
    }
    let keep_p: f64 = rng.gen();
    let mut kept: Vec<&FileOp> = pending.iter().filter(|_| rng.gen_bool(keep_p)).collect();
    kept.shuffle(rng);
    kept
}

/// A file's bytes after a crash in `mode`, from its durable bytes and the
/// operations logged since its last successful sync.
pub(crate) fn file_image<R: Rng + ?Sized>(
    durable: Vec<u8>,
    pending: &[FileOp],
    mode: CrashMode,
    whole: Option<TearUnit>,
    stats: &mut TearStats,
    rng: &mut R,
) -> Vec<u8> {
    // Room for every pending write up front: no reallocation while applying.
    let room = pending
        .iter()
        .map(|op| match op {
            FileOp::Write { offset, bytes } => *offset as usize + bytes.len(),
            FileOp::SetLen { len } => *len as usize,
        })
        .fold(durable.len(), usize::max);
    // Built in place from the durable bytes (no copy of the file).
    let mut image = durable;
    image.reserve(room - image.len());
    match mode {
        CrashMode::DropUnsynced => {}
        CrashMode::KeepAll => pending.iter().for_each(|op| apply_op(&mut image, op)),
        CrashMode::LoseSetLen => pending
            .iter()
            .filter(|op| matches!(op, FileOp::Write { .. }))
            .for_each(|op| apply_op(&mut image, op)),
        CrashMode::KeepSubset => subset_reordered(pending, rng)
            .into_iter()
            .for_each(|op| apply_op(&mut image, op)),
        CrashMode::Torn { fill } => {
            for op in subset_reordered(pending, rng) {
                match op {
                    FileOp::Write { offset, bytes } if rng.gen_bool(0.5) => {
                        torn_write(&mut image, *offset as usize, bytes, fill, whole, stats, rng);
                    }
                    _ => apply_op(&mut image, op),
                }
            }
        }
    }
    image
}

/// How many of a directory's `pending` unsynced entry changes survive, as a
/// prefix of the order they were made in.
pub(crate) fn dir_ops_kept<R: Rng + ?Sized>(pending: usize, mode: CrashMode, rng: &mut R) -> usize {
    match mode {
        CrashMode::DropUnsynced => 0,
        CrashMode::KeepAll => pending,
        CrashMode::KeepSubset | CrashMode::Torn { .. } | CrashMode::LoseSetLen => {
            rng.gen_range(0..=pending)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn mode_names_round_trip() {
        for mode in CrashMode::ALL {
            assert_eq!(CrashMode::from_name(mode.name()), Some(mode));
        }
        assert_eq!(CrashMode::from_name("nope"), None);
    }

    #[test]
    fn choose_reaches_every_mode() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(CrashMode::choose(&mut rng));
        }
        assert_eq!(seen.len(), CrashMode::ALL.len());
    }

    /// A write inside, across and past the end, and after a hole, each
    /// against a byte-by-byte model.
    #[test]
    fn write_at_matches_a_byte_model() {
        let cases: [(usize, usize, usize); 7] = [
            (10, 0, 4),
            (10, 3, 4),
            (10, 8, 5),
            (10, 10, 3),
            (10, 14, 2),
            (0, 0, 3),
            (0, 5, 1),
        ];
        for (len, start, n) in cases {
            let mut image: Vec<u8> = (1..=len as u8).collect();
            let bytes: Vec<u8> = (0..n as u8).map(|b| 100 + b).collect();
            let mut model = image.clone();
            for (i, b) in bytes.iter().enumerate() {
                if model.len() <= start + i {
                    model.resize(start + i + 1, 0);
                }
                model[start + i] = *b;
            }
            write_at(&mut image, start, &bytes);
            assert_eq!(image, model, "{n} bytes at {start} over {len}");
        }
    }

    #[test]
    fn torn_fill_stays_inside_the_write() {
        // Durable 100 bytes of 'D', then an unsynced append of 1000 bytes
        // starting mid-sector: whatever is torn, bytes 0..100 stay 'D'.
        let durable = vec![b'D'; 100];
        let pending = [FileOp::Write {
            offset: 100,
            bytes: vec![b'a'; 1000],
        }];
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for fill in [TornFill::Old, TornFill::Zero, TornFill::Garbage] {
                let mut stats = TearStats::default();
                let mode = CrashMode::Torn { fill };
                let image = file_image(durable.clone(), &pending, mode, None, &mut stats, &mut rng);
                assert!(image[..100].iter().all(|&b| b == b'D'));
                assert!(image.len() == 100 || image.len() == 1100);
                assert_eq!(stats, TearStats::default());
            }
        }
    }

    #[test]
    fn without_power_safe_overwrite_a_tear_damages_the_whole_unit() {
        // Durable 100 bytes of 'D', then an unsynced append of 1000 bytes:
        // when the first sector of the append is lost, the synced bytes of
        // that sector are zeroed too.
        let durable = vec![b'D'; 100];
        let pending = [FileOp::Write {
            offset: 100,
            bytes: vec![b'a'; 1000],
        }];
        for unit in [TearUnit::Sector, TearUnit::Page] {
            let mut damaged = 0;
            for seed in 0..64 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut stats = TearStats::default();
                let mode = CrashMode::Torn {
                    fill: TornFill::Zero,
                };
                let image = file_image(
                    durable.clone(),
                    &pending,
                    mode,
                    Some(unit),
                    &mut stats,
                    &mut rng,
                );
                if image.len() < 100 || image[..100] != durable[..] {
                    damaged += 1;
                    assert!(image[..100].iter().all(|&b| b == 0), "zeroed whole");
                    assert!(stats.whole_sectors + stats.whole_pages > 0);
                }
            }
            assert!(damaged > 0, "{unit:?}: no seed tore the shared unit");
        }
    }
}
