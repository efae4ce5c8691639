//! [`PipelineError`]: what the public API can fail with.

use crate::execution::{ExecutionId, Status};
use crate::execution_store::StoreError;
use crate::pipeline::SpecError;

/// An error from the [`PipelineManager`](crate::PipelineManager) API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// No execution has this id (it never existed, was cleaned up, or its worker is between a
    /// crash and its restart).
    #[error("execution not found: {0}")]
    NotFound(ExecutionId),
    /// The pipeline spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// As many executions as allowed are live (pending or running); finished ones do not count.
    #[error("too many live executions (limit {0})")]
    TooManyExecutions(usize),
    /// `wait` gave up before the execution finished.
    #[error("timed out waiting for execution {0}")]
    WaitTimeout(ExecutionId),
    /// A [`ManagerConfig`](crate::ManagerConfig) field is out of range; the manager did not
    /// start.
    #[error("invalid manager configuration: {0}")]
    InvalidConfig(String),
    /// The manager is not running (stopped, or restarting part of its tree).
    #[error("pipeline manager is not running: {0}")]
    Unavailable(String),
    /// The manager keeps no history ([`StoreConfig::Memory`](crate::execution_store::StoreConfig)).
    #[error("this pipeline manager keeps no history (no execution store)")]
    NoStore,
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Only a failed, cancelled, timed-out, crashed or interrupted execution can be resumed.
    #[error(
        "execution {0} is {1}: only a failed, cancelled, timed-out, crashed or interrupted execution can be resumed"
    )]
    NotResumable(ExecutionId, Status),
    /// The spec given to resume is not the one the execution ran.
    #[error(
        "the spec of execution {0} has changed since it ran: resume it with --force to run the new one"
    )]
    SpecChanged(ExecutionId),
}
