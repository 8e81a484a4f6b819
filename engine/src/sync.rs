//! Every synchronisation primitive the engine uses, in one place.
//!
//! Without the `shuttle` feature these are `std::sync` and `std::thread`,
//! re-exported as they are.
//!
//! With the `shuttle` feature each primitive chooses, **when it is made**,
//! between std's and the [shuttle](https://docs.rs/shuttle) crate's: inside
//! a shuttle execution (`shuttle::Runner::run`, `shuttle::replay`: shuttle
//! knows a current task) the store's memory lock, its condition variable and
//! the background flusher and compactor threads are shuttle's, so shuttle's
//! schedulers (random, PCT) pick every interleaving at them and the failing
//! schedule can be replayed; anywhere else they are std's, so the same
//! binary runs the deterministic explorer at full speed and the thread
//! schedules of `crashfuzz explore --threads` (harness::threads). A store
//! made inside an execution must stay inside it (shuttle's locks panic
//! anywhere else); threads spawned by a shuttle task are shuttle tasks, so
//! they inherit the mode.
//!
//! The std path costs one well-predicted branch per lock, wait, notify and
//! guard access (BENCHMARKS.md has the explorer's throughput with and
//! without the feature).
//!
//! What deliberately does not come from here: `Arc` is the same type either
//! way (shuttle re-exports std's), and [`ManualClock`](crate::ManualClock)'s
//! counter is a test clock, not a synchronisation point between engine
//! threads.

#[cfg(not(feature = "shuttle"))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
#[cfg(not(feature = "shuttle"))]
pub use std::thread;

#[cfg(feature = "shuttle")]
pub use std::sync::{Arc, PoisonError};
#[cfg(feature = "shuttle")]
pub use switch::{thread, Condvar, Mutex, MutexGuard};

/// The shuttle crate itself, for the harness that drives its schedulers (it
/// needs the very version the engine's primitives come from).
#[cfg(feature = "shuttle")]
pub use shuttle;

/// Whether `mutex` could be taken right now (never blocks).
pub fn mutex_is_free<T>(mutex: &Mutex<T>) -> bool {
    #[cfg(feature = "shuttle")]
    return mutex.is_free();
    #[cfg(not(feature = "shuttle"))]
    mutex.try_lock().is_ok()
}

/// Whether the calling code runs inside a shuttle execution (always false
/// without the `shuttle` feature).
pub fn in_shuttle() -> bool {
    #[cfg(feature = "shuttle")]
    return shuttle::current::try_get_current_task().is_some();
    #[cfg(not(feature = "shuttle"))]
    false
}

// The std API, mirrored: its documentation is std's.
#[cfg(feature = "shuttle")]
#[allow(missing_docs)]
mod switch {
    use std::fmt;
    use std::ops::{Deref, DerefMut};
    use std::sync::{LockResult, PoisonError};

    /// A mutex: std's, or shuttle's when made inside a shuttle execution.
    pub enum Mutex<T> {
        Std(std::sync::Mutex<T>),
        Shuttle(shuttle::sync::Mutex<T>),
    }

    /// The guard of a [`Mutex`].
    pub enum MutexGuard<'a, T> {
        Std(std::sync::MutexGuard<'a, T>),
        Shuttle(shuttle::sync::MutexGuard<'a, T>),
    }

    fn map<'a, T, G>(
        r: LockResult<G>,
        wrap: impl Fn(G) -> MutexGuard<'a, T>,
    ) -> LockResult<MutexGuard<'a, T>> {
        match r {
            Ok(g) => Ok(wrap(g)),
            Err(p) => Err(PoisonError::new(wrap(p.into_inner()))),
        }
    }

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Mutex<T> {
            if super::in_shuttle() {
                Mutex::Shuttle(shuttle::sync::Mutex::new(value))
            } else {
                Mutex::Std(std::sync::Mutex::new(value))
            }
        }

        /// Whether the mutex could be taken right now (never blocks).
        pub fn is_free(&self) -> bool {
            match self {
                Mutex::Std(m) => m.try_lock().is_ok(),
                Mutex::Shuttle(m) => m.try_lock().is_ok(),
            }
        }

        #[inline]
        pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
            match self {
                Mutex::Std(m) => map(m.lock(), MutexGuard::Std),
                Mutex::Shuttle(m) => map(m.lock(), MutexGuard::Shuttle),
            }
        }
    }

    impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Mutex::Std(m) => m.fmt(f),
                Mutex::Shuttle(m) => m.fmt(f),
            }
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            match self {
                MutexGuard::Std(g) => g,
                MutexGuard::Shuttle(g) => g,
            }
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            match self {
                MutexGuard::Std(g) => &mut *g,
                MutexGuard::Shuttle(g) => &mut *g,
            }
        }
    }

    impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            (**self).fmt(f)
        }
    }

    /// A condition variable, of the same kind as the mutex it is used with.
    #[derive(Debug)]
    pub enum Condvar {
        Std(std::sync::Condvar),
        Shuttle(shuttle::sync::Condvar),
    }

    impl Default for Condvar {
        fn default() -> Condvar {
            Condvar::new()
        }
    }

    impl Condvar {
        pub fn new() -> Condvar {
            if super::in_shuttle() {
                Condvar::Shuttle(shuttle::sync::Condvar::new())
            } else {
                Condvar::Std(std::sync::Condvar::new())
            }
        }

        /// Panics if the guard's mutex is not of this condition variable's
        /// kind (both are made together, by one `Store::open`).
        pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
            match (self, guard) {
                (Condvar::Std(c), MutexGuard::Std(g)) => map(c.wait(g), MutexGuard::Std),
                (Condvar::Shuttle(c), MutexGuard::Shuttle(g)) => {
                    map(c.wait(g), MutexGuard::Shuttle)
                }
                _ => panic!("a condition variable waited on with a mutex of the other kind"),
            }
        }

        pub fn notify_all(&self) {
            match self {
                Condvar::Std(c) => c.notify_all(),
                Condvar::Shuttle(c) => c.notify_all(),
            }
        }

        pub fn notify_one(&self) {
            match self {
                Condvar::Std(c) => c.notify_one(),
                Condvar::Shuttle(c) => c.notify_one(),
            }
        }
    }

    /// Threads: std's, or shuttle tasks inside a shuttle execution.
    pub mod thread {
        use std::fmt;

        /// A handle to join a spawned thread.
        pub enum JoinHandle<T> {
            Std(std::thread::JoinHandle<T>),
            Shuttle(shuttle::thread::JoinHandle<T>),
        }

        impl<T> fmt::Debug for JoinHandle<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    JoinHandle::Std(_) => "JoinHandle(std)",
                    JoinHandle::Shuttle(_) => "JoinHandle(shuttle)",
                })
            }
        }

        impl<T> JoinHandle<T> {
            pub fn join(self) -> std::thread::Result<T> {
                match self {
                    JoinHandle::Std(h) => h.join(),
                    JoinHandle::Shuttle(h) => h.join(),
                }
            }
        }

        /// Spawn a thread (a shuttle task inside a shuttle execution).
        pub fn spawn<F, T>(f: F) -> JoinHandle<T>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            if super::super::in_shuttle() {
                JoinHandle::Shuttle(shuttle::thread::spawn(f))
            } else {
                JoinHandle::Std(std::thread::spawn(f))
            }
        }

        /// A thread factory with a name.
        #[derive(Debug, Default)]
        pub struct Builder {
            name: Option<String>,
        }

        impl Builder {
            pub fn new() -> Builder {
                Builder::default()
            }

            pub fn name(mut self, name: String) -> Builder {
                self.name = Some(name);
                self
            }

            pub fn spawn<F, T>(self, f: F) -> std::io::Result<JoinHandle<T>>
            where
                F: FnOnce() -> T + Send + 'static,
                T: Send + 'static,
            {
                if super::super::in_shuttle() {
                    let mut b = shuttle::thread::Builder::new();
                    if let Some(n) = self.name {
                        b = b.name(n);
                    }
                    b.spawn(f).map(JoinHandle::Shuttle)
                } else {
                    let mut b = std::thread::Builder::new();
                    if let Some(n) = self.name {
                        b = b.name(n);
                    }
                    b.spawn(f).map(JoinHandle::Std)
                }
            }
        }
    }
}
