//! The names of a store's files: `<name>.couch.<rev>` for a complete
//! revision, `<name>.couch.<rev>.compact` for a compaction's output until its
//! switch. Public through [`crate::layout`].

/// The file name of revision `rev` of store `name`.
pub fn file_name(name: &str, rev: u64) -> String {
    format!("{name}.couch.{rev}")
}

/// The file name compaction writes revision `rev` under until the switch.
pub fn compact_file_name(name: &str, rev: u64) -> String {
    format!("{name}.couch.{rev}.compact")
}

/// What a directory entry is to store `name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A complete revision.
    Revision(u64),
    /// An unfinished compaction output.
    Compact(u64),
}

/// Classify a directory entry (None: not this store's file).
pub fn classify(name: &str, file: &str) -> Option<FileKind> {
    let rest = file.strip_prefix(name)?.strip_prefix(".couch.")?;
    if let Some(rev) = rest.strip_suffix(".compact") {
        return rev.parse().ok().map(FileKind::Compact);
    }
    rest.parse().ok().map(FileKind::Revision)
}
