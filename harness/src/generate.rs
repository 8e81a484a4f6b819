//! Random scenarios from one seed: scenario `i` of seed `s` is the same
//! bytes on every machine, whatever the number of workers.
//!
//! Three scenarios in four are random bytes (every input decodes); the
//! fourth is a storyline from [`crate::templates`] (a compaction racing the
//! flusher with a crash armed at a random failpoint, PiTR windows, two
//! compactions in a row) on a random swarm configuration, written back as
//! bytes: random bytes alone almost never cut a compaction in catch-up or
//! after its switch (see `harness::reach` and `explore --json`'s `reach`).

use crate::scenario::{Scenario, CONFIG_BYTES};
use crate::templates::Template;
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
    // Half the time a compaction boundary after the copy (catch-up, the
    // switch, the unlink): the rarest places for a crash to strike.
    let all: Vec<&str> = engine::failpoints::all().collect();
    let late: Vec<u8> = (0..all.len() as u8)
        .filter(|i| {
            let name = all[usize::from(*i)];
            name.starts_with("compact::") && !name.contains("copy") && name != "compact::start"
        })
        .collect();
    let point = if !late.is_empty() && rng.gen_ratio(1, 2) {
        late[rng.gen_range(0..late.len())]
    } else {
        rng.gen_range(0..all.len()) as u8
    };
    let template = Template { rng: &mut rng };
    scenario.steps = match index / 4 % 6 {
        0 => template.interleave(point),
        1 => template.pitr(point),
        _ => template.compaction_story(point),
    };
    scenario.to_bytes()
}

/// Scenario `index` of `seed`.
pub fn scenario(seed: u64, index: u64, size: Size) -> Scenario {
    Scenario::from_bytes(&scenario_bytes(seed, index, size))
}
