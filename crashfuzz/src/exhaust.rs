//! `crashfuzz exhaust`: the command line of [`harness::exhaust`], and its
//! seeded-bug table (`--all-mutants`): per seeded bug, whether a workload
//! within the bound shows it, and the shortest one that does.

use engine::mutants::Mutant;
use harness::exhaust::{
    exhaust, fill_from_name, fill_name, Alphabet, ExhaustOptions, ImageBounds, Report,
};

/// The flags that fix an enumeration, as a replay command needs them.
pub fn bounds_flags(bounds: &ImageBounds) -> String {
    let fills: Vec<&str> = bounds.fills.iter().map(|f| fill_name(*f)).collect();
    format!(
        " --fills {} --max-subset-ops {} --max-images {}",
        if fills.is_empty() {
            "none".to_string()
        } else {
            fills.join(",")
        },
        bounds.max_subset_ops,
        bounds.max_images
    )
}

/// Parse `--fills` (`none`, or a comma list of old, zero, garbage).
pub fn parse_fills(text: &str) -> Result<Vec<harness::exhaust::TornFill>, String> {
    if text == "none" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|f| {
            fill_from_name(f.trim())
                .ok_or_else(|| format!("unknown fill {f:?} in --fills (none, or old,zero,garbage)"))
        })
        .collect()
}

/// Parse `--pitr` (off, on or both).
pub fn parse_pitr(text: &str) -> Result<Vec<bool>, String> {
    match text {
        "off" => Ok(vec![false]),
        "on" => Ok(vec![true]),
        "both" => Ok(vec![false, true]),
        _ => Err(format!("--pitr takes off, on or both, not {text:?}")),
    }
}

/// Parse a comma list of numbers.
pub fn parse_sizes(text: &str) -> Result<Vec<u8>, String> {
    text.split(',')
        .map(|s| {
            s.trim()
                .parse::<u8>()
                .map_err(|_| format!("--sizes takes numbers 0..=63, not {s:?}"))
        })
        .collect()
}

/// One seeded bug's row.
#[derive(Debug)]
pub struct MutantRow {
    /// The bug.
    pub mutant: Mutant,
    /// The report of its run (stopped at its first failure).
    pub report: Report,
}

impl MutantRow {
    /// `| bug | found at K | shortest workload | check | runs |`.
    pub fn markdown(&self) -> String {
        let r = &self.report;
        match r.failures.first() {
            Some(f) => {
                let steps: Vec<String> = f.workload.iter().map(|s| s.to_string()).collect();
                format!(
                    "| {} | yes, {} ops | {}{} ; {} | {} | {} |",
                    self.mutant.name(),
                    f.workload.len(),
                    if f.pitr { "PiTR on: " } else { "" },
                    if steps.is_empty() {
                        "(empty)".to_string()
                    } else {
                        steps.join(", ")
                    },
                    f.crash_point,
                    f.failure.invariant(),
                    r.counts.runs
                )
            }
            None => format!(
                "| {} | not within {} ops | - | - | {} |",
                self.mutant.name(),
                r.max_ops,
                r.counts.runs
            ),
        }
    }
}

/// Run exhaust against every seeded bug (stopping each at its first
/// failure, so its workload is a shortest one).
pub fn mutant_table(base: &ExhaustOptions) -> Result<Vec<MutantRow>, String> {
    let mut rows = Vec::new();
    for mutant in Mutant::ALL {
        let opts = ExhaustOptions {
            mutant: Some(mutant),
            stop_at_first: true,
            progress: None,
            ..base.clone()
        };
        let report = exhaust(&opts).map_err(|e| e.to_string())?;
        eprintln!(
            "{}: {}",
            mutant.name(),
            match report.failures.first() {
                Some(f) => format!("found, {} ops", f.workload.len()),
                None => "not found".into(),
            }
        );
        rows.push(MutantRow { mutant, report });
    }
    Ok(rows)
}

/// The alphabet from the flags.
pub fn alphabet(
    keys: u8,
    sizes: &str,
    ops: &str,
    pitr: &str,
    strict: bool,
) -> Result<Alphabet, String> {
    let alphabet = Alphabet {
        keys,
        sizes: parse_sizes(sizes)?,
        ops: ops.split(',').map(|s| s.trim().to_string()).collect(),
        pitr: parse_pitr(pitr)?,
        strict,
    };
    alphabet.validate().map_err(|e| e.to_string())?;
    Ok(alphabet)
}
