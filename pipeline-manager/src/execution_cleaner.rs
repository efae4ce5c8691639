//! `ExecutionCleaner`: a GenServer on a timer that removes old finished executions.
//!
//! Every `check_every` (seed: 60 s) it removes executions that finished more than `max_age`
//! ago (seed: 1 h), then, if more than `max_finished` finished executions remain, the oldest of
//! them. Live executions are never touched. It reads the status board, never calls a worker,
//! and runs on `send_interval`: it never sleeps.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};

use crate::manager::Shared;

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

pub(crate) struct ExecutionCleaner {
    shared: Arc<Shared>,
}

#[derive(Clone)]
pub(crate) struct Tick;

impl ExecutionCleaner {
    /// Removes what the policy says; returns how many executions it removed.
    async fn clean(&mut self) -> usize {
        let config = self.shared.config.cleaner;
        let now = SystemTime::now();
        let mut finished: Vec<_> = self
            .shared
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
                .is_some_and(|age| age > config.max_age)
        };
        let excess = finished.len().saturating_sub(config.max_finished);
        let doomed: Vec<_> = finished
            .iter()
            .enumerate()
            .filter(|(index, status)| *index < excess || too_old(status))
            .map(|(_, status)| status.execution_id.clone())
            .collect();
        let (Ok(registry), Ok(workers)) = (self.shared.registry(), self.shared.workers()) else {
            return 0;
        };
        for id in &doomed {
            if let Some((pid, _)) = registry.lookup(id) {
                let _ = workers.terminate_child(pid).await;
            }
            self.shared.board.remove(id);
        }
        if !doomed.is_empty() {
            tracing::info!(removed = doomed.len(), "cleaned finished executions");
        }
        doomed.len()
    }
}

impl GenServer for ExecutionCleaner {
    type Args = Arc<Shared>;
    /// Clean now, and reply how many executions were removed (for tests and operators).
    type Call = ();
    type Reply = usize;
    type Cast = std::convert::Infallible;
    type Info = Tick;
    type Continue = std::convert::Infallible;

    async fn init(shared: Arc<Shared>, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        ctx.send_interval(shared.config.cleaner.check_every, Tick)?;
        Ok(Init::Ready(ExecutionCleaner { shared }))
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
