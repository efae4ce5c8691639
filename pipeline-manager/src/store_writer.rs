//! `StoreWriter`: the one process that writes to the execution store. It makes writes
//! durable in the [journal](crate::store_journal) and hands them to the
//! [store owner](crate::store_owner), which commits them to the backend, in batches.
//!
//! Workers cast each status they publish to it; callers that must know a write is durable
//! (`run_pipeline` before it returns an id) call [`StoreCall::Sync`]. Within a batch only an
//! execution's latest status is kept.
//!
//! # Commit policy
//!
//! - A write that must not be lost ([`StoreCast::WriteNow`]: a new execution's first status,
//!   which `run_pipeline` waits for; a step that ended; a final status) or a `Sync` sends the
//!   server a `Flush` message, which queues behind everything already in its mailbox: by the
//!   time it is handled, every write that arrived meanwhile is waiting too, and one append to
//!   the journal makes them all durable (Erlang's `self() ! flush` idiom for group commit).
//!   An idle store adds no delay.
//! - Writes that only record steps starting ([`StoreCast::Write`]) are not journaled: they
//!   reach the backend with the next batch. Losing one to a crash costs nothing, as `resume`
//!   starts those steps again (and a journaled write is never older than what the backend
//!   has: a batch's segment is deleted once it is committed, so only later writes replay).
//! - [`COMMIT_DELAY`] after the first write of a batch, or before a read, the writer seals the
//!   journal's segment and hands the batch to the owner, so the backend (what `pipeline-manager
//!   list` reads) is at most that much behind. The owner's mailbox is bounded: a backend that
//!   falls behind makes the writer wait, and the callers behind it.
//!
//! Why two processes: a SQLite commit costs 25–40 µs, and a caller that waits for one per
//! `run_pipeline` cannot start more than ~25,000 executions a second; an append is a few
//! µs, and the owner's commits of whole batches run beside it, on another core (measured: W9
//! in `benches/RESULTS.md`).
//!
//! A failed append crashes the server, and every caller waiting on it gets an error, never an
//! id that is not stored. Its supervisor restarts it and, as it is before every worker
//! (`rest_for_one`), everything after it.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

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
    ExecutionRecord, ExecutionSummary, ListFilter, Retention, StoreWrite, StoredExecution,
};
use crate::store_journal::Journal;
use crate::store_owner::{OwnerCall, OwnerCast, StoreOwner, StoreRead};

pub(crate) struct StoreWriter {
    journal: Journal,
    owner: ServerRef<StoreOwner>,
    /// Writes to append to the journal. Only those of [`StoreCast::WriteNow`]: a
    /// [`StoreCast::Write`] goes to the backend with the batch, but not into the journal.
    unjournaled: Batch,
    /// Every write since the last hand-over (journaled or not), for the owner.
    unapplied: Batch,
    /// Callers to answer once the next append is done.
    waiting: Vec<ReplyTo<()>>,
    /// Whether a `Flush` is on its way through the mailbox.
    flush_sent: bool,
    /// The timer that hands the batch over, if one is armed.
    handover_timer: Option<TimerRef>,
}

/// How long a write may wait before it is handed to the backend.
pub(crate) const COMMIT_DELAY: Duration = Duration::from_millis(10);

/// How many batches and reads may wait in the owner's mailbox.
pub(crate) const OWNER_MAILBOX: NonZeroUsize = NonZeroUsize::new(16).expect("not zero");

/// Writes waiting, in arrival order, keeping only the latest of each execution.
#[derive(Default)]
struct Batch {
    writes: Vec<StoreWrite>,
    index: FxHashMap<ExecutionId, usize>,
}

impl Batch {
    fn put(&mut self, write: StoreWrite) {
        match self.index.get(write.id()) {
            Some(&at) => self.writes[at] = write,
            None => {
                self.index.insert(write.id().clone(), self.writes.len());
                self.writes.push(write);
            }
        }
    }

    fn take(&mut self) -> Vec<StoreWrite> {
        self.index.clear();
        std::mem::take(&mut self.writes)
    }

    fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// How the writer is started: the output directory its journal is in, and the owner's
/// name.
pub(crate) struct WriterArgs {
    pub(crate) output_dir: PathBuf,
    pub(crate) owner: Name<ServerRef<StoreOwner>>,
}

/// Writes to the store.
pub(crate) enum StoreCast {
    /// Commit to the backend with the next batch, within [`COMMIT_DELAY`], without making it
    /// durable first (it is not journaled).
    Write(StoreWrite),
    /// Journal as soon as the writer gets to it.
    WriteNow(StoreWrite),
    /// Every worker has just been restarted: what the store shows pending or running is not
    /// running any more (see [`OwnerCast::WorkersRestarted`]).
    WorkersRestarted,
}

/// Requests to the writer, each with its own reply handle.
pub(crate) enum StoreCall {
    /// Answer once every [`StoreCast::WriteNow`] sent before this is in the journal.
    Sync(ReplyTo<()>),
    /// A read, answered by the owner once everything sent before it is committed.
    Read(StoreRead),
}

/// The writer's own messages.
pub(crate) enum Tick {
    /// Append what is waiting (sent to itself).
    Flush,
    /// Hand the batch to the owner (from the timer).
    HandOver,
}

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

    /// Forgets a removed execution, at once: its directory is gone.
    pub(crate) fn forget(&self, id: ExecutionId) {
        if let Some(name) = &self.name {
            let _ = name.cast(StoreCast::WriteNow(StoreWrite::Remove(id)));
        }
    }

    /// The writer running now, for [`sync`](Self::sync): `None` without a store.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Unavailable`] if it is restarting.
    pub(crate) fn writer(&self) -> Result<Option<ServerRef<StoreWriter>>, PipelineError> {
        self.name
            .as_ref()
            .map(|name| name.whereis().ok_or_else(|| unavailable(CallError::NoProc)))
            .transpose()
    }

    /// Returns once every write sent to `writer` so far to be made durable (`now`) is. Taken
    /// before the writes are sent: if that writer is replaced meanwhile, this fails, rather
    /// than a new writer answering for writes it never saw.
    pub(crate) async fn sync(writer: Option<ServerRef<StoreWriter>>) -> Result<(), PipelineError> {
        match writer {
            Some(writer) => writer
                .request_timeout(StoreCall::Sync, Timeout::Infinity)
                .await
                .map_err(unavailable),
            None => Ok(()),
        }
    }

    /// One execution, as stored.
    pub(crate) async fn get(
        &self,
        id: ExecutionId,
    ) -> Result<Option<Box<StoredExecution>>, PipelineError> {
        Ok(self
            .request(move |reply| StoreCall::Read(StoreRead::Get(id, reply)))
            .await??)
    }

    /// The history, newest first.
    pub(crate) async fn list(
        &self,
        filter: ListFilter,
    ) -> Result<Vec<ExecutionSummary>, PipelineError> {
        Ok(self
            .request(move |reply| StoreCall::Read(StoreRead::List(filter, reply)))
            .await??)
    }

    /// What the cleaner should remove now.
    pub(crate) async fn expired(
        &self,
        retention: Retention,
    ) -> Result<Vec<(ExecutionId, PathBuf)>, PipelineError> {
        Ok(self
            .request(move |reply| StoreCall::Read(StoreRead::Expired(retention, reply)))
            .await??)
    }

    /// A request to the writer, waiting as long as it takes (an append, or a read of the
    /// whole history); [`PipelineError::NoStore`] without a store.
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

/// The owner exited: this writer is about to be restarted with it (`rest_for_one`).
fn owner_gone<M>(_: otp_core::gen_server::SendError<M>) -> BoxError {
    "the execution store's owner is gone".into()
}

impl StoreWriter {
    /// Takes `write` into the next batch, and into the next append if it is to be `durable`.
    fn accept(
        &mut self,
        write: StoreWrite,
        durable: bool,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        if self.handover_timer.is_none() {
            self.handover_timer = Some(ctx.send_after(COMMIT_DELAY, Tick::HandOver)?);
        }
        if durable {
            self.unjournaled.put(write.clone());
        }
        self.unapplied.put(write);
        Ok(())
    }

    /// Appends once the messages already in the mailbox are handled.
    fn flush_soon(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if !self.flush_sent {
            ctx.server_ref().send(Tick::Flush)?;
            self.flush_sent = true;
        }
        Ok(())
    }

    /// Appends what is waiting to the journal and answers everyone who waited for it.
    fn append(&mut self) -> Result<(), BoxError> {
        if !self.unjournaled.is_empty() {
            self.journal.append(&self.unjournaled.writes)?;
            self.unjournaled.take();
        }
        for caller in self.waiting.drain(..) {
            let _ = caller.reply(());
        }
        Ok(())
    }

    /// Appends what is waiting, seals the segment and hands its batch to the owner.
    async fn hand_over(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.append()?;
        if let Some(timer) = self.handover_timer.take() {
            ctx.cancel_timer(timer);
        }
        // A batch of step starts only has no segment: nothing of it was journaled.
        let segment = self.journal.seal();
        if !self.unapplied.is_empty() {
            let writes = self.unapplied.take();
            self.owner
                .cast_wait(OwnerCast::Apply { writes, segment })
                .await
                .map_err(owner_gone)?;
        }
        Ok(())
    }
}

impl GenServer for StoreWriter {
    type Args = WriterArgs;
    type Call = StoreCall;
    type Reply = std::convert::Infallible;
    type Cast = StoreCast;
    type Info = Tick;
    type Continue = std::convert::Infallible;

    async fn init(args: WriterArgs, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        let journal = Journal::open(&args.output_dir)?;
        let owner = args
            .owner
            .whereis()
            .ok_or("the execution store's owner is not running")?;
        // Before anything new is written: what an earlier writer left goes first.
        owner
            .request_timeout(OwnerCall::Recover, Timeout::Infinity)
            .await?;
        Ok(Init::Ready(StoreWriter {
            journal,
            owner,
            unjournaled: Batch::default(),
            unapplied: Batch::default(),
            waiting: Vec::new(),
            flush_sent: false,
            handover_timer: None,
        }))
    }

    async fn handle_cast(
        &mut self,
        cast: StoreCast,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match cast {
            StoreCast::WriteNow(write) => {
                self.accept(write, true, ctx)?;
                self.flush_soon(ctx)
            }
            StoreCast::Write(write) => self.accept(write, false, ctx),
            StoreCast::WorkersRestarted => {
                // Every write of the workers that are gone was sent before they went.
                self.hand_over(ctx).await?;
                self.owner
                    .cast_wait(OwnerCast::WorkersRestarted)
                    .await
                    .map_err(owner_gone)
            }
        }
    }

    async fn handle_call(
        &mut self,
        request: StoreCall,
        _: Caller<'_, std::convert::Infallible>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<std::convert::Infallible>, BoxError> {
        // Every request answers through its own handle.
        match request {
            StoreCall::Sync(reply) if self.unjournaled.is_empty() => {
                let _ = reply.reply(());
            }
            StoreCall::Sync(reply) => {
                self.waiting.push(reply);
                self.flush_soon(ctx)?;
            }
            StoreCall::Read(read) => {
                // Behind the batch in the owner's mailbox: it sees every write sent before it.
                self.hand_over(ctx).await?;
                self.owner
                    .cast_wait(OwnerCast::Read(read))
                    .await
                    .map_err(owner_gone)?;
            }
        }
        Ok(CallResult::NoReply)
    }

    async fn handle_info(&mut self, tick: Tick, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match tick {
            Tick::Flush => {
                self.flush_sent = false;
                self.append()
            }
            Tick::HandOver => {
                self.handover_timer = None;
                self.hand_over(ctx).await
            }
        }
    }

    /// Stopping (the manager shuts down, the writer before the owner): what is waiting is
    /// journaled, handed over, and committed before the owner is stopped, so that the history
    /// a reader sees next is complete. After a crash nothing is: the journal keeps what was
    /// appended, for the next writer to recover.
    async fn terminate(&mut self, reason: &otp_core::ExitReason, ctx: &mut Context<Self>) {
        if !reason.is_clean() {
            return;
        }
        let handed_over = self.hand_over(ctx).await;
        let committed = match handed_over {
            Ok(()) => self
                .owner
                .request_timeout(OwnerCall::Sync, Timeout::Infinity)
                .await
                .map_err(BoxError::from),
            Err(error) => Err(error),
        };
        if let Err(error) = committed {
            tracing::error!(%error, "the last writes could not be committed");
        }
    }
}
