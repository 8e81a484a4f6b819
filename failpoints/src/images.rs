//! Every crash image a pending crash allows, under a bound: the
//! enumeration behind `crashfuzz exhaust`.
//!
//! A crash keeps everything synced; of what is not, the persistence model
//! (the [module doc of `sim`](crate::sim)) allows, per file, any subset of
//! the unsynced writes and `set_len`s applied in any order, each write
//! possibly torn at 512-byte sectors; per directory, any prefix of the
//! unsynced entry changes. [`ImageBounds`] cuts that space down to a
//! finite, stated part:
//!
//! - **Subsets and orders.** A file with at most
//!   [`ImageBounds::max_subset_ops`] unsynced operations gets every subset;
//!   a subset is applied in every order only when two of its operations
//!   overlap (or one is a `set_len`): writes to disjoint byte ranges give
//!   the same bytes in any order (each byte is written by one of them, and
//!   the length is the largest end whatever the order), so one order stands
//!   for all. A file with more operations gets every *prefix* only (counted
//!   in [`ImageCount::bounded_files`]).
//! - **Tears.** At most one torn sector per file per image: one kept write
//!   loses one of its 512-byte pieces, which holds one fill of
//!   [`ImageBounds::fills`] (`Old`: what was there before the write;
//!   `Zero`; `Garbage`: bytes seeded by the disk's seed, the crash number,
//!   the file and the sector, so an image is the same on every replay).
//!   Power-safe overwrite is assumed (the lost piece is the write's own
//!   bytes); sub-sector tears and whole-unit tears are not enumerated.
//! - **Directories.** Every prefix of each directory's unsynced changes
//!   (a journal commits them in order), a lost `MkDir` taking its
//!   directory with it, as in a random crash.
//! - **A cap.** At most [`ImageBounds::max_images`] images per crash; the
//!   rest are counted ([`ImageCount::allowed`] > [`ImageCount::enumerated`]),
//!   never silently dropped.
//!
//! Images are numbered in mixed radix over the components (directories
//! with unsynced changes, by path, then files with unsynced operations, by
//! creation), each component's choice 0 first. Choice 0 of every component
//! keeps nothing unsynced, so **image #0 is exactly the
//! [`crate::CrashMode::DropUnsynced`] image**.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::crash::{apply_op, CrashMode, FileOp, TornFill, SECTOR_BYTES};
use crate::trigger::{CrashTrigger, IoCounts};

/// How far [`crate::SimVfs`] enumerates crash images (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageBounds {
    /// Files with at most this many unsynced operations get every subset
    /// (and order, where they overlap); more get every prefix.
    pub max_subset_ops: usize,
    /// What a torn sector may hold; empty: no tears.
    pub fills: Vec<TornFill>,
    /// At most this many images per crash are enumerated.
    pub max_images: u64,
}

impl Default for ImageBounds {
    fn default() -> ImageBounds {
        ImageBounds {
            max_subset_ops: 4,
            fills: vec![TornFill::Zero],
            max_images: 4096,
        }
    }
}

/// How many images a crash allows, and how many of them are enumerated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageCount {
    /// Images the bounded model allows (saturating).
    pub allowed: u64,
    /// Images numbered `0..enumerated` (`allowed` capped at
    /// [`ImageBounds::max_images`]).
    pub enumerated: u64,
    /// Files with more unsynced operations than
    /// [`ImageBounds::max_subset_ops`] (prefixes only).
    pub bounded_files: u64,
}

/// Which crash images the next power-loss reboots take (set with
/// [`crate::SimVfs::set_image_choice`]), and the log the disk keeps for
/// whoever enumerates.
#[derive(Clone, Debug, Default)]
pub struct ImageChoice {
    /// The enumeration's bounds.
    pub bounds: ImageBounds,
    /// The image of the 1st, 2nd, ... power-loss reboot after the choice
    /// was set; past its end (or for an index past the enumeration) the
    /// crash mode decides as usual.
    pub picks: Vec<u64>,
    /// At each reboot, log the digest of every enumerated image.
    pub digests: bool,
    /// Where the disk logs arms, crashes, reboots and disarms.
    pub log: ImageLog,
    /// Arm substitutions: when [`crate::SimVfs::arm`] is asked to arm a
    /// trigger equal to the first of a pair, it arms the second instead.
    /// This is how `crashfuzz exhaust` reaches crash points a scenario's
    /// step encoding cannot name (the 17th write of an operation, the 5th
    /// read of a recovery, a non-recovery failpoint hit during an open): the
    /// scenario holds a placeholder step at the right place, and the
    /// substitution, part of the replay id, says what it stands for.
    pub retarget: Vec<(CrashTrigger, CrashTrigger)>,
}

/// A shared log of [`SimEvent`]s.
#[derive(Clone, Debug, Default)]
pub struct ImageLog(Arc<Mutex<Vec<SimEvent>>>);

impl ImageLog {
    /// The events so far, oldest first.
    pub fn events(&self) -> Vec<SimEvent> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn push(&self, event: SimEvent) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

/// What the disk did, as an [`ImageLog`] records it. Counts are cumulative
/// since the disk was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimEvent {
    /// A crash trigger was armed.
    Armed {
        /// I/O calls so far.
        io: IoCounts,
        /// Failpoint hits so far.
        hits: BTreeMap<String, u64>,
    },
    /// The disk froze.
    Crash {
        /// By an armed trigger (not a manual crash or a process restart).
        triggered: bool,
        /// I/O calls so far.
        io: IoCounts,
        /// Failpoint hits so far.
        hits: BTreeMap<String, u64>,
    },
    /// A power-loss reboot computed its image.
    Reboot {
        /// The images this crash allowed.
        images: ImageCount,
        /// The image taken, if picked from the enumeration.
        picked: Option<u64>,
        /// Digest of every enumerated image (when asked for).
        digests: Vec<String>,
        /// The crash mode the taken image amounts to (`KeepSubset` for a
        /// partial choice, `Torn` if a sector was torn).
        mode: CrashMode,
        /// I/O calls so far.
        io: IoCounts,
    },
    /// The armed trigger (if any) was disarmed.
    Disarm {
        /// I/O calls so far.
        io: IoCounts,
        /// Failpoint hits so far.
        hits: BTreeMap<String, u64>,
    },
}

/// One file's choice: which unsynced operations survive, in which order,
/// and which one sector (if any) is torn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileChoice {
    /// Indices into the pending operations, in application order.
    order: Vec<usize>,
    /// `(position in order, absolute sector, fill)`.
    tear: Option<(usize, u64, TornFill)>,
}

fn op_range(op: &FileOp) -> Option<(u64, u64)> {
    match op {
        FileOp::Write { offset, bytes } => Some((*offset, offset + bytes.len() as u64)),
        FileOp::SetLen { .. } => None,
    }
}

/// Whether the kept operations' result can depend on their order.
fn order_matters(pending: &[FileOp], kept: &[usize]) -> bool {
    for (a, &i) in kept.iter().enumerate() {
        for &j in &kept[a + 1..] {
            match (op_range(&pending[i]), op_range(&pending[j])) {
                (Some((s1, e1)), Some((s2, e2))) => {
                    if s1 < e2 && s2 < e1 {
                        return true;
                    }
                }
                // A set_len cuts or zero-extends whatever it meets.
                _ => return true,
            }
        }
    }
    false
}

/// Every permutation of `items`, the identity first (lexicographic).
fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for (i, &first) in items.iter().enumerate() {
        let mut rest = items.to_vec();
        rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            out.push(tail);
        }
    }
    out
}

/// Every choice for one file with `pending` unsynced operations; choice 0
/// keeps nothing. The bool: the file was bounded to prefixes.
pub(crate) fn file_choices(pending: &[FileOp], bounds: &ImageBounds) -> (Vec<FileChoice>, bool) {
    let n = pending.len();
    let bounded = n > bounds.max_subset_ops || n >= 20;
    let kept_sets: Vec<Vec<usize>> = if bounded {
        (0..=n).map(|k| (0..k).collect()).collect()
    } else {
        (0..1u32 << n)
            .map(|mask| (0..n).filter(|i| mask & (1 << i) != 0).collect())
            .collect()
    };
    let mut out = Vec::new();
    for kept in kept_sets {
        let orders = if !bounded && order_matters(pending, &kept) {
            permutations(&kept)
        } else {
            vec![kept]
        };
        for order in orders {
            out.push(FileChoice {
                order: order.clone(),
                tear: None,
            });
            for (pos, &i) in order.iter().enumerate() {
                let Some((start, end)) = op_range(&pending[i]) else {
                    continue;
                };
                if start == end {
                    continue;
                }
                for sector in start / SECTOR_BYTES..end.div_ceil(SECTOR_BYTES) {
                    for &fill in &bounds.fills {
                        out.push(FileChoice {
                            order: order.clone(),
                            tear: Some((pos, sector, fill)),
                        });
                    }
                }
            }
        }
    }
    (out, bounded)
}

impl FileChoice {
    /// The file's bytes after the crash.
    pub(crate) fn apply(&self, durable: &[u8], pending: &[FileOp], garbage_seed: u64) -> Vec<u8> {
        let mut image = durable.to_vec();
        for (pos, &i) in self.order.iter().enumerate() {
            let op = &pending[i];
            match (self.tear, op) {
                (Some((at, sector, fill)), FileOp::Write { offset, bytes }) if at == pos => {
                    let before = image.clone();
                    apply_op(&mut image, op);
                    let lo = (sector * SECTOR_BYTES).max(*offset) as usize;
                    let hi =
                        ((sector + 1) * SECTOR_BYTES).min(offset + bytes.len() as u64) as usize;
                    let piece = &mut image[lo..hi];
                    match fill {
                        TornFill::Old => {
                            for (k, byte) in piece.iter_mut().enumerate() {
                                *byte = before.get(lo + k).copied().unwrap_or(0);
                            }
                        }
                        TornFill::Zero => piece.fill(0),
                        TornFill::Garbage => {
                            let mut rng = ChaCha8Rng::seed_from_u64(
                                garbage_seed ^ sector.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                            );
                            rng.fill_bytes(piece);
                        }
                    }
                }
                _ => apply_op(&mut image, op),
            }
        }
        image
    }

    /// What the choice amounts to, for one file with `pending` operations.
    pub(crate) fn class(&self, pending: usize) -> Class {
        if let Some((_, _, fill)) = self.tear {
            Class::Torn(fill)
        } else if self.order.is_empty() {
            Class::Drop
        } else if self.order.len() == pending && self.order.windows(2).all(|w| w[0] < w[1]) {
            Class::All
        } else {
            Class::Partial
        }
    }
}

/// What one component's choice amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Drop,
    All,
    Partial,
    Torn(TornFill),
}

/// The crash mode a whole image amounts to: every component dropped is
/// `DropUnsynced`, every one kept whole is `KeepAll`, a tear anywhere is
/// `Torn`, anything else `KeepSubset`.
pub(crate) fn mode_of(classes: impl IntoIterator<Item = Class>) -> CrashMode {
    let (mut all_drop, mut all_keep) = (true, true);
    let mut torn = None;
    for c in classes {
        match c {
            Class::Drop => all_keep = false,
            Class::All => all_drop = false,
            Class::Partial => {
                all_drop = false;
                all_keep = false;
            }
            Class::Torn(fill) => {
                torn.get_or_insert(fill);
            }
        }
    }
    match torn {
        Some(fill) => CrashMode::Torn { fill },
        None if all_drop => CrashMode::DropUnsynced,
        None if all_keep => CrashMode::KeepAll,
        None => CrashMode::KeepSubset,
    }
}

/// Split image number `index` into one choice per component of `radices`
/// (the first component varies fastest).
pub(crate) fn decompose(mut index: u64, radices: &[u64]) -> Vec<u64> {
    radices
        .iter()
        .map(|&r| {
            let r = r.max(1);
            let digit = index % r;
            index /= r;
            digit
        })
        .collect()
}

impl fmt::Display for ImageCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} images", self.enumerated)?;
        if self.allowed > self.enumerated {
            write!(f, " (of {} allowed)", self.allowed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(offset: u64, len: usize, b: u8) -> FileOp {
        FileOp::Write {
            offset,
            bytes: vec![b; len],
        }
    }

    #[test]
    fn disjoint_writes_get_one_order_and_a_tear_per_sector() {
        // Two disjoint writes of one and two sectors, no fills: 4 subsets.
        let pending = [write(0, 512, b'a'), write(512, 1024, b'b')];
        let none = ImageBounds {
            fills: vec![],
            ..ImageBounds::default()
        };
        let (choices, bounded) = file_choices(&pending, &none);
        assert!(!bounded);
        assert_eq!(choices.len(), 4);
        // One fill: each kept sector may be torn: {}:1, {a}:1+1, {b}:1+2,
        // {a,b}:1+3 = 10.
        let (choices, _) = file_choices(&pending, &ImageBounds::default());
        assert_eq!(choices.len(), 10);
        assert_eq!(choices[0].order, Vec::<usize>::new());
    }

    #[test]
    fn overlapping_writes_get_every_order() {
        let pending = [write(0, 100, b'a'), write(50, 100, b'b')];
        let none = ImageBounds {
            fills: vec![],
            ..ImageBounds::default()
        };
        let (choices, _) = file_choices(&pending, &none);
        // {}, {a}, {b}, {a,b}, {b,a}
        assert_eq!(choices.len(), 5);
        let images: std::collections::BTreeSet<Vec<u8>> =
            choices.iter().map(|c| c.apply(&[], &pending, 0)).collect();
        assert_eq!(images.len(), 5, "every order gives its own bytes here");
    }

    #[test]
    fn too_many_ops_get_prefixes() {
        let pending: Vec<FileOp> = (0..6).map(|i| write(i * 10, 10, b'x')).collect();
        let none = ImageBounds {
            fills: vec![],
            ..ImageBounds::default()
        };
        let (choices, bounded) = file_choices(&pending, &none);
        assert!(bounded);
        assert_eq!(choices.len(), 7);
    }

    #[test]
    fn tears_touch_only_the_lost_piece() {
        let pending = [write(100, 1000, b'a')];
        let bounds = ImageBounds {
            fills: vec![TornFill::Old, TornFill::Zero, TornFill::Garbage],
            ..ImageBounds::default()
        };
        let durable = vec![b'D'; 100];
        let (choices, _) = file_choices(&pending, &bounds);
        // {}: 1; {a}: 1 + 3 sectors x 3 fills.
        assert_eq!(choices.len(), 11);
        for c in &choices[2..] {
            let image = c.apply(&durable, &pending, 7);
            assert_eq!(&image[..100], &durable[..]);
            assert_eq!(image.len(), 1100);
            assert_ne!(image[100..], vec![b'a'; 1000][..]);
        }
    }

    #[test]
    fn retarget_substitutes_only_its_placeholder() {
        use crate::trigger::IoKind;
        let placeholder = CrashTrigger::AtIo {
            kind: IoKind::CreateDir,
            nth: 16,
        };
        let target = CrashTrigger::AfterIo {
            kind: IoKind::Write,
            nth: 17,
        };
        let sim = crate::SimVfs::new(1);
        sim.arm(placeholder.clone()).unwrap();
        assert_eq!(sim.armed().unwrap().0, placeholder, "no choice: as asked");
        sim.set_image_choice(Some(ImageChoice {
            retarget: vec![(placeholder.clone(), target.clone())],
            ..ImageChoice::default()
        }));
        sim.arm(placeholder).unwrap();
        assert_eq!(sim.armed().unwrap(), (target, 17));
        let other = CrashTrigger::AtIo {
            kind: IoKind::Sync,
            nth: 2,
        };
        sim.arm(other.clone()).unwrap();
        assert_eq!(sim.armed().unwrap().0, other, "other triggers as asked");
    }

    #[test]
    fn decompose_is_mixed_radix() {
        assert_eq!(decompose(0, &[3, 4]), vec![0, 0]);
        assert_eq!(decompose(5, &[3, 4]), vec![2, 1]);
        assert_eq!(decompose(11, &[3, 4]), vec![2, 3]);
    }
}
