//! What `crashfuzz stress` and `crashfuzz replay-crashes` share: the line
//! protocol a child process speaks to its driver over its stdout, reading a
//! store on the real file system into an [`oracle::RecoveredStore`], running
//! a child with deadlines, and the failure record both commands print.
//!
//! # The pipe protocol
//! One JSON object per line ([`Msg`]). A line is written with one
//! `write_all` and flushed *before* the child acts on what it says (a writer
//! is told its flush is durable only after the `flushed` line is out), so a
//! SIGKILL can lose a line only if nobody was told. A last line without its
//! newline (the child died while writing it) is dropped; any other line that
//! does not parse is a [`ProtocolError`], never a panic.
//!
//! # Values as digests
//! Children send, and the oracle keeps, a 16-byte SHA-256 digest of each
//! value rather than the value: the model compares digests, and
//! [`extract_std`] digests what it reads back, so a wrong byte anywhere in a
//! value is still a divergence, with lines a few bytes long.

use crate::runner::FailureKind;
use engine::{StdVfs, Store, Vfs};
use oracle::{BySeqEntry, Counters, RecoveredHeader, RecoveredStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::thread;

/// The store's name in every real directory.
pub const STORE_NAME: &str = "db";

/// Exit code of a child that died at a failpoint (the kill point fired).
pub const EXIT_KILL_POINT: i32 = 86;
/// Exit code of a child whose engine panicked (not at a failpoint).
pub const EXIT_CHILD_PANIC: i32 = 87;
/// Exit code of a child whose engine returned an error nothing explains.
pub const EXIT_CHILD_STOPPED: i32 = 88;
/// Exit code of a child that could not open the store.
pub const EXIT_OPEN_FAILED: i32 = 89;
/// The message of the panic a driver-chosen kill point raises.
pub const KILL_MESSAGE: &str = "crashfuzz-kill";

/// The oracle's stand-in for a value: 16 bytes of its SHA-256.
pub fn digest(value: &[u8]) -> Vec<u8> {
    Sha256::digest(value)[..16].to_vec()
}

/// One mutation of a batch, as a child reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMutation {
    /// The seqno the engine gave it.
    pub seqno: u64,
    /// The key, hex.
    pub key: String,
    /// A tombstone.
    pub deleted: bool,
    /// [`digest`] of the value, hex (empty for a tombstone).
    pub digest: String,
}

impl WireMutation {
    /// From a queued document.
    pub fn of(doc: &engine::DocInfo) -> WireMutation {
        WireMutation {
            seqno: doc.seqno,
            key: hex::encode(&doc.key),
            deleted: doc.deleted,
            digest: if doc.deleted {
                String::new()
            } else {
                hex::encode(digest(&doc.value))
            },
        }
    }

    /// The key and the digest as bytes.
    pub fn decode(&self) -> Result<(Vec<u8>, Vec<u8>), ProtocolError> {
        let key = hex::decode(&self.key)
            .map_err(|e| ProtocolError::new(format!("key {:?} is not hex: {e}", self.key)))?;
        let digest = hex::decode(&self.digest)
            .map_err(|e| ProtocolError::new(format!("digest {:?} is not hex: {e}", self.digest)))?;
        Ok((key, digest))
    }
}

/// A [`RecoveredStore`] as a line can carry it (JSON maps need string
/// keys: the docs go as a list of pairs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireStore {
    /// Headers, newest first.
    pub headers: Vec<WireHeader>,
    /// The directory listing.
    pub files: Option<Vec<String>>,
}

/// A [`RecoveredHeader`] on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireHeader {
    /// update_seq.
    pub update_seq: u64,
    /// purge_seq.
    pub purge_seq: u64,
    /// Timestamp.
    pub timestamp_secs: u64,
    /// by-id, key order.
    pub docs: Vec<(Vec<u8>, oracle::Doc)>,
    /// by-seq.
    pub by_seq: Vec<BySeqEntry>,
    /// Counters.
    pub counters: Counters,
    /// Other local documents, by name.
    #[serde(default)]
    pub locals: Vec<(Vec<u8>, Vec<u8>)>,
}

impl From<&RecoveredStore> for WireStore {
    fn from(r: &RecoveredStore) -> WireStore {
        WireStore {
            headers: r
                .headers
                .iter()
                .map(|h| WireHeader {
                    update_seq: h.update_seq,
                    purge_seq: h.purge_seq,
                    timestamp_secs: h.timestamp_secs,
                    docs: h.docs.iter().map(|(k, d)| (k.clone(), d.clone())).collect(),
                    by_seq: h.by_seq.clone(),
                    counters: h.counters,
                    locals: h
                        .locals
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                })
                .collect(),
            files: r.files.clone(),
        }
    }
}

impl WireStore {
    /// Back to the oracle's type.
    pub fn to_recovered(&self) -> RecoveredStore {
        RecoveredStore {
            headers: self
                .headers
                .iter()
                .map(|h| RecoveredHeader {
                    update_seq: h.update_seq,
                    purge_seq: h.purge_seq,
                    timestamp_secs: h.timestamp_secs,
                    docs: h.docs.iter().cloned().collect(),
                    by_seq: h.by_seq.clone(),
                    counters: h.counters,
                    locals: h.locals.iter().cloned().collect(),
                })
                .collect(),
            files: self.files.clone(),
        }
    }
}

/// One line from a child.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Msg {
    /// The store opened and was read back (values as digests).
    Opened {
        /// The revision recovery chose.
        rev: u64,
        /// Every header, and the directory after the open.
        recovered: WireStore,
    },
    /// The store did not open.
    OpenFailed {
        /// Why.
        error: String,
    },
    /// The store opened but reading it back failed (verify, extraction).
    ReadFailed {
        /// Why.
        error: String,
    },
    /// The flusher is about to commit this batch (nothing written yet).
    FlushStarting {
        /// The header's timestamp.
        timestamp: u64,
        /// The revision written to.
        rev: u64,
        /// The tip's update_seq before it.
        tip: u64,
        /// The whole batch, seqno order.
        batch: Vec<WireMutation>,
    },
    /// The flush committed (its header fsync returned Ok).
    Flushed {
        /// The header's update_seq.
        update_seq: u64,
        /// The header's timestamp.
        timestamp: u64,
        /// The revision.
        rev: u64,
    },
    /// A compaction started with H0 at `h0`.
    CompactionStarted {
        /// H0's update_seq.
        h0: u64,
        /// The purge bound in force.
        purge_upto: Option<u64>,
        /// PiTR's `now`.
        started_at: u64,
        /// Started by the child's own thread (to abort it), not the
        /// background compactor.
        manual: bool,
    },
    /// The compaction switched files at tip `update_seq`.
    CompactionSwitched {
        /// The tip at the switch.
        update_seq: u64,
        /// The new revision.
        new_rev: u64,
    },
    /// The compaction finished.
    CompactionFinished,
    /// The compaction failed or was aborted.
    CompactionFailed {
        /// After its switch.
        switched: bool,
        /// Why.
        error: String,
        /// The child's own (aborted) compaction.
        manual: bool,
    },
    /// The child is dying of a panic (at a failpoint: `point`).
    Died {
        /// The failpoint whose action panicked, if it was one.
        point: Option<String>,
        /// The panic message.
        message: String,
    },
    /// The engine returned an error the child did not expect.
    Stopped {
        /// The error.
        error: String,
    },
}

/// A line from a child that is not a [`Msg`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad line from the child: {0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    /// With this description.
    pub fn new(what: impl Into<String>) -> ProtocolError {
        ProtocolError(what.into())
    }
}

/// Parse one line.
pub fn parse_line(line: &[u8]) -> Result<Msg, ProtocolError> {
    let text =
        std::str::from_utf8(line).map_err(|e| ProtocolError::new(format!("not UTF-8 ({e})")))?;
    serde_json::from_str(text.trim_end()).map_err(|e| {
        let shown: String = text.chars().take(120).collect();
        ProtocolError::new(format!("{e}: {shown:?}"))
    })
}

/// A child's side of the pipe: whole lines, flushed one at a time, from any
/// thread.
#[derive(Debug)]
pub struct Emitter {
    out: Mutex<std::io::Stdout>,
}

impl Default for Emitter {
    fn default() -> Emitter {
        Emitter {
            out: Mutex::new(std::io::stdout()),
        }
    }
}

impl Emitter {
    /// Write `msg` as one line and flush. If the driver is gone there is
    /// nobody to tell anything: the child exits.
    pub fn emit(&self, msg: &Msg) {
        let mut line = match serde_json::to_vec(msg) {
            Ok(line) => line,
            Err(_) => std::process::exit(EXIT_CHILD_PANIC),
        };
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if out.write_all(&line).and_then(|()| out.flush()).is_err() {
            std::process::exit(EXIT_CHILD_PANIC);
        }
    }
}

/// The failpoint a panic message names, if the panic came from a `fail`
/// action (`panic`, `panic(crashfuzz-kill)`, or `return` on a point that
/// returns nothing).
pub fn failpoint_of_panic(message: &str, current: Option<&str>) -> Option<String> {
    if let Some(rest) = message.strip_prefix("failpoint ") {
        if let Some(name) = rest.strip_suffix(" panic") {
            return Some(name.to_string());
        }
    }
    if let Some(rest) = message.strip_prefix("Return is not supported for the fail point \"") {
        return Some(rest.trim_end_matches('"').to_string());
    }
    if message.starts_with(KILL_MESSAGE) {
        return Some(
            message
                .strip_prefix(KILL_MESSAGE)
                .and_then(|r| r.strip_prefix(':'))
                .map(str::to_string)
                .or_else(|| current.map(str::to_string))
                .unwrap_or_else(|| "?".into()),
        );
    }
    None
}

/// In a child: make every panic end the process at once, after telling the
/// driver. A panic raised by a failpoint action is a kill point (exit
/// [`EXIT_KILL_POINT`]): the process dies *there*, before the engine's
/// `catch_unwind` could tidy anything up, as a SIGKILL at that instant
/// would. Any other panic is the engine's ([`EXIT_CHILD_PANIC`]).
pub fn install_dying_panic_hook(emitter: &'static Emitter, kill_point: Option<String>) {
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a non-string panic".into());
        let point = failpoint_of_panic(&message, kill_point.as_deref());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let code = if point.is_some() {
            EXIT_KILL_POINT
        } else {
            EXIT_CHILD_PANIC
        };
        emitter.emit(&Msg::Died {
            point,
            message: format!("{message}{location}"),
        });
        std::process::exit(code);
    }));
}

/// Read every header of `store` (verifying each) and list `dir`, for the
/// oracle; live values become their [`digest`]. The StdVfs twin of
/// `runner::extract`.
pub fn extract_std(store: &Store, dir: &Path) -> engine::Result<RecoveredStore> {
    let headers =
        crate::runner::extract_headers(
            store,
            |value, deleted| {
                if deleted {
                    value
                } else {
                    digest(&value)
                }
            },
        )?;
    let files = StdVfs
        .list(dir)
        .map_err(engine::Error::io("list the store directory"))?;
    Ok(RecoveredStore {
        headers,
        files: Some(files),
    })
}

/// Open the store in `dir` and report it as [`Msg::Opened`] (or why not).
/// Strict recovery that refuses a damaged tail is reopened tolerant, as an
/// operator would (and as the runner does).
pub fn open_and_report(
    dir: &Path,
    config: &engine::Config,
    emitter: &Emitter,
) -> Result<Store, i32> {
    let vfs: std::sync::Arc<dyn Vfs> = std::sync::Arc::new(StdVfs);
    let mut opened = Store::open_with_report(vfs.clone(), dir, STORE_NAME, config.clone());
    if config.recovery == engine::RecoveryPolicy::Strict {
        if let Err(e) = &opened {
            if e.is_corruption() {
                let tolerant = engine::Config {
                    recovery: engine::RecoveryPolicy::TolerateCorruptTail,
                    ..config.clone()
                };
                opened = Store::open_with_report(vfs, dir, STORE_NAME, tolerant);
            }
        }
    }
    let (store, report) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            emitter.emit(&Msg::OpenFailed {
                error: e.to_string(),
            });
            return Err(EXIT_OPEN_FAILED);
        }
    };
    match extract_std(&store, dir) {
        Ok(recovered) => {
            emitter.emit(&Msg::Opened {
                rev: report.rev,
                recovered: WireStore::from(&recovered),
            });
            Ok(store)
        }
        Err(e) => {
            emitter.emit(&Msg::ReadFailed {
                error: e.to_string(),
            });
            Err(EXIT_CHILD_STOPPED)
        }
    }
}

/// A running child's stdout as a stream of parsed lines, read on its own
/// thread (so the driver can wait with a deadline), and its stderr collected
/// (the tail is shown with a failure).
pub struct ChildLines {
    /// Parsed lines; the channel closes at EOF.
    pub rx: mpsc::Receiver<Result<Msg, ProtocolError>>,
    reader: Option<thread::JoinHandle<()>>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl fmt::Debug for ChildLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChildLines")
    }
}

/// At most this much of a child's stderr is kept.
const STDERR_KEEP: usize = 16 * 1024;

impl ChildLines {
    /// Take `child`'s piped stdout and stderr.
    pub fn new(child: &mut Child) -> ChildLines {
        let (tx, rx) = mpsc::channel();
        let reader = child
            .stdout
            .take()
            .map(|out| thread::spawn(move || read_lines(out, &tx)));
        let stderr = child.stderr.take().map(|mut err| {
            thread::spawn(move || {
                let mut all = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    all.extend_from_slice(&buf[..n]);
                    if all.len() > 2 * STDERR_KEEP {
                        all.drain(..all.len() - STDERR_KEEP);
                    }
                }
                let start = all.len().saturating_sub(STDERR_KEEP);
                String::from_utf8_lossy(&all[start..]).into_owned()
            })
        });
        ChildLines { rx, reader, stderr }
    }

    /// After the child is dead: every line left, then its stderr tail.
    pub fn finish(mut self) -> (Vec<Result<Msg, ProtocolError>>, String) {
        let rest: Vec<_> = self.rx.iter().collect();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        (rest, stderr)
    }
}

fn read_lines(out: ChildStdout, tx: &mpsc::Sender<Result<Msg, ProtocolError>>) {
    let mut reader = BufReader::new(out);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) if line.last() != Some(&b'\n') => return, // cut by the kill
            Ok(_) => {
                if tx.send(parse_line(&line)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(ProtocolError::new(format!("reading the pipe: {e}"))));
                return;
            }
        }
    }
}

/// A failure found by `stress` or `replay-crashes`.
#[derive(Clone, Debug, Serialize)]
pub struct RealFailure {
    /// Its kind (and exit code).
    #[serde(serialize_with = "kind_name")]
    pub kind: FailureKind,
    /// The invariant or check that failed (its name in JSON, as
    /// `invariant`).
    #[serde(rename = "invariant", serialize_with = "check_name")]
    pub check: crate::failure::Check,
    /// The full message.
    pub message: String,
    /// Where: the round or the image.
    pub at: String,
    /// The command that replays it.
    pub replay: String,
    /// The tail of the child's stderr, if any.
    pub child_stderr: String,
}

fn check_name<S: serde::Serializer>(
    check: &crate::failure::Check,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&check.name())
}

fn kind_name<S: serde::Serializer>(kind: &FailureKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

impl fmt::Display for RealFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "FAILURE {} [{}] at {}",
            self.kind.name(),
            self.check,
            self.at
        )?;
        writeln!(f, "{}", self.message)?;
        if !self.child_stderr.trim().is_empty() {
            writeln!(f, "child stderr (tail):\n{}", self.child_stderr.trim_end())?;
        }
        write!(f, "replay: {}", self.replay)
    }
}

/// `CRASHFUZZ_MUTANT` as a command-line prefix, if set.
pub fn mutant_prefix() -> String {
    match std::env::var(crate::regression::MUTANT_ENV) {
        Ok(m) if !m.trim().is_empty() => format!("{}={} ", crate::regression::MUTANT_ENV, m.trim()),
        _ => String::new(),
    }
}

/// The seeded bug named by `CRASHFUZZ_MUTANT`, as a typed error.
pub fn mutant_from_env() -> Result<Option<engine::mutants::Mutant>, String> {
    let Ok(name) = std::env::var(crate::regression::MUTANT_ENV) else {
        return Ok(None);
    };
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if !cfg!(feature = "mutants") {
        return Err(format!(
            "{}={name} needs the harness `mutants` feature",
            crate::regression::MUTANT_ENV
        ));
    }
    engine::mutants::Mutant::from_name(name)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "{}={name} is not a seeded bug",
                crate::regression::MUTANT_ENV
            )
        })
}

/// SplitMix64: one u64 from another, for per-round and per-image seeds.
pub fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
