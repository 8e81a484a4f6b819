//! `crashfuzz catalog`: every failpoint, where it sits, and (with a coverage
//! file from `explore --coverage`) how often it was hit and crashed at, and
//! how often each fault kind of the simulated disk was injected.

use failpoints::Coverage;
use harness::catalog::locations;
use std::path::Path;

fn read_coverage(path: &Path) -> Result<Coverage, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Coverage::from_text(&text)
        .map_err(|e| format!("{} is not a coverage file: {e}", path.display()))
}

/// Print the catalog; the exit code is 0.
pub fn print(json: bool, coverage: Option<&Path>) -> Result<u8, String> {
    let coverage = coverage.map(read_coverage).transpose()?;
    let rows: Vec<serde_json::Value> = engine::failpoints::all()
        .map(|name| {
            let (hits, crashes) = coverage.as_ref().map_or((None, None), |c| {
                (Some(c.hits.get(name).copied().unwrap_or(0)), Some(c.crashes.get(name).copied().unwrap_or(0)))
            });
            serde_json::json!({ "name": name, "at": locations(name), "hits": hits, "crashes": crashes })
        })
        .collect();
    if json {
        match &coverage {
            Some(c) => {
                let faults: serde_json::Map<String, serde_json::Value> = failpoints::FaultKind::ALL
                    .into_iter()
                    .map(|k| (k.name().to_string(), c.injected(k).into()))
                    .collect();
                let reach: serde_json::Map<String, serde_json::Value> = harness::reach::names()
                    .into_iter()
                    .map(|n| {
                        let runs = c.reach.get(&n).copied().unwrap_or(0);
                        let share = c.reach_share(&n);
                        (n, serde_json::json!({ "runs": runs, "share": share }))
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "failpoints": rows,
                        "faults": faults,
                        "reach_runs": c.runs,
                        "reach": reach,
                    })
                );
            }
            None => println!("{}", serde_json::Value::Array(rows)),
        }
        return Ok(0);
    }
    for row in &rows {
        let at = row["at"].as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        });
        let counts = match (row["hits"].as_u64(), row["crashes"].as_u64()) {
            (Some(h), Some(c)) => format!(
                "  hits {h:>8}  crashes {c:>6}{}",
                if c == 0 { "  NEVER CRASHED" } else { "" }
            ),
            _ => String::new(),
        };
        println!(
            "{:<34} {:<34}{counts}",
            row["name"].as_str().unwrap_or(""),
            at.unwrap_or_default()
        );
    }
    if let Some(c) = &coverage {
        println!("\nfaults of the simulated disk (injected):");
        for kind in failpoints::FaultKind::ALL {
            let n = c.injected(kind);
            println!(
                "{:<34} {n:>8}{}",
                kind.name(),
                if n == 0 { "  NEVER INJECTED" } else { "" }
            );
        }
        println!(
            "\nrare states (share of {} runs that reached each):",
            c.runs
        );
        for name in harness::reach::names() {
            let share = c.reach_share(&name);
            println!(
                "{name:<40} {:>7.2}%{}",
                share * 100.0,
                if !c.reach.contains_key(&name) {
                    "  NEVER REACHED"
                } else if share < 0.01 {
                    "  below 1%"
                } else {
                    ""
                }
            );
        }
    }
    Ok(0)
}
