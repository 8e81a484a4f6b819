//! Failpoint coverage: how often each boundary was reached and crashed at.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Hits and crashes per failpoint name, and crashes per I/O trigger, over one
/// disk's life. Workers merge theirs ([`Coverage::merge`]) so a campaign can
/// report which boundaries were exercised and which were crashed at.
///
/// Hits are counted only while the disk is live: a failpoint the engine
/// passes after the crash instant reaches no disk and is not a hit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Failpoint name -> hits.
    pub hits: BTreeMap<String, u64>,
    /// Failpoint name -> crashes taken there.
    pub crashes: BTreeMap<String, u64>,
    /// I/O trigger (`before::<kind>` or `after::<kind>`) -> crashes taken there.
    pub io_crashes: BTreeMap<String, u64>,
    /// Injected fault ([`crate::FaultKind::name`]) -> times injected.
    pub faults: BTreeMap<String, u64>,
    /// Rare state (named by the harness's reach list) -> runs that reached
    /// it at least once.
    pub reach: BTreeMap<String, u64>,
    /// Runs counted (the denominator of the reach shares).
    pub runs: u64,
}

impl Coverage {
    /// Add `other`'s counts to these.
    pub fn merge(&mut self, other: &Coverage) {
        for (mine, theirs) in [
            (&mut self.hits, &other.hits),
            (&mut self.crashes, &other.crashes),
            (&mut self.io_crashes, &other.io_crashes),
            (&mut self.faults, &other.faults),
            (&mut self.reach, &other.reach),
        ] {
            for (name, n) in theirs {
                *mine.entry(name.clone()).or_insert(0) += n;
            }
        }
        self.runs += other.runs;
    }

    /// One run reached the rare state `name` (count it once per run).
    pub fn reached(&mut self, name: &str) {
        *self.reach.entry(name.to_owned()).or_insert(0) += 1;
    }

    /// The share of runs that reached `name`, 0 when no run was counted.
    pub fn reach_share(&self, name: &str) -> f64 {
        if self.runs == 0 {
            return 0.0;
        }
        self.reach.get(name).copied().unwrap_or(0) as f64 / self.runs as f64
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
            && self.crashes.is_empty()
            && self.io_crashes.is_empty()
            && self.faults.is_empty()
            && self.reach.is_empty()
            && self.runs == 0
    }

    /// Times `kind` was injected.
    pub fn injected(&self, kind: crate::FaultKind) -> u64 {
        self.faults.get(kind.name()).copied().unwrap_or(0)
    }

    /// Fault kinds never injected, in [`crate::FaultKind::ALL`] order.
    pub fn uninjected(&self) -> Vec<&'static str> {
        crate::FaultKind::ALL
            .into_iter()
            .map(crate::FaultKind::name)
            .filter(|n| !self.faults.contains_key(*n))
            .collect()
    }

    pub(crate) fn injected_fault(&mut self, kind: crate::FaultKind) {
        *self.faults.entry(kind.name().to_owned()).or_insert(0) += 1;
    }

    /// Catalog failpoints never hit, in catalog order.
    pub fn unhit(&self) -> Vec<&'static str> {
        engine::failpoints::all()
            .filter(|n| !self.hits.contains_key(*n))
            .collect()
    }

    /// Catalog failpoints never crashed at, in catalog order.
    pub fn uncrashed(&self) -> Vec<&'static str> {
        engine::failpoints::all()
            .filter(|n| !self.crashes.contains_key(*n))
            .collect()
    }

    pub(crate) fn hit(&mut self, name: &str) {
        *self.hits.entry(name.to_owned()).or_insert(0) += 1;
    }

    pub(crate) fn crashed_at(&mut self, name: &str) {
        *self.crashes.entry(name.to_owned()).or_insert(0) += 1;
    }

    pub(crate) fn crashed_at_io(&mut self, key: String) {
        *self.io_crashes.entry(key).or_insert(0) += 1;
    }

    /// `{"hits":{..},"crashes":{..},"io_crashes":{..},"faults":{..}}`, keys sorted.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (section, map)) in self.sections().into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}:{{", json_string(section));
            for (j, (name, n)) in map.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}:{n}", json_string(name));
            }
            out.push('}');
        }
        out.push('}');
        out
    }

    /// One `<section> <name> <count>` line per counter (sections `hit`,
    /// `crash`, `io_crash`, `fault`), for reports and for [`Coverage::from_text`].
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (section, map) in self.sections() {
            for (name, n) in map {
                let _ = writeln!(out, "{} {name} {n}", text_section(section));
            }
        }
        if self.runs > 0 {
            let _ = writeln!(out, "runs all {}", self.runs);
        }
        out
    }

    /// Parse [`Coverage::to_text`]; counts of repeated lines add up.
    pub fn from_text(text: &str) -> Result<Coverage, String> {
        let mut cov = Coverage::default();
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let bad = || format!("coverage line {}: {line:?}", lineno + 1);
            let mut words = line.split_whitespace();
            let (Some(section), Some(name), Some(n), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                return Err(bad());
            };
            let n: u64 = n.parse().map_err(|_| bad())?;
            let map = match section {
                "hit" => &mut cov.hits,
                "crash" => &mut cov.crashes,
                "io_crash" => &mut cov.io_crashes,
                "fault" => &mut cov.faults,
                "reach" => &mut cov.reach,
                "runs" => {
                    cov.runs += n;
                    continue;
                }
                _ => return Err(bad()),
            };
            *map.entry(name.to_owned()).or_insert(0) += n;
        }
        Ok(cov)
    }

    fn sections(&self) -> [(&'static str, &BTreeMap<String, u64>); 5] {
        [
            ("hits", &self.hits),
            ("crashes", &self.crashes),
            ("io_crashes", &self.io_crashes),
            ("faults", &self.faults),
            ("reach", &self.reach),
        ]
    }
}

fn text_section(json_section: &str) -> &'static str {
    match json_section {
        "hits" => "hit",
        "crashes" => "crash",
        "faults" => "fault",
        "reach" => "reach",
        _ => "io_crash",
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Coverage {
        let mut cov = Coverage::default();
        cov.hit("flush::before_bodies");
        cov.hit("flush::before_bodies");
        cov.hit("compact::start");
        cov.crashed_at("compact::start");
        cov.crashed_at_io("before::sync".into());
        cov.injected_fault(crate::FaultKind::ShortWrite);
        cov.reached("commit-on-block-boundary");
        cov.runs = 3;
        cov
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = sample();
        a.merge(&sample());
        assert_eq!(a.hits["flush::before_bodies"], 4);
        assert_eq!(a.crashes["compact::start"], 2);
        assert_eq!(a.io_crashes["before::sync"], 2);
        assert_eq!(a.injected(crate::FaultKind::ShortWrite), 2);
        assert_eq!(a.reach["commit-on-block-boundary"], 2);
        assert_eq!(a.runs, 6);
        assert!((a.reach_share("commit-on-block-boundary") - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(a.reach_share("never"), 0.0);
    }

    #[test]
    fn text_round_trips() {
        let cov = sample();
        assert_eq!(Coverage::from_text(&cov.to_text()), Ok(cov));
        assert!(Coverage::from_text("hit a").is_err());
        assert!(Coverage::from_text("bogus a 1").is_err());
    }

    #[test]
    fn json_is_sorted_and_escaped() {
        let mut cov = sample();
        cov.hit("we\"ird");
        assert_eq!(
            cov.to_json(),
            "{\"hits\":{\"compact::start\":1,\"flush::before_bodies\":2,\"we\\\"ird\":1},\
             \"crashes\":{\"compact::start\":1},\"io_crashes\":{\"before::sync\":1},\
             \"faults\":{\"short-write\":1},\"reach\":{\"commit-on-block-boundary\":1}}"
        );
    }

    #[test]
    fn unhit_lists_catalog_names() {
        let cov = sample();
        let unhit = cov.unhit();
        assert!(!unhit.contains(&"compact::start"));
        assert!(unhit.contains(&"flush::after_bodies"));
        assert_eq!(unhit.len(), engine::failpoints::all().count() - 2);
    }
}
