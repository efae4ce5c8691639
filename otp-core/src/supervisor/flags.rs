//! [`SupFlags`]: strategy and restart intensity, checked when built.

use std::time::Duration;

use super::SpecError;
use super::restart_intensity::{DEFAULT_MAX_RESTARTS, DEFAULT_MAX_SECONDS};

/// How a supervisor reacts when a child must be restarted (Erlang's `strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Restart only the child that exited. Erlang's and Elixir's default.
    OneForOne,
    /// Terminate every other child (in reverse start order), then restart all (in start order).
    OneForAll,
    /// Terminate the children started after the one that exited (in reverse start order), then
    /// restart it and them (in start order).
    RestForOne,
}

/// Supervisor flags: the strategy and the restart intensity (`max_restarts` within
/// `max_seconds`; Erlang's `intensity` and `period`).
///
/// | flag | otp-core default | Erlang | Elixir |
/// |---|---|---|---|
/// | strategy | `OneForOne` | `one_for_one` | `:one_for_one` (required) |
/// | `max_restarts` | 3 | 1 | 3 |
/// | `max_seconds` | 5 s | 5 s | 5 s |
///
/// ```
/// use std::time::Duration;
/// use otp_core::supervisor::{SupFlags, Strategy};
///
/// let flags = SupFlags::new(Strategy::OneForAll).intensity(10, Duration::from_secs(60))?;
/// assert_eq!(flags.max_restarts(), 10);
/// assert!(SupFlags::default().intensity(1, Duration::ZERO).is_err());
/// # Ok::<(), otp_core::supervisor::SpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupFlags {
    strategy: Strategy,
    max_restarts: u32,
    max_seconds: Duration,
}

impl SupFlags {
    /// Flags with `strategy` and the default intensity (3 in 5 s).
    pub fn new(strategy: Strategy) -> SupFlags {
        SupFlags {
            strategy,
            max_restarts: DEFAULT_MAX_RESTARTS,
            max_seconds: DEFAULT_MAX_SECONDS,
        }
    }

    /// Sets the restart intensity. `max_restarts` may be 0 (the first restart gives up).
    ///
    /// # Errors
    ///
    /// If `max_seconds` is zero, returns [`SpecError::ZeroPeriod`] (Erlang `invalid_period`).
    pub fn intensity(
        mut self,
        max_restarts: u32,
        max_seconds: Duration,
    ) -> Result<SupFlags, SpecError> {
        if max_seconds.is_zero() {
            return Err(SpecError::ZeroPeriod);
        }
        self.max_restarts = max_restarts;
        self.max_seconds = max_seconds;
        Ok(self)
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// At most this many restarts ...
    pub fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    /// ... within this period.
    pub fn max_seconds(&self) -> Duration {
        self.max_seconds
    }
}

impl Default for SupFlags {
    fn default() -> SupFlags {
        SupFlags::new(Strategy::OneForOne)
    }
}
