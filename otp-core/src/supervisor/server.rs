//! The supervisor's own process: a [`GenServer`] whose state is the children, in start order.
//!
//! # Invariants
//!
//! - `children` is in start order; shutdown walks it backwards.
//! - A running child is monitored through its header; an exit is acted on only if the `Down`
//!   is for the child's *current* incarnation. The supervisor removes the monitor before it
//!   stops a child itself (Erlang's `unlink_flush`), so its own terminations are never taken
//!   for crashes and never trigger restarts.
//! - Every restart, including each retry of a failed one, first adds one stamp to the
//!   intensity window (the shared [engine](super::restart)); administrative operations never do.
//! - A failed restart leaves the child `Restarting(Retrying)`, a backoff `Restarting(Delayed)`;
//!   both are resumed by a message to itself, so the supervisor keeps serving calls in between,
//!   and a child stopped meanwhile is not restarted.

use std::sync::Arc;

use parking_lot::Mutex;

use super::child_spec::{ChildProcess, ChildSpec, ChildType};
use super::events::{Events, SupervisorEvent};
use super::restart::{self, Engine, Restarting};
use super::shutdown::stop_child;
use super::strategy::plan;
use super::{
    AfterExit, ChildCounts, ChildInfo, ChildStatus, DeleteChildError, RestartChildError,
    StartChildError, SupFlags, TerminateChildError, after_exit,
};
use crate::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init, StartError};
use crate::monitor::{Down, MonitorRef};
use crate::process::termination;
use crate::{ExitReason, Pid};

/// Where `init` reports which child failed, for `Supervisor::start`'s typed error.
pub(crate) type StartFailure = Arc<Mutex<Option<(Arc<str>, StartError)>>>;

pub(crate) struct SupervisorArgs {
    pub(crate) flags: SupFlags,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) events: Events,
    pub(crate) failure: StartFailure,
}

struct Child {
    spec: ChildSpec,
    state: State,
    /// Consecutive restarts, for the opt-in backoff.
    consecutive_restarts: u32,
    /// Every restart after an exit (its own or a sibling's, by the strategy), for
    /// `which_children`.
    total_restarts: u32,
    /// When the child last exited, for the backoff's reset.
    last_exit: Option<tokio::time::Instant>,
    /// Counts the retries scheduled for this child; a `TryAgain` carries the count it was
    /// scheduled with, so one that is no longer the latest (its child was stopped and
    /// restarted meanwhile) does nothing.
    retries_scheduled: u64,
}

impl Child {
    fn new(spec: ChildSpec) -> Child {
        Child {
            spec,
            state: State::Stopped,
            consecutive_restarts: 0,
            total_restarts: 0,
            last_exit: None,
            retries_scheduled: 0,
        }
    }

    /// Marks the child `restarting` and schedules the next attempt of its restart.
    fn schedule_retry(
        &mut self,
        restarting: Restarting,
        delay: Option<std::time::Duration>,
        ctx: &mut Context<SupervisorServer>,
    ) {
        self.state = State::Restarting(restarting);
        self.retries_scheduled += 1;
        let (id, scheduled) = (self.spec.id.clone(), self.retries_scheduled);
        restart::retry(delay, || Message::TryAgain(id.clone(), scheduled), ctx);
    }

    /// The backoff delay before this child's next restart, if it has a backoff.
    fn next_backoff(&mut self) -> Option<std::time::Duration> {
        let backoff = self.spec.backoff?;
        let now = tokio::time::Instant::now();
        if self
            .last_exit
            .is_some_and(|last| now.saturating_duration_since(last) > backoff.reset_after)
        {
            self.consecutive_restarts = 0;
        }
        self.consecutive_restarts += 1;
        self.last_exit = Some(now);
        Some(backoff.delay(self.consecutive_restarts))
    }
}

enum State {
    Running {
        process: ChildProcess,
        monitor: MonitorRef,
    },
    Restarting(Restarting),
    Stopped,
}

impl Child {
    fn pid(&self) -> Option<Pid> {
        match &self.state {
            State::Running { process, .. } => Some(process.pid()),
            _ => None,
        }
    }
}

pub(crate) struct SupervisorServer {
    flags: SupFlags,
    children: Vec<Child>,
    engine: Engine,
}

pub(crate) enum Request {
    StartChild(ChildSpec),
    TerminateChild(String),
    RestartChild(String),
    DeleteChild(String),
    WhichChildren,
    CountChildren,
}

pub(crate) enum Response {
    Started(Result<Option<Pid>, StartChildError>),
    Terminated(Result<(), TerminateChildError>),
    Restarted(Result<Option<Pid>, RestartChildError>),
    Deleted(Result<(), DeleteChildError>),
    Children(Vec<ChildInfo>),
    Counts(ChildCounts),
}

pub(crate) enum Message {
    /// A child's monitor fired.
    Exit(Down),
    /// Retry the restart of this child (and its group), if this is still its latest retry.
    TryAgain(Arc<str>, u64),
}

impl SupervisorServer {
    fn index_of(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|child| &*child.spec.id == id)
    }

    fn emit(&self, ctx: &Context<Self>, event: impl FnOnce(Pid) -> SupervisorEvent) {
        self.engine.events().emit(event(ctx.pid()));
    }

    /// Makes `process` the running incarnation of child `index`, monitored.
    fn run_child(&mut self, index: usize, process: ChildProcess, ctx: &mut Context<Self>) {
        let monitor = ctx.monitor_process(process.process.header(), Message::Exit);
        self.children[index].state = State::Running { process, monitor };
    }

    /// Stops child `index` by its shutdown policy, without it counting as a crash.
    async fn stop_child_at(&mut self, index: usize, ctx: &mut Context<Self>) {
        let state = std::mem::replace(&mut self.children[index].state, State::Stopped);
        if let State::Running { process, monitor } = state {
            ctx.demonitor(monitor);
            let reason = stop_child(&*process.process, self.children[index].spec.shutdown).await;
            let child = Some(self.children[index].spec.id.clone());
            let pid = process.pid();
            self.emit(ctx, |supervisor| SupervisorEvent::ChildExited {
                supervisor,
                child,
                pid,
                reason,
            });
        }
    }

    /// Starts the supervisor's children in order; on a failure, stops the started ones in
    /// reverse order and reports which child failed.
    async fn start_all(&mut self, ctx: &mut Context<Self>) -> Result<(), (Arc<str>, StartError)> {
        let mut index = 0;
        while index < self.children.len() {
            match self.children[index].spec.start_process().await {
                Ok(Some(process)) => {
                    self.started(index, &process, ctx);
                    self.run_child(index, process, ctx);
                }
                // INIT-02: an ignored child is kept as not running, unless it is temporary.
                Ok(None) if self.children[index].spec.restart == super::Restart::Temporary => {
                    self.children.remove(index);
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    let id = self.children[index].spec.id.clone();
                    for started in (0..index).rev() {
                        self.stop_child_at(started, ctx).await;
                    }
                    return Err((id, error));
                }
            }
            index += 1;
        }
        Ok(())
    }

    fn started(&self, index: usize, process: &ChildProcess, ctx: &Context<Self>) {
        let child = Some(self.children[index].spec.id.clone());
        let pid = process.pid();
        self.emit(ctx, |supervisor| SupervisorEvent::ChildStarted {
            supervisor,
            child,
            pid,
        });
    }

    /// A monitored child exited by itself.
    async fn child_exited(&mut self, down: Down, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let Some(index) = self.children.iter().position(|c| c.pid() == Some(down.pid)) else {
            return Ok(());
        };
        self.children[index].state = State::Stopped;
        let id = self.children[index].spec.id.clone();
        let (pid, reason) = (down.pid, down.reason.clone());
        self.emit(ctx, |supervisor| SupervisorEvent::ChildExited {
            supervisor,
            child: Some(id.clone()),
            pid,
            reason,
        });
        match after_exit(self.children[index].spec.restart, &down.reason) {
            AfterExit::Restart => match self.children[index].next_backoff() {
                // Opt-in backoff: restart (and count it) when the delay has passed.
                Some(delay) => {
                    let restarting = Restarting::Delayed {
                        old_pid: down.pid,
                        reason: down.reason,
                    };
                    self.children[index].schedule_retry(restarting, Some(delay), ctx);
                }
                None => self.restart(id, Some(down.pid), down.reason, ctx).await,
            },
            AfterExit::Keep => {}
            AfterExit::Remove => {
                self.children.remove(index);
            }
        }
        Ok(())
    }

    /// Restarts child `id` by the strategy (`supervisor.erl` `restart/2`).
    async fn restart(
        &mut self,
        id: Arc<str>,
        old_pid: Option<Pid>,
        reason: ExitReason,
        ctx: &mut Context<Self>,
    ) {
        // Over the limit, `terminate` stops the remaining children in reverse start order.
        if !self.engine.allow(Some(id.clone()), reason, ctx) {
            return;
        }
        let Some(failed) = self.index_of(&id) else {
            return;
        };
        let restart_plan = plan(self.flags.strategy(), failed, self.children.len());
        let group: Vec<Arc<str>> = restart_plan
            .start
            .iter()
            .map(|&index| self.children[index].spec.id.clone())
            .collect();
        // In reverse start order, so removing a child leaves the indexes still to come valid.
        for &index in &restart_plan.terminate {
            self.stop_child_at(index, ctx).await;
            // STR-06: a temporary sibling stopped by the group restart is dropped, not
            // restarted (`supervisor.erl` `terminate_children/2`).
            if self.children[index].spec.restart == super::Restart::Temporary {
                self.children.remove(index);
            }
        }

        let mut restarted: Vec<Arc<str>> = Vec::new();
        for child_id in group {
            let Some(index) = self.index_of(&child_id) else {
                continue;
            };
            if self.children[index].pid().is_some() {
                continue;
            }
            match self.children[index].spec.start_process().await {
                Ok(Some(process)) => {
                    let pid = process.pid();
                    let old = if child_id == id { old_pid } else { None };
                    self.run_child(index, process, ctx);
                    self.children[index].total_restarts += 1;
                    self.engine
                        .restarted(ctx.pid(), Some(child_id.clone()), old, pid);
                    restarted.push(child_id);
                }
                Ok(None) => {}
                Err(error) => {
                    self.engine
                        .failed(ctx.pid(), Some(child_id.clone()), &error);
                    // The retry restarts the failed child's group by the strategy. What it
                    // would restart again is stopped now (STR-08: one_for_all stops c1, then
                    // retries the whole group); the rest stays running (rest_for_one keeps
                    // the children before the failed one, `supervisor_SUITE`
                    // `rest_for_one_other_child_fails_restart`).
                    let retried = plan(self.flags.strategy(), index, self.children.len());
                    for done in restarted.iter().rev() {
                        let at = self.index_of(done);
                        if let Some(at) = at.filter(|at| retried.terminate.contains(at)) {
                            self.stop_child_at(at, ctx).await;
                        }
                    }
                    let delay = self.children[index].next_backoff();
                    self.children[index].schedule_retry(Restarting::Retrying, delay, ctx);
                    return;
                }
            }
        }
    }

    async fn handle_start_child(
        &mut self,
        spec: ChildSpec,
        ctx: &mut Context<Self>,
    ) -> Result<Option<Pid>, StartChildError> {
        spec.validate().map_err(StartChildError::InvalidSpec)?;
        if let Some(existing) = self.children.iter().find(|c| c.spec.id == spec.id) {
            return Err(match existing.pid() {
                Some(pid) => StartChildError::AlreadyStarted(pid),
                None => StartChildError::AlreadyPresent,
            });
        }
        match spec.start_process().await {
            Ok(Some(process)) => {
                let pid = process.pid();
                self.children.push(Child::new(spec));
                let index = self.children.len() - 1;
                self.started(index, &process, ctx);
                self.run_child(index, process, ctx);
                Ok(Some(pid))
            }
            Ok(None) => {
                if spec.restart != super::Restart::Temporary {
                    self.children.push(Child::new(spec));
                }
                Ok(None)
            }
            // INIT-03: a taken name is reported unwrapped.
            Err(StartError::AlreadyStarted(pid)) => Err(StartChildError::AlreadyStarted(pid)),
            Err(error) => Err(StartChildError::Failed(error)),
        }
    }

    async fn handle_terminate_child(
        &mut self,
        id: &str,
        ctx: &mut Context<Self>,
    ) -> Result<(), TerminateChildError> {
        let index = self.index_of(id).ok_or(TerminateChildError::NotFound)?;
        // Stopping a restarting child cancels its retries: `TryAgain` finds it stopped, or, if
        // it is restarting again by then, finds a later retry scheduled.
        self.stop_child_at(index, ctx).await;
        self.children[index].state = State::Stopped;
        if self.children[index].spec.restart == super::Restart::Temporary {
            self.children.remove(index);
        }
        Ok(())
    }

    async fn handle_restart_child(
        &mut self,
        id: &str,
        ctx: &mut Context<Self>,
    ) -> Result<Option<Pid>, RestartChildError> {
        let index = self.index_of(id).ok_or(RestartChildError::NotFound)?;
        match self.children[index].state {
            State::Running { .. } => return Err(RestartChildError::Running),
            State::Restarting(_) => return Err(RestartChildError::Restarting),
            State::Stopped => {}
        }
        match self.children[index].spec.start_process().await {
            Ok(Some(process)) => {
                let pid = process.pid();
                self.started(index, &process, ctx);
                self.run_child(index, process, ctx);
                Ok(Some(pid))
            }
            Ok(None) => Ok(None),
            Err(error) => Err(RestartChildError::Failed(error)),
        }
    }

    fn handle_delete_child(&mut self, id: &str) -> Result<(), DeleteChildError> {
        let index = self.index_of(id).ok_or(DeleteChildError::NotFound)?;
        match self.children[index].state {
            State::Running { .. } => Err(DeleteChildError::Running),
            State::Restarting(_) => Err(DeleteChildError::Restarting),
            State::Stopped => {
                self.children.remove(index);
                Ok(())
            }
        }
    }

    fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .iter()
            .map(|child| ChildInfo {
                id: Some(child.spec.id.clone()),
                status: match &child.state {
                    State::Running { process, .. } => ChildStatus::Running(process.pid()),
                    State::Restarting(_) => ChildStatus::Restarting,
                    State::Stopped => ChildStatus::Undefined,
                },
                child_type: child.spec.child_type,
                restarts: child.total_restarts,
            })
            .collect()
    }

    fn count_children(&self) -> ChildCounts {
        let mut counts = ChildCounts::default();
        for child in &self.children {
            counts.specs += 1;
            if child.pid().is_some() {
                counts.active += 1;
            }
            match child.spec.child_type {
                ChildType::Supervisor => counts.supervisors += 1,
                ChildType::Worker => counts.workers += 1,
            }
        }
        counts
    }
}

impl GenServer for SupervisorServer {
    type Args = SupervisorArgs;
    type Call = Request;
    type Reply = Response;
    type Cast = std::convert::Infallible;
    type Info = Message;
    type Continue = std::convert::Infallible;

    async fn init(args: SupervisorArgs, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        // Children started with `start_link` are linked to it; their exits come as `Down`s.
        ctx.trap_exits_ignoring_them();
        let mut server = SupervisorServer {
            flags: args.flags,
            children: args.children.into_iter().map(Child::new).collect(),
            engine: Engine::new(
                args.flags.max_restarts(),
                args.flags.max_seconds(),
                args.events,
            ),
        };
        match server.start_all(ctx).await {
            Ok(()) => Ok(Init::Ready(server)),
            Err((id, error)) => {
                let reason = ExitReason::shutdown_with(format!("failed to start child {id}"));
                *args.failure.lock() = Some((id, error));
                Ok(Init::Stop(reason))
            }
        }
    }

    async fn handle_call(
        &mut self,
        request: Request,
        _: Caller<'_, Response>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<Response>, BoxError> {
        let response = match request {
            Request::StartChild(spec) => {
                Response::Started(self.handle_start_child(spec, ctx).await)
            }
            Request::TerminateChild(id) => {
                Response::Terminated(self.handle_terminate_child(&id, ctx).await)
            }
            Request::RestartChild(id) => {
                Response::Restarted(self.handle_restart_child(&id, ctx).await)
            }
            Request::DeleteChild(id) => Response::Deleted(self.handle_delete_child(&id)),
            Request::WhichChildren => Response::Children(self.which_children()),
            Request::CountChildren => Response::Counts(self.count_children()),
        };
        Ok(CallResult::Reply(response))
    }

    async fn handle_info(
        &mut self,
        message: Message,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match message {
            Message::Exit(down) => self.child_exited(down, ctx).await?,
            Message::TryAgain(id, scheduled) => {
                // Still restarting, and not stopped, deleted or restarted again meanwhile.
                let waiting = self.index_of(&id).and_then(|index| {
                    let child = &self.children[index];
                    match &child.state {
                        State::Restarting(restarting) if child.retries_scheduled == scheduled => {
                            Some(restarting.exit())
                        }
                        _ => None,
                    }
                });
                if let Some((old_pid, reason)) = waiting {
                    self.restart(id, old_pid, reason, ctx).await;
                }
            }
        }
        Ok(())
    }

    async fn terminate(&mut self, _: &ExitReason, ctx: &mut Context<Self>) {
        // SHD-01: reverse start order, one child at a time, each fully exited before the next.
        for index in (0..self.children.len()).rev() {
            self.stop_child_at(index, ctx).await;
        }
    }
}

impl Drop for SupervisorServer {
    fn drop(&mut self) {
        // Children left here mean the supervisor was killed: they die with it (as linked
        // children do in Erlang), so no process outlives its supervision tree, and its exit
        // waits for theirs.
        termination::kill_children(self.children.iter().filter_map(|child| match &child.state {
            State::Running { process, .. } => Some(process.process.header()),
            _ => None,
        }));
    }
}
