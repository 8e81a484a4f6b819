//! The failpoint catalog matches the engine's source, both ways.
//!
//! Every `failpoint!("...")` (and raw `fail_point!("...")`) name in
//! `engine/src/**/*.rs` must be in `engine::failpoints::all()`, so a crash
//! campaign can target it and coverage can report it; and every catalog
//! name must occur in the source, so coverage never reports a boundary that
//! no longer exists as merely "unexercised".

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literal names passed to `failpoint!(` or `fail_point!(` in
/// `source`, skipping line comments (doc comments mention the macros too).
/// A call whose first argument is not a literal (the macro's own definition
/// forwards `$name`) is not a name.
fn failpoint_names(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in source.lines() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        for macro_call in ["failpoint!(", "fail_point!("] {
            let mut rest = code;
            while let Some(i) = rest.find(macro_call) {
                rest = rest[i + macro_call.len()..].trim_start();
                if let Some(literal) = rest.strip_prefix('"') {
                    if let Some(end) = literal.find('"') {
                        names.push(literal[..end].to_owned());
                    }
                }
            }
        }
    }
    names
}

#[test]
fn the_scanner_finds_literal_names_only() {
    let src = r#"
        failpoint!("flush::a");
        ::fail::fail_point!( "flush::b" );
        fail::fail_point!("flush::c", |_| Ok(()));
        ::fail::fail_point!($name);
        // failpoint!("flush::commented_out")
        /// Doc: use `failpoint!` for every boundary.
        let x = 1; failpoint!("flush::d"); failpoint!("flush::e");
    "#;
    assert_eq!(
        failpoint_names(src),
        ["flush::a", "flush::b", "flush::c", "flush::d", "flush::e"]
    );
}

#[test]
fn catalog_matches_engine_source() {
    let src_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/src");
    let mut files = Vec::new();
    rust_files(&src_dir, &mut files);
    assert!(
        !files.is_empty(),
        "no engine source under {}",
        src_dir.display()
    );

    let mut in_source = BTreeSet::new();
    for path in &files {
        let source = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        in_source.extend(failpoint_names(&source));
    }
    let catalog: BTreeSet<String> = engine::failpoints::all().map(str::to_owned).collect();
    assert_eq!(
        catalog.len(),
        engine::failpoints::all().count(),
        "the catalog lists a name twice"
    );

    let unlisted: Vec<_> = in_source.difference(&catalog).collect();
    let stale: Vec<_> = catalog.difference(&in_source).collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "failpoint catalog and engine source disagree\n  \
         in the source but not in engine::failpoints::all(): {unlisted:?}\n  \
         in the catalog but not in the source (stale): {stale:?}"
    );
}
