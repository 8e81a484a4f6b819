//! What a failed check returns: the invariant broken, the header, the
//! smallest diff, and SHA-256 digests of both sides.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::types::{Doc, RecoveredHeader};

/// How many differing entries a report shows; `diff_total` counts all.
pub const MAX_DIFF_LINES: usize = 8;

/// Values longer than this are cut in reports.
const MAX_SHOWN_BYTES: usize = 32;

/// The invariants the oracle checks. The names are stable: they are the
/// de-duplication signatures of crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Invariant {
    AtomicCommit,
    Durability,
    NoHoles,
    NoResurrection,
    IndexAgreement,
    Counters,
    MonotonicSeqno,
    SeqnoAssignment,
    PurgePolicy,
    CompactionIdentity,
    HeaderHistory,
    HeaderList,
    PitrHistory,
    PitrWindows,
    SingleAuthority,
    ReadsMatch,
    LocalDocs,
}

impl Invariant {
    /// Every invariant, in report order.
    pub const ALL: [Invariant; 17] = [
        Invariant::AtomicCommit,
        Invariant::Durability,
        Invariant::NoHoles,
        Invariant::NoResurrection,
        Invariant::IndexAgreement,
        Invariant::Counters,
        Invariant::MonotonicSeqno,
        Invariant::SeqnoAssignment,
        Invariant::PurgePolicy,
        Invariant::CompactionIdentity,
        Invariant::HeaderHistory,
        Invariant::HeaderList,
        Invariant::PitrHistory,
        Invariant::PitrWindows,
        Invariant::SingleAuthority,
        Invariant::ReadsMatch,
        Invariant::LocalDocs,
    ];

    /// The stable short name.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::AtomicCommit => "atomic-commit",
            Invariant::Durability => "durability",
            Invariant::NoHoles => "no-holes",
            Invariant::NoResurrection => "no-resurrection",
            Invariant::IndexAgreement => "index-agreement",
            Invariant::Counters => "counters",
            Invariant::MonotonicSeqno => "monotonic-seqno",
            Invariant::SeqnoAssignment => "seqno-assignment",
            Invariant::PurgePolicy => "purge-policy",
            Invariant::CompactionIdentity => "compaction-identity",
            Invariant::HeaderHistory => "header-history",
            Invariant::HeaderList => "header-list",
            Invariant::PitrHistory => "pitr-history",
            Invariant::PitrWindows => "pitr-windows",
            Invariant::SingleAuthority => "single-authority",
            Invariant::ReadsMatch => "reads-match",
            Invariant::LocalDocs => "local-docs",
        }
    }

    /// The invariant in one line.
    pub fn statement(self) -> &'static str {
        match self {
            Invariant::AtomicCommit => {
                "the recovered tip equals exactly one committed state: no partial batch"
            }
            Invariant::Durability => "no acknowledged flush is lost",
            Invariant::NoHoles => {
                "a newer mutation never survives while an older acknowledged one is lost"
            }
            Invariant::NoResurrection => {
                "a delete is never undone; a tombstone vanishes only under the purge rule"
            }
            Invariant::IndexAgreement => "by-id and by-seq agree one to one",
            Invariant::Counters => "the counters equal a recount of the header's documents",
            Invariant::MonotonicSeqno => "update_seq, purge_seq and timestamps never go backwards",
            Invariant::SeqnoAssignment => {
                "an acknowledged header carries the update_seq and timestamp the model predicted"
            }
            Invariant::PurgePolicy => "purge_seq never passes what the purge policy allowed",
            Invariant::CompactionIdentity => {
                "compaction is the identity on visible state, minus allowed purges"
            }
            Invariant::HeaderHistory => {
                "every older header equals the committed state at its update_seq"
            }
            Invariant::HeaderList => {
                "the file keeps every acknowledged header and none the model cannot explain"
            }
            Invariant::PitrHistory => {
                "every retained PiTR header equals the committed state at its update_seq"
            }
            Invariant::PitrWindows => {
                "PiTR keeps exactly the policy's headers: the last of each window since the cutoff's base"
            }
            Invariant::ReadsMatch => {
                "every read API (get, scan, changes since, local documents) shows the last acknowledged state"
            }
            Invariant::LocalDocs => {
                "every header shows the local documents of its commit: none lost, changed or back after removal"
            }
            Invariant::SingleAuthority => {
                "exactly one authoritative revision, and a .compact file never is one"
            }
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which recovered header a divergence is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderRef {
    /// Index in `RecoveredStore::headers`: 0 is the newest.
    pub position: usize,
    /// How many headers were recovered.
    pub count: usize,
    pub update_seq: u64,
    pub purge_seq: u64,
    pub timestamp_secs: u64,
}

impl HeaderRef {
    pub(crate) fn of(header: &RecoveredHeader, position: usize, count: usize) -> HeaderRef {
        HeaderRef {
            position,
            count,
            update_seq: header.update_seq,
            purge_seq: header.purge_seq,
            timestamp_secs: header.timestamp_secs,
        }
    }
}

/// One differing entry: a key, a counter, a header field or a header list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffLine {
    pub subject: String,
    pub expected: String,
    pub found: String,
}

impl DiffLine {
    pub(crate) fn new(
        subject: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> DiffLine {
        DiffLine {
            subject: subject.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }
}

/// A broken invariant. `Display` gives the multi-line report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub invariant: Invariant,
    /// The header it is about; `None` when no header is at fault (a lost
    /// store, or a report from `flush_acked`).
    pub header: Option<HeaderRef>,
    /// One sentence: what exactly is wrong.
    pub detail: String,
    /// The first differing entries, at most `MAX_DIFF_LINES`.
    pub diff: Vec<DiffLine>,
    /// How many entries differ in all.
    pub diff_total: usize,
    /// SHA-256 (hex) of what the model expected: a header view for state
    /// checks, else the expected side of the diff.
    pub expected_sha256: String,
    /// SHA-256 (hex) of what was found, computed the same way.
    pub found_sha256: String,
}

impl Divergence {
    /// A divergence whose digests are taken over the two sides of `diff`.
    pub(crate) fn from_lines(
        invariant: Invariant,
        header: Option<HeaderRef>,
        detail: String,
        diff: Vec<DiffLine>,
    ) -> Divergence {
        let expected_sha256 = digest_text(diff.iter().map(|line| &line.expected));
        let found_sha256 = digest_text(diff.iter().map(|line| &line.found));
        Divergence::with_digests(
            invariant,
            header,
            detail,
            diff,
            [expected_sha256, found_sha256],
        )
    }

    /// A read that returned something no committed state explains
    /// (**reads-match**), said in one sentence.
    pub fn from_read(detail: String) -> Divergence {
        Divergence::from_lines(Invariant::ReadsMatch, None, detail, Vec::new())
    }

    /// A divergence about a header's state: digests of both header views.
    pub(crate) fn of_states(
        invariant: Invariant,
        header: Option<HeaderRef>,
        detail: String,
        diff: Vec<DiffLine>,
        expected: &RecoveredHeader,
        found: &RecoveredHeader,
    ) -> Divergence {
        let digests = [expected.sha256(), found.sha256()];
        Divergence::with_digests(invariant, header, detail, diff, digests)
    }

    fn with_digests(
        invariant: Invariant,
        header: Option<HeaderRef>,
        detail: String,
        mut diff: Vec<DiffLine>,
        [expected_sha256, found_sha256]: [String; 2],
    ) -> Divergence {
        let diff_total = diff.len();
        diff.truncate(MAX_DIFF_LINES);
        Divergence {
            invariant,
            header,
            detail,
            diff,
            diff_total,
            expected_sha256,
            found_sha256,
        }
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "divergence [{}]: {}",
            self.invariant.name(),
            self.invariant.statement()
        )?;
        match &self.header {
            Some(h) => writeln!(
                f,
                "  header: #{} of {}{}: update_seq {}, purge_seq {}, timestamp {}",
                h.position,
                h.count,
                if h.position == 0 { " (newest)" } else { "" },
                h.update_seq,
                h.purge_seq,
                h.timestamp_secs
            )?,
            None => writeln!(f, "  header: none")?,
        }
        writeln!(f, "  detail: {}", self.detail)?;
        if self.diff_total > 0 {
            writeln!(f, "  diff ({} of {}):", self.diff.len(), self.diff_total)?;
            for line in &self.diff {
                writeln!(
                    f,
                    "    {}: expected {}, found {}",
                    line.subject, line.expected, line.found
                )?;
            }
        }
        writeln!(f, "  sha256 expected {}", self.expected_sha256)?;
        write!(f, "  sha256 found    {}", self.found_sha256)
    }
}

impl std::error::Error for Divergence {}

/// A key as text when it is printable UTF-8, else as hex.
pub(crate) fn render_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) if !text.chars().any(char::is_control) => format!("{text:?}"),
        _ => format!("0x{}", hex::encode(key)),
    }
}

/// A value like a key, cut after `MAX_SHOWN_BYTES`.
fn render_value(value: &[u8]) -> String {
    if value.len() <= MAX_SHOWN_BYTES {
        return render_key(value);
    }
    format!(
        "{}... ({} bytes)",
        render_key(&value[..MAX_SHOWN_BYTES]),
        value.len()
    )
}

/// `"v" @3`, `tombstone @3` or `absent`.
pub(crate) fn render_doc(doc: Option<&Doc>) -> String {
    match doc {
        None => "absent".to_string(),
        Some(doc) if doc.deleted && doc.value.is_empty() => format!("tombstone @{}", doc.seqno),
        Some(doc) if doc.deleted => {
            format!("tombstone {} @{}", render_value(&doc.value), doc.seqno)
        }
        Some(doc) => format!("{} @{}", render_value(&doc.value), doc.seqno),
    }
}

/// SHA-256 over length-prefixed strings.
fn digest_text<'a>(parts: impl Iterator<Item = &'a String>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"crashfuzz-oracle-text-v1");
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}
