//! The synchronisation primitives of the delivery engine: the standard
//! library's, or loom's under `--cfg hub_loom`, so that the model checker
//! sees every lock, atomic, park and unpark of the bridge crew, the
//! notifier and the consumer slots.

#[cfg(not(hub_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize};
#[cfg(not(hub_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(hub_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize};
#[cfg(hub_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Whether this model-checking run brings back the bug `name`, a negative
/// control the models must catch (`HUB_LOOM_MUTATION=name`; see
/// `loom_models`). Always false outside the model-checking build.
#[cfg(hub_loom)]
pub(crate) fn mutation(name: &str) -> bool {
    std::env::var("HUB_LOOM_MUTATION").is_ok_and(|set| set == name)
}

/// Whether this model-checking run brings back the bug `name`: never here.
#[cfg(not(hub_loom))]
pub(crate) const fn mutation(_: &str) -> bool {
    false
}

/// Threads: spawn, park, unpark.
pub(crate) mod thread {
    #[cfg(not(hub_loom))]
    pub(crate) use std::thread::{JoinHandle, Thread, park, park_timeout};

    /// Starts a named thread.
    #[cfg(not(hub_loom))]
    pub(crate) fn spawn(
        name: String,
        f: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new().name(name).spawn(f)
    }

    #[cfg(hub_loom)]
    pub(crate) use loom::thread::{Thread, park};

    /// Under loom a timed park is a yield: the model explores the paths of
    /// a timeout that expires and of one that is cut short.
    #[cfg(hub_loom)]
    pub(crate) fn park_timeout(_: std::time::Duration) {
        loom::thread::yield_now();
    }

    /// A loom thread that can tell whether it has finished.
    #[cfg(hub_loom)]
    pub(crate) struct JoinHandle<T> {
        inner: loom::thread::JoinHandle<T>,
        done: std::sync::Arc<loom::sync::atomic::AtomicBool>,
    }

    #[cfg(hub_loom)]
    impl<T> JoinHandle<T> {
        pub(crate) fn thread(&self) -> &Thread {
            self.inner.thread()
        }

        pub(crate) fn is_finished(&self) -> bool {
            self.done.load(std::sync::atomic::Ordering::Acquire)
        }

        pub(crate) fn join(self) -> std::thread::Result<T> {
            self.inner.join()
        }
    }

    /// Starts a named loom thread.
    #[cfg(hub_loom)]
    pub(crate) fn spawn(
        name: String,
        f: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        let done = std::sync::Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let finished = done.clone();
        let inner = loom::thread::Builder::new().name(name).spawn(move || {
            f();
            finished.store(true, std::sync::atomic::Ordering::Release);
        })?;
        Ok(JoinHandle { inner, done })
    }
}

#[cfg(not(hub_loom))]
pub(crate) use std::sync::OnceLock;

/// `std::sync::OnceLock` with its set and get made visible to loom (a
/// release store and an acquire load beside the cell), so that what was
/// published through it counts as happened-before for the model.
#[cfg(hub_loom)]
pub(crate) struct OnceLock<T> {
    cell: std::sync::OnceLock<T>,
    set: AtomicBool,
}

#[cfg(hub_loom)]
impl<T> OnceLock<T> {
    pub(crate) fn new() -> Self {
        Self {
            cell: std::sync::OnceLock::new(),
            set: AtomicBool::new(false),
        }
    }

    pub(crate) fn set(&self, value: T) -> Result<(), T> {
        self.cell.set(value)?;
        self.set.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    pub(crate) fn get(&self) -> Option<&T> {
        if self.set.load(std::sync::atomic::Ordering::Acquire) {
            self.cell.get()
        } else {
            None
        }
    }
}
