//! `StoreOwner`: the process that owns the execution store's backend. It commits the batches
//! the [store writer](crate::store_writer) hands it, deleting each batch's journal segment
//! once it is committed, and answers reads.
//!
//! It sits before the writer in the tree, and the writer finds it when it starts: a writer
//! that starts (the manager starts, or the writer was restarted) first asks it to
//! [`Recover`](OwnerCall::Recover), that is, to commit whatever earlier writers left in the
//! journal and then mark what the store shows pending or running `interrupted` (no worker
//! runs it any more). Batches the old writer handed over before it went are ahead of that
//! request in this mailbox, so they are committed, and their segments gone, before the
//! leftovers are read: a segment is never committed twice out of order.
//!
//! The backend's calls block, in this process's callbacks: a batch of a few hundred writes
//! is a few milliseconds of SQLite, off the path of every caller (they wait only for the
//! journal). A failed commit crashes the server; the root restarts it and everything after
//! it, and the new writer's `Recover` commits the batch's journaled writes from its segment,
//! which is still there (its step starts, never journaled, are lost: a resume starts those
//! steps again).

use std::path::PathBuf;
use std::time::SystemTime;

use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init, ReplyTo};

use crate::execution::ExecutionId;
use crate::execution_store::{
    ExecutionStore, ExecutionSummary, ListFilter, OpenStore, Retention, StoreError, StoreWrite,
    StoredExecution,
};
use crate::store_journal::JournalLock;

pub(crate) struct StoreOwner {
    store: Box<dyn ExecutionStore>,
    /// Held for the owner's life: one manager per output directory.
    journal: JournalLock,
}

/// How the owner is started: how to open the backend, and the output directory whose
/// journal it recovers.
pub(crate) struct OwnerArgs {
    pub(crate) open: OpenStore,
    pub(crate) output_dir: PathBuf,
}

/// The store's answer to a read.
pub(crate) type Read<T> = Result<T, StoreError>;

/// A client's read, each with its own reply handle. A read that fails answers an error (a
/// damaged record does not crash the owner).
pub(crate) enum StoreRead {
    /// One execution, as stored.
    Get(ExecutionId, ReplyTo<Read<Option<Box<StoredExecution>>>>),
    /// The history.
    List(ListFilter, ReplyTo<Read<Vec<ExecutionSummary>>>),
    /// What the cleaner should remove.
    Expired(Retention, ReplyTo<Read<Vec<(ExecutionId, PathBuf)>>>),
}

/// What the writer sends.
pub(crate) enum OwnerCast {
    /// Commit `writes`, then delete `segment`, the journal segment that holds those of them
    /// that were journaled (none if none was).
    Apply {
        writes: Vec<StoreWrite>,
        segment: Option<PathBuf>,
    },
    /// A client's read, passed on behind every batch handed over before it, so that it sees
    /// every write sent before it.
    Read(StoreRead),
    /// Every worker has just been restarted: what the store shows pending or running is not
    /// running any more; mark it `interrupted`.
    WorkersRestarted,
}

/// What the writer asks and waits for.
pub(crate) enum OwnerCall {
    /// Commit what earlier writers left in the journal, then mark what was running
    /// `interrupted`; answered once done.
    Recover(ReplyTo<()>),
    /// Answered once every batch handed over before it is committed.
    Sync(ReplyTo<()>),
}

impl StoreOwner {}

impl GenServer for StoreOwner {
    type Args = OwnerArgs;
    type Call = OwnerCall;
    type Reply = std::convert::Infallible;
    type Cast = OwnerCast;
    type Info = std::convert::Infallible;
    type Continue = std::convert::Infallible;

    async fn init(args: OwnerArgs, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        // The lock first: a second manager on this directory is refused before it opens
        // anything.
        let journal = JournalLock::acquire(&args.output_dir)?;
        Ok(Init::Ready(StoreOwner {
            store: (args.open)()?,
            journal,
        }))
    }

    async fn handle_cast(
        &mut self,
        cast: OwnerCast,
        _: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match cast {
            OwnerCast::Apply { writes, segment } => {
                self.store.commit(&writes)?;
                tracing::trace!(writes = writes.len(), "committed");
                // Must not outlive the commit: replayed later, it would undo newer writes.
                if let Some(segment) = segment {
                    std::fs::remove_file(segment)?;
                }
            }
            OwnerCast::Read(StoreRead::Get(id, reply)) => {
                let _ = reply.reply(self.store.get(&id).map(|found| found.map(Box::new)));
            }
            OwnerCast::Read(StoreRead::List(filter, reply)) => {
                let _ = reply.reply(self.store.list(&filter));
            }
            OwnerCast::Read(StoreRead::Expired(retention, reply)) => {
                let _ = reply.reply(self.store.expired(retention, SystemTime::now()));
            }
            OwnerCast::WorkersRestarted => {
                let interrupted = self.store.mark_interrupted(SystemTime::now())?;
                if interrupted > 0 {
                    tracing::warn!(
                        interrupted,
                        "executions of restarted workers marked interrupted"
                    );
                }
            }
        }
        Ok(())
    }

    async fn handle_call(
        &mut self,
        request: OwnerCall,
        _: Caller<'_, std::convert::Infallible>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<std::convert::Infallible>, BoxError> {
        match request {
            OwnerCall::Recover(reply) => {
                let interrupted = self.journal.recover(&mut *self.store, SystemTime::now())?;
                if interrupted > 0 {
                    tracing::warn!(
                        interrupted,
                        "executions left pending or running by a stopped writer: marked interrupted"
                    );
                }
                let _ = reply.reply(());
            }
            OwnerCall::Sync(reply) => {
                let _ = reply.reply(());
            }
        }
        Ok(CallResult::NoReply)
    }
}
