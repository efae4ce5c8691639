//! The restart-intensity window: at most `max_restarts` restarts within `max_seconds`
//! (`supervisor.erl` `add_restart/3`, Elixir's `max_restarts` / `max_seconds`).
//!
//! One window per supervisor. Each restart is stamped; stamps older than the period fall out.
//! If, after adding a restart, more than `max_restarts` stamps remain, the supervisor gives up.
//!
//! Unlike `supervisor.erl`, which walks its whole restart history on every restart, the stamps
//! are kept in arrival order in a deque and only expired ones are popped from the front, so a
//! restart costs amortised O(1) however many restarts the window holds.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The default intensity of every kind of supervisor: 3 restarts in 5 seconds, Elixir's
/// (Erlang's is 1 in 5 s; semantics D15).
pub(crate) const DEFAULT_MAX_RESTARTS: u32 = 3;
/// The default period of the intensity window: 5 seconds, as in both Erlang and Elixir.
pub(crate) const DEFAULT_MAX_SECONDS: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub(crate) struct RestartIntensity {
    max_restarts: u32,
    period: Duration,
    stamps: VecDeque<Instant>,
}

impl RestartIntensity {
    pub(crate) fn new(max_restarts: u32, period: Duration) -> RestartIntensity {
        RestartIntensity {
            max_restarts,
            period,
            stamps: VecDeque::new(),
        }
    }

    /// Records a restart at `now`. Returns `false` if that makes one restart more than allowed
    /// within the period: the supervisor must give up.
    pub(crate) fn add_restart(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.stamps.front() {
            if now.saturating_duration_since(oldest) > self.period {
                self.stamps.pop_front();
            } else {
                break;
            }
        }
        self.stamps.push_back(now);
        self.stamps.len() <= self.max_restarts as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Gives up exactly when more than `max_restarts` restarts fall within `period`
        /// (counting the new one), compared against a direct count over the whole history.
        #[test]
        fn gives_up_iff_more_than_max_restarts_within_period(
            max_restarts in 0u32..6,
            period_ms in 1u64..2_000,
            gaps_ms in proptest::collection::vec(0u64..1_500, 1..40),
        ) {
            let period = Duration::from_millis(period_ms);
            let start = Instant::now();
            let mut window = RestartIntensity::new(max_restarts, period);
            let mut history: Vec<Instant> = Vec::new();
            let mut now = start;
            for gap in gaps_ms {
                now += Duration::from_millis(gap);
                history.push(now);
                let within = history.iter().filter(|&&t| now.duration_since(t) <= period).count();
                let allowed = window.add_restart(now);
                prop_assert_eq!(allowed, within <= max_restarts as usize);
                if !allowed {
                    break;
                }
            }
        }
    }

    #[test]
    fn intensity_zero_gives_up_on_the_first_restart() {
        let mut window = RestartIntensity::new(0, Duration::from_secs(5));
        assert!(!window.add_restart(Instant::now()));
    }
}
