//! Waking a parked timely worker from another thread.
//!
//! An idle worker parks (`step_or_park`) instead of spinning; timely wakes it for network
//! traffic, and the threads that hand it messages — the front door's handlers, a shard's
//! scoring and writing threads — unpark it through this handle.

use std::sync::{Arc, OnceLock};
use std::thread::Thread;

/// The worker thread to unpark, known once the worker has started.
#[derive(Debug, Clone, Default)]
pub struct Waker(Arc<OnceLock<Thread>>);

impl Waker {
    /// Called on the worker thread: it is the one to wake.
    pub fn register_current(&self) {
        let _ = self.0.set(std::thread::current());
    }

    /// Unparks the worker (a no-op before it has started: it will look at its inputs then).
    pub fn wake(&self) {
        if let Some(t) = self.0.get() {
            t.unpark();
        }
    }
}
