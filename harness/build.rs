//! Records where each engine failpoint sits (file:line), for
//! `crashfuzz catalog`. Scans `../engine/src` at build time.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/src");
    println!("cargo:rerun-if-changed={}", src.display());
    let mut found: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&src) {
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for path in files {
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            println!("cargo:rerun-if-changed={}", path.display());
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                let Some(rest) = line.trim_start().strip_prefix("failpoint!(\"") else {
                    continue;
                };
                if let Some(end) = rest.find('"') {
                    found.push((
                        rest[..end].to_string(),
                        format!("engine/src/{file}:{}", n + 1),
                    ));
                }
            }
        }
    }
    let mut out = String::from("/// (failpoint, location) for every `failpoint!` call in the engine.\npub const LOCATIONS: &[(&str, &str)] = &[\n");
    for (name, at) in found {
        let _ = writeln!(out, "    ({name:?}, {at:?}),");
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("failpoint_locations.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}
