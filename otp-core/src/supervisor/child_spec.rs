//! [`ChildSpec`]: what a supervisor needs to know about a child, with every default in one
//! place.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use super::{Restart, Shutdown};
use crate::gen_server::{BoxError, GenServer, ServerRef, StartError};
use crate::process::header::AnyProcess;
use crate::process::panic_message;
use crate::task::TaskRef;
use crate::{ExitReason, Pid};

/// Whether a child is a worker or a supervisor (the child spec's `type`).
///
/// It only changes the default shutdown (workers 5 s, supervisors `infinity`) and how
/// [`count_children`](super::Supervisor::count_children) counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildType {
    /// Any process that is not a supervisor. Erlang's and Elixir's default.
    Worker,
    /// A supervisor, whose shutdown must give its whole subtree time to stop.
    Supervisor,
}

/// A started child, as a supervisor holds it: any otp-core process.
///
/// Start functions return something that converts into it: a [`ServerRef`], a
/// [`Supervisor`](super::Supervisor), a [`DynamicSupervisor`](crate::dynamic_supervisor::DynamicSupervisor),
/// a [`TaskSupervisor`](crate::task_supervisor::TaskSupervisor) or a
/// [`Registry`](crate::registry::Registry).
#[derive(Clone)]
pub struct ChildProcess {
    pub(crate) process: Arc<dyn AnyProcess>,
}

impl ChildProcess {
    /// The child's pid.
    pub fn pid(&self) -> Pid {
        self.process.header().pid()
    }
}

impl fmt::Debug for ChildProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ChildProcess").field(&self.pid()).finish()
    }
}

impl<S: GenServer> From<ServerRef<S>> for ChildProcess {
    fn from(server: ServerRef<S>) -> ChildProcess {
        ChildProcess {
            process: server.process(),
        }
    }
}

impl From<TaskRef> for ChildProcess {
    fn from(task: TaskRef) -> ChildProcess {
        ChildProcess {
            process: task.process,
        }
    }
}

type StartFuture = Pin<Box<dyn Future<Output = Result<ChildProcess, StartError>> + Send>>;
pub(crate) type StartFn = Arc<dyn Fn() -> StartFuture + Send + Sync>;

/// A child specification: id, start function, restart type, shutdown policy and type.
///
/// | field | otp-core default | Erlang | Elixir |
/// |---|---|---|---|
/// | `restart` | [`Restart::Permanent`] | `permanent` | `:permanent` |
/// | `shutdown` (worker) | [`Shutdown::Timeout`]`(5 s)` | `5000` | `5000` |
/// | `shutdown` (supervisor) | [`Shutdown::Infinity`] | `infinity` | `:infinity` |
/// | `type` | [`ChildType::Worker`] | `worker` | `:worker` |
///
/// The start function is called for the first start and for every restart, so a restarted
/// child gets the same arguments (they are captured by the closure). It returns any started
/// handle ([`ServerRef`], [`Supervisor`](super::Supervisor), …) or any error that converts into
/// [`StartError`] (a [`SupervisorStartError`](super::SupervisorStartError) does).
///
/// ```
/// use std::time::Duration;
/// use otp_core::supervisor::{ChildSpec, Restart, Shutdown};
/// # use otp_core::gen_server::{BoxError, Context, GenServer, Init};
/// # struct Worker;
/// # impl GenServer for Worker {
/// #     type Args = u32; type Call = (); type Reply = (); type Cast = ();
/// #     type Info = (); type Continue = ();
/// #     async fn init(_: u32, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> { Ok(Init::Ready(Worker)) }
/// # }
///
/// let spec = ChildSpec::new("worker", || Worker::start(7))
///     .restart(Restart::Transient)
///     .shutdown(Shutdown::Timeout(Duration::from_secs(1)));
/// assert_eq!(spec.id(), "worker");
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: Arc<str>,
    pub(crate) start: StartFn,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) child_type: ChildType,
    pub(crate) backoff: Option<RestartBackoff>,
}

/// Beyond OTP, opt-in, off by default: wait before restarting a child that keeps exiting.
///
/// The `n`-th consecutive restart of the child waits `initial × 2ⁿ⁻¹`, at most `max`; the count
/// starts again once the child has run for `reset_after` without exiting. Failed restart
/// attempts back off the same way. While it waits, the child is `Restarting`.
///
/// # Interaction with restart intensity
///
/// A restart counts toward the supervisor's intensity when it is *performed*, after its delay.
/// A crash loop therefore spends its budget at the pace of the backoff instead of in
/// microseconds: with `initial = 100 ms` and `max_restarts = 3` in 5 s, the fourth restart
/// comes at 100 + 200 + 400 + 800 ms, still inside the window, so the supervisor gives up
/// after about 1.5 s rather than at once; a backoff that grows past `max_seconds` keeps the
/// supervisor alive indefinitely, restarting the child at most once per `max`. For groups
/// (`one_for_all`, `rest_for_one`) the whole group restart waits; siblings keep running until
/// then.
///
/// Static supervisors only, for now: a `DynamicSupervisor` rejects a child with a backoff
/// ([`SpecError::BackoffUnsupported`](super::SpecError::BackoffUnsupported)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBackoff {
    /// The delay before the first restart. Must be greater than zero.
    pub initial: Duration,
    /// The longest delay. Must be at least `initial`.
    pub max: Duration,
    /// A child that runs this long without exiting starts again from `initial`.
    pub reset_after: Duration,
}

impl RestartBackoff {
    /// The longest `max` accepted: Erlang's own limit for a timer, 2³² − 1 ms (about 49.7
    /// days). A longer one is rejected when the spec is validated
    /// ([`SpecError::InvalidBackoff`](super::SpecError::InvalidBackoff)), so that a restart can
    /// always be scheduled.
    pub const MAX_DELAY: Duration = Duration::from_millis(u32::MAX as u64);

    /// The delay before the `n`-th consecutive restart (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

impl ChildSpec {
    /// A worker child with the defaults above; `start` is called for every (re)start.
    pub fn new<F, Fut, C, E>(id: impl Into<Arc<str>>, start: F) -> ChildSpec
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, E>> + Send + 'static,
        C: Into<ChildProcess>,
        E: Into<StartError>,
    {
        ChildSpec {
            id: id.into(),
            start: Arc::new(move || {
                let started = start();
                Box::pin(async move { started.await.map(Into::into).map_err(Into::into) })
            }),
            restart: Restart::Permanent,
            shutdown: Shutdown::WORKER_DEFAULT,
            child_type: ChildType::Worker,
            backoff: None,
        }
    }

    /// A supervisor child: type [`ChildType::Supervisor`], shutdown [`Shutdown::Infinity`].
    pub fn supervisor<F, Fut, C, E>(id: impl Into<Arc<str>>, start: F) -> ChildSpec
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, E>> + Send + 'static,
        C: Into<ChildProcess>,
        E: Into<StartError>,
    {
        let mut spec = ChildSpec::new(id, start);
        spec.child_type = ChildType::Supervisor;
        spec.shutdown = Shutdown::Infinity;
        spec
    }

    /// A task child: `task` is called for every (re)start, and the future it returns runs as
    /// the child's process (Elixir's `{Task, fun}` child; see [`crate::task`]). `Ok(())` is a
    /// `Normal` exit, an `Err` or a panic an abnormal one.
    ///
    /// Restart [`Restart::Temporary`], as Elixir's `Task`: set
    /// [`restart`](Self::restart) to keep an acceptor loop running. Shutdown 5 s, but a task
    /// has no mailbox: a graceful stop ends it at its next `.await`, as a kill does.
    pub fn task<F, Fut>(id: impl Into<Arc<str>>, task: F) -> ChildSpec
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        ChildSpec::new(id, move || std::future::ready(crate::task::start(task())))
            .restart(Restart::Temporary)
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> ChildSpec {
        self.restart = restart;
        self
    }

    /// Sets the shutdown policy. A zero timeout is rejected when the supervisor is started or
    /// the child is added.
    pub fn shutdown(mut self, shutdown: Shutdown) -> ChildSpec {
        self.shutdown = shutdown;
        self
    }

    /// Sets the child type (and nothing else; see [`ChildSpec::supervisor`]).
    pub fn child_type(mut self, child_type: ChildType) -> ChildSpec {
        self.child_type = child_type;
        self
    }

    /// Waits before restarting this child when it keeps exiting (see [`RestartBackoff`]).
    /// Off by default.
    pub fn backoff(mut self, backoff: RestartBackoff) -> ChildSpec {
        self.backoff = Some(backoff);
        self
    }

    /// The child's id, unique within a static supervisor.
    pub fn id(&self) -> &str {
        &self.id
    }

    // Getters are `get_` + the setter's name, as `std::process::Command`'s are: the builder
    // methods already take the plain names.

    /// The restart type, as set by [`restart`](Self::restart).
    pub fn get_restart(&self) -> Restart {
        self.restart
    }

    /// The shutdown policy, as set by [`shutdown`](Self::shutdown).
    pub fn get_shutdown(&self) -> Shutdown {
        self.shutdown
    }

    /// The child type, as set by [`child_type`](Self::child_type) or
    /// [`supervisor`](Self::supervisor).
    pub fn get_child_type(&self) -> ChildType {
        self.child_type
    }

    /// The restart backoff, as set by [`backoff`](Self::backoff); `None` by default.
    pub fn get_backoff(&self) -> Option<RestartBackoff> {
        self.backoff
    }

    /// Runs the start function inside the supervisor (OTP's `catch apply(M, F, A)`): a panic,
    /// whether in the call that builds the start future or while it runs, is this child's start
    /// failure, never the supervisor's crash. `Ok(None)` means the child's `init` returned
    /// `Ignore`.
    pub(crate) async fn start_process(&self) -> Result<Option<ChildProcess>, StartError> {
        let started = match std::panic::catch_unwind(AssertUnwindSafe(|| (self.start)())) {
            Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
            Err(payload) => Err(payload),
        };
        match started {
            Ok(Ok(process)) => Ok(Some(process)),
            Ok(Err(StartError::Ignored)) => Ok(None),
            Ok(Err(error)) => Err(error),
            Err(payload) => Err(StartError::InitFailed(ExitReason::Panic(panic_message(
                &*payload,
            )))),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), super::SpecError> {
        if !self.shutdown.is_valid() {
            return Err(super::SpecError::ZeroShutdownTimeout(self.id.to_string()));
        }
        if let Some(backoff) = self.backoff {
            if backoff.initial.is_zero()
                || backoff.max < backoff.initial
                || backoff.max > RestartBackoff::MAX_DELAY
            {
                return Err(super::SpecError::InvalidBackoff(self.id.to_string()));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("type", &self.child_type)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}
