//! `VfsFile::version` and `unchanged_prefix` of the simulated disk: every
//! change to bytes a file already held is noted, appends are not, and the
//! unchanged prefix is exact (the extract cache's soundness rests on it).

use engine::vfs::OpenMode;
use failpoints::{CrashMode, SimVfs};
use std::path::Path;

#[test]
fn appends_keep_the_generation_and_changes_lower_the_prefix() {
    let sim = SimVfs::new(1);
    sim.as_vfs().create_dir_all(Path::new("/d")).unwrap();
    let f = sim
        .as_vfs()
        .open(Path::new("/d/f"), OpenMode::Create)
        .unwrap();
    let g0 = f.version().unwrap().generation;
    f.write_all_at(&[1; 100], 0).unwrap();
    f.write_all_at(&[2; 100], 100).unwrap();
    f.write_all_at(&[3; 10], 300).unwrap(); // past the end: a zero gap
    assert_eq!(f.version().unwrap().generation, g0, "appends are no change");
    assert_eq!(f.unchanged_prefix(g0), Some(310));
    f.write_all_at(&[2; 50], 120).unwrap(); // the same bytes again
    assert_eq!(f.version().unwrap().generation, g0);
    f.write_all_at(&[2, 9], 150).unwrap(); // changes byte 151
    let g1 = f.version().unwrap().generation;
    assert!(g1 > g0);
    assert_eq!(f.unchanged_prefix(g0), Some(151));
    assert_eq!(f.unchanged_prefix(g1), Some(310));
    f.set_len(120).unwrap();
    assert_eq!(f.unchanged_prefix(g0), Some(120));
    assert_eq!(f.unchanged_prefix(g1), Some(120));
}

#[test]
fn a_crash_keeps_exactly_the_unchanged_prefix() {
    let sim = SimVfs::new(7);
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    let vfs = sim.as_vfs();
    vfs.create_dir_all(Path::new("/d")).unwrap();
    let f = vfs.open(Path::new("/d/f"), OpenMode::Create).unwrap();
    f.write_all_at(&[1; 4096], 0).unwrap();
    f.sync().unwrap();
    vfs.sync_dir(Path::new("/d")).unwrap();
    vfs.sync_dir(Path::new("/")).unwrap();
    let g = f.version().unwrap();
    f.write_all_at(&[2; 4096], 4096).unwrap();
    assert_eq!(f.unchanged_prefix(g.generation), Some(8192));
    sim.crash();
    sim.reboot();
    let f2 = sim
        .as_vfs()
        .open(Path::new("/d/f"), OpenMode::Read)
        .unwrap();
    assert_eq!(f2.version().unwrap().file, g.file, "the same file");
    assert_eq!(f2.unchanged_prefix(g.generation), Some(4096));
}
