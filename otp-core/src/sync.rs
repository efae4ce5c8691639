//! The locks and atomics of otp-core's hand-written concurrent protocols: the mailbox's waker
//! hand-off, the process header's exit state and monitors, the registry's closed flag.
//!
//! Normally they are `parking_lot`'s locks and std's atomics. Built with `--cfg otp_loom` they
//! are [`loom`](https://docs.rs/loom)'s, and the `loom_` unit tests beside each protocol
//! explore every interleaving of their model:
//!
//! ```text
//! RUSTFLAGS="--cfg otp_loom" CARGO_TARGET_DIR=target/loom cargo test -p otp-core --lib --release loom_
//! ```
//!
//! The cfg is not the usual `loom`: tokio reads `cfg(loom)` too, and does not build with it as
//! a dependency. The models take a few seconds in release mode; CI does not run them.

#[cfg(not(otp_loom))]
pub(crate) use parking_lot::{Mutex, RwLock};
#[cfg(not(otp_loom))]
pub(crate) use std::sync::atomic::AtomicBool;

#[cfg(otp_loom)]
pub(crate) use self::loom_shim::{AtomicBool, Mutex, RwLock};

/// loom's locks with `parking_lot`'s API (no poisoning), so the code under test is unchanged.
#[cfg(otp_loom)]
mod loom_shim {
    pub(crate) use loom::sync::atomic::AtomicBool;

    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0
                .lock()
                .expect("a loom model panicked while holding a lock")
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> RwLock<T> {
            RwLock(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            self.0
                .read()
                .expect("a loom model panicked while holding a lock")
        }

        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0
                .write()
                .expect("a loom model panicked while holding a lock")
        }
    }
}
