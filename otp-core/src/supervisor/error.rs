//! Errors of the supervisor operations, one type per operation (OTP's tagged tuples, typed).

use crate::Pid;
use crate::gen_server::StartError;

/// A child spec or flag that can never work; found when it is built or added, before any
/// process starts (Erlang's `invalid_period`, `duplicate_child_name`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// `max_seconds` is zero (Erlang `invalid_period`).
    #[error("intensity period must be greater than zero")]
    ZeroPeriod,
    /// Two children share an id (Erlang `duplicate_child_name`).
    #[error("duplicate child id {0:?}")]
    DuplicateId(String),
    /// A child's shutdown is `Timeout(0)`: it would be killed before being asked to stop.
    #[error("child {0:?} has a zero shutdown timeout")]
    ZeroShutdownTimeout(String),
    /// A child's restart backoff has a zero initial delay, a maximum below it, or a maximum
    /// above [`RestartBackoff::MAX_DELAY`](super::RestartBackoff::MAX_DELAY).
    #[error("child {0:?} has an invalid restart backoff")]
    InvalidBackoff(String),
    /// A child given to a `DynamicSupervisor` has a restart backoff, which only static
    /// supervisors implement.
    #[error("child {0:?} has a restart backoff, which dynamic supervisors do not support")]
    BackoffUnsupported(String),
}

/// Why a supervisor did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorStartError {
    /// The flags or child specs are invalid; nothing was started.
    #[error("invalid supervisor spec: {0}")]
    InvalidSpec(#[from] SpecError),
    /// A child failed to start (Erlang `{shutdown, {failed_to_start_child, Id, Reason}}`): the
    /// children started before it were stopped in reverse order, later ones never started, and
    /// the supervisor exited.
    #[error("failed to start child {id:?}: {error}")]
    FailedToStartChild {
        /// The child's id.
        id: String,
        /// Why its start failed.
        error: StartError,
    },
    /// The supervisor process itself could not start (for example, no tokio runtime).
    #[error("supervisor did not start: {0}")]
    Start(StartError),
}

/// Why [`start_child`](super::Supervisor::start_child) did not add a running child.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartChildError {
    /// A child with this id is running, with this pid (Erlang `already_started`).
    #[error("child already started as {0}")]
    AlreadyStarted(Pid),
    /// A child with this id exists but is not running (Erlang `already_present`).
    #[error("child spec already present")]
    AlreadyPresent,
    /// The child's start failed; its spec was discarded (Erlang `{error, {Reason, Spec}}`).
    #[error("child failed to start: {0}")]
    Failed(StartError),
    /// The spec is invalid.
    #[error("invalid child spec: {0}")]
    InvalidSpec(SpecError),
    /// The supervisor is not running.
    #[error("no process")]
    NoProc,
}

/// Why [`terminate_child`](super::Supervisor::terminate_child) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TerminateChildError {
    /// No child has this id (Erlang `not_found`).
    #[error("no such child")]
    NotFound,
    /// The supervisor is not running.
    #[error("no process")]
    NoProc,
}

/// Why [`restart_child`](super::Supervisor::restart_child) did not restart the child.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestartChildError {
    /// No child has this id.
    #[error("no such child")]
    NotFound,
    /// The child is running.
    #[error("child is running")]
    Running,
    /// The child is being restarted by the supervisor.
    #[error("child is restarting")]
    Restarting,
    /// The child's start failed; it stays stopped.
    #[error("child failed to start: {0}")]
    Failed(StartError),
    /// The supervisor is not running.
    #[error("no process")]
    NoProc,
}

/// Why [`delete_child`](super::Supervisor::delete_child) did not delete the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeleteChildError {
    /// No child has this id.
    #[error("no such child")]
    NotFound,
    /// The child is running; terminate it first.
    #[error("child is running")]
    Running,
    /// The child is being restarted; terminate it first.
    #[error("child is restarting")]
    Restarting,
    /// The supervisor is not running.
    #[error("no process")]
    NoProc,
}

impl From<SupervisorStartError> for StartError {
    /// A child supervisor that failed to start is a child whose init failed, with a
    /// `ShutdownWith` reason naming the cause (Erlang `{shutdown, Reason}`).
    fn from(error: SupervisorStartError) -> StartError {
        match error {
            SupervisorStartError::Start(error) => error,
            other => StartError::InitFailed(crate::ExitReason::shutdown_with(other.to_string())),
        }
    }
}
