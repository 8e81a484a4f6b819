//! Crashes at named failpoints, per-thread binding and coverage.
//!
//! These tests hit the engine's failpoints with `engine::failpoint!`, as the
//! engine does, so they go through the process-global `fail` registry and
//! the callbacks `bind_thread` installs.

use std::path::Path;
use std::thread;

use engine::failpoint;
use engine::vfs::{OpenMode, Vfs, VfsFile};
use failpoints::{
    bind_process, bind_thread, bound_sim, is_simulated_crash, CrashCause, CrashMode, CrashTrigger,
    SimVfs,
};

fn file() -> &'static Path {
    Path::new("/db/f")
}

/// A toy flush: body, data sync, header, header sync, each behind the
/// catalog failpoints a real flush passes.
fn toy_flush(f: &dyn VfsFile, at: u64, body: &[u8]) -> std::io::Result<()> {
    failpoint!("flush::before_bodies");
    f.write_all_at(body, at)?;
    failpoint!("flush::after_bodies");
    failpoint!("flush::before_data_sync");
    f.sync()?;
    failpoint!("flush::after_data_sync");
    failpoint!("flush::before_header");
    f.write_all_at(b"H", at + body.len() as u64)?;
    failpoint!("flush::after_header");
    failpoint!("flush::before_header_sync");
    f.sync()?;
    failpoint!("flush::after_header_sync");
    Ok(())
}

#[test]
fn a_failpoint_trigger_crashes_at_the_nth_hit() {
    let sim = SimVfs::new(1);
    let _bound = bind_thread(&sim);
    sim.set_crash_mode(Some(CrashMode::KeepAll));
    sim.put_file(file(), b"").unwrap();
    let f = sim.open(file(), OpenMode::ReadWrite).unwrap();
    sim.arm(CrashTrigger::AtFailpoint {
        name: "flush::before_header".into(),
        nth: 2,
    })
    .unwrap();
    toy_flush(&*f, 0, b"one").unwrap();
    // The second flush crashes at before_header: its body and data sync
    // happened, its header never reaches the disk.
    let err = toy_flush(&*f, 4, b"two").unwrap_err();
    assert!(is_simulated_crash(&err));
    assert!(sim.is_crashed());
    // The engine goes on passing failpoints; they are not hits any more.
    let _ = toy_flush(&*f, 8, b"three");

    let cov = sim.coverage();
    assert_eq!(cov.hits["flush::before_bodies"], 2);
    assert_eq!(cov.hits["flush::before_header"], 2);
    assert_eq!(cov.hits["flush::after_data_sync"], 2);
    assert_eq!(
        cov.hits["flush::after_header"], 1,
        "only the first flush got there"
    );
    assert_eq!(cov.crashes["flush::before_header"], 1);
    assert_eq!(cov.crashes.len(), 1);

    let record = sim.reboot();
    assert_eq!(record.last_failpoint, Some("flush::before_header"));
    assert!(matches!(
        record.cause,
        CrashCause::Trigger(CrashTrigger::AtFailpoint { .. })
    ));
    assert_eq!(sim.file(file()).unwrap(), b"oneHtwo");
}

#[test]
fn a_crash_during_recovery_at_a_failpoint() {
    let sim = SimVfs::new(2);
    let _bound = bind_thread(&sim);
    sim.set_crash_mode(Some(CrashMode::DropUnsynced));
    sim.put_file(file(), b"").unwrap();
    let f = sim.open(file(), OpenMode::ReadWrite).unwrap();
    sim.arm(CrashTrigger::AtFailpoint {
        name: "flush::after_header".into(),
        nth: 1,
    })
    .unwrap();
    assert!(toy_flush(&*f, 0, b"body").is_err());
    sim.reboot();
    // The data sync made "body" durable; the unsynced header is gone.
    assert_eq!(sim.file(file()).unwrap(), b"body");

    // Recovery: truncate the headerless tail; crash before the truncation.
    let recover = |sim: &SimVfs| -> std::io::Result<()> {
        let f = sim.open(file(), OpenMode::ReadWrite)?;
        failpoint!("recovery::before_truncate");
        f.set_len(0)?;
        f.sync()?;
        failpoint!("recovery::after_truncate");
        Ok(())
    };
    sim.arm(CrashTrigger::AtFailpoint {
        name: "recovery::before_truncate".into(),
        nth: 1,
    })
    .unwrap();
    assert!(is_simulated_crash(&recover(&sim).unwrap_err()));
    sim.reboot();
    assert_eq!(sim.file(file()).unwrap(), b"body");
    recover(&sim).unwrap();
    sim.reboot();
    assert_eq!(sim.file(file()).unwrap(), b"");
    let cov = sim.coverage();
    assert_eq!(cov.crashes["flush::after_header"], 1);
    assert_eq!(cov.crashes["recovery::before_truncate"], 1);
    assert_eq!(cov.hits["recovery::after_truncate"], 1);
}

#[test]
fn parallel_workers_each_see_their_own_disk() {
    let workers: Vec<_> = (0..4u64)
        .map(|i| {
            thread::spawn(move || {
                let sim = SimVfs::new(i);
                let _bound = bind_thread(&sim);
                if i % 2 == 0 {
                    sim.arm(CrashTrigger::AtFailpoint {
                        name: "compact::copy_step".into(),
                        nth: 10 + i,
                    })
                    .unwrap();
                }
                for _ in 0..100 {
                    failpoint!("compact::copy_step");
                }
                (i, sim.coverage(), sim.is_crashed())
            })
        })
        .collect();
    for w in workers {
        let (i, cov, crashed) = w.join().unwrap();
        if i % 2 == 0 {
            assert!(crashed);
            assert_eq!(cov.hits["compact::copy_step"], 10 + i, "worker {i}");
            assert_eq!(cov.crashes["compact::copy_step"], 1);
        } else {
            assert!(!crashed);
            assert_eq!(cov.hits["compact::copy_step"], 100, "worker {i}");
            assert!(cov.crashes.is_empty());
        }
    }
}

#[test]
fn bindings_nest_and_unbind() {
    let outer = SimVfs::new(1);
    let inner = SimVfs::new(2);
    {
        let _o = bind_thread(&outer);
        failpoint!("compact::start");
        {
            let _i = bind_thread(&inner);
            failpoint!("compact::start");
            failpoint!("compact::start");
        }
        failpoint!("compact::start");
    }
    assert!(bound_sim().is_none());
    failpoint!("compact::start");
    assert_eq!(outer.coverage().hits["compact::start"], 2);
    assert_eq!(inner.coverage().hits["compact::start"], 2);
}

/// The one test that uses the process-wide fallback binding, so it cannot
/// leak into the other tests of this binary (they all bind their threads).
#[test]
fn unbound_threads_fall_back_to_the_process_binding() {
    let sim = SimVfs::new(3);
    // No binding anywhere: a hit goes nowhere and does not panic.
    thread::spawn(|| failpoint!("compact::abort"))
        .join()
        .unwrap();
    {
        let _p = bind_process(&sim);
        // A thread the engine spawns has no binding of its own.
        thread::spawn(|| failpoint!("compact::abort"))
            .join()
            .unwrap();
        // A thread's own binding wins over the process one.
        let other = SimVfs::new(4);
        let _t = bind_thread(&other);
        failpoint!("compact::abort");
        assert_eq!(other.coverage().hits["compact::abort"], 1);
    }
    thread::spawn(|| failpoint!("compact::abort"))
        .join()
        .unwrap();
    assert_eq!(sim.coverage().hits["compact::abort"], 1);
}

#[test]
fn merged_coverage_reports_unexercised_boundaries() {
    let mut total = failpoints::Coverage::default();
    for seed in 0..3 {
        let sim = SimVfs::new(seed);
        let _bound = bind_thread(&sim);
        sim.arm(CrashTrigger::AtFailpoint {
            name: "compact::before_rename".into(),
            nth: 1,
        })
        .unwrap();
        failpoint!("compact::start");
        failpoint!("compact::before_rename");
        total.merge(&sim.take_coverage());
        assert!(sim.coverage().is_empty());
    }
    assert_eq!(total.hits["compact::start"], 3);
    assert_eq!(total.crashes["compact::before_rename"], 3);
    assert!(total.unhit().contains(&"compact::after_rename"));
    assert!(!total.uncrashed().contains(&"compact::before_rename"));
    assert_eq!(failpoints::Coverage::from_text(&total.to_text()), Ok(total));
}
