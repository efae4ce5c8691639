//! One `GenServer` per execution: its lifecycle, its steps, its timeouts, and cancel.
//!
//! The seed's rules hold: `execute` acts only in `pending`, `cancel` only in `running`, and
//! other requests are ignored and logged; the execution timeout is armed at `execute`, not at
//! start (seed D6); a step result that arrives after a cancel or a timeout only records how the
//! step ended (seed D7). Each step attempt runs as a supervised task that reports back by
//! message (the seed's `spawn_link`, done right: seed D4, D5), so the worker always answers.
//!
//! Steps start as their `needs` complete, at most the spec's `max_parallel` at once, in the
//! order they became ready; a failure stops new steps from starting and is handled as the
//! spec's `on_failure` says (see [`pipeline`](crate::pipeline#order-and-parallelism-needs)).
//!
//! Timeouts, retry backoff and the terminate → kill escalation are timer messages; nothing
//! sleeps. The worker never signals a process: it asks the step's executor to stop
//! ([`StopRequest`]), and a worker killed or stopped with a step running takes the step's task
//! with it, whose processes go too (see [`step_runner`](crate::step_runner#containment)). A
//! final status is published once every step's processes are gone, so whoever waits for the
//! end finds them gone.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
use otp_core::name::Name;
use otp_core::task_supervisor::TaskSupervisor;
use otp_core::timer::TimerRef;
use otp_core::{ExitReason, Pid};

use crate::execution::{
    Artifact, AttemptRecord, ExecutionId, ExecutionStatus, Status, StepExit, StepProgress,
    StepState, millis,
};
use crate::execution_store::ExecutionRecord;
use crate::pipeline::{MAX_DURATION, OnFailure, PipelineSpec};
use crate::status_board::StatusBoard;
use crate::step_runner::{self, StepExecutor, StepOutcome, StepRun, StopRequest, StopRequests};
use crate::store_writer::StoreClient;

/// The registry that finds a worker by its execution's id.
pub(crate) type WorkerRegistry =
    otp_core::registry::Registry<ExecutionId, otp_core::ServerRef<PipelineWorker>>;

/// What every worker of a manager runs with, from its configuration.
pub(crate) struct WorkerSettings {
    /// Where executions' directories are.
    pub(crate) output_dir: PathBuf,
    pub(crate) kill_grace: Duration,
    pub(crate) executor: Arc<dyn StepExecutor>,
    pub(crate) max_live_executions: Option<usize>,
}

/// The processes and the table a worker works with: the same for every worker of a tree.
#[derive(Clone)]
pub(crate) struct WorkerEnv {
    pub(crate) settings: Arc<WorkerSettings>,
    pub(crate) board: Arc<StatusBoard>,
    pub(crate) store: StoreClient,
    /// The step task supervisor, by name: a restarted one is found.
    pub(crate) tasks: Name<TaskSupervisor>,
}

pub(crate) struct WorkerArgs {
    pub(crate) id: ExecutionId,
    pub(crate) spec: Arc<PipelineSpec>,
    pub(crate) env: WorkerEnv,
    /// 1 for the first start; more after a crash and restart.
    pub(crate) incarnation: u32,
    /// Execute right after `init` (`run_pipeline`), instead of waiting for `execute`: only
    /// the first incarnation does; a restarted worker comes back pending (seed test 3).
    pub(crate) execute_on_start: bool,
    /// When the execution was started (first started, for a resumed one).
    pub(crate) created_at: SystemTime,
    /// What a resumed execution keeps from its earlier runs.
    pub(crate) resumed: Option<Arc<Resumed>>,
}

/// What a resumed execution starts from: its last run's status, whose completed steps are
/// kept (those the spec still has, by name), and its earlier runs, for the history.
pub(crate) struct Resumed {
    pub(crate) last_run: Arc<ExecutionStatus>,
    pub(crate) earlier_runs: Vec<Arc<ExecutionStatus>>,
}

/// What the worker does right after its `init`.
pub(crate) enum WorkerContinue {
    Execute,
}

pub(crate) enum WorkerCall {
    Status,
}

/// Requests that need no answer, as in the seed (`GenServer.cast`).
pub(crate) enum WorkerCast {
    Execute,
    Cancel,
}

pub(crate) enum WorkerReply {
    Status(Box<ExecutionStatus>),
}

/// Timer messages and step results. Each about an attempt names it: one that is no longer
/// running (or waiting to retry) is stale, and ignored.
pub(crate) enum WorkerInfo {
    /// The attempt ended (or its task crashed). Boxed: every message in a worker's mailbox,
    /// and every slot of its two mailbox buffers, is as large as the largest variant.
    StepDone {
        attempt: u64,
        outcome: Box<Result<StepOutcome, ExitReason>>,
    },
    ExecutionTimeout,
    StepTimeout {
        attempt: u64,
    },
    /// The grace period after the terminate request is over.
    Escalate {
        attempt: u64,
    },
    /// The grace period after the kill request is over, and the attempt still runs.
    Abandon {
        attempt: u64,
    },
    /// The backoff after failed attempt `attempt` is over.
    Retry {
        attempt: u64,
    },
}

/// A step in progress: an attempt running, or waiting to retry after one failed.
struct RunningStep {
    index: usize,
    attempt: u64,
    /// The attempt's task, until its result arrives; `None` while waiting to retry.
    task: Option<Pid>,
    /// Asks the attempt to stop.
    stop: Option<tokio::sync::watch::Sender<Option<StopRequest>>>,
    /// The attempt's own timeout.
    timer: Option<TimerRef>,
    timed_out: bool,
}

pub(crate) struct PipelineWorker {
    id: ExecutionId,
    spec: Arc<PipelineSpec>,
    /// The spec's name, shared with every status published.
    pipeline: Arc<str>,
    env: WorkerEnv,
    status: Status,
    started_at: Option<SystemTime>,
    started: Option<Instant>,
    completed_at: Option<SystemTime>,
    finished: Option<Instant>,
    result: Option<String>,
    error: Option<String>,
    ended_by_signal: Option<i32>,
    /// Shared with every published status (see `ExecutionStatus::steps`).
    steps: imbl::Vector<Arc<StepProgress>>,
    /// How many steps completed, kept as they complete rather than counted per snapshot.
    steps_completed: usize,
    /// For each step, how many of its needs have not completed (set at `execute`).
    unmet: Vec<usize>,
    /// Steps whose needs have all completed and that have not started, in the order they
    /// became ready.
    ready: VecDeque<usize>,
    /// The steps in progress, in the order they started: at most `max_parallel`.
    running: Vec<RunningStep>,
    /// How many attempts this execution has started: the last one's number.
    attempts: u64,
    /// Why the execution fails, once a step has failed for good under `on_failure = "finish"`:
    /// no step starts after that, and the execution fails once those running have ended.
    failure: Option<String>,
    execution_timer: Option<TimerRef>,
    artifacts: Vec<Artifact>,
    workdir: Arc<Path>,
    restarted: bool,
    created_at: SystemTime,
    /// The final statuses of the execution's earlier runs (it was resumed), oldest first.
    previous_runs: Arc<[Arc<ExecutionStatus>]>,
}

impl PipelineWorker {
    fn snapshot(&self) -> ExecutionStatus {
        let duration = match (self.started, self.finished) {
            (Some(started), Some(finished)) => Some(millis(finished - started)),
            (Some(started), None) => Some(millis(started.elapsed())),
            _ => None,
        };
        ExecutionStatus {
            execution_id: self.id.clone(),
            pipeline: self.pipeline.clone(),
            status: self.status,
            started_at: self.started_at,
            completed_at: self.completed_at,
            duration_ms: duration,
            result: self.result.clone(),
            error: self.error.clone(),
            ended_by_signal: self.ended_by_signal,
            running_steps: self
                .running
                .iter()
                .map(|step| self.steps[step.index].name.clone())
                .collect(),
            steps_completed: self.steps_completed,
            steps_total: self.steps.len(),
            steps: self.steps.clone(),
            artifacts: self.artifacts.clone(),
            workdir: self.workdir.clone(),
            restarted: self.restarted,
        }
    }

    /// Step `index`'s progress, to change: copied first if a published status shares it.
    fn step_mut(&mut self, index: usize) -> &mut StepProgress {
        Arc::make_mut(&mut self.steps[index])
    }

    /// The position in `running` of attempt `attempt`, if it is still in progress.
    fn running_at(&self, attempt: u64) -> Option<usize> {
        self.running.iter().position(|step| step.attempt == attempt)
    }

    /// Publishes the status, unless the execution has ended while attempts are still
    /// stopping: then the last of their late results publishes it, once their processes are
    /// gone, with the signal that ended them.
    fn publish(&self) {
        self.publish_committing(true);
    }

    /// [`publish`](Self::publish) after steps have only started: the store may take it with
    /// its next batch, since a start that is lost costs nothing (a resume starts the step
    /// again). Every other change (a step ended, the execution did) is committed at once: a
    /// completed step lost to a crash of the manager would run again on resume.
    fn publish_started(&self) {
        self.publish_committing(self.status.is_final());
    }

    fn publish_committing(&self, commit_now: bool) {
        let stopping = self.running.iter().any(|step| step.task.is_some());
        if !(self.status.is_final() && stopping) {
            self.publish_now(commit_now);
        }
    }

    /// Publishes the status to the board and records it in the store, committed at once with
    /// `commit_now` (the first status, which `start_execution` waits for).
    fn publish_now(&self, commit_now: bool) {
        let status = Arc::new(self.snapshot());
        self.env.board.publish(status.clone());
        self.env.store.record(
            ExecutionRecord {
                status,
                spec: self.spec.clone(),
                created_at: self.created_at,
                previous_runs: self.previous_runs.clone(),
            },
            commit_now,
        );
    }

    /// Ends the execution in a final state. Steps waiting to retry stop there, and steps that
    /// never started are skipped; attempts still running are the caller's to stop.
    fn finish(&mut self, status: Status, error: Option<String>, ctx: &mut Context<Self>) {
        self.status = status;
        self.error = error;
        self.completed_at = Some(SystemTime::now());
        self.finished = Some(Instant::now());
        if let Some(timer) = self.execution_timer.take() {
            ctx.cancel_timer(timer);
        }
        let mut position = 0;
        while position < self.running.len() {
            if self.running[position].task.is_none() {
                let waiting = self.running.remove(position);
                self.step_mut(waiting.index).state = StepState::Failed;
            } else {
                position += 1;
            }
        }
        self.ready.clear();
        for index in 0..self.steps.len() {
            if self.steps[index].state == StepState::Pending {
                self.step_mut(index).state = StepState::Skipped;
            }
        }
    }

    /// Ends the execution and stops every attempt still running.
    fn finish_and_stop(
        &mut self,
        status: Status,
        error: String,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        self.finish(status, Some(error), ctx);
        for position in 0..self.running.len() {
            self.stop_attempt(position, ctx)?;
        }
        Ok(())
    }

    /// Asks the attempt at `position` in `running` to terminate now, and to die after the
    /// grace period.
    fn stop_attempt(&mut self, position: usize, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let step = &mut self.running[position];
        if let Some(timer) = step.timer.take() {
            ctx.cancel_timer(timer);
        }
        if step.task.is_some() {
            ask(step, StopRequest::Terminate);
            let attempt = step.attempt;
            ctx.send_after(
                self.env.settings.kill_grace,
                WorkerInfo::Escalate { attempt },
            )?;
        }
        Ok(())
    }

    /// After the grace period: ask the attempt still running to die. A killed step ends its
    /// task by itself, with the signal as the step's outcome, so its task is ended only if it
    /// is still there a grace period later (an executor that ignores stop requests).
    fn escalate(&mut self, attempt: u64, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if let Some(step) = self
            .running_at(attempt)
            .map(|position| &self.running[position])
            .filter(|step| step.task.is_some())
        {
            ask(step, StopRequest::Kill);
            ctx.send_after(
                self.env.settings.kill_grace,
                WorkerInfo::Abandon { attempt },
            )?;
        }
        Ok(())
    }

    async fn abandon(&mut self, attempt: u64) {
        let task = self
            .running_at(attempt)
            .and_then(|position| self.running[position].task);
        if let (Some(task), Ok(tasks)) = (task, self.env.tasks.get()) {
            let _ = tasks.terminate_child(task).await;
        }
    }

    /// Starts the ready steps, in order, while fewer than `max_parallel` are in progress and
    /// no step has failed.
    async fn start_ready(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        while self.status == Status::Running
            && self.failure.is_none()
            && self.running.len() < self.spec.max_parallel()
        {
            let Some(index) = self.ready.pop_front() else {
                break;
            };
            self.start_attempt(index, ctx).await?;
        }
        Ok(())
    }

    /// Starts an attempt of step `index`; if it cannot start, the execution has crashed.
    async fn start_attempt(
        &mut self,
        index: usize,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        self.attempts += 1;
        let attempt = self.attempts;
        let (stop, stop_requests) = StopRequests::channel();
        self.step_mut(index).state = StepState::Running;
        self.step_mut(index).attempts += 1;
        let spec = self.spec.clone();
        let step = &spec.steps()[index];
        let me = ctx.server_ref();
        let run = StepRun {
            workdir: self.workdir.clone(),
            kill_grace: self.env.settings.kill_grace,
            log_stem: step_runner::log_stem(&self.workdir, index, &step.name),
            stop: stop_requests,
        };
        let work = self.env.settings.executor.run(step, run);
        // The task is not linked to the worker: it watches the worker, and if the worker dies
        // (crash, kill, shutdown) it drops the step, whose processes go with it.
        let worker_exit = otp_core::monitor::monitor(ctx.pid());
        let watched = async move {
            tokio::select! {
                biased;
                outcome = work => Some(outcome),
                _ = worker_exit => None,
            }
        };
        let started = match self.env.tasks.get() {
            Ok(tasks) => tasks
                .async_nolink_to(&me, watched, move |outcome| WorkerInfo::StepDone {
                    attempt,
                    outcome: Box::new(
                        outcome.and_then(|outcome| outcome.ok_or(ExitReason::Shutdown)),
                    ),
                })
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let task = match started {
            Ok(task) => task,
            Err(error) => {
                // Not a reason to crash (and come back pending): the execution cannot go on.
                self.step_mut(index).state = StepState::Failed;
                let error = format!("cannot start step {:?}: {error}", step.name);
                return self.finish_and_stop(Status::Crashed, error, ctx);
            }
        };
        let timer = match step.timeout {
            Some(limit) => Some(ctx.send_after(limit, WorkerInfo::StepTimeout { attempt })?),
            None => None,
        };
        self.running.push(RunningStep {
            index,
            attempt,
            task: Some(task),
            stop: Some(stop),
            timer,
            timed_out: false,
        });
        Ok(())
    }

    async fn step_done(
        &mut self,
        attempt: u64,
        outcome: Result<StepOutcome, ExitReason>,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let Some(position) = self.running_at(attempt) else {
            return Ok(());
        };
        let done = self.running.remove(position);
        if let Some(timer) = done.timer {
            ctx.cancel_timer(timer);
        }
        let index = done.index;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(reason) => {
                self.step_mut(index).state = StepState::Failed;
                if self.status == Status::Running {
                    let error = format!("step runner crashed: {reason}");
                    self.finish_and_stop(Status::Crashed, error, ctx)?;
                }
                self.publish();
                return Ok(());
            }
        };
        let running = self.status == Status::Running;
        let progress = self.step_mut(index);
        progress.exit = Some(outcome.exit.clone());
        progress.duration_ms = Some(millis(outcome.duration));
        progress.past_attempts.push(AttemptRecord {
            exit: outcome.exit.clone(),
            duration_ms: millis(outcome.duration),
        });
        progress.output_tail = outcome.output_tail;
        if !running {
            // A late result after cancel, timeout or a failure: record how the step ended.
            progress.state = StepState::Failed;
            if let StepExit::Signal(signal) = outcome.exit {
                self.ended_by_signal = Some(signal);
            }
            self.publish();
            return Ok(());
        }
        if outcome.exit.is_success() {
            progress.state = StepState::Completed;
            self.steps_completed += 1;
            self.needs_met(index);
            if self.steps_completed == self.steps.len() {
                self.complete(ctx);
            } else {
                self.start_ready(ctx).await?;
                self.fail_if_failing(ctx);
            }
            self.publish();
            return Ok(());
        }
        let attempts = progress.attempts;
        let spec = self.spec.clone();
        let step = &spec.steps()[index];
        let why = if done.timed_out {
            format!(
                "timed out after {}",
                humantime::format_duration(step.timeout.unwrap_or_default())
            )
        } else {
            outcome.exit.to_string()
        };
        if attempts <= step.retries {
            // Backoff doubles per retry: backoff, 2×backoff, 4×backoff, …, at most
            // `MAX_DURATION`, so that many retries of a long backoff still make a timer.
            let factor = 1u32.checked_shl(attempts - 1).unwrap_or(u32::MAX);
            let delay = step.retry_backoff.saturating_mul(factor).min(MAX_DURATION);
            tracing::info!(execution = %self.id, step = %step.name, attempt = attempts, %why, retry_in = ?delay, "step failed, retrying");
            ctx.send_after(delay, WorkerInfo::Retry { attempt })?;
            self.running.insert(
                position,
                RunningStep {
                    index,
                    attempt,
                    task: None,
                    stop: None,
                    timer: None,
                    timed_out: false,
                },
            );
        } else {
            self.step_mut(index).state = StepState::Failed;
            let error = format!("step {:?} failed: {why}", step.name);
            match self.spec.on_failure() {
                OnFailure::Cancel => self.finish_and_stop(Status::Failed, error, ctx)?,
                OnFailure::Finish => {
                    self.failure.get_or_insert(error);
                    self.fail_if_failing(ctx);
                }
            }
        }
        self.publish();
        Ok(())
    }

    /// Step `index` completed: the steps that need it are one need closer to ready.
    fn needs_met(&mut self, index: usize) {
        for &dependent in self.spec.dependents(index) {
            self.unmet[dependent] -= 1;
            if self.unmet[dependent] == 0 && self.steps[dependent].state == StepState::Pending {
                self.ready.push_back(dependent);
            }
        }
    }

    /// Under `on_failure = "finish"`, fails the execution once a step has failed and the
    /// steps that were running then have ended.
    fn fail_if_failing(&mut self, ctx: &mut Context<Self>) {
        if self.status == Status::Running
            && self.running.is_empty()
            && let Some(error) = self.failure.take()
        {
            self.finish(Status::Failed, Some(error), ctx);
        }
    }

    fn complete(&mut self, ctx: &mut Context<Self>) {
        self.artifacts = self
            .spec
            .steps()
            .iter()
            .flat_map(|step| step.artifacts.iter())
            .map(|path| Artifact {
                path: self.workdir.join(path),
                bytes: artifact_size(&self.workdir, path),
            })
            .collect();
        let ran = self
            .started
            .map_or(Duration::ZERO, |started| started.elapsed());
        let steps = self.steps.len();
        self.result = Some(format!(
            "{steps} {} completed in {}",
            if steps == 1 { "step" } else { "steps" },
            humantime::format_duration(Duration::from_millis(millis(ran)))
        ));
        self.finish(Status::Completed, None, ctx);
    }

    async fn execute(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if self.status != Status::Pending {
            tracing::warn!(execution = %self.id, status = %self.status, "execute ignored: not pending");
            return Ok(());
        }
        self.status = Status::Running;
        self.started_at = Some(SystemTime::now());
        self.started = Some(Instant::now());
        // Seed D6: the execution's timeout counts from execute.
        self.execution_timer =
            Some(ctx.send_after(self.spec.timeout(), WorkerInfo::ExecutionTimeout)?);
        let spec = self.spec.clone();
        let completed = |step: &usize| self.steps[*step].state == StepState::Completed;
        self.unmet = (0..self.steps.len())
            .map(|index| spec.needs(index).iter().filter(|n| !completed(n)).count())
            .collect();
        self.ready = (0..self.steps.len())
            .filter(|&index| {
                self.unmet[index] == 0 && self.steps[index].state == StepState::Pending
            })
            .collect();
        if self.steps_completed == self.steps.len() {
            // Resumed with nothing left to run.
            self.complete(ctx);
        } else {
            self.start_ready(ctx).await?;
        }
        self.publish_started();
        Ok(())
    }
}

/// Asks a running attempt to stop.
fn ask(step: &RunningStep, request: StopRequest) {
    if let Some(stop) = &step.stop {
        // No receiver: the attempt has ended, and its result is on the way.
        let _ = stop.send(Some(request));
    }
}

/// `dir/id`, built at its final size: `Path::join` would grow its buffer once more, and this
/// runs in every execution's start.
fn workdir_of(dir: &Path, id: &ExecutionId) -> Arc<Path> {
    let mut path = std::path::PathBuf::with_capacity(dir.as_os_str().len() + 1 + id.as_str().len());
    path.push(dir);
    path.push(id.as_str());
    Arc::from(path)
}

// The paths that start a step are boxed where a handler awaits them: a server's task is as
// large as its largest callback future, for as long as the server lives, and a step's start
// holds the step's whole task while it is handed to the task supervisor.
impl GenServer for PipelineWorker {
    type Args = WorkerArgs;
    type Call = WorkerCall;
    type Reply = WorkerReply;
    type Cast = WorkerCast;
    type Info = WorkerInfo;
    type Continue = WorkerContinue;

    async fn init(args: WorkerArgs, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        // Admission to the live-execution limit. Workers start one at a time, inside the
        // worker supervisor's process, and this worker counts as live from its first publish
        // below, also inside that start: so checking here is one decision per start, in
        // order, and the limit is exact however many clients start executions at once. A
        // restarted worker was admitted already.
        let limit = args.env.settings.max_live_executions;
        if args.incarnation == 1 && limit.is_some_and(|limit| args.env.board.live_count() >= limit)
        {
            return Ok(Init::Ignore);
        }
        if args.execute_on_start && args.incarnation == 1 {
            ctx.continue_with(WorkerContinue::Execute);
        }
        let workdir = workdir_of(&args.env.settings.output_dir, &args.id);
        let restarted = (args.incarnation > 1).then(|| restarted_because(&args));
        let steps: imbl::Vector<_> = args
            .spec
            .steps()
            .iter()
            .map(|step| {
                args.resumed
                    .as_deref()
                    .and_then(|resumed| completed_step(&resumed.last_run, &step.name))
                    .unwrap_or_else(|| {
                        Arc::new(StepProgress {
                            name: step.name.as_str().into(),
                            state: StepState::Pending,
                            attempts: 0,
                            exit: None,
                            duration_ms: None,
                            output_tail: Vec::new(),
                            past_attempts: Vec::new(),
                        })
                    })
            })
            .collect();
        let previous_runs = match args.resumed.as_deref() {
            Some(resumed) => {
                let mut runs = resumed.earlier_runs.clone();
                runs.push(resumed.last_run.clone());
                runs.into()
            }
            None => Arc::from([]),
        };
        let worker = PipelineWorker {
            steps_completed: steps
                .iter()
                .filter(|step| step.state == StepState::Completed)
                .count(),
            steps,
            created_at: args.created_at,
            previous_runs,
            unmet: Vec::new(),
            ready: VecDeque::new(),
            running: Vec::new(),
            attempts: 0,
            failure: None,
            id: args.id,
            pipeline: args.spec.name().into(),
            spec: args.spec,
            env: args.env,
            status: Status::Pending,
            started_at: None,
            started: None,
            completed_at: None,
            finished: None,
            result: None,
            error: restarted,
            ended_by_signal: None,
            execution_timer: None,
            artifacts: Vec::new(),
            workdir,
            // Seed test 3: a crashed worker comes back pending under the same id.
            restarted: args.incarnation > 1,
        };
        worker.publish_now(true);
        Ok(Init::Ready(worker))
    }

    async fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        // A crash (a panic or an error in a handler): say so on the board, with the reason,
        // before the supervisor restarts this worker; the restarted one reports it. Published
        // as it is: the steps' tasks end with this worker.
        if !reason.is_clean() {
            self.error = Some(format!("its worker crashed ({reason}) and was restarted"));
            self.publish_now(true);
        }
    }

    async fn handle_continue(
        &mut self,
        next: WorkerContinue,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match next {
            WorkerContinue::Execute => Box::pin(self.execute(ctx)).await,
        }
    }

    async fn handle_call(
        &mut self,
        request: WorkerCall,
        _: Caller<'_, WorkerReply>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<WorkerReply>, BoxError> {
        match request {
            WorkerCall::Status => Ok(CallResult::Reply(WorkerReply::Status(Box::new(
                self.snapshot(),
            )))),
        }
    }

    async fn handle_cast(
        &mut self,
        request: WorkerCast,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match request {
            WorkerCast::Execute => Box::pin(self.execute(ctx)).await?,
            WorkerCast::Cancel => {
                if self.status == Status::Running {
                    tracing::info!(execution = %self.id, "cancelling");
                    let error = "execution cancelled".to_string();
                    self.finish_and_stop(Status::Cancelled, error, ctx)?;
                    self.publish();
                } else {
                    tracing::info!(execution = %self.id, status = %self.status, "cancel ignored: not running");
                }
            }
        }
        Ok(())
    }

    async fn handle_info(
        &mut self,
        info: WorkerInfo,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match info {
            WorkerInfo::StepDone { attempt, outcome } => {
                Box::pin(self.step_done(attempt, *outcome, ctx)).await?
            }
            WorkerInfo::ExecutionTimeout => {
                if self.status == Status::Running {
                    let error = format!(
                        "execution timed out after {}",
                        humantime::format_duration(self.spec.timeout())
                    );
                    self.finish_and_stop(Status::TimedOut, error, ctx)?;
                    self.publish();
                }
            }
            WorkerInfo::StepTimeout { attempt } => {
                if let (Status::Running, Some(position)) = (self.status, self.running_at(attempt)) {
                    self.running[position].timed_out = true;
                    self.stop_attempt(position, ctx)?;
                }
            }
            WorkerInfo::Escalate { attempt } => self.escalate(attempt, ctx)?,
            WorkerInfo::Abandon { attempt } => Box::pin(self.abandon(attempt)).await,
            WorkerInfo::Retry { attempt } => {
                if let (Status::Running, Some(position)) = (self.status, self.running_at(attempt)) {
                    let waiting = self.running.remove(position);
                    Box::pin(self.start_attempt(waiting.index, ctx)).await?;
                    self.publish_started();
                }
            }
        }
        Ok(())
    }
}

/// The size of artifact `path` (validated to be relative, without `..`) in `workdir`; `None`
/// if it is missing, or if a symlink on the way leads out of `workdir`: an artifact is never
/// read from outside its execution's directory.
fn artifact_size(workdir: &Path, path: &Path) -> Option<u64> {
    let inside = std::fs::canonicalize(workdir).ok()?;
    let resolved = std::fs::canonicalize(workdir.join(path)).ok()?;
    if !resolved.starts_with(&inside) {
        return None;
    }
    std::fs::metadata(resolved).ok().map(|meta| meta.len())
}

/// Step `name` of a resumed execution's last run, if it completed: it is kept, not run again.
fn completed_step(last_run: &ExecutionStatus, name: &str) -> Option<Arc<StepProgress>> {
    last_run
        .steps
        .iter()
        .find(|step| &*step.name == name && step.state == StepState::Completed)
        .cloned()
}

/// Why a restarted worker is pending again, for its status's `error`: the crash its previous
/// incarnation reported, or, if it was killed before it could, that it stopped unexpectedly.
fn restarted_because(args: &WorkerArgs) -> String {
    args.env
        .board
        .get(&args.id)
        .and_then(|previous| previous.error.clone())
        .filter(|error| error.starts_with("its worker crashed"))
        .unwrap_or_else(|| "its worker stopped unexpectedly and was restarted".to_string())
}
