//! Routing the engine's failpoints to the right simulated disk.
//!
//! The `fail` crate's registry is process-global, so one callback per catalog
//! name is registered once ([`install_failpoint_callbacks`]) and every
//! callback looks up the disk bound to the *calling thread*
//! ([`bind_thread`]). Parallel workers in one process each bind their own
//! disk on their own thread and never share a lock. A thread the engine
//! spawns itself has no binding of its own: it falls back to the disk bound
//! process-wide with [`bind_process`], if any, else its hits go nowhere.
//!
//! The `fail` crate's own actions (probabilities, counts, panics) are never
//! used: a callback only counts and, when an armed trigger says so, crashes.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::sim::SimVfs;

thread_local! {
    static THREAD_SIM: RefCell<Option<SimVfs>> = const { RefCell::new(None) };
}

static PROCESS_SIM: Mutex<Option<SimVfs>> = Mutex::new(None);
static INSTALL: Mutex<()> = Mutex::new(());
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// [`install_failpoint_callbacks`], once per process.
fn install_once() {
    if !INSTALLED.load(Ordering::Acquire) {
        install_failpoint_callbacks();
    }
}

/// Register a callback with the `fail` crate for every name in
/// `engine::failpoints::all()` that has no configuration yet. Idempotent.
/// The first [`bind_thread`] or [`bind_process`] of the process calls it
/// (later binds do not: listing the registry on every bind was 3 % of the
/// explorer's time). A name someone else configured (say with
/// `FAILPOINTS=...` in a `fail::FailScenario`) is left alone; whoever clears
/// the registry after that first bind (a `FailScenario`, `fail::remove`)
/// calls this again to register the cleared names.
pub fn install_failpoint_callbacks() {
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(PoisonError::into_inner);
    let configured: BTreeSet<String> = fail::list().into_iter().map(|(name, _)| name).collect();
    for name in engine::failpoints::all() {
        if !configured.contains(name) {
            // cfg_callback cannot fail in fail 0.5; an Err would mean a new
            // version changed that, and coverage would silently vanish.
            fail::cfg_callback(name, move || on_failpoint(name))
                .unwrap_or_else(|e| panic!("cannot register failpoint {name}: {e}"));
        }
    }
    INSTALLED.store(true, Ordering::Release);
}

fn on_failpoint(name: &'static str) {
    let sim = THREAD_SIM.with(|s| s.borrow().clone()).or_else(|| {
        PROCESS_SIM
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    });
    if let Some(sim) = sim {
        sim.failpoint_hit(name);
    }
}

/// The disk failpoints hit on this thread go to, if any.
pub fn bound_sim() -> Option<SimVfs> {
    THREAD_SIM.with(|s| s.borrow().clone())
}

/// Bind `sim` to this thread until the guard drops (which restores the
/// previous binding, so bindings nest).
#[must_use = "the binding ends when the guard drops"]
pub fn bind_thread(sim: &SimVfs) -> ThreadBinding {
    install_once();
    let previous = THREAD_SIM.with(|s| s.replace(Some(sim.clone())));
    ThreadBinding {
        previous,
        _not_send: PhantomData,
    }
}

/// Guard of [`bind_thread`]; not `Send`, as the binding is this thread's.
#[derive(Debug)]
pub struct ThreadBinding {
    previous: Option<SimVfs>,
    _not_send: PhantomData<Rc<()>>,
}

impl Drop for ThreadBinding {
    fn drop(&mut self) {
        let previous = self.previous.take();
        THREAD_SIM.with(|s| *s.borrow_mut() = previous);
    }
}

/// Bind `sim` for every thread that has no binding of its own (threads the
/// engine spawns), until the guard drops. Meant for single-worker runs; a
/// parallel explorer binds per thread instead.
#[must_use = "the binding ends when the guard drops"]
pub fn bind_process(sim: &SimVfs) -> ProcessBinding {
    install_once();
    let previous = PROCESS_SIM
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .replace(sim.clone());
    ProcessBinding { previous }
}

/// Guard of [`bind_process`].
#[derive(Debug)]
pub struct ProcessBinding {
    previous: Option<SimVfs>,
}

impl Drop for ProcessBinding {
    fn drop(&mut self) {
        *PROCESS_SIM.lock().unwrap_or_else(PoisonError::into_inner) = self.previous.take();
    }
}
