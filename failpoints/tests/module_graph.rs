//! No module circles: within a crate, the top-level modules (`src/<m>.rs`,
//! `src/<m>/...`) must depend on each other acyclically, so each module can
//! be read, tested and changed knowing only the ones below it.
//!
//! The scanner reads a crate's `src/`, strips comments, string and char
//! literals and `#[cfg(test)] mod` blocks, and takes as an edge `m -> d`
//! every `crate::d`, `$crate::d`, `super::d` and `use crate::{d, ...}` (the
//! first segment of each item of the group) in `m`'s files, where `d` is
//! another top-level module. The crate root (`lib.rs`, `main.rs`) is not a
//! module of the graph. A cycle fails the test with its path and, for each
//! edge, the first line that makes it.
//!
//! It takes any crate directory; harness is left out for now (its modules
//! are being rearranged, issue #15).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Where an edge comes from: the file and line of its first reference.
type Edges = BTreeMap<String, BTreeMap<String, String>>;

/// The top-level modules of the crate at `crate_dir` and their source
/// files, by module name.
fn modules(crate_dir: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let src = crate_dir.join("src");
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let entries = fs::read_dir(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        if path.is_dir() {
            let mut files = Vec::new();
            rs_files(&path, &mut files);
            out.entry(stem).or_default().extend(files);
        } else if path.extension().is_some_and(|e| e == "rs") && stem != "lib" && stem != "main" {
            out.entry(stem).or_default().push(path);
        }
    }
    out
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `text` with comments, string and char literals blanked (newlines kept,
/// so offsets keep their line numbers). Lifetimes are kept.
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let keep_newlines = |out: &mut String, from: &[char]| {
        out.extend(from.iter().filter(|&&ch| ch == '\n'));
    };
    let mut i = 0;
    while i < c.len() {
        let rest = &c[i..];
        if rest.starts_with(&['/', '/']) {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if rest.starts_with(&['/', '*']) {
            let start = i;
            let mut depth = 0;
            while i < c.len() {
                if c[i..].starts_with(&['/', '*']) {
                    depth += 1;
                    i += 2;
                } else if c[i..].starts_with(&['*', '/']) {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            keep_newlines(&mut out, &c[start..i]);
        } else if let Some(hashes) = raw_string_start(rest) {
            // r"..." / r#"..."# / br#"..."#: ends at '"' and as many '#'.
            let start = i;
            i += rest
                .iter()
                .position(|&ch| ch == '"')
                .expect("raw string quote")
                + 1;
            while i < c.len() {
                if c[i] == '"' && c[i + 1..].iter().take_while(|&&ch| ch == '#').count() >= hashes {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push_str("\"\"");
            keep_newlines(&mut out, &c[start..i]);
        } else if c[i] == '"' {
            let start = i;
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
            keep_newlines(&mut out, &c[start..i.min(c.len())]);
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if rest.get(1) == Some(&'\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if rest.get(2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The number of '#' of a raw string starting at `rest[0]`, if one does.
fn raw_string_start(rest: &[char]) -> Option<usize> {
    let after_prefix = match rest {
        ['b', 'r', ..] => 2,
        ['r', ..] => 1,
        _ => return None,
    };
    let hashes = rest[after_prefix..]
        .iter()
        .take_while(|&&ch| ch == '#')
        .count();
    (rest.get(after_prefix + hashes) == Some(&'"')).then_some(hashes)
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// `text` (already stripped) without its `#[cfg(test)] mod name { ... }`
/// blocks: test code may reach anywhere.
fn drop_test_modules(text: &str) -> String {
    let mut out = text.to_string();
    while let Some(at) = out.find("#[cfg(test)]") {
        let after = at + "#[cfg(test)]".len();
        let tail = out[after..].trim_start();
        let item = out.len() - tail.len();
        if !(tail.starts_with("mod ") || tail.starts_with("pub(crate) mod ")) {
            // Some other test-only item: keep it (conservative), but do not
            // look at this attribute again.
            out.replace_range(at..after, "");
            continue;
        }
        let end = match (tail.find('{'), tail.find(';')) {
            (Some(open), semi) if semi.is_none_or(|s| open < s) => {
                let mut depth = 0;
                let mut end = item + open;
                for (k, ch) in out[item + open..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = item + open + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (_, Some(semi)) => item + semi + 1,
            _ => out.len(),
        };
        let newlines = out[at..end].matches('\n').count();
        out.replace_range(at..end, &"\n".repeat(newlines));
    }
    out
}

/// The first identifier of `s` (after whitespace).
fn ident_at(s: &str) -> &str {
    let s = s.trim_start();
    let end = s.find(|ch: char| !is_ident(ch)).unwrap_or(s.len());
    &s[..end]
}

/// Whether `text[at..]` starts a path segment (not the tail of an identifier).
fn starts_token(text: &str, at: usize) -> bool {
    !text[..at].chars().next_back().is_some_and(is_ident)
}

/// The modules `text` names: `crate::d`, `$crate::d`, `super::d`, and the
/// first segment of each item of `crate::{...}`, with the byte offset of
/// each reference.
fn references(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for prefix in ["crate::", "super::"] {
        for (at, _) in text.match_indices(prefix) {
            if !starts_token(text, at) {
                continue;
            }
            let after = &text[at + prefix.len()..];
            let rest_at = at + prefix.len() + (after.len() - after.trim_start().len());
            let rest = &text[rest_at..];
            if let Some(group) = rest.strip_prefix('{') {
                // The items at depth 0 of the group, up to its '}'.
                let mut depth = 0;
                let mut item_start = true;
                for (k, ch) in group.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        ch if ch.is_whitespace() => {}
                        _ if item_start && depth == 0 => {
                            item_start = false;
                            out.push((ident_at(&group[k..]).to_string(), rest_at + 1 + k));
                        }
                        _ => {}
                    }
                }
            } else {
                out.push((ident_at(rest).to_string(), rest_at));
            }
        }
    }
    out
}

/// The module graph of the crate at `crate_dir`.
fn graph(crate_dir: &Path) -> Edges {
    let mods = modules(crate_dir);
    let sources = mods
        .iter()
        .flat_map(|(m, files)| {
            files.iter().map(move |f| {
                let text = fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                let shown = f.strip_prefix(crate_dir).unwrap_or(f);
                (m.clone(), shown.display().to_string(), text)
            })
        })
        .collect::<Vec<_>>();
    graph_of(&sources)
}

/// The module graph of `(module, file name, text)` sources.
fn graph_of(sources: &[(String, String, String)]) -> Edges {
    let names: BTreeSet<&str> = sources.iter().map(|(m, _, _)| m.as_str()).collect();
    let mut edges: Edges = names
        .iter()
        .map(|m| (m.to_string(), BTreeMap::new()))
        .collect();
    for (m, file, text) in sources {
        let text = drop_test_modules(&strip(text));
        for (dep, at) in references(&text) {
            if dep != *m && names.contains(dep.as_str()) {
                let line = text[..at].matches('\n').count() + 1;
                edges
                    .get_mut(m)
                    .expect("module")
                    .entry(dep)
                    .or_insert_with(|| format!("{file}:{line}"));
            }
        }
    }
    edges
}

/// A cycle of `edges`, as the modules along it (first repeated last).
fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        m: &str,
        edges: &Edges,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(m.to_string(), Mark::OnPath);
        path.push(m.to_string());
        for dep in edges[m].keys() {
            match marks[dep] {
                Mark::OnPath => {
                    let from = path.iter().position(|p| p == dep).expect("on path");
                    let mut cycle = path[from..].to_vec();
                    cycle.push(dep.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(dep, edges, marks, path) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(m.to_string(), Mark::Done);
        None
    }
    let mut marks: BTreeMap<String, Mark> = edges.keys().map(|m| (m.clone(), Mark::New)).collect();
    for m in edges.keys() {
        if marks[m] == Mark::New {
            if let Some(cycle) = visit(m, edges, &mut marks, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

fn describe(edges: &Edges, cycle: &[String]) -> String {
    let mut out = format!("module cycle: {}\n", cycle.join(" -> "));
    for pair in cycle.windows(2) {
        let at = &edges[&pair[0]][&pair[1]];
        out.push_str(&format!("  {} -> {} ({at})\n", pair[0], pair[1]));
    }
    out
}

fn assert_acyclic(crate_name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_name);
    let edges = graph(&dir);
    assert!(
        edges.len() > 1,
        "{crate_name}: no modules found in {}",
        dir.display()
    );
    if let Some(cycle) = find_cycle(&edges) {
        panic!("{crate_name}: {}", describe(&edges, &cycle));
    }
}

#[test]
fn engine_modules_form_no_cycle() {
    assert_acyclic("engine");
}

#[test]
fn oracle_modules_form_no_cycle() {
    assert_acyclic("oracle");
}

#[test]
fn failpoints_modules_form_no_cycle() {
    assert_acyclic("failpoints");
}

#[test]
fn harness_modules_form_no_cycle() {
    assert_acyclic("harness");
}

#[test]
fn crashfuzz_modules_form_no_cycle() {
    assert_acyclic("crashfuzz");
}

fn sources(files: &[(&str, &str)]) -> Vec<(String, String, String)> {
    files
        .iter()
        .map(|(m, text)| (m.to_string(), format!("{m}.rs"), text.to_string()))
        .collect()
}

#[test]
fn the_scanner_sees_every_kind_of_reference() {
    let edges = graph_of(&sources(&[
        ("a", "use crate::b::X;\nfn f() { crate::c::g(); }"),
        ("b", "use crate::{\n    d::{self, Y},\n    e,\n};"),
        ("c", "use super::d;\npub(crate) fn g() {}"),
        ("d", "macro_rules! m { () => { $crate::e::h() } }"),
        ("e", ""),
    ]));
    let deps = |m: &str| edges[m].keys().cloned().collect::<Vec<_>>();
    assert_eq!(deps("a"), ["b", "c"]);
    assert_eq!(deps("b"), ["d", "e"]);
    assert_eq!(deps("c"), ["d"]);
    assert_eq!(deps("d"), ["e"]);
    assert_eq!(edges["b"]["e"], "b.rs:3");
    assert_eq!(find_cycle(&edges), None);
}

#[test]
fn the_scanner_ignores_comments_strings_and_test_modules() {
    let edges = graph_of(&sources(&[
        (
            "a",
            "//! See [`crate::b`].\n/* crate::b /* nested */ crate::b */\n\
             const S: &str = \"crate::b\";\nconst R: &str = r#\"crate::b \"# ;\n\
             const C: char = '\"';\nfn f<'x>(_: &'x str) {}\nconst T: &str = \"crate::b\";\n\
             #[cfg(test)]\nmod tests {\n    use crate::b;\n    fn g() { if true { crate::b::h(); } }\n}\n\
             fn after() { crate::c::k(); }",
        ),
        ("b", "use crate::a;"),
        ("c", ""),
    ]));
    assert_eq!(edges["a"].keys().collect::<Vec<_>>(), ["c"]);
    assert_eq!(edges["a"]["c"], "a.rs:13");
    assert_eq!(find_cycle(&edges), None);
}

#[test]
fn a_cycle_is_found_and_shown() {
    let edges = graph_of(&sources(&[
        ("a", "use crate::b;"),
        ("b", "fn f() { crate::c::g() }"),
        ("c", "use crate::{a, d};"),
        ("d", ""),
    ]));
    let cycle = find_cycle(&edges).expect("a cycle");
    assert_eq!(cycle, ["a", "b", "c", "a"]);
    let shown = describe(&edges, &cycle);
    assert!(shown.contains("a -> b -> c -> a"), "{shown}");
    assert!(shown.contains("c -> a (c.rs:1)"), "{shown}");
}
