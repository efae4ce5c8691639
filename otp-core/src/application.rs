//! Running a supervision tree as a program: start the root, wait for ctrl-c / SIGTERM or for
//! the root to give up, stop the whole tree in order, and exit with a status.
//!
//! Mirrors Erlang's `application` behaviour in the part a Rust binary needs: the application
//! *is* its root supervisor, and when the root exits (its intensity was exceeded) the
//! application stops with a failure, as a permanent application takes the node down.
//!
//! ```no_run
//! use otp_core::application::Application;
//! use otp_core::supervisor::{SupFlags, Supervisor};
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let outcome = Application::run(|| Supervisor::start(SupFlags::default(), vec![])).await;
//!     outcome.exit_code()
//! }
//! ```
//!
//! # Differences from OTP
//!
//! No application controller, `.app` files, start types or distribution: one root supervisor
//! per program.

use std::fmt;
use std::future::Future;
use std::process::ExitCode;

use crate::ExitReason;
use crate::gen_server::Timeout;
use crate::supervisor::{Supervisor, SupervisorStartError};

/// How an application run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppExit {
    /// Asked to stop (ctrl-c, SIGTERM, or the shutdown future); the tree was stopped in order.
    Stopped,
    /// The root supervisor exited by itself with this reason, usually `Shutdown` because its
    /// restart intensity was exceeded.
    RootExited(ExitReason),
    /// The root supervisor failed to start.
    StartFailed(SupervisorStartError),
}

impl AppExit {
    /// The process exit status: success only for [`AppExit::Stopped`].
    pub fn exit_code(&self) -> ExitCode {
        match self {
            AppExit::Stopped => ExitCode::SUCCESS,
            AppExit::RootExited(_) | AppExit::StartFailed(_) => ExitCode::FAILURE,
        }
    }

    /// Whether the run ended as asked.
    pub fn is_success(&self) -> bool {
        matches!(self, AppExit::Stopped)
    }
}

impl fmt::Display for AppExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppExit::Stopped => f.write_str("stopped"),
            AppExit::RootExited(reason) => write!(f, "root supervisor exited: {reason}"),
            AppExit::StartFailed(error) => write!(f, "root supervisor failed to start: {error}"),
        }
    }
}

/// Runs a root supervisor as the program. See the [module docs](self).
#[derive(Debug)]
pub struct Application;

impl Application {
    /// Starts the root with `start`, then runs until ctrl-c or SIGTERM (stopping the tree in
    /// order) or until the root exits by itself.
    pub async fn run<F, Fut>(start: F) -> AppExit
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Supervisor, SupervisorStartError>>,
    {
        Application::run_until(start, shutdown_signal()).await
    }

    /// As [`run`](Self::run), with `shutdown` instead of the OS signals: when it completes, the
    /// tree is stopped. Useful for tests and for embedding.
    pub async fn run_until<F, Fut, S>(start: F, shutdown: S) -> AppExit
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Supervisor, SupervisorStartError>>,
        S: Future<Output = ()>,
    {
        let root = match start().await {
            Ok(root) => root,
            Err(error) => {
                tracing::error!(%error, "application failed to start");
                return AppExit::StartFailed(error);
            }
        };
        tracing::info!(root = %root.pid(), "application started");
        let root_exit = root.monitor();
        // Biased towards the root's own exit: if both happen at once, report the failure.
        tokio::select! {
            biased;
            down = root_exit => {
                tracing::error!(reason = %down.reason, "application root exited");
                AppExit::RootExited(down.reason)
            }
            () = shutdown => {
                tracing::info!("application stopping");
                match root.stop(Timeout::Infinity).await {
                    Ok(()) => AppExit::Stopped,
                    Err(_) => AppExit::RootExited(
                        root.monitor().await.reason,
                    ),
                }
            }
        }
    }
}

/// Completes on ctrl-c, or on SIGTERM on Unix. If the signals cannot be installed, never
/// completes (the application then runs until its root exits).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
