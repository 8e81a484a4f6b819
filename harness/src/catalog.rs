//! Where every engine failpoint sits (file:line, recorded from the engine's
//! source at build time): `crashfuzz catalog` prints it, and
//! [`crate::failure::crash_point`] normalises crash points with it.

include!(concat!(env!("OUT_DIR"), "/failpoint_locations.rs"));

/// Where a failpoint sits (`file:line`; several if it appears more than once).
pub fn locations(name: &str) -> Vec<&'static str> {
    LOCATIONS
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, at)| *at)
        .collect()
}
