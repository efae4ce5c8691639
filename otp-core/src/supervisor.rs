//! Supervisors: processes that start, watch and restart other processes, with Erlang/OTP's
//! exact semantics.
//!
//! Mirrors [`supervisor`](https://www.erlang.org/doc/apps/stdlib/supervisor.html) (Erlang/OTP)
//! and [`Supervisor`](https://hexdocs.pm/elixir/Supervisor.html) (Elixir). For children started
//! on demand, see [`DynamicSupervisor`](crate::dynamic_supervisor::DynamicSupervisor); for
//! one-off tasks, [`TaskSupervisor`](crate::task_supervisor::TaskSupervisor).
//!
//! # Principles
//!
//! A supervisor holds a list of [`ChildSpec`]s. It starts the children one at a time, in
//! order, each `init` finishing before the next starts; if one fails, those already started
//! are stopped in reverse order and the start fails with [`SupervisorStartError::FailedToStartChild`].
//! When a child exits, the supervisor decides by the child's [`Restart`] type and the
//! [`ExitReason`](crate::ExitReason):
//!
//! | restart | `Normal`, `Shutdown`, `ShutdownWith` | any other reason |
//! |---|---|---|
//! | [`Permanent`](Restart::Permanent) | restarted | restarted |
//! | [`Transient`](Restart::Transient) | kept, not running | restarted |
//! | [`Temporary`](Restart::Temporary) | removed | removed |
//!
//! and restarts by its [`Strategy`]: only that child ([`OneForOne`](Strategy::OneForOne)),
//! all children ([`OneForAll`](Strategy::OneForAll)), or that child and those started after it
//! ([`RestForOne`](Strategy::RestForOne)); siblings are stopped in reverse start order, then
//! started in start order, and one group restart counts once.
//!
//! # Restart intensity
//!
//! [`SupFlags`] set `max_restarts` within `max_seconds`, one window for the whole supervisor.
//! One restart more than allowed and the supervisor gives up: it stops its remaining children
//! in reverse start order and exits with [`ExitReason::Shutdown`](crate::ExitReason::Shutdown),
//! which its own supervisor sees as the exit of a child. A failed restart attempt counts too,
//! and is retried through a message to itself, so the supervisor never blocks on it.
//! Administrative operations (`terminate_child`, `restart_child`, …) never count.
//!
//! # Shutdown
//!
//! Stopping a supervisor stops its children in reverse start order, one at a time, each by its
//! [`Shutdown`] policy: asked to stop and waited for up to its timeout (then killed), waited for
//! as long as it takes (`Infinity`, the default for supervisor children), or killed at once
//! (`BrutalKill`). [`Supervisor::stop`] returns when the whole tree has exited.
//!
//! # Events
//!
//! Supervisors emit `tracing` events with fixed names and fields and offer the same events as
//! a stream ([`Supervisor::subscribe`]); see [`SupervisorEvent`].
//!
//! ```
//! use std::time::Duration;
//! use otp_core::supervisor::{ChildSpec, SupFlags, Strategy, Supervisor};
//! # use otp_core::gen_server::{BoxError, Context, GenServer, Init};
//! # struct Worker;
//! # impl GenServer for Worker {
//! #     type Args = (); type Call = (); type Reply = (); type Cast = ();
//! #     type Info = (); type Continue = ();
//! #     async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> { Ok(Init::Ready(Worker)) }
//! # }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let flags = SupFlags::new(Strategy::OneForOne).intensity(3, Duration::from_secs(5))?;
//! let supervisor = Supervisor::start(flags, vec![
//!     ChildSpec::new("a", || Worker::start(())),
//!     ChildSpec::new("b", || Worker::start(())),
//! ]).await?;
//! assert_eq!(supervisor.count_children().await?.active, 2);
//! supervisor.stop(Duration::from_secs(5)).await?; // stops b, then a
//! # Ok(())
//! # }
//! ```
//!
//! # Differences from OTP
//!
//! - **Graceful shutdown always runs `terminate`** for `GenServer` children (semantics D1):
//!   the supervisor stops a child with a request through the child's mailbox, behind the
//!   messages already there, not with an exit signal. A task child is stopped at its next
//!   `.await`.
//! - **Supervisors watch their children with monitors.** A child started with
//!   [`start_link`](crate::gen_server::GenServer::start_link) (the supervisor runs the start
//!   function, so it is the one linked) is linked to it as in Erlang, and the supervisor traps
//!   exits, so a child's exit never kills it: the exit signal is dropped and the child's `Down`
//!   drives the restart. An exit signal from the supervisor's own parent stops it, as it stops
//!   any trapping server ([`link`](crate::link)).
//! - **A child that never yields cannot be killed** (D2): brutal kill and kill-after-timeout
//!   take effect at the child's next `.await`. Its supervisor's exit waits for it (see below).
//! - The intensity window uses monotonic instants, not whole seconds (D5).
//! - [`which_children`](Supervisor::which_children) lists children in **start order**; OTP lists
//!   them newest first (D9).
//! - Child specs are typed, so most of OTP's spec errors cannot be written; duplicate ids, a
//!   zero period and a zero shutdown timeout are rejected with [`SpecError`] before any process
//!   starts (D12).
//! - A supervisor does not link to its children (see [`link`](crate::link) for how links and
//!   supervision relate): it monitors and owns them. If it is killed (or its own code
//!   panics), at whatever point, even while it is stopping a child, its children are killed
//!   with it. **Its exit, and so its `Down`, is published only once they have all exited**:
//!   in OTP a killed supervisor's `EXIT` can reach its parent before its children have died of
//!   their links, so the restarted subtree's named workers find their names taken. This holds
//!   for [`DynamicSupervisor`](crate::dynamic_supervisor::DynamicSupervisor) and
//!   [`TaskSupervisor`](crate::task_supervisor::TaskSupervisor) too.
//! - Not offered: `simple_one_for_one` (use `DynamicSupervisor`), `auto_shutdown` and
//!   significant children, hot code upgrade.

mod child_spec;
mod error;
pub(crate) mod events;
mod flags;
pub(crate) mod restart;
pub(crate) mod restart_intensity;
mod server;
pub(crate) mod shutdown;
pub(crate) mod strategy;

pub use child_spec::{ChildProcess, ChildSpec, ChildType, RestartBackoff};
pub use error::{
    DeleteChildError, RestartChildError, SpecError, StartChildError, SupervisorStartError,
    TerminateChildError,
};
pub use events::{EventStream, EventStreamError, SupervisorEvent};
pub use flags::{Strategy, SupFlags};

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::Pid;
use crate::gen_server::{CallError, GenServer, ServerRef, StartOptions, StopError, Timeout};
use events::{EventSource, Events};
use server::{Request, Response, SupervisorArgs, SupervisorServer};

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
        after_exit(self, reason) == AfterExit::Restart
    }
}

/// What happens to a child after it exits by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterExit {
    Restart,
    /// Kept, not running: `restart_child` can start it again.
    Keep,
    /// Forgotten.
    Remove,
}

/// The restart decision, one arm per rule of `supervisor.erl`'s `do_restart/3`, in its order.
pub(crate) fn after_exit(restart: Restart, reason: &crate::ExitReason) -> AfterExit {
    match (restart, reason) {
        // "A permanent child process is always restarted."
        (Restart::Permanent, _) => AfterExit::Restart,
        // "A transient child process is restarted only if it terminates abnormally, that is,
        // with another exit reason than normal, shutdown, or {shutdown,Term}."
        (Restart::Transient, reason) if reason.is_clean() => AfterExit::Keep,
        (Restart::Transient, _) => AfterExit::Restart,
        // "A temporary child process is never restarted (even when the supervisor's restart
        // strategy is rest_for_one or one_for_all and a sibling's death causes the temporary
        // process to be terminated)."
        (Restart::Temporary, _) => AfterExit::Remove,
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

/// A child's state, as [`which_children`](Supervisor::which_children) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    /// Running, with this pid.
    Running(Pid),
    /// Its restart failed and is being retried (Erlang `restarting`).
    Restarting,
    /// Not running: terminated, ignored at start, or a transient child that exited cleanly
    /// (Erlang `undefined`).
    Undefined,
}

/// One entry of [`which_children`](Supervisor::which_children).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    /// The child's id (`None` under a `DynamicSupervisor`, whose children have none).
    pub id: Option<Arc<str>>,
    /// Running, restarting or not running.
    pub status: ChildStatus,
    /// Worker or supervisor.
    pub child_type: ChildType,
    /// How many times the supervisor has restarted this child after an exit (its own, or a
    /// sibling's under `one_for_all` / `rest_for_one`). Not reset by the restart intensity
    /// window; an explicit `restart_child` does not count. Erlang does not report this.
    pub restarts: u32,
}

/// What [`count_children`](Supervisor::count_children) returns (Erlang's proplist).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildCounts {
    /// Every child spec held, running or not.
    pub specs: usize,
    /// Running children.
    pub active: usize,
    /// Children of type supervisor, running or not.
    pub supervisors: usize,
    /// Children of type worker, running or not.
    pub workers: usize,
}

/// A handle to a static supervisor: cheap to clone, `Send + Sync`. See the [module docs](self).
#[derive(Clone)]
pub struct Supervisor {
    server: ServerRef<SupervisorServer>,
    events: EventSource,
}

impl Supervisor {
    /// Starts a supervisor and its children, in order (Erlang `supervisor:start_link/2`).
    ///
    /// Returns once every child's `init` has returned.
    ///
    /// # Errors
    ///
    /// - If two children share an id, or a child has a zero shutdown timeout, returns
    ///   [`SupervisorStartError::InvalidSpec`]; nothing is started.
    /// - If a child fails to start, returns [`SupervisorStartError::FailedToStartChild`] after
    ///   stopping the children already started, in reverse order.
    /// - If no tokio runtime is running, returns [`SupervisorStartError::Start`].
    pub async fn start(
        flags: SupFlags,
        children: Vec<ChildSpec>,
    ) -> Result<Supervisor, SupervisorStartError> {
        let mut ids = HashSet::new();
        for child in &children {
            child.validate()?;
            if !ids.insert(child.id.clone()) {
                return Err(SpecError::DuplicateId(child.id.to_string()).into());
            }
        }
        let events = Events::new();
        let source = events.source();
        let failure = server::StartFailure::default();
        let args = SupervisorArgs {
            flags,
            children,
            events,
            failure: failure.clone(),
        };
        match SupervisorServer::start_with(args, StartOptions::new().label("supervisor")).await {
            Ok(server) => Ok(Supervisor {
                server,
                events: source,
            }),
            Err(error) => Err(match failure.lock().take() {
                Some((id, error)) => SupervisorStartError::FailedToStartChild {
                    id: id.to_string(),
                    error,
                },
                None => SupervisorStartError::Start(error),
            }),
        }
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> Pid {
        self.server.pid()
    }

    /// Whether the supervisor is running.
    pub fn is_alive(&self) -> bool {
        self.server.is_alive()
    }

    /// A stream of this supervisor's [`SupervisorEvent`]s from now on. Once the supervisor has
    /// exited and its last events are read, [`EventStream::next`] returns
    /// [`EventStreamError::Closed`].
    pub fn subscribe(&self) -> EventStream {
        self.events.subscribe()
    }

    async fn request(&self, request: Request) -> Result<Response, CallError> {
        // Supervisor calls wait as long as the operation takes, as in `supervisor.erl`.
        self.server.call_timeout(request, Timeout::Infinity).await
    }

    /// Adds a child and starts it (Erlang `start_child/2`).
    ///
    /// Returns the new child's pid, or `None` if its `init` returned `Ignore` (the spec is
    /// then kept, not running, unless the child is temporary). Does not count toward intensity.
    ///
    /// # Errors
    ///
    /// - If a child with the same id is running, returns [`StartChildError::AlreadyStarted`];
    ///   if it exists but is not running, [`StartChildError::AlreadyPresent`]. Nothing starts.
    /// - If the child's start fails, returns [`StartChildError::Failed`] and discards the spec;
    ///   if its name is taken, [`StartChildError::AlreadyStarted`] with the holder.
    /// - If the spec is invalid, returns [`StartChildError::InvalidSpec`].
    /// - If the supervisor is not running, returns [`StartChildError::NoProc`].
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Option<Pid>, StartChildError> {
        match self.request(Request::StartChild(spec)).await {
            Ok(Response::Started(result)) => result,
            _ => Err(StartChildError::NoProc),
        }
    }

    /// Stops child `id` by its shutdown policy and keeps its spec (a temporary child's spec is
    /// removed). The child is not restarted. Returns once it has exited (Erlang
    /// `terminate_child/2`); terminating a stopped child is fine.
    ///
    /// # Errors
    ///
    /// - If no child has this id, returns [`TerminateChildError::NotFound`].
    /// - If the supervisor is not running, returns [`TerminateChildError::NoProc`].
    pub async fn terminate_child(&self, id: &str) -> Result<(), TerminateChildError> {
        match self.request(Request::TerminateChild(id.to_string())).await {
            Ok(Response::Terminated(result)) => result,
            _ => Err(TerminateChildError::NoProc),
        }
    }

    /// Starts a stopped child again (Erlang `restart_child/2`); `None` if its `init` returned
    /// `Ignore`. Does not count toward intensity.
    ///
    /// # Errors
    ///
    /// - If no child has this id, returns [`RestartChildError::NotFound`].
    /// - If it is running, returns [`RestartChildError::Running`]; if its restart is being
    ///   retried, [`RestartChildError::Restarting`].
    /// - If its start fails, returns [`RestartChildError::Failed`]; it stays stopped.
    /// - If the supervisor is not running, returns [`RestartChildError::NoProc`].
    pub async fn restart_child(&self, id: &str) -> Result<Option<Pid>, RestartChildError> {
        match self.request(Request::RestartChild(id.to_string())).await {
            Ok(Response::Restarted(result)) => result,
            _ => Err(RestartChildError::NoProc),
        }
    }

    /// Removes the spec of a stopped child (Erlang `delete_child/2`).
    ///
    /// # Errors
    ///
    /// - If no child has this id, returns [`DeleteChildError::NotFound`].
    /// - If it is running, returns [`DeleteChildError::Running`]; if restarting,
    ///   [`DeleteChildError::Restarting`].
    /// - If the supervisor is not running, returns [`DeleteChildError::NoProc`].
    pub async fn delete_child(&self, id: &str) -> Result<(), DeleteChildError> {
        match self.request(Request::DeleteChild(id.to_string())).await {
            Ok(Response::Deleted(result)) => result,
            _ => Err(DeleteChildError::NoProc),
        }
    }

    /// Every child, in start order, with its state and type (Erlang `which_children/1`, which
    /// lists newest first).
    ///
    /// # Errors
    ///
    /// If the supervisor is not running, returns [`CallError::NoProc`].
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, CallError> {
        match self.request(Request::WhichChildren).await? {
            Response::Children(children) => Ok(children),
            _ => Err(CallError::NoProc),
        }
    }

    /// Counts of specs, running children, supervisors and workers (Erlang `count_children/1`).
    ///
    /// # Errors
    ///
    /// If the supervisor is not running, returns [`CallError::NoProc`].
    pub async fn count_children(&self) -> Result<ChildCounts, CallError> {
        match self.request(Request::CountChildren).await? {
            Response::Counts(counts) => Ok(counts),
            _ => Err(CallError::NoProc),
        }
    }

    /// Stops the supervisor: its children in reverse start order, each by its policy, then the
    /// supervisor itself, with reason `Shutdown`. Returns when the whole tree has exited.
    ///
    /// # Errors
    ///
    /// As [`ServerRef::stop`]: [`StopError::NoProc`] if it is not running,
    /// [`StopError::Timeout`] if the tree has not exited within `timeout`.
    pub async fn stop(&self, timeout: impl Into<Timeout>) -> Result<(), StopError> {
        self.server.stop(crate::ExitReason::Shutdown, timeout).await
    }

    /// Monitors the supervisor.
    pub fn monitor(&self) -> crate::monitor::Monitor {
        self.server.monitor()
    }
}

/// The children of `pid`, if it is a static supervisor (for [`observer::tree`](crate::observer::tree)).
pub(crate) async fn children_of(
    pid: Pid,
    timeout: Timeout,
) -> Option<Result<Vec<ChildInfo>, CallError>> {
    let server = ServerRef::<SupervisorServer>::lookup(pid)?;
    Some(
        match server.call_timeout(Request::WhichChildren, timeout).await {
            Ok(Response::Children(children)) => Ok(children),
            Ok(_) => Err(CallError::NoProc),
            Err(error) => Err(error),
        },
    )
}

impl From<Supervisor> for ChildProcess {
    fn from(supervisor: Supervisor) -> ChildProcess {
        supervisor.server.into()
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("pid", &self.pid())
            .finish()
    }
}
