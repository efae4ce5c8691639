//! `ExecutionCleaner`: a GenServer on a timer that removes old finished executions.
//!
//! Every `check_every` (seed: 60 s) it removes executions that finished more than `max_age`
//! ago (seed: 1 h), then, if more than `max_finished` finished executions remain, the oldest of
//! them, from the store (every execution recorded on the output directory, also those earlier
//! managers ran) and from disk: each one's directory goes with it. Live executions are never
//! touched. It never calls a worker, and runs on `send_interval`: it never sleeps.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use otp_core::dynamic_supervisor::DynamicSupervisor;
use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
use otp_core::name::Name;

use crate::error::PipelineError;
use crate::execution::ExecutionId;
use crate::execution_store::Retention;
use crate::pipeline_worker::WorkerRegistry;
use crate::status_board::StatusBoard;
use crate::store_writer::StoreClient;

/// The cleaner's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerConfig {
    /// How often to look. Default 60 s (the seed's).
    pub check_every: Duration,
    /// Finished executions older than this are removed. Default 1 h (the seed's).
    pub max_age: Duration,
    /// At most this many finished executions are kept. Default 10,000.
    pub max_finished: usize,
}

impl Default for CleanerConfig {
    fn default() -> CleanerConfig {
        CleanerConfig {
            check_every: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
            max_finished: 10_000,
        }
    }
}

/// What the cleaner works with: its policy, and the processes and table it cleans.
pub(crate) struct CleanerArgs {
    pub(crate) policy: CleanerConfig,
    pub(crate) output_dir: PathBuf,
    pub(crate) board: Arc<StatusBoard>,
    pub(crate) store: StoreClient,
    /// By name, so that restarted ones are found.
    pub(crate) registry: Name<WorkerRegistry>,
    pub(crate) workers: Name<DynamicSupervisor>,
}

pub(crate) struct ExecutionCleaner {
    args: CleanerArgs,
}

#[derive(Clone)]
pub(crate) struct Tick;

impl ExecutionCleaner {
    /// Removes what the policy says: from the store (or, without one, from what this manager
    /// ran), from the board, and each execution's directory. Returns how many it removed.
    async fn clean(&mut self) -> usize {
        let policy = self.args.policy;
        let retention = Retention {
            max_age: policy.max_age,
            max_finished: policy.max_finished,
        };
        let expired = match self.args.store.expired(retention).await {
            Ok(expired) => expired,
            Err(PipelineError::NoStore) => self.expired_on_board(retention),
            Err(error) => {
                tracing::warn!(%error, "cannot read the store: nothing cleaned");
                return 0;
            }
        };
        let (Ok(registry), Ok(workers)) = (self.args.registry.get(), self.args.workers.get())
        else {
            return 0;
        };
        let mut removed = 0;
        for (id, _) in expired {
            // Resumed since the store said it was finished: live again, kept.
            if self
                .args
                .board
                .get(&id)
                .is_some_and(|status| !status.status.is_final())
            {
                continue;
            }
            if let Some((pid, _)) = registry.lookup(&id) {
                let _ = workers.terminate_child(pid).await;
            }
            self.args.board.remove(&id);
            self.args.store.forget(id.clone());
            self.remove_directory(&id);
            removed += 1;
        }
        if removed > 0 {
            tracing::info!(removed, "cleaned finished executions");
        }
        removed
    }

    /// Without a store: the finished executions on the board the policy removes.
    fn expired_on_board(&self, retention: Retention) -> Vec<(ExecutionId, PathBuf)> {
        let now = SystemTime::now();
        let mut finished: Vec<_> = self
            .args
            .board
            .list(None)
            .into_iter()
            .filter(|status| status.status.is_final())
            .collect();
        finished.sort_by_key(|status| status.completed_at);
        let too_old = |status: &crate::ExecutionStatus| {
            status
                .completed_at
                .and_then(|at| now.duration_since(at).ok())
                .is_some_and(|age| age > retention.max_age)
        };
        let excess = finished.len().saturating_sub(retention.max_finished);
        finished
            .iter()
            .enumerate()
            .filter(|(index, status)| *index < excess || too_old(status))
            .map(|(_, status)| (status.execution_id.clone(), status.workdir.to_path_buf()))
            .collect()
    }

    /// Removes `<output_dir>/<id>`: the path is made from the id, never taken from a record,
    /// and only for an id that is one name (not `..`, no `/`), so nothing outside the output
    /// directory can be removed. A directory that is not there is fine (a pipeline whose steps
    /// ran no command has none).
    fn remove_directory(&self, id: &ExecutionId) {
        let name = id.as_str();
        let one_name = !name.is_empty()
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !one_name {
            tracing::warn!(execution = %id, "not removing a directory for a malformed id");
            return;
        }
        let dir = self.args.output_dir.join(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(dir = %dir.display(), %error, "cannot remove"),
        }
    }
}

impl GenServer for ExecutionCleaner {
    type Args = CleanerArgs;
    /// Clean now, and reply how many executions were removed (for tests and operators).
    type Call = ();
    type Reply = usize;
    type Cast = std::convert::Infallible;
    type Info = Tick;
    type Continue = std::convert::Infallible;

    async fn init(args: CleanerArgs, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        ctx.send_interval(args.policy.check_every, Tick)?;
        Ok(Init::Ready(ExecutionCleaner { args }))
    }

    async fn handle_call(
        &mut self,
        _: (),
        _: Caller<'_, usize>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<usize>, BoxError> {
        Ok(CallResult::Reply(self.clean().await))
    }

    async fn handle_info(&mut self, _: Tick, _: &mut Context<Self>) -> Result<(), BoxError> {
        self.clean().await;
        Ok(())
    }
}
