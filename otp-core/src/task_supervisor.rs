//! Supervised one-off tasks: start async work under a supervisor and await its result, or have
//! the result delivered to a server as a message.
//!
//! Mirrors Elixir's [`Task.Supervisor`](https://hexdocs.pm/elixir/Task.Supervisor.html).
//!
//! | Elixir | otp-core |
//! |---|---|
//! | `Task.Supervisor.start_link(max_restarts: 3, max_seconds: 5)` | [`TaskSupervisor::start`], [`TaskSupervisor::start_with`] |
//! | `Task.Supervisor.start_child(sup, fun)` | [`TaskSupervisor::start_child`] |
//! | `Task.Supervisor.start_child(sup, fun, restart: r, shutdown: s)` | [`TaskSupervisor::start_child_with`] |
//! | `Task.Supervisor.async_nolink(sup, fun)` + `Task.await/2` | [`TaskSupervisor::async_nolink`] → [`TaskHandle`] |
//! | `async_nolink` from a `GenServer`, result in `handle_info` | [`TaskSupervisor::async_nolink_to`] |
//! | `Task.Supervisor.terminate_child(sup, pid)` | [`TaskSupervisor::terminate_child`] |
//! | `Task.Supervisor.children(sup)` | [`TaskSupervisor::children`] |
//!
//! Every task is its own process: a panic in it becomes its exit reason and never reaches the
//! process that started it. Restarts run on the same engine as every supervisor's
//! ([`supervisor::restart`](crate::supervisor)): the same intensity rules, a failed restart
//! retried through the task supervisor's mailbox (the task known meanwhile by the pid that
//! exited, so [`terminate_child`](TaskSupervisor::terminate_child) with that pid ends the
//! retries), and the same [`SupervisorEvent`]s, from [`subscribe`](TaskSupervisor::subscribe). Tasks are `temporary` by default (never restarted, forgotten when
//! they exit) and have a 5 s shutdown, as in Elixir. When the task supervisor stops, it stops
//! its running tasks concurrently, each by its shutdown policy; if it is killed, its tasks are
//! killed with it.
//!
//! ```
//! use otp_core::task_supervisor::TaskSupervisor;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tasks = TaskSupervisor::start().await?;
//! let answer = tasks.async_nolink(async { 6 * 7 }).await?;
//! assert_eq!(answer.await?, 42);
//!
//! let crash = tasks.async_nolink(async { panic!("boom") }).await?;
//! assert!(crash.await.is_err()); // the panic stayed inside the task
//! # Ok(())
//! # }
//! ```
//!
//! # Differences from Elixir
//!
//! - Tasks are never linked to the caller: every task behaves like `async_nolink`. Await a
//!   [`TaskHandle`] to get the result or the exit reason.
//! - A task has no mailbox, so a graceful shutdown ends it at its next `.await` with reason
//!   `Shutdown`; the shutdown timeout matters only for a task that does not yield (D2), which
//!   cannot be stopped at all until it does.
//! - The task body of [`start_child`](TaskSupervisor::start_child) returns `Result<(), BoxError>`
//!   so `?` works; an `Err` is an abnormal exit.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::gen_server::{
    BoxError, CallResult, Caller, Context, GenServer, Init, ServerRef, StartError, StartOptions,
    StopError, Timeout,
};
use crate::monitor::Down;
use crate::process::header::AnyProcess;
use crate::process::spawn::NoRuntime;
use crate::process::termination;
use crate::supervisor::events::{EventSource, Events};
use crate::supervisor::restart::{self, Engine, Restarting};
use crate::supervisor::restart_intensity::{DEFAULT_MAX_RESTARTS, DEFAULT_MAX_SECONDS};
use crate::supervisor::shutdown::{stop_child, stop_concurrently};
use crate::supervisor::{
    AfterExit, ChildProcess, EventStream, Restart, Shutdown, SupervisorEvent, after_exit,
};
use crate::task::{TaskProcess, spawn_task, task_exit_reason};
use crate::{ExitReason, Pid};

/// Why a task could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskStartError {
    /// The task supervisor is not running.
    #[error("task supervisor is not running")]
    NoProc,
    /// The shutdown policy is `Timeout(0)`.
    #[error("shutdown timeout must be greater than zero")]
    InvalidShutdown,
    /// No tokio runtime is running.
    #[error("no tokio runtime is running on this thread")]
    NoRuntime,
    /// The function that builds the task panicked (for
    /// [`start_child_with`](TaskSupervisor::start_child_with), the closure called for every
    /// start); this is the panic. The task supervisor and its other tasks carry on.
    #[error("task failed to start: {0}")]
    Failed(ExitReason),
}

/// Why a task gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task exited without producing its result: it panicked, or it was stopped or killed.
    #[error("task exited: {0}")]
    Exited(ExitReason),
}

/// `terminate_child` was given a pid that is not a running child (Elixir `{:error, :not_found}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no such child")]
pub struct ChildNotFound;

/// The options of one task: restart type and shutdown policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskOptions {
    /// Default [`Restart::Temporary`], as Elixir's.
    pub restart: Restart,
    /// Default [`Shutdown::WORKER_DEFAULT`] (5 s), as Elixir's.
    pub shutdown: Shutdown,
}

impl Default for TaskOptions {
    fn default() -> TaskOptions {
        TaskOptions {
            restart: Restart::Temporary,
            shutdown: Shutdown::WORKER_DEFAULT,
        }
    }
}

/// The task supervisor's own restart limits (Elixir's defaults: 3 restarts in 5 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSupervisorOptions {
    /// At most this many restarts of permanent or transient tasks ...
    pub max_restarts: u32,
    /// ... within this period; one more and the task supervisor gives up and exits `Shutdown`.
    pub max_seconds: Duration,
}

impl Default for TaskSupervisorOptions {
    fn default() -> TaskSupervisorOptions {
        TaskSupervisorOptions {
            max_restarts: DEFAULT_MAX_RESTARTS,
            max_seconds: DEFAULT_MAX_SECONDS,
        }
    }
}

/// Starts one incarnation of a task; called once per (re)start.
type Launch = Box<dyn FnMut() -> Result<Arc<TaskProcess>, NoRuntime> + Send>;

/// A task: its process while it runs; none while it waits for a restart that failed.
struct TaskChild {
    running: Option<Arc<TaskProcess>>,
    launch: Launch,
    options: TaskOptions,
}

/// The task supervisor's process. Its children are keyed by pid: a running task's, or for a
/// task waiting to be restarted, the pid that exited (as a dynamic supervisor keys them).
struct TaskSupervisorServer {
    children: FxHashMap<Pid, TaskChild>,
    engine: Engine,
}

enum Request {
    Start(Launch, TaskOptions),
    Terminate(Pid),
    Children,
}

enum Response {
    Started(Arc<TaskProcess>),
    StartFailed(TaskStartError),
    Terminated(Result<(), ChildNotFound>),
    Children(Vec<Pid>),
}

enum Message {
    /// A task's monitor fired.
    Exit(Down),
    /// Try again the restart of the task that exited as this pid.
    TryAgain(Pid),
}

impl TaskSupervisorServer {
    /// Starts one incarnation of a task. A panic in the user's function that builds it is that
    /// task's start failure, not the task supervisor's crash (OTP's `catch apply(M, F, A)`);
    /// on failure the launcher comes back, for a retry.
    fn start_task(
        &mut self,
        mut launch: Launch,
        options: TaskOptions,
        ctx: &mut Context<Self>,
    ) -> Result<Arc<TaskProcess>, (Launch, TaskStartError)> {
        let launched = std::panic::catch_unwind(AssertUnwindSafe(&mut launch));
        let process = match launched {
            Ok(Ok(process)) => process,
            Ok(Err(NoRuntime)) => return Err((launch, TaskStartError::NoRuntime)),
            Err(payload) => {
                let reason = ExitReason::Panic(crate::process::panic_message(&*payload));
                return Err((launch, TaskStartError::Failed(reason)));
            }
        };
        let pid = process.header.pid();
        // Through the header, not the pid: a task that has already finished still reports its
        // real reason, not `NoProc` (which would restart a transient task that exited cleanly).
        ctx.monitor_process(&process.header, Message::Exit);
        self.children.insert(
            pid,
            TaskChild {
                running: Some(process.clone()),
                launch,
                options,
            },
        );
        Ok(process)
    }

    fn task_exited(&mut self, down: Down, ctx: &mut Context<Self>) {
        let Some(child) = self.children.remove(&down.pid) else {
            return;
        };
        self.engine.events().emit(SupervisorEvent::ChildExited {
            supervisor: ctx.pid(),
            child: None,
            pid: down.pid,
            reason: down.reason.clone(),
        });
        match after_exit(child.options.restart, &down.reason) {
            AfterExit::Restart => self.restart(down.pid, child, down.reason, ctx),
            // A task has no id to restart it by later: one that stays down is forgotten.
            AfterExit::Keep | AfterExit::Remove => {}
        }
    }

    /// Restarts `child`, which exited as `old_pid`; a failed start is retried through the
    /// mailbox, the task known by `old_pid` meanwhile.
    fn restart(
        &mut self,
        old_pid: Pid,
        child: TaskChild,
        reason: ExitReason,
        ctx: &mut Context<Self>,
    ) {
        if !self.engine.allow(None, reason, ctx) {
            return;
        }
        match self.start_task(child.launch, child.options, ctx) {
            Ok(process) => {
                let pid = process.header.pid();
                self.engine.restarted(ctx.pid(), None, Some(old_pid), pid);
            }
            Err((launch, error)) => {
                self.engine.failed(ctx.pid(), None, &error);
                let waiting = TaskChild {
                    running: None,
                    launch,
                    options: child.options,
                };
                self.children.insert(old_pid, waiting);
                restart::retry(None, || Message::TryAgain(old_pid), ctx);
            }
        }
    }
}

impl GenServer for TaskSupervisorServer {
    type Args = (TaskSupervisorOptions, Events);
    type Call = Request;
    type Reply = Response;
    type Cast = std::convert::Infallible;
    type Info = Message;
    type Continue = std::convert::Infallible;

    async fn init(
        (options, events): Self::Args,
        ctx: &mut Context<Self>,
    ) -> Result<Init<Self>, BoxError> {
        // Children started with `start_link` are linked to it; their exits come as `Down`s.
        ctx.trap_exits_ignoring_them();
        Ok(Init::Ready(TaskSupervisorServer {
            children: FxHashMap::default(),
            engine: Engine::new(options.max_restarts, options.max_seconds, events),
        }))
    }

    async fn handle_call(
        &mut self,
        request: Request,
        _: Caller<'_, Response>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<Response>, BoxError> {
        let response = match request {
            Request::Start(launch, options) => match self.start_task(launch, options, ctx) {
                Ok(process) => {
                    self.engine.events().emit(SupervisorEvent::ChildStarted {
                        supervisor: ctx.pid(),
                        child: None,
                        pid: process.header.pid(),
                    });
                    Response::Started(process)
                }
                Err((_, error)) => Response::StartFailed(error),
            },
            // Removed before it is stopped, so its Down triggers no restart (an administrative
            // stop never does); a task waiting for a restart is just forgotten, which ends its
            // retries.
            Request::Terminate(pid) => match self.children.remove(&pid) {
                Some(child) => {
                    if let Some(process) = child.running {
                        let reason = stop_child(&*process, child.options.shutdown).await;
                        self.engine.events().emit(SupervisorEvent::ChildExited {
                            supervisor: ctx.pid(),
                            child: None,
                            pid,
                            reason,
                        });
                    }
                    Response::Terminated(Ok(()))
                }
                None => Response::Terminated(Err(ChildNotFound)),
            },
            Request::Children => Response::Children(
                self.children
                    .iter()
                    .filter(|(_, child)| child.running.is_some())
                    .map(|(&pid, _)| pid)
                    .collect(),
            ),
        };
        Ok(CallResult::Reply(response))
    }

    async fn handle_info(
        &mut self,
        message: Message,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match message {
            Message::Exit(down) => self.task_exited(down, ctx),
            Message::TryAgain(old_pid) => {
                // Still waiting, unless terminated meanwhile: only a waiting task is known by a
                // pid that has exited (a restarted one is known by its new pid).
                if let Some(child) = self.children.remove(&old_pid) {
                    let (_, reason) = Restarting::Retrying.exit();
                    self.restart(old_pid, child, reason, ctx);
                }
            }
        }
        Ok(())
    }

    async fn terminate(&mut self, _: &ExitReason, _: &mut Context<Self>) {
        // Concurrently, as a DynamicSupervisor does (Elixir's Task.Supervisor is one).
        let running = self
            .children
            .drain()
            .filter_map(|(_, child)| {
                let process = child.running? as Arc<dyn AnyProcess>;
                Some((process, child.options.shutdown))
            })
            .collect();
        stop_concurrently(running).await;
    }
}

impl Drop for TaskSupervisorServer {
    fn drop(&mut self) {
        // Reached with children left only if the supervisor was killed: its tasks die with it,
        // as linked tasks do in Erlang, and its exit waits for theirs.
        let running = self
            .children
            .values()
            .filter_map(|child| child.running.as_ref());
        termination::kill_children(running.map(|process| &process.header));
    }
}

/// The running tasks of `pid`, if it is a task supervisor (for
/// [`observer::tree`](crate::observer::tree)).
pub(crate) async fn children_of(
    pid: Pid,
    timeout: Timeout,
) -> Option<Result<Vec<Pid>, crate::gen_server::CallError>> {
    let server = ServerRef::<TaskSupervisorServer>::lookup(pid)?;
    Some(
        match server.call_timeout(Request::Children, timeout).await {
            Ok(Response::Children(children)) => Ok(children),
            Ok(_) => Ok(Vec::new()),
            Err(error) => Err(error),
        },
    )
}

/// A handle to a task supervisor: cheap to clone, `Send + Sync`. See the [module docs](self).
#[derive(Clone)]
pub struct TaskSupervisor {
    server: ServerRef<TaskSupervisorServer>,
    events: EventSource,
}

impl TaskSupervisor {
    /// Starts a task supervisor with Elixir's defaults (3 restarts in 5 s).
    ///
    /// # Errors
    ///
    /// If no tokio runtime is running, returns [`StartError::NoRuntime`].
    pub async fn start() -> Result<TaskSupervisor, StartError> {
        TaskSupervisor::start_with(TaskSupervisorOptions::default()).await
    }

    /// Starts a task supervisor with the given restart limits.
    ///
    /// # Errors
    ///
    /// If no tokio runtime is running, returns [`StartError::NoRuntime`].
    pub async fn start_with(options: TaskSupervisorOptions) -> Result<TaskSupervisor, StartError> {
        let events = Events::new();
        let source = events.source();
        let server = TaskSupervisorServer::start_with(
            (options, events),
            StartOptions::new().label("task_supervisor"),
        )
        .await?;
        Ok(TaskSupervisor {
            server,
            events: source,
        })
    }

    /// The task supervisor's pid.
    pub fn pid(&self) -> Pid {
        self.server.pid()
    }

    async fn launch(
        &self,
        launch: Launch,
        options: TaskOptions,
    ) -> Result<Arc<TaskProcess>, TaskStartError> {
        if !options.shutdown.is_valid() {
            return Err(TaskStartError::InvalidShutdown);
        }
        match self
            .server
            .call_timeout(Request::Start(launch, options), Timeout::Infinity)
            .await
        {
            Ok(Response::Started(process)) => Ok(process),
            Ok(Response::StartFailed(error)) => Err(error),
            _ => Err(TaskStartError::NoProc),
        }
    }

    /// Starts a temporary task and returns its pid (Elixir `Task.Supervisor.start_child/2`).
    ///
    /// The result is not kept; an `Err` or a panic ends the task abnormally (and is logged).
    ///
    /// # Errors
    ///
    /// If the task supervisor is not running, returns [`TaskStartError::NoProc`].
    pub async fn start_child<F>(&self, task: F) -> Result<Pid, TaskStartError>
    where
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let mut task = Some(task);
        let launch: Launch = Box::new(move || {
            let body = task.take();
            spawn_task(
                async move {
                    match body {
                        Some(body) => body.await,
                        None => Ok(()),
                    }
                },
                task_exit_reason,
            )
        });
        let process = self.launch(launch, TaskOptions::default()).await?;
        Ok(process.header.pid())
    }

    /// Starts a task with a restart type and shutdown policy; `task` is called for every
    /// (re)start (Elixir `start_child/3` with `:restart` and `:shutdown`).
    ///
    /// # Errors
    ///
    /// - If the task supervisor is not running, returns [`TaskStartError::NoProc`].
    /// - If the shutdown policy is `Timeout(0)`, returns [`TaskStartError::InvalidShutdown`].
    pub async fn start_child_with<T, F>(
        &self,
        options: TaskOptions,
        task: T,
    ) -> Result<Pid, TaskStartError>
    where
        T: FnMut() -> F + Send + 'static,
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let mut task = task;
        let launch: Launch = Box::new(move || spawn_task(task(), task_exit_reason));
        let process = self.launch(launch, options).await?;
        Ok(process.header.pid())
    }

    /// Starts a temporary task whose result you await through the returned [`TaskHandle`]
    /// (Elixir `Task.Supervisor.async_nolink/2` followed by `Task.await/2`).
    ///
    /// # Errors
    ///
    /// If the task supervisor is not running, returns [`TaskStartError::NoProc`].
    pub async fn async_nolink<F>(&self, task: F) -> Result<TaskHandle<F::Output>, TaskStartError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let mut parts = Some((task, tx));
        let launch: Launch = Box::new(move || match parts.take() {
            // The result is delivered once the task's exit is complete (see `spawn::Finish`):
            // whoever awaits it finds the task gone and its names released.
            Some((task, tx)) => spawn_task(task, move |outcome| {
                (result_exit_reason(&outcome), move || {
                    let _ = tx.send(outcome);
                })
            }),
            // A temporary child is launched exactly once.
            None => Err(NoRuntime),
        });
        let process = self.launch(launch, TaskOptions::default()).await?;
        Ok(TaskHandle {
            pid: process.header.pid(),
            process,
            rx,
        })
    }

    /// Starts a temporary task whose outcome is delivered to `server`'s `handle_info` as
    /// `to_info(outcome)`: `Ok(output)`, or `Err(exit reason)` if the task panicked or was
    /// stopped. Exactly one message is delivered (Elixir `async_nolink` used from a GenServer).
    ///
    /// # Errors
    ///
    /// If the task supervisor is not running, returns [`TaskStartError::NoProc`].
    pub async fn async_nolink_to<S, F, M>(
        &self,
        server: &ServerRef<S>,
        task: F,
        to_info: M,
    ) -> Result<Pid, TaskStartError>
    where
        S: GenServer,
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        M: FnOnce(Result<F::Output, ExitReason>) -> S::Info + Send + 'static,
    {
        let server = server.clone();
        let mut parts = Some((task, to_info));
        let launch: Launch = Box::new(move || match parts.take() {
            Some((task, to_info)) => {
                let server = server.clone();
                spawn_task(task, move |outcome| {
                    let reason = result_exit_reason(&outcome);
                    // Mapped here, before the fan-out, so that a panicking mapper is the
                    // task's exit reason; sent once the exit is complete.
                    let info = to_info(outcome);
                    // The runtime's own message, as a `Down` is: a full bounded mailbox
                    // does not refuse it.
                    (reason, move || {
                        if server.send_internal(info).is_err() {
                            tracing::debug!("task result dropped: its server has exited");
                        }
                    })
                })
            }
            None => Err(NoRuntime),
        });
        let process = self.launch(launch, TaskOptions::default()).await?;
        Ok(process.header.pid())
    }

    /// Stops the task `pid` by its shutdown policy and forgets it; it is not restarted
    /// (Elixir `Task.Supervisor.terminate_child/2`).
    ///
    /// # Errors
    ///
    /// If `pid` is not a running child of this supervisor (or the supervisor is not running),
    /// returns [`ChildNotFound`].
    pub async fn terminate_child(&self, pid: Pid) -> Result<(), ChildNotFound> {
        match self
            .server
            .call_timeout(Request::Terminate(pid), Timeout::Infinity)
            .await
        {
            Ok(Response::Terminated(result)) => result,
            _ => Err(ChildNotFound),
        }
    }

    /// A stream of this task supervisor's events from now on: tasks started, exited, restarted,
    /// failed restarts and giving up, as every supervisor reports them (`child` is always
    /// `None`).
    pub fn subscribe(&self) -> EventStream {
        self.events.subscribe()
    }

    /// Monitors the task supervisor.
    pub fn monitor(&self) -> crate::monitor::Monitor {
        self.server.monitor()
    }

    /// The pids of the running tasks, in no particular order (Elixir `children/1`).
    ///
    /// # Errors
    ///
    /// If the task supervisor is not running, returns [`CallError::NoProc`](crate::gen_server::CallError::NoProc).
    pub async fn children(&self) -> Result<Vec<Pid>, crate::gen_server::CallError> {
        match self
            .server
            .call_timeout(Request::Children, Timeout::Infinity)
            .await?
        {
            Response::Children(children) => Ok(children),
            _ => Ok(Vec::new()),
        }
    }

    /// Stops the task supervisor: its running tasks are stopped concurrently, each by its
    /// shutdown policy, then it exits with `Shutdown`.
    ///
    /// # Errors
    ///
    /// As [`ServerRef::stop`].
    pub async fn stop(&self, timeout: impl Into<Timeout>) -> Result<(), StopError> {
        self.server.stop(ExitReason::Shutdown, timeout).await
    }
}

/// The exit reason of a task whose output is its result: `Normal` once it produced one.
fn result_exit_reason<T>(outcome: &Result<T, ExitReason>) -> ExitReason {
    outcome
        .as_ref()
        .err()
        .cloned()
        .unwrap_or(ExitReason::Normal)
}

impl From<TaskSupervisor> for ChildProcess {
    fn from(tasks: TaskSupervisor) -> ChildProcess {
        tasks.server.into()
    }
}

impl fmt::Debug for TaskSupervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSupervisor")
            .field("pid", &self.pid())
            .finish()
    }
}

/// The result of a task started with [`TaskSupervisor::async_nolink`]; await it.
///
/// Resolves to the task's output, or to [`TaskError::Exited`] with the reason it ended without
/// one. Dropping the handle does not stop the task.
#[must_use = "a task handle does nothing unless awaited"]
pub struct TaskHandle<T> {
    pid: Pid,
    process: Arc<TaskProcess>,
    rx: oneshot::Receiver<Result<T, ExitReason>>,
}

impl<T> TaskHandle<T> {
    /// The task's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|outcome| match outcome {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(reason)) => Err(TaskError::Exited(reason)),
                // `finish` always runs, so this is only reached if the task never ran.
                Err(_) => Err(TaskError::Exited(
                    self.process
                        .header
                        .exit_reason()
                        .unwrap_or(ExitReason::NoProc),
                )),
            })
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("pid", &self.pid)
            .finish()
    }
}
