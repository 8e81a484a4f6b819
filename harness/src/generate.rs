//! Random scenarios from one seed: scenario `i` of seed `s` is the same
//! bytes on every machine, whatever the number of workers.
//!
//! Three scenarios in four are random bytes (every input decodes); the
//! fourth is a storyline from [`crate::templates`] (a compaction racing the
//! flusher with a crash armed at a random failpoint, PiTR windows, two
//! compactions in a row) on a random swarm configuration, written back as
//! bytes: random bytes alone almost never cut a compaction in catch-up or
//! after its switch (see `harness::reach` and `explore --json`'s `reach`).
//! Two storylines in three are compaction stories whose rounds are cut on
//! purpose ([`Cut`]: a power loss or a flush crash with the compactor paused
//! in catch-up, a crash at a failpoint after the rename); a storyline's
//! crash mode cycles with its index, so that every crash mode gets its share
//! of each compactor phase.

use crate::scenario::{Scenario, CONFIG_BYTES};
use crate::templates::{after_switch_points, Cut, Template};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How many step bytes a generated scenario has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Size {
    /// About 10 steps.
    Small,
    /// About 40 steps.
    #[default]
    Default,
    /// About 90 steps.
    Large,
}

impl Size {
    fn step_bytes(self) -> std::ops::Range<usize> {
        match self {
            Size::Small => 10..30,
            Size::Default => 60..110,
            Size::Large => 160..220,
        }
    }

    /// Parse `small`, `default` or `large`.
    pub fn from_name(name: &str) -> Option<Size> {
        match name {
            "small" => Some(Size::Small),
            "default" => Some(Size::Default),
            "large" => Some(Size::Large),
            _ => None,
        }
    }
}

/// The bytes of scenario `index` of `seed`.
pub fn scenario_bytes(seed: u64, index: u64, size: Size) -> Vec<u8> {
    // SplitMix-style mixing so nearby (seed, index) pairs are unrelated.
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let mut rng = ChaCha8Rng::seed_from_u64(z ^ (z >> 31));
    let len = CONFIG_BYTES + rng.gen_range(size.step_bytes());
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    if index % 4 != 3 {
        return bytes;
    }
    let mut scenario = Scenario::from_bytes(&bytes[..CONFIG_BYTES]);
    // A third of the time a compaction boundary after the copy (catch-up,
    // the switch, the unlink), a third one after the rename (the compactor
    // has switched): the rarest places for a crash to strike.
    let all: Vec<&str> = engine::failpoints::all().collect();
    let late: Vec<u8> = (0..all.len() as u8)
        .filter(|i| {
            let name = all[usize::from(*i)];
            name.starts_with("compact::") && !name.contains("copy") && name != "compact::start"
        })
        .collect();
    let switched = after_switch_points();
    let point = match rng.gen_range(0..3) {
        0 if !late.is_empty() => late[rng.gen_range(0..late.len())],
        1 if !switched.is_empty() => switched[rng.gen_range(0..switched.len())],
        _ => rng.gen_range(0..all.len()) as u8,
    };
    // The crash mode cycles (per crash from the seed one time in eight),
    // independently of the storyline: every mode gets its share of the
    // storylines' cuts in catch-up and after the switch.
    scenario.config.crash_mode = match index / 24 % 8 {
        7 => None,
        mode => Some(mode as u8),
    };
    let slot = index / 4 % 6;
    // Storylines cut the first compaction in catch-up more often than not,
    // the second after its switch about half the time; a third of the
    // rounds run uncut (two switches in a row, a snapshot held across the
    // switch, a deferred unlink retried).
    let cuts = if slot >= 2 {
        let mut cut = |catch_up: u32, after_switch: u32| {
            let x = rng.gen_range(0..20);
            if x < catch_up {
                // Half the time the flusher's commit is cut instead.
                let flush = engine::failpoints::FLUSH.len() as u8;
                Cut::CatchUp {
                    flush: rng.gen_ratio(1, 2).then(|| rng.gen_range(0..flush)),
                }
            } else if x < catch_up + after_switch {
                Cut::AfterSwitch
            } else {
                Cut::None
            }
        };
        [cut(11, 3), cut(3, 8)]
    } else {
        [Cut::None; 2]
    };
    if cuts.iter().any(|c| matches!(c, Cut::CatchUp { .. })) {
        // Catch-up needs unlocked rounds to pause in.
        scenario.config.catchup_rounds = 1 + scenario.config.catchup_rounds % 3;
    }
    if cuts
        .iter()
        .any(|c| matches!(c, Cut::AfterSwitch | Cut::CatchUp { flush: Some(_) }))
    {
        // A crash at a failpoint in a process-crash configuration loses
        // nothing and keeps no crash mode.
        scenario.config.process_crashes = false;
    }
    let config = scenario.config.clone();
    let template = Template { rng: &mut rng };
    scenario.steps = match slot {
        0 => template.interleave(point),
        1 => template.pitr(point),
        _ => template.compaction_story(point, cuts, &config),
    };
    scenario.to_bytes()
}

/// Scenario `index` of `seed`.
pub fn scenario(seed: u64, index: u64, size: Size) -> Scenario {
    Scenario::from_bytes(&scenario_bytes(seed, index, size))
}

/// Which generated scenarios run in the large profile
/// ([`crate::SwarmConfig::large`]: values to 64 KiB, batches to 255,
/// multi-megabyte files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Profile {
    /// As the explorer generates them: one scenario in 16.
    #[default]
    Mixed,
    /// None: every scenario in the default profile.
    Default,
    /// Every one.
    Large,
}

/// Scenario `index` of `seed` with its profile forced as `profile` says
/// (its steps and the rest of its configuration as [`scenario`]'s): the
/// explore bench measures each profile on its own.
pub fn scenario_in(seed: u64, index: u64, size: Size, profile: Profile) -> Scenario {
    let mut s = scenario(seed, index, size);
    match profile {
        Profile::Mixed => {}
        Profile::Default => s.config.large = false,
        Profile::Large => s.config.large = true,
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reach::PHASES;
    use crate::runner::{run, RunOptions};

    #[test]
    fn generation_is_deterministic() {
        for index in 0..64 {
            assert_eq!(
                scenario_bytes(9, index, Size::Default),
                scenario_bytes(9, index, Size::Default)
            );
        }
        assert_ne!(
            scenario_bytes(9, 3, Size::Default),
            scenario_bytes(10, 3, Size::Default)
        );
    }

    #[test]
    fn profiles_force_only_the_large_flag() {
        let mut large = 0;
        for index in 0..64 {
            let mixed = scenario(2, index, Size::Default);
            large += u32::from(mixed.config.large);
            for (profile, want) in [(Profile::Default, false), (Profile::Large, true)] {
                let forced = scenario_in(2, index, Size::Default, profile);
                assert_eq!(forced.config.large, want);
                assert_eq!(forced.steps, mixed.steps);
                let mut config = forced.config.clone();
                config.large = mixed.config.large;
                assert_eq!(config, mixed.config);
            }
            assert_eq!(scenario_in(2, index, Size::Default, Profile::Mixed), mixed);
        }
        assert!(large > 0 && large < 16, "{large} large of 64");
    }

    #[test]
    fn storylines_cycle_the_crash_mode() {
        let mut modes = std::collections::BTreeMap::new();
        for index in (3..8 * 24).step_by(4) {
            let mode = scenario(1, index, Size::Default).config.crash_mode;
            *modes.entry(mode).or_insert(0) += 1;
        }
        // Seven modes and "per crash from the seed", six storylines each.
        assert_eq!(modes.len(), 8, "{modes:?}");
        assert!(modes.values().all(|n| *n == 6), "{modes:?}");
    }

    /// The compaction stories' cuts land where they aim: a crash with the
    /// compactor in catch-up, and one after its switch, in a good share of
    /// the stories, with every crash mode.
    #[test]
    fn compaction_stories_crash_in_catch_up_and_after_the_switch() {
        let options = RunOptions::default();
        let mut stories = 0;
        let mut in_phase = [0u32; 4];
        let mut cells = std::collections::BTreeSet::new();
        for index in (3..4 * 24 * 16).step_by(4) {
            if index / 4 % 6 < 2 {
                continue;
            }
            stories += 1;
            let outcome = run(&scenario(1, index, Size::Default), &options)
                .unwrap_or_else(|f| panic!("scenario {index} failed: {}", f.message));
            for (p, phase) in PHASES.iter().enumerate() {
                let suffix = format!("@{phase}");
                let hit: Vec<_> = outcome
                    .coverage
                    .reach
                    .keys()
                    .filter(|k| k.starts_with("crash:") && k.ends_with(&suffix))
                    .collect();
                if !hit.is_empty() {
                    in_phase[p] += 1;
                }
                cells.extend(hit.into_iter().cloned());
            }
        }
        assert_eq!(stories, 256);
        // About half of them each (measured); random bytes: a few percent.
        assert!(in_phase[2] * 10 >= stories * 3, "catch-up: {in_phase:?}");
        assert!(
            in_phase[3] * 10 >= stories * 3,
            "after the switch: {in_phase:?}"
        );
        for mode in failpoints::CrashMode::ALL {
            for phase in ["catch-up", "after-switch"] {
                let cell = format!("crash:{mode}@{phase}");
                assert!(cells.contains(&cell), "{cell} never reached");
            }
        }
    }
}
