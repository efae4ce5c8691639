//! Timers: messages delivered to a server's `handle_info` later, or every period. Never sleeps.
//!
//! Mirrors `erlang:send_after/3`, `erlang:cancel_timer/1`, `timer:send_interval/2` and Elixir's
//! `Process.send_after/3` / `Process.cancel_timer/1`.
//!
//! | Erlang / Elixir | otp-core, inside a callback |
//! |---|---|
//! | `erlang:send_after(T, self(), Msg)` | [`ctx.send_after(t, msg)`](crate::gen_server::Context::send_after) |
//! | `timer:send_interval(T, Msg)` | [`ctx.send_interval(t, msg)`](crate::gen_server::Context::send_interval) |
//! | `erlang:cancel_timer(Ref)` | [`ctx.cancel_timer(timer)`](crate::gen_server::Context::cancel_timer) |
//!
//! A timer belongs to the server that set it and is driven by that server's own receive loop: no
//! task is spawned per timer, a cancelled timer can never fire afterwards, and a process's timers
//! die with it. Timer messages are handled in deadline order. When a timer fires, its message
//! joins the mailbox behind every message already there, as an Erlang timer sends it: a timer
//! that is always due (an interval whose handler takes longer than its period) never starves
//! calls or stop requests.
//!
//! Handlers must never sleep: a handler that needs to wait sets a timer and returns, and the
//! work continues in `handle_info` when the message arrives.
//!
//! # Differences from OTP
//!
//! - Timers are set by a server for itself. To have a message sent to a server later from
//!   elsewhere, ask the server (with a cast) to set the timer.
//! - `cancel_timer` returns whether the timer was still pending, not the time left.
//! - `send_interval` fires at a fixed rate; if the server falls behind by more than a period,
//!   the missed ticks are skipped instead of delivered in a burst.
//!
//! ```
//! use std::time::Duration;
//! use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
//!
//! struct Heartbeat { beats: u32 }
//!
//! #[derive(Clone)]
//! enum Tick { Beat }
//!
//! impl GenServer for Heartbeat {
//!     type Args = ();
//!     type Call = ();
//!     type Reply = u32;
//!     type Cast = std::convert::Infallible;
//!     type Info = Tick;
//!     type Continue = ();
//!
//!     async fn init(_: (), ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
//!         ctx.send_interval(Duration::from_secs(1), Tick::Beat)?;
//!         Ok(Init::Ready(Heartbeat { beats: 0 }))
//!     }
//!
//!     async fn handle_info(&mut self, _: Tick, _: &mut Context<Self>) -> Result<(), BoxError> {
//!         self.beats += 1;
//!         Ok(())
//!     }
//!
//!     async fn handle_call(&mut self, _: (), _: Caller<'_, u32>, _: &mut Context<Self>)
//!         -> Result<CallResult<u32>, BoxError> {
//!         Ok(CallResult::Reply(self.beats))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let heart = Heartbeat::start(()).await?;
//! tokio::time::sleep(Duration::from_millis(3_500)).await; // the test's clock, paused: no real wait
//! assert_eq!(heart.call(()).await?, 3);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::time::{Instant, Sleep};

/// Identifies a timer set with [`send_after`](crate::gen_server::Context::send_after) or
/// [`send_interval`](crate::gen_server::Context::send_interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerRef {
    id: u64,
    /// The first deadline: where a one-off timer sits in the queue, so cancelling it needs no
    /// lookup table (intervals move, and are looked up in `Timers::intervals`).
    deadline: Instant,
}

/// Why a timer could not be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimerError {
    /// `send_interval` was given a zero period, which would deliver messages in a busy loop.
    #[error("interval period must be greater than zero")]
    ZeroInterval,
    /// The delay is too long to be represented as a deadline.
    #[error("timer delay is too long")]
    DelayTooLong,
}

enum Payload<M> {
    Once(M),
    Every {
        message: M,
        period: Duration,
        clone: fn(&M) -> M,
    },
}

/// One server's timers, ordered by deadline.
pub(crate) struct Timers<M> {
    queue: BTreeMap<(Instant, u64), Payload<M>>,
    /// The current deadline of each interval that has been re-armed since it was set.
    intervals: FxHashMap<u64, Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
}

/// Timer ids are unique in the program, not per server: a [`TimerRef`] from another server, or
/// from an earlier incarnation of this one, then never matches one of this server's timers.
static NEXT_TIMER_ID: AtomicU64 = AtomicU64::new(1);

impl<M> Timers<M> {
    pub(crate) fn new() -> Timers<M> {
        Timers {
            queue: BTreeMap::new(),
            intervals: FxHashMap::default(),
            sleep: None,
        }
    }

    fn insert(&mut self, deadline: Instant, payload: Payload<M>) -> TimerRef {
        let id = NEXT_TIMER_ID.fetch_add(1, Ordering::Relaxed);
        self.queue.insert((deadline, id), payload);
        TimerRef { id, deadline }
    }

    pub(crate) fn send_after(
        &mut self,
        delay: Duration,
        message: M,
    ) -> Result<TimerRef, TimerError> {
        let deadline = Instant::now()
            .checked_add(delay)
            .ok_or(TimerError::DelayTooLong)?;
        Ok(self.insert(deadline, Payload::Once(message)))
    }

    pub(crate) fn send_interval(
        &mut self,
        period: Duration,
        message: M,
    ) -> Result<TimerRef, TimerError>
    where
        M: Clone,
    {
        if period.is_zero() {
            return Err(TimerError::ZeroInterval);
        }
        let deadline = Instant::now()
            .checked_add(period)
            .ok_or(TimerError::DelayTooLong)?;
        Ok(self.insert(
            deadline,
            Payload::Every {
                message,
                period,
                clone: M::clone,
            },
        ))
    }

    /// Returns whether the timer was pending (and is now cancelled).
    pub(crate) fn cancel(&mut self, timer: TimerRef) -> bool {
        let deadline = self.intervals.remove(&timer.id).unwrap_or(timer.deadline);
        let pending = self.queue.remove(&(deadline, timer.id)).is_some();
        self.release_if_idle();
        pending
    }

    /// Frees the queue's node and the sleep once no timer is left. An emptied `BTreeMap` keeps
    /// its root node (eleven payload slots, over a kilobyte for a large message type), and a
    /// server that used one timer long ago should cost no more than one that never did.
    fn release_if_idle(&mut self) {
        if self.queue.is_empty() {
            self.queue = BTreeMap::new();
            self.sleep = None;
        }
    }

    /// Takes the message of the earliest timer whose deadline has passed, re-arming intervals.
    pub(crate) fn pop_due(&mut self) -> Option<M> {
        let (&(deadline, id), _) = self.queue.first_key_value()?;
        let now = Instant::now();
        if deadline > now {
            return None;
        }
        let payload = self.queue.remove(&(deadline, id))?;
        match payload {
            Payload::Once(message) => {
                self.release_if_idle();
                Some(message)
            }
            Payload::Every {
                message,
                period,
                clone,
            } => {
                let out = clone(&message);
                // Fixed rate; if the server fell a whole period behind, skip the missed ticks.
                let next = deadline
                    .checked_add(period)
                    .filter(|next| *next > now)
                    .or_else(|| now.checked_add(period));
                let Some(next) = next else {
                    // The next tick cannot be represented: the interval ends with this one.
                    self.intervals.remove(&id);
                    self.release_if_idle();
                    return Some(out);
                };
                self.queue.insert(
                    (next, id),
                    Payload::Every {
                        message,
                        period,
                        clone,
                    },
                );
                self.intervals.insert(id, next);
                Some(out)
            }
        }
    }

    /// Ready when the earliest timer is due.
    pub(crate) fn poll_due(&mut self, cx: &mut TaskContext<'_>) -> Poll<()> {
        let Some((&(deadline, _), _)) = self.queue.first_key_value() else {
            return Poll::Pending;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep.as_mut().poll(cx)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
