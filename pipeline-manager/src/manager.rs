//! [`PipelineManager`]: the public API. Each method is a call or a cast to a process of the
//! tree ([`crate::application`] builds it; the crate docs draw it), or a read of
//! the status board; none holds state of its own.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use otp_core::dynamic_supervisor::DynamicStartError;
use otp_core::gen_server::{CallError, GenServer, StartOptions, Timeout};
use otp_core::name::Name;
use otp_core::supervisor::{ChildSpec, Supervisor};
use tokio::sync::broadcast;

use crate::application::{self, Tree};
use crate::error::PipelineError;
use crate::execution::{ExecutionId, ExecutionStatus, Status};
use crate::execution_cleaner::CleanerConfig;
use crate::execution_store::{ExecutionSummary, ListFilter, StoreConfig, StoredExecution};
use crate::pipeline::PipelineSpec;
use crate::pipeline_worker::{
    PipelineWorker, Resumed, WorkerArgs, WorkerCall, WorkerCast, WorkerReply,
};
use crate::status_board::StatusBoard;
use crate::step_runner::{ShellExecutor, StepExecutor};
use crate::store_writer::StoreClient;

/// How a manager runs.
#[derive(Clone)]
pub struct ManagerConfig {
    /// Where executions' directories are made (`<output_dir>/<execution id>/`). Default `runs`.
    pub output_dir: PathBuf,
    /// At most this many live (pending or running) executions; `None` for no limit. Finished
    /// executions do not count (seed defect D13). Exact however many clients start executions
    /// at once: each start is admitted or refused in turn, inside the worker supervisor.
    pub max_live_executions: Option<usize>,
    /// Time between SIGTERM and SIGKILL when a step is cancelled or times out. Default 2 s.
    pub kill_grace: Duration,
    /// The cleaner's policy (seed: executions finished more than 1 h ago, checked every 60 s).
    pub cleaner: CleanerConfig,
    /// What runs the steps. Default [`ShellExecutor`].
    pub executor: Arc<dyn StepExecutor>,
    /// Where the history is kept. Default [`StoreConfig::Sqlite`]: `<output_dir>/executions.db`.
    pub store: StoreConfig,
}

impl ManagerConfig {
    /// The durations the manager turns into timers: each must be one a timer can represent.
    fn check(&self) -> Result<(), PipelineError> {
        let limit = crate::pipeline::MAX_DURATION;
        for (field, duration) in [
            ("kill_grace", self.kill_grace),
            ("cleaner.check_every", self.cleaner.check_every),
        ] {
            if duration.is_zero() || duration > limit {
                return Err(PipelineError::InvalidConfig(format!(
                    "{field} must be greater than zero and at most 365 days, not {duration:?}"
                )));
            }
        }
        Ok(())
    }
}

impl Default for ManagerConfig {
    fn default() -> ManagerConfig {
        ManagerConfig {
            output_dir: PathBuf::from("runs"),
            max_live_executions: None,
            kill_grace: Duration::from_secs(2),
            cleaner: CleanerConfig::default(),
            executor: Arc::new(ShellExecutor::new()),
            store: StoreConfig::default(),
        }
    }
}

impl std::fmt::Debug for ManagerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerConfig")
            .field("output_dir", &self.output_dir)
            .field("max_live_executions", &self.max_live_executions)
            .field("kill_grace", &self.kill_grace)
            .field("cleaner", &self.cleaner)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// The live incarnation behind a name; `Unavailable`, naming it, while there is none
/// (restarting, or the manager has stopped).
fn current<T>(name: &Name<T>) -> Result<T, PipelineError>
where
    T: Clone + Into<otp_core::supervisor::ChildProcess> + Send + Sync + 'static,
{
    name.get()
        .map_err(|_| PipelineError::Unavailable(name.label().into()))
}

/// The pipeline manager: start, execute, watch and cancel pipeline executions.
///
/// Every method returns a typed `Result`; an unknown id is [`PipelineError::NotFound`], never a
/// panic, a hang, or the caller exiting (seed defects D8, D9).
#[derive(Clone)]
pub struct PipelineManager {
    tree: Arc<Tree>,
}

impl std::fmt::Debug for PipelineManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineManager")
            .field("root", &self.tree.root)
            .finish()
    }
}

impl PipelineManager {
    /// Starts the manager's supervision tree.
    ///
    /// # Errors
    ///
    /// - If `kill_grace` or the cleaner's `check_every` is zero or longer than
    ///   [`MAX_DURATION`](crate::pipeline::MAX_DURATION), returns
    ///   [`PipelineError::InvalidConfig`] naming the field.
    /// - If the tree cannot start (no tokio runtime), returns [`PipelineError::Unavailable`].
    pub async fn start(config: ManagerConfig) -> Result<PipelineManager, PipelineError> {
        config.check()?;
        let tree = application::start(config).await?;
        Ok(PipelineManager {
            tree: Arc::new(tree),
        })
    }

    /// Stops the whole tree in reverse order: the cleaner, the step tasks (their processes are
    /// killed), the workers (each takes its running step's processes with it), the registry.
    ///
    /// # Errors
    ///
    /// If the manager was already stopped, returns [`PipelineError::Unavailable`].
    pub async fn shutdown(&self) -> Result<(), PipelineError> {
        let stopped = self
            .tree
            .root
            .stop(Timeout::Infinity)
            .await
            .map_err(|error| PipelineError::Unavailable(error.to_string()));
        // The children's names were released as they exited, so everything after this answers
        // "not running"; subscribers see the end.
        self.board().close();
        stopped
    }

    /// The root supervisor, to watch its events or monitor it.
    pub fn root(&self) -> &Supervisor {
        &self.tree.root
    }

    fn board(&self) -> &StatusBoard {
        &self.tree.worker_env.board
    }

    fn store(&self) -> &StoreClient {
        &self.tree.worker_env.store
    }

    /// Starts an execution of `spec` in `pending` and returns its id (seed `start_execution`).
    ///
    /// # Errors
    ///
    /// - If `max_live_executions` executions are live, returns
    ///   [`PipelineError::TooManyExecutions`].
    /// - If the manager is not running, returns [`PipelineError::Unavailable`].
    ///
    /// A spec is never changed by running it: pass an `Arc<PipelineSpec>` to run the same one
    /// many times without copying it.
    pub async fn start_execution(
        &self,
        spec: impl Into<Arc<PipelineSpec>>,
    ) -> Result<ExecutionId, PipelineError> {
        self.start_worker(
            ExecutionId::generate(),
            spec.into(),
            false,
            SystemTime::now(),
            None,
        )
        .await
    }

    /// Starts a worker for `spec`; with `execute`, its first incarnation executes right after
    /// its `init`, before any message (a restarted one comes back pending, as in the seed).
    ///
    /// Returns once the worker's first status is in the store: an id returned is never lost.
    async fn start_worker(
        &self,
        id: ExecutionId,
        spec: Arc<PipelineSpec>,
        execute: bool,
        created_at: SystemTime,
        resumed: Option<Arc<Resumed>>,
    ) -> Result<ExecutionId, PipelineError> {
        let registry = current(&self.tree.registry)?;
        let workers = current(&self.tree.workers)?;
        let name = registry.via(id.clone());
        let incarnations = Arc::new(AtomicU32::new(0));
        let env = self.tree.worker_env.clone();
        let worker_id = id.clone();
        let child = ChildSpec::new(id.to_shared(), move || {
            let incarnation = incarnations.fetch_add(1, Ordering::Relaxed) + 1;
            let args = WorkerArgs {
                id: worker_id.clone(),
                spec: spec.clone(),
                env: env.clone(),
                incarnation,
                execute_on_start: execute,
                created_at,
                resumed: resumed.clone(),
            };
            PipelineWorker::start_with(
                args,
                StartOptions::new()
                    .name(name.clone())
                    .label("pipeline_worker"),
            )
        });
        // The writer the worker's first status goes to: the one to wait on.
        let writer = self.store().writer()?;
        match workers.start_child(child).await {
            Ok(_) => {
                StoreClient::sync(writer).await?;
                Ok(id)
            }
            // The worker's `init` refuses a start beyond the live-execution limit.
            Err(DynamicStartError::Ignored) => Err(PipelineError::TooManyExecutions(
                self.tree
                    .worker_env
                    .settings
                    .max_live_executions
                    .unwrap_or(0),
            )),
            Err(DynamicStartError::NoProc) => {
                Err(PipelineError::Unavailable("worker supervisor".into()))
            }
            Err(error) => Err(PipelineError::Unavailable(error.to_string())),
        }
    }

    async fn call(
        &self,
        id: &ExecutionId,
        request: WorkerCall,
    ) -> Result<WorkerReply, PipelineError> {
        let registry = current(&self.tree.registry)?;
        match registry.via(id.clone()).call(request).await {
            Ok(reply) => Ok(reply),
            // Gone, or exited while answering: either way, not there (seed D9, never an exit).
            Err(CallError::NoProc | CallError::Exited(_)) => {
                Err(PipelineError::NotFound(id.clone()))
            }
            Err(error) => Err(PipelineError::Unavailable(error.to_string())),
        }
    }

    fn cast(&self, id: &ExecutionId, request: WorkerCast) -> Result<(), PipelineError> {
        current(&self.tree.workers)?;
        current(&self.tree.registry)?
            .via(id.clone())
            .cast(request)
            .map_err(|_| PipelineError::NotFound(id.clone()))
    }

    /// Starts a pending execution's steps (seed `execute_pipeline`). Returns once the request is
    /// queued; the worker ignores it (and logs why) unless the execution is pending. A later
    /// `status` from the same caller sees its effect.
    ///
    /// # Errors
    ///
    /// If no execution has this id, returns [`PipelineError::NotFound`] at once (the seed
    /// returned `:ok` for an unknown id: defect D9).
    pub async fn execute(&self, id: &ExecutionId) -> Result<(), PipelineError> {
        self.cast(id, WorkerCast::Execute)
    }

    /// Starts an execution and executes it (seed `run_pipeline`). The worker executes as soon
    /// as it has started, before any request to it is handled; if it later crashes, it comes
    /// back pending, as one started with [`start_execution`](Self::start_execution) does.
    ///
    /// # Errors
    ///
    /// As [`start_execution`](Self::start_execution).
    pub async fn run_pipeline(
        &self,
        spec: impl Into<Arc<PipelineSpec>>,
    ) -> Result<ExecutionId, PipelineError> {
        // Executed by the worker itself as soon as it has started: no second round to it.
        self.start_worker(
            ExecutionId::generate(),
            spec.into(),
            true,
            SystemTime::now(),
            None,
        )
        .await
    }

    /// Runs a failed, cancelled, timed-out, crashed or interrupted execution again, under the
    /// same id and in the same directory, from the steps that did not complete: completed
    /// steps (those `spec` still has, by name) are kept, with their outputs. The history keeps
    /// the earlier run ([`StoredExecution::previous_runs`]). Returns once the resumed run is in
    /// the store; wait for it as for any execution.
    ///
    /// `spec` is what to run. `None` reads the spec file the execution was started from
    /// again ([`PipelineSpec::source`]), or, if it was not read from a file or the file is
    /// gone, runs the stored spec. A spec whose [`hash`](PipelineSpec::hash) differs from the
    /// stored one (the file was edited) is refused unless `force`.
    ///
    /// # Errors
    ///
    /// - [`PipelineError::NotFound`] if the store has no such execution;
    /// - [`PipelineError::NotResumable`] if it is pending, running or completed;
    /// - [`PipelineError::SpecChanged`] if `spec` differs from the stored one and not `force`;
    /// - [`PipelineError::Spec`] if the spec file read again is no longer valid;
    /// - [`PipelineError::NoStore`] without a store; otherwise as
    ///   [`start_execution`](Self::start_execution).
    pub async fn resume(
        &self,
        id: &ExecutionId,
        spec: Option<Arc<PipelineSpec>>,
        force: bool,
    ) -> Result<(), PipelineError> {
        let stored = self.stored(id).await?;
        let status = stored.status.status;
        if !status.is_final() || status == Status::Completed {
            return Err(PipelineError::NotResumable(id.clone(), status));
        }
        let source = stored.spec_source.as_deref().filter(|path| path.exists());
        let spec = match (spec, source) {
            (Some(spec), _) => spec,
            // A file of at most `MAX_SPEC_BYTES`: read here, in the caller's task.
            (None, Some(path)) => Arc::new(PipelineSpec::from_file(path)?),
            (None, None) => Arc::new(stored.spec),
        };
        if spec.hash() != stored.spec_hash && !force {
            return Err(PipelineError::SpecChanged(id.clone()));
        }
        // Its worker from the run that ended, if this manager ran it, makes way.
        if let Some(pid) = self.worker_pid(id) {
            let _ = current(&self.tree.workers)?.terminate_child(pid).await;
        }
        let created_at = SystemTime::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(stored.created_at_ms).unwrap_or(0));
        let resumed = Resumed {
            last_run: Arc::new(stored.status),
            earlier_runs: stored.previous_runs.into_iter().map(Arc::new).collect(),
        };
        self.start_worker(id.clone(), spec, true, created_at, Some(Arc::new(resumed)))
            .await
            .map(drop)
    }

    /// The execution as the store has it: its spec, its current run with every step's
    /// attempts, exit statuses, durations and artifacts, and its earlier runs.
    ///
    /// # Errors
    ///
    /// [`PipelineError::NotFound`] if it is not in the store; [`PipelineError::Store`] if it
    /// cannot be read; [`PipelineError::NoStore`] without a store.
    pub async fn stored(&self, id: &ExecutionId) -> Result<StoredExecution, PipelineError> {
        self.store()
            .get(id.clone())
            .await?
            .map(|found| *found)
            .ok_or_else(|| PipelineError::NotFound(id.clone()))
    }

    /// The history in the store, newest first: every execution this manager and earlier ones
    /// on the same output directory recorded, as `filter` selects.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Store`] if it cannot be read; [`PipelineError::NoStore`] without a
    /// store.
    pub async fn history(
        &self,
        filter: ListFilter,
    ) -> Result<Vec<ExecutionSummary>, PipelineError> {
        self.store().list(filter).await
    }

    /// The execution's current status, from its worker (seed `get_execution_status`).
    ///
    /// # Errors
    ///
    /// If no execution has this id, returns [`PipelineError::NotFound`].
    pub async fn status(&self, id: &ExecutionId) -> Result<ExecutionStatus, PipelineError> {
        match self.call(id, WorkerCall::Status).await? {
            WorkerReply::Status(status) => Ok(*status),
        }
    }

    /// Cancels a running execution: its step's processes get SIGTERM, then SIGKILL after the
    /// grace period (seed `cancel_execution`). Returns once the request is queued; ignored (and
    /// logged) unless the execution is running.
    ///
    /// # Errors
    ///
    /// If no execution has this id, returns [`PipelineError::NotFound`].
    pub async fn cancel(&self, id: &ExecutionId) -> Result<(), PipelineError> {
        self.cast(id, WorkerCast::Cancel)
    }

    /// The pid of the execution's worker process, to monitor it (or, in tests, to kill it).
    pub fn worker_pid(&self, id: &ExecutionId) -> Option<otp_core::Pid> {
        let registry = self.tree.registry.whereis()?;
        registry
            .via(id.clone())
            .whereis()
            .map(|worker| worker.pid())
    }

    /// Runs the cleaner now instead of at its next tick; returns how many executions it removed.
    ///
    /// # Errors
    ///
    /// If the cleaner is not running, returns [`PipelineError::Unavailable`].
    pub async fn clean_now(&self) -> Result<usize, PipelineError> {
        self.tree
            .cleaner
            .call_timeout((), Timeout::Infinity)
            .await
            .map_err(|error| match error {
                CallError::NoProc => PipelineError::Unavailable("execution cleaner".into()),
                error => PipelineError::Unavailable(error.to_string()),
            })
    }

    /// Every execution (or those in `status`), as last published by their workers. Never
    /// calls a worker, so a stuck worker cannot stall it.
    pub fn list_executions(&self, status: Option<Status>) -> Vec<Arc<ExecutionStatus>> {
        self.board().list(status)
    }

    /// Status updates of every execution, from now on: each is the execution's whole status
    /// after a change.
    pub fn subscribe(&self) -> ExecutionUpdates {
        ExecutionUpdates {
            rx: self.board().subscribe(),
        }
    }

    /// Waits until the execution settles and returns its status: a final status, or pending
    /// after its worker crashed and was restarted (with `restarted` set and `error` saying
    /// why; it runs again only if executed again). See [`ExecutionStatus::is_settled`].
    ///
    /// # Errors
    ///
    /// - If no execution has this id, returns [`PipelineError::NotFound`].
    /// - If it is not final within `timeout`, returns [`PipelineError::WaitTimeout`].
    pub async fn wait(
        &self,
        id: &ExecutionId,
        timeout: Duration,
    ) -> Result<Arc<ExecutionStatus>, PipelineError> {
        // Already final: no need to subscribe. Otherwise subscribe first, then look again, so
        // that an update between the two is not missed.
        match self.board().get(id) {
            Some(status) if status.is_settled() => return Ok(status),
            Some(_) => {}
            None => return Err(PipelineError::NotFound(id.clone())),
        }
        let mut updates = self.subscribe();
        let waiting = async {
            loop {
                match self.board().get(id) {
                    Some(status) if status.is_settled() => return Ok(status),
                    Some(_) => {}
                    None => return Err(PipelineError::NotFound(id.clone())),
                }
                loop {
                    match updates.rx.recv().await {
                        Ok(status) if &status.execution_id == id => {
                            if status.is_settled() {
                                return Ok(status);
                            }
                        }
                        Ok(_) => {}
                        // Fell behind: read the board again.
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => {
                            return Err(PipelineError::Unavailable("status updates".into()));
                        }
                    }
                }
            }
        };
        tokio::time::timeout(timeout, waiting)
            .await
            .map_err(|_| PipelineError::WaitTimeout(id.clone()))?
    }
}

/// A stream of execution status updates (see [`PipelineManager::subscribe`]).
#[derive(Debug)]
pub struct ExecutionUpdates {
    rx: broadcast::Receiver<Arc<ExecutionStatus>>,
}

impl ExecutionUpdates {
    /// The next update; `None` once the manager is gone. A reader that falls more than 4096
    /// updates behind skips the oldest ones (use `status` / `list_executions` to catch up).
    pub async fn next(&mut self) -> Option<Arc<ExecutionStatus>> {
        loop {
            match self.rx.recv().await {
                Ok(status) => return Some(status),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
