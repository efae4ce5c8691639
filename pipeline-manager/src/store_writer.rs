//! `StoreWriter`: the one process that writes to the execution store, in batches (group
//! commit).
//!
//! Workers cast each status they publish to it; callers that must know a write is durable
//! (`run_pipeline` before it returns an id) call [`StoreCall::Sync`]. Writes wait in the
//! server's state until the next commit, and within a batch only an execution's latest
//! status is written.
//!
//! # Commit policy
//!
//! - A write that must not be lost ([`StoreCast::WriteNow`]: a new execution's first status,
//!   which `run_pipeline` waits for; a step that ended; a final status) or a `Sync` sends the
//!   server a `Flush` message, which queues
//!   behind everything already in its mailbox: by the time it is handled, every write that
//!   arrived meanwhile is in the batch, and one transaction commits them all (Erlang's
//!   `self() ! flush` idiom for group commit). While it commits, new writes queue in the
//!   mailbox for the next batch: the batch is as large as the load makes it, and an idle
//!   store adds no delay.
//! - Writes that only record steps starting ([`StoreCast::Write`]) ride along with the next
//!   batch, or are committed by a timer [`COMMIT_DELAY`] after the first of them: losing one
//!   to a crash costs nothing, as `resume` starts those steps again.
//!
//! The backend's calls block. They run in this process's callbacks: a commit of a batch
//! takes tens of microseconds, and the periodic WAL checkpoint a few milliseconds, short
//! enough not to be worth a thread hop on every `run_pipeline` (measured: W9 in
//! `benches/RESULTS.md`). A failed commit crashes the server, and every caller waiting on
//! it gets an error, never an id that is not stored; its supervisor restarts it, and, as
//! it is the root's first child (`rest_for_one`), everything after it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use otp_core::ServerRef;
use otp_core::gen_server::{
    BoxError, CallError, CallResult, Caller, Context, GenServer, Init, ReplyTo, Timeout,
};
use otp_core::name::Name;
use otp_core::timer::TimerRef;
use rustc_hash::FxHashMap;

use crate::error::PipelineError;
use crate::execution::ExecutionId;
use crate::execution_store::{
    ExecutionRecord, ExecutionStore, ExecutionSummary, ListFilter, OpenStore, Retention,
    StoreError, StoreWrite, StoredExecution,
};

pub(crate) struct StoreWriter {
    store: Box<dyn ExecutionStore>,
    /// The next batch, in arrival order; `index` finds an execution's write in it.
    pending: Vec<StoreWrite>,
    index: FxHashMap<ExecutionId, usize>,
    /// Callers to answer once the next batch is committed.
    waiting: Vec<ReplyTo<()>>,
    /// Whether a `Flush` is on its way through the mailbox.
    flush_sent: bool,
    /// The timer that commits writes nobody waits for, if one is armed.
    flush_timer: Option<TimerRef>,
}

/// How long a write that only records steps starting may wait for a batch.
pub(crate) const COMMIT_DELAY: Duration = Duration::from_millis(10);

/// Writes to the store.
pub(crate) enum StoreCast {
    /// Commit with the next batch, within [`COMMIT_DELAY`].
    Write(StoreWrite),
    /// Commit as soon as the writer gets to it.
    WriteNow(StoreWrite),
    /// Every worker has just been restarted: what the store shows pending or running is not
    /// running any more. Commits what is waiting, then marks those `interrupted`.
    WorkersRestarted,
}

/// The store's answer to a read.
pub(crate) type Read<T> = Result<T, StoreError>;

/// Requests to the writer, each with its own reply handle. Reads that fail answer an error (a
/// damaged record does not crash the writer).
pub(crate) enum StoreCall {
    /// Answer once everything sent before this is committed.
    Sync(ReplyTo<()>),
    /// One execution, as stored.
    Get(ExecutionId, ReplyTo<Read<Option<Box<StoredExecution>>>>),
    /// The history.
    List(ListFilter, ReplyTo<Read<Vec<ExecutionSummary>>>),
    /// What the cleaner should remove.
    Expired(Retention, ReplyTo<Read<Vec<(ExecutionId, PathBuf)>>>),
}

pub(crate) struct Flush;

/// How the tree's other processes reach the store writer: by its name, so that a restarted
/// writer is found. Without a store ([`StoreConfig::Memory`](crate::execution_store::StoreConfig))
/// writes go nowhere and reads are [`PipelineError::NoStore`].
#[derive(Clone)]
pub(crate) struct StoreClient {
    name: Option<Name<ServerRef<StoreWriter>>>,
}

impl StoreClient {
    pub(crate) fn new(name: Option<Name<ServerRef<StoreWriter>>>) -> StoreClient {
        StoreClient { name }
    }

    /// Sends a worker's status, to be written in the next batch, or at once with `now`. If the
    /// writer is restarting, so is the worker (`rest_for_one`): nothing to keep.
    pub(crate) fn record(&self, record: ExecutionRecord, now: bool) {
        if let Some(name) = &self.name {
            let write = StoreWrite::Put(record);
            let _ = name.cast(if now {
                StoreCast::WriteNow(write)
            } else {
                StoreCast::Write(write)
            });
        }
    }

    /// Tells the store that every worker has been restarted (see
    /// [`StoreCast::WorkersRestarted`]).
    pub(crate) fn workers_restarted(&self) {
        if let Some(name) = &self.name {
            let _ = name.cast(StoreCast::WorkersRestarted);
        }
    }

    /// Forgets a removed execution.
    pub(crate) fn forget(&self, id: ExecutionId) {
        if let Some(name) = &self.name {
            let _ = name.cast(StoreCast::Write(StoreWrite::Remove(id)));
        }
    }

    /// Returns once everything sent to the store so far is committed.
    pub(crate) async fn sync(&self) -> Result<(), PipelineError> {
        match &self.name {
            Some(_) => self.request(StoreCall::Sync).await,
            None => Ok(()),
        }
    }

    /// One execution, as stored.
    pub(crate) async fn get(
        &self,
        id: ExecutionId,
    ) -> Result<Option<Box<StoredExecution>>, PipelineError> {
        Ok(self
            .request(move |reply| StoreCall::Get(id, reply))
            .await??)
    }

    /// The history, newest first.
    pub(crate) async fn list(
        &self,
        filter: ListFilter,
    ) -> Result<Vec<ExecutionSummary>, PipelineError> {
        Ok(self
            .request(move |reply| StoreCall::List(filter, reply))
            .await??)
    }

    /// What the cleaner should remove now.
    pub(crate) async fn expired(
        &self,
        retention: Retention,
    ) -> Result<Vec<(ExecutionId, PathBuf)>, PipelineError> {
        Ok(self
            .request(move |reply| StoreCall::Expired(retention, reply))
            .await??)
    }

    /// A request to the writer, waiting as long as it takes (a commit or a read of the whole
    /// history); [`PipelineError::NoStore`] without a store.
    async fn request<R: Send + 'static>(
        &self,
        make: impl FnOnce(ReplyTo<R>) -> StoreCall + Send + 'static,
    ) -> Result<R, PipelineError> {
        let name = self.name.as_ref().ok_or(PipelineError::NoStore)?;
        let writer = name
            .whereis()
            .ok_or_else(|| unavailable(CallError::NoProc))?;
        writer
            .request_timeout(make, Timeout::Infinity)
            .await
            .map_err(unavailable)
    }
}

fn unavailable(error: CallError) -> PipelineError {
    PipelineError::Unavailable(format!("execution store: {error}"))
}

impl StoreWriter {
    fn queue(&mut self, write: StoreWrite) {
        match self.index.get(write.id()) {
            // Only the latest write of an execution matters.
            Some(&at) => self.pending[at] = write,
            None => {
                self.index.insert(write.id().clone(), self.pending.len());
                self.pending.push(write);
            }
        }
    }

    /// Commits once the messages already in the mailbox are handled.
    fn flush_soon(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if !self.flush_sent {
            ctx.server_ref().send(Flush)?;
            self.flush_sent = true;
        }
        Ok(())
    }

    /// Commits the batch and answers everyone who waited for it.
    fn commit(&mut self, ctx: &mut Context<Self>) -> Result<(), StoreError> {
        if let Some(timer) = self.flush_timer.take() {
            ctx.cancel_timer(timer);
        }
        if !self.pending.is_empty() {
            self.store.commit(&self.pending)?;
            tracing::trace!(writes = self.pending.len(), "committed");
            self.pending.clear();
            self.index.clear();
        }
        for caller in self.waiting.drain(..) {
            let _ = caller.reply(());
        }
        Ok(())
    }
}

impl GenServer for StoreWriter {
    type Args = OpenStore;
    type Call = StoreCall;
    type Reply = std::convert::Infallible;
    type Cast = StoreCast;
    type Info = Flush;
    type Continue = std::convert::Infallible;

    async fn init(open: OpenStore, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        let mut store = open()?;
        // No worker runs anything yet: what the store says is running was running under a
        // manager that is gone.
        let interrupted = store.mark_interrupted(SystemTime::now())?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "executions left running by a stopped manager marked interrupted"
            );
        }
        Ok(Init::Ready(StoreWriter {
            store,
            pending: Vec::new(),
            index: FxHashMap::default(),
            waiting: Vec::new(),
            flush_sent: false,
            flush_timer: None,
        }))
    }

    async fn handle_cast(
        &mut self,
        cast: StoreCast,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match cast {
            StoreCast::WriteNow(write) => {
                self.queue(write);
                self.flush_soon(ctx)
            }
            StoreCast::Write(write) => {
                self.queue(write);
                if self.flush_timer.is_none() && !self.flush_sent {
                    self.flush_timer = Some(ctx.send_after(COMMIT_DELAY, Flush)?);
                }
                Ok(())
            }
            StoreCast::WorkersRestarted => {
                // Every write of the workers that are gone was sent before they went.
                self.commit(ctx)?;
                let interrupted = self.store.mark_interrupted(SystemTime::now())?;
                tracing::warn!(
                    interrupted,
                    "executions of restarted workers marked interrupted"
                );
                Ok(())
            }
        }
    }

    async fn handle_call(
        &mut self,
        request: StoreCall,
        _: Caller<'_, std::convert::Infallible>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<std::convert::Infallible>, BoxError> {
        // Every request answers through its own handle. Reads first commit what is waiting,
        // so that they see every write sent before them.
        match request {
            StoreCall::Sync(reply) if self.pending.is_empty() => {
                let _ = reply.reply(());
            }
            StoreCall::Sync(reply) => {
                self.waiting.push(reply);
                self.flush_soon(ctx)?;
            }
            StoreCall::Get(id, reply) => {
                self.commit(ctx)?;
                let _ = reply.reply(self.store.get(&id).map(|found| found.map(Box::new)));
            }
            StoreCall::List(filter, reply) => {
                self.commit(ctx)?;
                let _ = reply.reply(self.store.list(&filter));
            }
            StoreCall::Expired(retention, reply) => {
                self.commit(ctx)?;
                let _ = reply.reply(self.store.expired(retention, SystemTime::now()));
            }
        }
        Ok(CallResult::NoReply)
    }

    /// Stopping (the manager shuts down, the writer last of its tree): what is still waiting
    /// for a batch is committed now. After a crash nothing is: the commit that failed would.
    async fn terminate(&mut self, reason: &otp_core::ExitReason, ctx: &mut Context<Self>) {
        if reason.is_clean()
            && let Err(error) = self.commit(ctx)
        {
            tracing::error!(%error, "the last writes could not be committed");
        }
    }

    async fn handle_info(&mut self, _: Flush, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        // From the mailbox or from the timer: either way, everything waiting goes now.
        self.flush_sent = false;
        self.commit(ctx)?;
        Ok(())
    }
}
