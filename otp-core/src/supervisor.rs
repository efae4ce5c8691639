//! Supervision vocabulary shared by every supervisor: restart types, shutdown policies and the
//! restart-intensity window.
//!
//! Mirrors the child-spec fields `restart` and `shutdown`, and the supervisor flags
//! `intensity` / `period`, of [`supervisor`](https://www.erlang.org/doc/apps/stdlib/supervisor.html)
//! (Erlang/OTP) and [`Supervisor`](https://hexdocs.pm/elixir/Supervisor.html) (Elixir). Used today
//! by the [`TaskSupervisor`](crate::task_supervisor::TaskSupervisor).
//!
//! # Differences from OTP
//!
//! - The intensity window uses monotonic `Instant`s with sub-second precision instead of whole
//!   seconds: a restart older than `max_seconds` (strictly) no longer counts (semantics D5).
//! - Shutting a child down "gracefully" means asking it through its mailbox (servers) or ending
//!   it at its next `.await` (tasks); there are no exit signals to trap (D1), and code that never
//!   yields cannot be stopped (D2).

pub(crate) mod restart_intensity;

use std::time::Duration;

/// When a child is restarted after it exits (the child spec's `restart`).
///
/// Defaults: Erlang and Elixir `permanent` for supervisor children; `temporary` for
/// `Task.Supervisor` children. otp-core: the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Restart {
    /// Always restarted, whatever the exit reason.
    Permanent,
    /// Restarted only after an abnormal exit: not after `Normal`, `Shutdown` or `ShutdownWith`
    /// (see [`ExitReason::is_clean`](crate::ExitReason::is_clean)).
    Transient,
    /// Never restarted; forgotten once it exits.
    Temporary,
}

impl Restart {
    /// Whether a child of this restart type that exited with `reason` is restarted
    /// (`supervisor.erl` `do_restart/3`).
    pub fn restarts_after(self, reason: &crate::ExitReason) -> bool {
        match (self, reason) {
            (Restart::Permanent, _) => true,
            (Restart::Transient, reason) if reason.is_clean() => false,
            (Restart::Transient, _) => true,
            (Restart::Temporary, _) => false,
        }
    }
}

/// How a child is stopped when its supervisor stops it (the child spec's `shutdown`).
///
/// Defaults: Erlang and Elixir give workers 5000 ms and supervisors `infinity`;
/// `Task.Supervisor` children 5000 ms. otp-core: the same, see [`Shutdown::WORKER_DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// Killed at once; no cleanup runs (Erlang `brutal_kill`).
    BrutalKill,
    /// Asked to stop, and killed if it has not exited within this time (Erlang's integer
    /// timeout). Must be greater than zero.
    Timeout(Duration),
    /// Asked to stop, and waited for as long as it takes (Erlang `infinity`).
    Infinity,
}

impl Shutdown {
    /// The default for workers and tasks: 5 s, as in Erlang and Elixir.
    pub const WORKER_DEFAULT: Shutdown = Shutdown::Timeout(Duration::from_secs(5));

    /// Whether the policy is usable: a zero timeout would kill before asking.
    pub(crate) fn is_valid(self) -> bool {
        !matches!(self, Shutdown::Timeout(d) if d.is_zero())
    }
}
