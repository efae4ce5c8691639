//! A supervisor that starts children on demand, supervises them one for one, and stops them
//! all concurrently.
//!
//! Mirrors Elixir's [`DynamicSupervisor`](https://hexdocs.pm/elixir/DynamicSupervisor.html)
//! (and Erlang's `simple_one_for_one`). Unlike a static [`Supervisor`](crate::supervisor::Supervisor),
//! it starts with no children, its children have no ids (they are known by pid), and it stops
//! them all at once rather than in order, which is what makes shutting down many children fast.
//!
//! | Elixir | otp-core |
//! |---|---|
//! | `DynamicSupervisor.start_link(max_restarts: 3, max_seconds: 5, max_children: :infinity)` | [`DynamicSupervisor::start`] with [`DynamicSupervisorOptions`] |
//! | `start_child(sup, spec)` → `{:ok, pid}` / `:ignore` / `{:error, reason}` | [`DynamicSupervisor::start_child`] → `Ok(pid)` / [`DynamicStartError`] |
//! | `start_child(sup, {Conn, socket})` of a temporary child | [`DynamicSupervisor::start_temporary`]: the socket comes back if the child was not started |
//! | `terminate_child(sup, pid)` | [`DynamicSupervisor::terminate_child`] |
//! | `which_children/1`, `count_children/1` | [`DynamicSupervisor::which_children`], [`DynamicSupervisor::count_children`] |
//! | `stop/3` | [`DynamicSupervisor::stop`] |
//!
//! Restart types follow the same matrix as static supervisors, except that a child that is not
//! restarted is always forgotten (there is no id to restart it by). A failed restart counts
//! toward intensity and is retried; a child waiting for its retry still counts toward
//! `max_children` and, as in Elixir, is known by the pid that exited:
//! [`terminate_child`](DynamicSupervisor::terminate_child) with that pid forgets it, which ends
//! its retries and frees its slot.
//!
//! # Shutdown cost
//!
//! On shutdown every child is asked to stop at once (brutal-kill ones are killed), with one
//! timer per distinct shutdown timeout; the cost per child is constant, so shutting down 1M
//! children costs per child what 1k do (Elixir 1.14's cost per child grows with the number of
//! children).
//!
//! # Differences from Elixir
//!
//! - No `extra_arguments`: a child spec's start closure captures its arguments, and a restart
//!   calls the same closure, so a restarted child gets the same arguments (DYN-04, DYN-06).
//! - `Ignore` is reported as [`DynamicStartError::Ignored`] (D16).
//! - The differences of [`supervisor`](crate::supervisor#differences-from-otp) apply.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::gen_server::{
    BoxError, CallError, CallResult, Caller, Context, GenServer, Init, ServerRef, StartError,
    StartOptions, StopError, Timeout,
};
use crate::monitor::{Down, MonitorRef};
use crate::process::termination;
use crate::supervisor::events::{EventSource, Events};
use crate::supervisor::restart::{self, Engine};
use crate::supervisor::restart_intensity::{DEFAULT_MAX_RESTARTS, DEFAULT_MAX_SECONDS};
use crate::supervisor::shutdown::{stop_child, stop_concurrently};
use crate::supervisor::{
    AfterExit, ChildCounts, ChildInfo, ChildProcess, ChildSpec, ChildStatus, ChildType,
    EventStream, Restart, SpecError, SupervisorEvent, TerminateChildError, after_exit,
};
use crate::sync::Mutex;
use crate::{ExitReason, Pid};

/// A dynamic supervisor's options. Defaults are Elixir's: 3 restarts in 5 s, no child limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicSupervisorOptions {
    /// At most this many restarts ...
    pub max_restarts: u32,
    /// ... within this period (must be greater than zero).
    pub max_seconds: Duration,
    /// At most this many children, running or waiting for a restart (`None`: no limit).
    pub max_children: Option<usize>,
}

impl Default for DynamicSupervisorOptions {
    fn default() -> DynamicSupervisorOptions {
        DynamicSupervisorOptions {
            max_restarts: DEFAULT_MAX_RESTARTS,
            max_seconds: DEFAULT_MAX_SECONDS,
            max_children: None,
        }
    }
}

/// Why [`DynamicSupervisor::start_child`] did not add a running child.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DynamicStartError {
    /// The child's `init` returned `Ignore`; nothing was added (Elixir `:ignore`).
    #[error("child ignored its start")]
    Ignored,
    /// The child's start failed (Elixir `{:error, reason}`); nothing was added.
    #[error("child failed to start: {0}")]
    Failed(StartError),
    /// The supervisor already has `max_children` children (Elixir `{:error, :max_children}`).
    #[error("max children reached")]
    MaxChildren,
    /// The spec is invalid.
    #[error("invalid child spec: {0}")]
    InvalidSpec(SpecError),
    /// The supervisor is not running.
    #[error("no process")]
    NoProc,
}

/// Why [`DynamicSupervisor::start_temporary`] did not add a running child, with its arguments
/// if they were not used.
#[derive(thiserror::Error)]
#[error("{error}")]
pub struct StartTemporaryError<A> {
    /// Why the child was not started.
    pub error: DynamicStartError,
    /// The arguments, if the start function never ran (`MaxChildren`, `NoProc`). `None` once
    /// it ran: the child's start consumed them, even if it then failed.
    pub args: Option<A>,
}

impl<A> fmt::Debug for StartTemporaryError<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartTemporaryError")
            .field("error", &self.error)
            .field("args_returned", &self.args.is_some())
            .finish()
    }
}

struct DynChild {
    spec: ChildSpec,
    /// The pid this child is known by: its process's while it runs; while it waits for a
    /// restart, the pid that exited, as Elixir keys a restarting child, so that
    /// `terminate_child` still finds it.
    pid: Pid,
    running: Option<(ChildProcess, MonitorRef)>,
    /// Times this child was restarted after an exit.
    restarts: u32,
}

struct DynamicServer {
    children: FxHashMap<u64, DynChild>,
    /// Every child's [`DynChild::pid`].
    by_pid: FxHashMap<Pid, u64>,
    next_key: u64,
    max_children: Option<usize>,
    engine: Engine,
}

enum Request {
    Start(ChildSpec),
    Terminate(Pid),
    Which,
    Count,
}

enum Response {
    Started(Result<Pid, DynamicStartError>),
    Terminated(Result<(), TerminateChildError>),
    Children(Vec<ChildInfo>),
    Counts(ChildCounts),
}

enum Message {
    Exit(Down),
    TryAgain(u64),
}

impl DynamicServer {
    /// Makes `process` the running incarnation of child `key`, monitored and known by its pid.
    fn run(&mut self, key: u64, process: ChildProcess, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        let monitor = ctx.monitor_process(process.process.header(), Message::Exit);
        self.by_pid.remove(&child.pid);
        child.pid = process.pid();
        self.by_pid.insert(child.pid, key);
        child.running = Some((process, monitor));
    }

    /// Forgets child `key`.
    fn remove(&mut self, key: u64) -> Option<DynChild> {
        let child = self.children.remove(&key)?;
        self.by_pid.remove(&child.pid);
        Some(child)
    }

    async fn start_child(
        &mut self,
        spec: ChildSpec,
        ctx: &mut Context<Self>,
    ) -> Result<Pid, DynamicStartError> {
        spec.validate().map_err(DynamicStartError::InvalidSpec)?;
        if spec.backoff.is_some() {
            let id = spec.id.to_string();
            return Err(DynamicStartError::InvalidSpec(
                SpecError::BackoffUnsupported(id),
            ));
        }
        if self
            .max_children
            .is_some_and(|max| self.children.len() >= max)
        {
            return Err(DynamicStartError::MaxChildren);
        }
        let process = match spec.start_process().await {
            Ok(Some(process)) => process,
            Ok(None) => return Err(DynamicStartError::Ignored),
            Err(error) => return Err(DynamicStartError::Failed(error)),
        };
        let pid = process.pid();
        self.next_key += 1;
        let key = self.next_key;
        self.children.insert(
            key,
            DynChild {
                spec,
                pid,
                running: None,
                restarts: 0,
            },
        );
        self.run(key, process, ctx);
        self.engine.events().emit(SupervisorEvent::ChildStarted {
            supervisor: ctx.pid(),
            child: None,
            pid,
        });
        Ok(pid)
    }

    async fn child_exited(&mut self, down: Down, ctx: &mut Context<Self>) {
        let Some(&key) = self.by_pid.get(&down.pid) else {
            return;
        };
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        // Known by the exited pid until a restart succeeds.
        child.running = None;
        let restart = child.spec.restart;
        self.engine.events().emit(SupervisorEvent::ChildExited {
            supervisor: ctx.pid(),
            child: None,
            pid: down.pid,
            reason: down.reason.clone(),
        });
        match after_exit(restart, &down.reason) {
            AfterExit::Restart => self.restart(key, down.reason, ctx).await,
            // Without an id there is nothing to restart later: a child that stays down is
            // forgotten.
            AfterExit::Keep | AfterExit::Remove => {
                self.remove(key);
            }
        }
    }

    /// Restarts child `key`, which is down; a failed start is retried by a message to itself.
    async fn restart(&mut self, key: u64, reason: ExitReason, ctx: &mut Context<Self>) {
        if !self.engine.allow(None, reason, ctx) {
            return;
        }
        let Some(child) = self.children.get(&key) else {
            return;
        };
        let old_pid = child.pid;
        match child.spec.start_process().await {
            Ok(Some(process)) => {
                let pid = process.pid();
                self.run(key, process, ctx);
                if let Some(child) = self.children.get_mut(&key) {
                    child.restarts += 1;
                }
                self.engine.restarted(ctx.pid(), None, Some(old_pid), pid);
            }
            Ok(None) => {
                self.remove(key);
            }
            Err(error) => {
                self.engine.failed(ctx.pid(), None, &error);
                restart::retry(None, || Message::TryAgain(key), ctx);
            }
        }
    }

    async fn terminate_child(
        &mut self,
        pid: Pid,
        ctx: &mut Context<Self>,
    ) -> Result<(), TerminateChildError> {
        let key = *self.by_pid.get(&pid).ok_or(TerminateChildError::NotFound)?;
        let child = self.remove(key).ok_or(TerminateChildError::NotFound)?;
        // A child waiting for its restart has no process to stop: forgetting it cancels its
        // retries (`TryAgain` finds nothing) and frees its `max_children` slot.
        if let Some((process, monitor)) = child.running {
            ctx.demonitor(monitor);
            let reason = stop_child(&*process.process, child.spec.shutdown).await;
            self.engine.events().emit(SupervisorEvent::ChildExited {
                supervisor: ctx.pid(),
                child: None,
                pid,
                reason,
            });
        }
        Ok(())
    }
}

impl GenServer for DynamicServer {
    type Args = (DynamicSupervisorOptions, Events);
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
        Ok(Init::Ready(DynamicServer {
            children: FxHashMap::default(),
            by_pid: FxHashMap::default(),
            next_key: 0,
            max_children: options.max_children,
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
            Request::Start(spec) => Response::Started(self.start_child(spec, ctx).await),
            Request::Terminate(pid) => Response::Terminated(self.terminate_child(pid, ctx).await),
            Request::Which => Response::Children(
                self.children
                    .values()
                    .map(|child| ChildInfo {
                        id: None,
                        status: match &child.running {
                            Some((process, _)) => ChildStatus::Running(process.pid()),
                            None => ChildStatus::Restarting,
                        },
                        child_type: child.spec.child_type,
                        restarts: child.restarts,
                    })
                    .collect(),
            ),
            Request::Count => {
                let mut counts = ChildCounts::default();
                for child in self.children.values() {
                    counts.specs += 1;
                    counts.active += usize::from(child.running.is_some());
                    match child.spec.child_type {
                        ChildType::Supervisor => counts.supervisors += 1,
                        ChildType::Worker => counts.workers += 1,
                    }
                }
                Response::Counts(counts)
            }
        };
        Ok(CallResult::Reply(response))
    }

    async fn handle_info(
        &mut self,
        message: Message,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match message {
            Message::Exit(down) => self.child_exited(down, ctx).await,
            Message::TryAgain(key) => {
                // Still waiting for a restart: not terminated meanwhile.
                if self
                    .children
                    .get(&key)
                    .is_some_and(|child| child.running.is_none())
                {
                    let reason = ExitReason::shutdown_with("restart failed");
                    self.restart(key, reason, ctx).await;
                }
            }
        }
        Ok(())
    }

    async fn terminate(&mut self, _: &ExitReason, _: &mut Context<Self>) {
        // SHD-07: all at once, each by its own policy. The supervisor's own monitors go first:
        // the `Down`s they would deliver now could never be handled.
        let running = self
            .children
            .drain()
            .filter_map(|(_, child)| {
                let (process, monitor) = child.running?;
                process.process.header().remove_monitor(monitor);
                Some((process.process, child.spec.shutdown))
            })
            .collect();
        self.by_pid.clear();
        stop_concurrently(running).await;
    }
}

impl Drop for DynamicServer {
    fn drop(&mut self) {
        // Only reached with children if the supervisor was killed: they die with it, and its
        // exit waits for theirs.
        let running = self
            .children
            .values()
            .filter_map(|child| child.running.as_ref());
        termination::kill_children(running.map(|(process, _)| process.process.header()));
    }
}

/// The children of `pid`, if it is a dynamic supervisor (for [`observer::tree`](crate::observer::tree)).
pub(crate) async fn children_of(
    pid: Pid,
    timeout: Timeout,
) -> Option<Result<Vec<ChildInfo>, CallError>> {
    let server = ServerRef::<DynamicServer>::lookup(pid)?;
    Some(match server.call_timeout(Request::Which, timeout).await {
        Ok(Response::Children(children)) => Ok(children),
        Ok(_) => Err(CallError::NoProc),
        Err(error) => Err(error),
    })
}

/// A handle to a dynamic supervisor: cheap to clone, `Send + Sync`. See the [module docs](self).
#[derive(Clone)]
pub struct DynamicSupervisor {
    server: ServerRef<DynamicServer>,
    events: EventSource,
}

impl DynamicSupervisor {
    /// Starts a dynamic supervisor with no children.
    ///
    /// # Errors
    ///
    /// - If `max_seconds` is zero, returns [`SupervisorStartError::InvalidSpec`](crate::supervisor::SupervisorStartError::InvalidSpec).
    /// - If no tokio runtime is running, returns [`SupervisorStartError::Start`](crate::supervisor::SupervisorStartError::Start).
    pub async fn start(
        options: DynamicSupervisorOptions,
    ) -> Result<DynamicSupervisor, crate::supervisor::SupervisorStartError> {
        if options.max_seconds.is_zero() {
            return Err(SpecError::ZeroPeriod.into());
        }
        let events = Events::new();
        let source = events.source();
        let server = DynamicServer::start_with(
            (options, events),
            StartOptions::new().label("dynamic_supervisor"),
        )
        .await
        .map_err(crate::supervisor::SupervisorStartError::Start)?;
        Ok(DynamicSupervisor {
            server,
            events: source,
        })
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> Pid {
        self.server.pid()
    }

    /// Whether the supervisor is running.
    pub fn is_alive(&self) -> bool {
        self.server.is_alive()
    }

    /// A stream of this supervisor's events from now on (`child` is always `None`).
    pub fn subscribe(&self) -> EventStream {
        self.events.subscribe()
    }

    /// Starts a child under the supervisor and returns its pid. The spec's id is ignored.
    ///
    /// # Errors
    ///
    /// - If the child's `init` returns `Ignore`, returns [`DynamicStartError::Ignored`].
    /// - If its start fails, returns [`DynamicStartError::Failed`] with the reason.
    /// - If `max_children` children exist (counting those waiting for a restart), returns
    ///   [`DynamicStartError::MaxChildren`].
    /// - If the spec is invalid, returns [`DynamicStartError::InvalidSpec`].
    /// - If the supervisor is not running, returns [`DynamicStartError::NoProc`].
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Pid, DynamicStartError> {
        match self
            .server
            .call_timeout(Request::Start(spec), Timeout::Infinity)
            .await
        {
            Ok(Response::Started(result)) => result,
            _ => Err(DynamicStartError::NoProc),
        }
    }

    /// Starts a temporary child whose start function consumes its arguments (a socket, a
    /// channel), and returns its pid: `start(args)` is called at most once. If the start
    /// function never ran (the supervisor has `max_children` children, or is not running), the
    /// arguments come back in the error, so the caller can still close the socket or answer
    /// "busy" (in Erlang the caller keeps its copy of the arguments).
    ///
    /// The child is a worker with the default shutdown (5 s). For anything else, or for a child
    /// that is restarted (and so needs its arguments again), use
    /// [`start_child`](Self::start_child) with a [`ChildSpec`].
    ///
    /// ```
    /// use otp_core::dynamic_supervisor::{DynamicStartError, DynamicSupervisor, DynamicSupervisorOptions};
    /// # use otp_core::gen_server::{BoxError, Context, GenServer, Init};
    /// # struct Connection(#[allow(dead_code)] String);
    /// # impl GenServer for Connection {
    /// #     type Args = String; type Call = (); type Reply = (); type Cast = ();
    /// #     type Info = (); type Continue = ();
    /// #     async fn init(peer: String, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> { Ok(Init::Ready(Connection(peer))) }
    /// # }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let options = DynamicSupervisorOptions { max_children: Some(1), ..Default::default() };
    /// let connections = DynamicSupervisor::start(options).await?;
    /// connections.start_temporary("first".to_string(), Connection::start).await?;
    /// let refused = connections.start_temporary("second".to_string(), Connection::start).await;
    /// let error = refused.unwrap_err();
    /// assert_eq!(error.error, DynamicStartError::MaxChildren);
    /// assert_eq!(error.args.as_deref(), Some("second")); // not lost
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start_child`](Self::start_child), in [`StartTemporaryError::error`], with the
    /// arguments in [`StartTemporaryError::args`] if the start function did not run.
    pub async fn start_temporary<A, F, Fut, C, E>(
        &self,
        args: A,
        start: F,
    ) -> Result<Pid, StartTemporaryError<A>>
    where
        A: Send + 'static,
        F: FnOnce(A) -> Fut + Send + 'static,
        Fut: Future<Output = Result<C, E>> + Send + 'static,
        C: Into<ChildProcess>,
        E: Into<StartError>,
    {
        let unstarted = Arc::new(Mutex::new(Some((args, start))));
        let spec = {
            let unstarted = unstarted.clone();
            ChildSpec::new("temporary", move || {
                let parts = unstarted.lock().take();
                async move {
                    match parts {
                        Some((args, start)) => start(args).await.map_err(Into::into),
                        // A temporary child is started once, never restarted: there is no
                        // second call to start anything.
                        None => Err(StartError::Ignored),
                    }
                }
            })
            .restart(Restart::Temporary)
        };
        self.start_child(spec)
            .await
            .map_err(|error| StartTemporaryError {
                error,
                args: unstarted.lock().take().map(|(args, _)| args),
            })
    }

    /// Stops child `pid` by its shutdown policy and forgets it; returns once it has exited. A
    /// child waiting for a restart is found by the pid that exited; it is forgotten, and its
    /// retries end.
    ///
    /// # Errors
    ///
    /// - If `pid` is not a child (any more), returns [`TerminateChildError::NotFound`]; the
    ///   process is not touched.
    /// - If the supervisor is not running, returns [`TerminateChildError::NoProc`].
    pub async fn terminate_child(&self, pid: Pid) -> Result<(), TerminateChildError> {
        match self
            .server
            .call_timeout(Request::Terminate(pid), Timeout::Infinity)
            .await
        {
            Ok(Response::Terminated(result)) => result,
            _ => Err(TerminateChildError::NoProc),
        }
    }

    /// The children, in no particular order; ids are `None`.
    ///
    /// # Errors
    ///
    /// If the supervisor is not running, returns [`CallError::NoProc`].
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, CallError> {
        match self
            .server
            .call_timeout(Request::Which, Timeout::Infinity)
            .await?
        {
            Response::Children(children) => Ok(children),
            _ => Err(CallError::NoProc),
        }
    }

    /// Counts of children (`specs` counts those waiting for a restart too).
    ///
    /// # Errors
    ///
    /// If the supervisor is not running, returns [`CallError::NoProc`].
    pub async fn count_children(&self) -> Result<ChildCounts, CallError> {
        match self
            .server
            .call_timeout(Request::Count, Timeout::Infinity)
            .await?
        {
            Response::Counts(counts) => Ok(counts),
            _ => Err(CallError::NoProc),
        }
    }

    /// Stops every child concurrently, each by its policy, then the supervisor (reason
    /// `Shutdown`); returns when all have exited.
    ///
    /// # Errors
    ///
    /// As [`ServerRef::stop`].
    pub async fn stop(&self, timeout: impl Into<Timeout>) -> Result<(), StopError> {
        self.server.stop(ExitReason::Shutdown, timeout).await
    }

    /// Monitors the supervisor.
    pub fn monitor(&self) -> crate::monitor::Monitor {
        self.server.monitor()
    }
}

impl From<DynamicSupervisor> for ChildProcess {
    fn from(supervisor: DynamicSupervisor) -> ChildProcess {
        supervisor.server.into()
    }
}

impl fmt::Debug for DynamicSupervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicSupervisor")
            .field("pid", &self.pid())
            .finish()
    }
}
