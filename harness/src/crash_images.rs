//! `crashfuzz replay-crashes`: record a workload's I/O on the real file
//! system, build crash images from the recording under the simulator's
//! persistence rules, and open each image with the real engine over
//! [`engine::StdVfs`] in a fresh process (CrashMonkey's method).
//!
//! 1. A [`harness::Scenario`](crate::Scenario)'s set, delete, flush, tick and
//!    compaction steps run over a [`RecordingVfs`] wrapping `StdVfs` in a
//!    real temporary directory (its crash, EIO and check steps are
//!    ignored). Every write, `set_len`, fsync, rename, unlink, directory
//!    fsync and directory creation that returned Ok is logged, interleaved
//!    with the oracle's events (a set, a flush started or acknowledged, a
//!    compaction started, switched, aborted) at the instant they happened.
//! 2. For each chosen crash point (a prefix of the log: most often the
//!    instant before an fsync, when the most is unsynced) the prefix is
//!    replayed into a fresh [`failpoints::SimVfs`], which is then crashed
//!    and rebooted with a seeded [`failpoints::CrashMode`]. The simulator's
//!    rules decide what survives, so the image follows exactly the rules
//!    every other target is judged by: synced data kept, any allowed subset,
//!    reordering or tear of the rest, unsynced directory changes undone.
//! 3. The image's files are written to a fresh real directory and opened by
//!    `crashfuzz open-image` in a new process with `StdVfs`; what it reads
//!    back is judged by [`oracle::Model`] fed the log's events up to the
//!    crash point.

use crate::failure::{Check, HarnessCheck, Op};
use crate::realfs::{
    mix, mutant_from_env, mutant_prefix, ChildLines, Msg, RealFailure, STORE_NAME,
};
use crate::runner::FailureKind;
use crate::scenario::{Scenario, Step, KEY_SPACE};
use engine::{
    CompactionOptions, Config, ManualClock, OpenMode, Phase, Progress, RecoveryPolicy, StdVfs,
    Store, Vfs, VfsFile,
};
use failpoints::{CrashMode, SimVfs};
use oracle::{CompactionParams, Model, Pitr};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where replayed images live on the simulated disk.
const SIM_DIR: &str = "/db";
/// Compaction steps a `CompactFinish` may take.
const MAX_STEPS: usize = 10_000;

/// An oracle event, logged where it happened among the I/O calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A set was queued (value as its digest).
    Set {
        /// Key.
        key: Vec<u8>,
        /// Value digest.
        digest: Vec<u8>,
    },
    /// A delete was queued.
    Delete {
        /// Key.
        key: Vec<u8>,
    },
    /// A flush began, with the timestamp its header gets.
    FlushStarted {
        /// Timestamp.
        timestamp: u64,
    },
    /// A flush returned Ok.
    FlushAcked {
        /// Its update_seq.
        update_seq: u64,
        /// Its timestamp.
        timestamp: u64,
    },
    /// A compaction started.
    CompactionStarted(CompactionParams),
    /// It switched files.
    CompactionSwitched,
    /// It was aborted.
    CompactionAborted,
}

/// One recorded call (paths relative to the recorded directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rec {
    /// `open`, giving handle `handle`.
    Open {
        /// Handle number.
        handle: u64,
        /// Path.
        path: PathBuf,
        /// Mode.
        mode: OpenMode,
    },
    /// `write_all_at`.
    Write {
        /// Handle.
        handle: u64,
        /// Offset.
        offset: u64,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// `set_len`.
    SetLen {
        /// Handle.
        handle: u64,
        /// Length.
        len: u64,
    },
    /// File fsync.
    Sync {
        /// Handle.
        handle: u64,
    },
    /// `rename`.
    Rename {
        /// From.
        from: PathBuf,
        /// To.
        to: PathBuf,
    },
    /// `remove`.
    Remove {
        /// Path.
        path: PathBuf,
    },
    /// Directory fsync.
    SyncDir {
        /// Path.
        path: PathBuf,
    },
    /// `create_dir_all`.
    CreateDirAll {
        /// Path.
        path: PathBuf,
    },
    /// An oracle event.
    Mark(Mark),
}

impl Rec {
    fn is_io(&self) -> bool {
        !matches!(self, Rec::Mark(_))
    }
}

#[derive(Debug, Default)]
struct Log {
    recs: Mutex<Vec<Rec>>,
    next_handle: AtomicU64,
}

impl Log {
    fn push(&self, rec: Rec) {
        self.recs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(rec);
    }
}

/// `StdVfs`, logging every call that changes the disk (see the module doc).
#[derive(Debug, Clone)]
pub struct RecordingVfs {
    root: PathBuf,
    log: Arc<Log>,
}

impl RecordingVfs {
    /// Record calls under `root` (paths outside it are refused).
    pub fn new(root: &Path) -> RecordingVfs {
        RecordingVfs {
            root: root.to_path_buf(),
            log: Arc::default(),
        }
    }

    /// Log an oracle event now.
    pub fn mark(&self, mark: Mark) {
        self.log.push(Rec::Mark(mark));
    }

    /// The log so far.
    pub fn recs(&self) -> Vec<Rec> {
        self.log
            .recs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn rel(&self, path: &Path) -> io::Result<PathBuf> {
        path.strip_prefix(&self.root)
            .map(Path::to_path_buf)
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{} is outside the recorded directory", path.display()),
                )
            })
    }
}

#[derive(Debug)]
struct RecordingFile {
    inner: Arc<dyn VfsFile>,
    handle: u64,
    log: Arc<Log>,
}

impl VfsFile for RecordingFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)?;
        self.log.push(Rec::Write {
            handle: self.handle,
            offset,
            bytes: buf.to_vec(),
        });
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        self.log.push(Rec::SetLen {
            handle: self.handle,
            len,
        });
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()?;
        self.log.push(Rec::Sync {
            handle: self.handle,
        });
        Ok(())
    }
}

impl Vfs for RecordingVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let rel = self.rel(path)?;
        let inner = StdVfs.open(path, mode)?;
        let handle = self.log.next_handle.fetch_add(1, Ordering::SeqCst);
        self.log.push(Rec::Open {
            handle,
            path: rel,
            mode,
        });
        Ok(Arc::new(RecordingFile {
            inner,
            handle,
            log: self.log.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (rf, rt) = (self.rel(from)?, self.rel(to)?);
        StdVfs.rename(from, to)?;
        self.log.push(Rec::Rename { from: rf, to: rt });
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let rel = self.rel(path)?;
        StdVfs.remove(path)?;
        self.log.push(Rec::Remove { path: rel });
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdVfs.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // The engine fsyncs every ancestor of a store directory it created:
        // above the recorded root that is the real file system's business
        // (the images are rebuilt under the root), so pass it through.
        if self.root.starts_with(dir) && self.root != dir {
            StdVfs.sync_dir(dir)?;
            if self.root.parent() == Some(dir) {
                // The root's own entry in its parent is now durable: the
                // replay does the same to the simulated root's parent.
                self.log.push(Rec::SyncDir {
                    path: PathBuf::from(".."),
                });
            }
            return Ok(());
        }
        let rel = self.rel(dir)?;
        StdVfs.sync_dir(dir)?;
        self.log.push(Rec::SyncDir { path: rel });
        Ok(())
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let rel = self.rel(dir)?;
        StdVfs.create_dir_all(dir)?;
        self.log.push(Rec::CreateDirAll { path: rel });
        Ok(())
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        StdVfs.exists(path)
    }
}

/// The engine config a workload's swarm config asks for (as the runner
/// builds it), with its clock.
pub fn workload_config(scenario: &Scenario) -> (Config, Arc<ManualClock>) {
    crate::runner::engine_config(scenario)
}

fn value_for(key: u8, len: u8, version: u64) -> Vec<u8> {
    let mut v = format!("v{version}").into_bytes();
    v.resize(v.len().max(usize::from(len) * 64), b'a' + key % 26);
    v
}

/// Why a recording run could not go on (not a crash image's verdict).
type RecordError = (FailureKind, Check, String);

/// Run `scenario`'s workload steps over a [`RecordingVfs`] in `dir`.
pub fn record(scenario: &Scenario, dir: &Path) -> Result<Vec<Rec>, RecordError> {
    let (config, clock) = workload_config(scenario);
    let vfs = RecordingVfs::new(dir);
    let err = |kind, check: Check, msg: String| (kind, check, msg);
    let store =
        Store::open(Arc::new(vfs.clone()), dir, STORE_NAME, config.clone()).map_err(|e| {
            err(
                FailureKind::RecoveryError,
                HarnessCheck::Recoverable.into(),
                format!("creating the store: {e}"),
            )
        })?;
    let pitr = config.pitr.map(|p| Pitr {
        granularity_secs: p.granularity_secs,
        max_age_secs: p.max_history_age_secs,
    });
    let mut compaction: Option<engine::Compaction> = None;
    let mut version = 0u64;
    let unexplained = |op: Op, e: engine::Error| {
        err(
            FailureKind::UnexpectedError,
            HarnessCheck::ExplainedError(op).into(),
            format!("{} failed on the real file system: {e}", op.name()),
        )
    };
    for step in &scenario.steps {
        match *step {
            Step::Set { key, len } => {
                version += 1;
                let value = value_for(key, len, version);
                let k = format!("k{:02}", key % KEY_SPACE).into_bytes();
                store.set(&k, &value).map_err(|e| unexplained(Op::Set, e))?;
                vfs.mark(Mark::Set {
                    key: k,
                    digest: crate::realfs::digest(&value),
                });
            }
            Step::Delete { key } => {
                let k = format!("k{:02}", key % KEY_SPACE).into_bytes();
                store.delete(&k).map_err(|e| unexplained(Op::Delete, e))?;
                vfs.mark(Mark::Delete { key: k });
            }
            Step::Flush => {
                if store
                    .queue_len()
                    .map_err(|e| unexplained(Op::QueueLength, e))?
                    == 0
                {
                    continue;
                }
                vfs.mark(Mark::FlushStarted {
                    timestamp: engine::Clock::now_secs(clock.as_ref()),
                });
                match store.flush() {
                    Ok(Some(info)) => vfs.mark(Mark::FlushAcked {
                        update_seq: info.update_seq,
                        timestamp: info.timestamp,
                    }),
                    Ok(None) => {
                        return Err(err(
                            FailureKind::Divergence,
                            HarnessCheck::LostQueue.into(),
                            "a flush of a non-empty queue committed nothing".into(),
                        ))
                    }
                    Err(engine::Error::Busy) => {
                        return Err(err(
                            FailureKind::Hang,
                            HarnessCheck::Liveness.into(),
                            "the flusher could not commit between compaction steps".into(),
                        ))
                    }
                    Err(e) => return Err(unexplained(Op::Flush, e)),
                }
            }
            Step::Tick { secs } => clock.advance(u64::from(secs)),
            Step::CompactStart { purge } => {
                if compaction.is_some() {
                    continue;
                }
                let tip = store.snapshot().map(|s| s.header().update_seq).unwrap_or(0);
                match store.start_compaction(CompactionOptions {
                    purge_upto: (purge > 0).then(|| tip * u64::from(purge) / 3),
                    ..CompactionOptions::default()
                }) {
                    Ok(c) => {
                        vfs.mark(Mark::CompactionStarted(CompactionParams {
                            purge_upto: c.purge_upto(),
                            pitr,
                            now_secs: c.started_at_secs(),
                        }));
                        compaction = Some(c);
                    }
                    Err(engine::Error::Invalid(_)) => {} // nothing committed yet
                    Err(e) => return Err(unexplained(Op::StartCompaction, e)),
                }
            }
            Step::CompactStep { n } => {
                for _ in 0..n {
                    step_compaction(&vfs, &mut compaction)
                        .map_err(|e| unexplained(Op::CompactionStep, e))?;
                }
            }
            Step::CompactFinish => {
                let mut steps = 0;
                while compaction.is_some() {
                    steps += 1;
                    if steps > MAX_STEPS {
                        return Err(err(
                            FailureKind::Hang,
                            HarnessCheck::BoundedCompaction.into(),
                            format!("compaction did not finish in {MAX_STEPS} steps"),
                        ));
                    }
                    step_compaction(&vfs, &mut compaction)
                        .map_err(|e| unexplained(Op::CompactionStep, e))?;
                }
            }
            Step::CompactAbort => {
                if let Some(c) = compaction.take() {
                    if matches!(c.phase(), Phase::Copy | Phase::CatchUp) {
                        c.abort().map_err(|e| unexplained(Op::CompactionAbort, e))?;
                        vfs.mark(Mark::CompactionAborted);
                    } else {
                        compaction = Some(c);
                    }
                }
            }
            // Crashes, faults, reopens and checks belong to the simulator;
            // here the crash points come from the recording.
            _ => {}
        }
    }
    drop(compaction);
    drop(store);
    Ok(vfs.recs())
}

fn step_compaction(
    vfs: &RecordingVfs,
    compaction: &mut Option<engine::Compaction>,
) -> engine::Result<()> {
    let Some(c) = compaction.as_mut() else {
        return Ok(());
    };
    let before = c.phase();
    let progress = c.step()?;
    let switched = matches!(before, Phase::Copy | Phase::CatchUp)
        && matches!(c.phase(), Phase::Unlink | Phase::Done);
    if switched {
        vfs.mark(Mark::CompactionSwitched);
    }
    if let Progress::Done(_) = progress {
        *compaction = None;
    }
    Ok(())
}

fn sim_path(rel: &Path) -> PathBuf {
    if rel == Path::new("..") {
        // The recorded root's parent.
        Path::new(SIM_DIR)
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
    } else if rel.as_os_str().is_empty() {
        PathBuf::from(SIM_DIR)
    } else {
        Path::new(SIM_DIR).join(rel)
    }
}

/// Replay `recs` into `sim` (Marks are skipped).
pub fn replay_into(recs: &[Rec], sim: &SimVfs) -> io::Result<()> {
    let vfs = sim.as_vfs();
    let mut handles: HashMap<u64, Arc<dyn VfsFile>> = HashMap::new();
    let handle = |handles: &HashMap<u64, Arc<dyn VfsFile>>, h: u64| {
        handles
            .get(&h)
            .cloned()
            .ok_or_else(|| io::Error::other(format!("handle {h} was never opened")))
    };
    for rec in recs {
        match rec {
            Rec::Open { handle, path, mode } => {
                handles.insert(*handle, vfs.open(&sim_path(path), *mode)?);
            }
            Rec::Write {
                handle: h,
                offset,
                bytes,
            } => handle(&handles, *h)?.write_all_at(bytes, *offset)?,
            Rec::SetLen { handle: h, len } => handle(&handles, *h)?.set_len(*len)?,
            Rec::Sync { handle: h } => handle(&handles, *h)?.sync()?,
            Rec::Rename { from, to } => vfs.rename(&sim_path(from), &sim_path(to))?,
            Rec::Remove { path } => vfs.remove(&sim_path(path))?,
            Rec::SyncDir { path } => vfs.sync_dir(&sim_path(path))?,
            Rec::CreateDirAll { path } => vfs.create_dir_all(&sim_path(path))?,
            Rec::Mark(_) => {}
        }
    }
    Ok(())
}

/// The model after the events of `recs`, then a crash.
fn model_at(recs: &[Rec]) -> Model {
    let mut model = Model::new();
    for rec in recs {
        let Rec::Mark(mark) = rec else { continue };
        match mark {
            Mark::Set { key, digest } => {
                model.set(key, digest);
            }
            Mark::Delete { key } => {
                model.delete(key);
            }
            Mark::FlushStarted { timestamp } => model.flush_started(*timestamp),
            Mark::FlushAcked {
                update_seq,
                timestamp,
            } => {
                // Checked when it was recorded would be better; a wrong
                // acknowledged header shows up at every later image anyway.
                let _ = model.flush_acked(*update_seq, *timestamp);
            }
            Mark::CompactionStarted(params) => model.compaction_started(*params),
            Mark::CompactionSwitched => model.compaction_switched(),
            Mark::CompactionAborted => model.compaction_aborted(),
        }
    }
    model.crash();
    model
}

/// `crashfuzz replay-crashes` options.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The workload.
    pub scenario: Scenario,
    /// How it was named (a file, or `--seed N`), for the replay command.
    pub workload_arg: String,
    /// Seed of the crash point and mode choices.
    pub seed: u64,
    /// Images to check.
    pub max_images: usize,
    /// The `crashfuzz` binary (images are opened by `open-image` children).
    pub exe: PathBuf,
    /// Where to show progress (the CLI draws a bar).
    pub progress: Option<crate::progress::ProgressSink>,
}

/// What a replay did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplayReport {
    /// The seed.
    pub seed: u64,
    /// Recorded I/O calls.
    pub io_calls: usize,
    /// Recorded fsyncs (file and directory).
    pub syncs: usize,
    /// Acknowledged flushes in the workload.
    pub acknowledged_flushes: usize,
    /// Images built, opened and checked.
    pub images: usize,
    /// Images per crash mode.
    pub modes: BTreeMap<String, u64>,
    /// Seconds.
    pub elapsed_secs: f64,
    /// Failures (the run stops at the first).
    pub failures: Vec<RealFailure>,
}

impl ReplayReport {
    /// The first failure's exit code, else 0.
    pub fn exit_code(&self) -> u8 {
        self.failures
            .first()
            .map_or(0, |f| f.kind.exit_code() as u8)
    }
}

/// Crash points: prefixes of the log (by record count). Each instant just
/// before an fsync, rename or unlink (when the most is unsynced) is taken
/// in turn, in a seeded order, as often as `max` allows (each time with
/// its own crash mode); then the end of the log. With no such instant,
/// seeded random prefixes.
fn crash_points(recs: &[Rec], max: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut barriers: Vec<usize> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            matches!(
                r,
                Rec::Sync { .. } | Rec::SyncDir { .. } | Rec::Rename { .. } | Rec::Remove { .. }
            )
        })
        .map(|(i, _)| i)
        .collect();
    barriers.shuffle(rng);
    let max = max.max(1);
    let mut points = vec![recs.len()];
    while points.len() < max {
        match barriers.get((points.len() - 1) % barriers.len().max(1)) {
            Some(&p) => points.push(p),
            None => points.push(rng.gen_range(0..=recs.len())),
        }
    }
    points.sort_unstable();
    points
}

/// Run `crashfuzz replay-crashes`.
pub fn run(opts: &ReplayOptions) -> Result<ReplayReport, String> {
    let started = Instant::now();
    let mutant = mutant_from_env()?;
    let mut report = ReplayReport {
        seed: opts.seed,
        ..ReplayReport::default()
    };
    let replay = format!(
        "{}crashfuzz replay-crashes{} --seed {} --max-images {}",
        mutant_prefix(),
        opts.workload_arg,
        opts.seed,
        opts.max_images
    );
    let recorded = tempfile::Builder::new()
        .prefix("crashfuzz-record-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    engine::mutants::set(mutant);
    let recs = record(&opts.scenario, recorded.path());
    engine::mutants::set(None);
    let recs = match recs {
        Ok(recs) => recs,
        Err((kind, invariant, message)) => {
            report.failures.push(RealFailure {
                kind,
                check: invariant,
                message,
                at: "the recording run".into(),
                replay,
                child_stderr: String::new(),
            });
            return Ok(report);
        }
    };
    report.io_calls = recs.iter().filter(|r| r.is_io()).count();
    report.syncs = recs
        .iter()
        .filter(|r| matches!(r, Rec::Sync { .. } | Rec::SyncDir { .. }))
        .count();
    report.acknowledged_flushes = recs
        .iter()
        .filter(|r| matches!(r, Rec::Mark(Mark::FlushAcked { .. })))
        .count();
    let mut rng = ChaCha8Rng::seed_from_u64(mix(opts.seed, 0xC4A5));
    let points = crash_points(&recs, opts.max_images, &mut rng);
    let bar: std::sync::Arc<dyn crate::progress::Progress> = match &opts.progress {
        Some(sink) => sink.0.clone(),
        None => std::sync::Arc::new(crate::progress::NoProgress),
    };
    bar.set_length(Some(points.len() as u64));
    let fanout = usize::from(opts.scenario.config.fanout.max(2));
    let strict = opts.scenario.config.strict_recovery;
    for (i, &point) in points.iter().enumerate() {
        let mode = CrashMode::ALL[rng.gen_range(0..CrashMode::ALL.len())];
        let sim_seed = mix(opts.seed, i as u64);
        let sim = SimVfs::new(sim_seed);
        sim.set_crash_mode(Some(mode));
        replay_into(&recs[..point], &sim)
            .map_err(|e| format!("replaying the recording into the simulator: {e}"))?;
        sim.reboot();
        let image = tempfile::Builder::new()
            .prefix("crashfuzz-image-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        for (path, bytes) in sim.files() {
            let Ok(rel) = path.strip_prefix(SIM_DIR) else {
                continue;
            };
            std::fs::write(image.path().join(rel), bytes)
                .map_err(|e| format!("writing the image: {e}"))?;
        }
        let at = format!(
            "image {i} (crash after {point} of {} records, mode {mode}, disk seed {sim_seed})",
            recs.len()
        );
        *report.modes.entry(mode.name().to_string()).or_default() += 1;
        report.images += 1;
        bar.inc(1);
        if let Some((kind, invariant, message, stderr)) =
            open_image(opts, image.path(), fanout, strict, &recs[..point])?
        {
            report.failures.push(RealFailure {
                kind,
                check: invariant,
                message,
                at,
                replay,
                child_stderr: stderr,
            });
            break;
        }
    }
    bar.finish();
    report.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Open one image in a fresh `open-image` process and judge it.
fn open_image(
    opts: &ReplayOptions,
    dir: &Path,
    fanout: usize,
    strict: bool,
    prefix: &[Rec],
) -> Result<Option<(FailureKind, Check, String, String)>, String> {
    let mut cmd = Command::new(&opts.exe);
    cmd.arg("open-image")
        .arg("--dir")
        .arg(dir)
        .arg("--fanout")
        .arg(fanout.to_string())
        .env_remove("FAILPOINTS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if strict {
        cmd.arg("--strict");
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", opts.exe.display()))?;
    let lines = ChildLines::new(&mut child);
    let mut msgs = Vec::new();
    let mut hang = false;
    let mut bad = None;
    let deadline = Instant::now() + crate::stress::OPEN_DEADLINE;
    loop {
        match lines
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(Ok(msg)) => msgs.push(msg),
            Ok(Err(e)) => {
                bad = Some(e);
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                hang = true;
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let (rest, stderr) = lines.finish();
    for r in rest {
        match r {
            Ok(m) => msgs.push(m),
            Err(e) => {
                bad.get_or_insert(e);
            }
        }
    }
    let fail = |kind, check: Check, msg: String| Some((kind, check, msg, stderr.clone()));
    if let Some(e) = bad {
        return Ok(fail(
            FailureKind::Divergence,
            HarnessCheck::PipeProtocol.into(),
            e.to_string(),
        ));
    }
    if hang {
        return Ok(fail(
            FailureKind::Hang,
            HarnessCheck::OpenHang.into(),
            format!(
                "opening the image did not finish in {:?}",
                crate::stress::OPEN_DEADLINE
            ),
        ));
    }
    for msg in msgs {
        match msg {
            Msg::Opened { recovered, .. } => {
                let mut model = model_at(prefix);
                return Ok(match model.check(&recovered.to_recovered()) {
                    Ok(_) => None,
                    Err(d) => fail(
                        FailureKind::Divergence,
                        d.invariant.into(),
                        format!("DIVERGENCE in a crash image opened over StdVfs:\n{d}"),
                    ),
                });
            }
            Msg::OpenFailed { error } => {
                return Ok(fail(
                    FailureKind::RecoveryError,
                    HarnessCheck::Recoverable.into(),
                    format!("the crash image did not open: {error}"),
                ))
            }
            Msg::ReadFailed { error } => {
                return Ok(fail(
                    FailureKind::Divergence,
                    HarnessCheck::Verify.into(),
                    format!("the crash image opened but does not read back: {error}"),
                ))
            }
            Msg::Died { message, .. } => {
                return Ok(fail(
                    FailureKind::Panic,
                    HarnessCheck::NoPanic.into(),
                    format!("the engine panicked opening the image: {message}"),
                ))
            }
            _ => {}
        }
    }
    Ok(fail(
        FailureKind::RecoveryError,
        HarnessCheck::Recoverable.into(),
        "the open-image child ended without a report".into(),
    ))
}

/// The hidden `open-image` subcommand: open `dir` with StdVfs and report
/// it. Returns the exit code.
pub fn open_image_main(dir: &Path, fanout: usize, strict: bool) -> i32 {
    let emitter: &'static crate::realfs::Emitter = Box::leak(Box::default());
    crate::realfs::install_dying_panic_hook(emitter, None);
    match mutant_from_env() {
        Ok(m) => engine::mutants::set(m),
        Err(e) => {
            emitter.emit(&Msg::Stopped { error: e });
            return 2;
        }
    }
    let config = Config {
        fanout: fanout.max(2),
        recovery: if strict {
            RecoveryPolicy::Strict
        } else {
            RecoveryPolicy::TolerateCorruptTail
        },
        ..Config::default()
    };
    match crate::realfs::open_and_report(dir, &config, emitter) {
        Ok(_) => 0,
        Err(code) => code,
    }
}

/// A human summary.
pub fn summary(report: &ReplayReport) -> String {
    let modes: Vec<String> = report
        .modes
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect();
    format!(
        "{} crash images opened over StdVfs in {:.1}s (from {} recorded I/O calls, {} fsyncs, \
         {} acknowledged flushes; modes: {})",
        report.images,
        report.elapsed_secs,
        report.io_calls,
        report.syncs,
        report.acknowledged_flushes,
        modes.join(", ")
    )
}

/// How long a replay-crashes child may take; re-exported for tests.
pub const OPEN_DEADLINE: Duration = crate::stress::OPEN_DEADLINE;
