//! A supervision tree as plain data, for a UI or a CLI to render: the process tree of Erlang's
//! [`observer`](https://www.erlang.org/doc/apps/observer/observer_ug.html), built from
//! `supervisor:which_children/1` and `process_info/2`.
//!
//! [`tree`] walks down from any supervisor (static, dynamic or task supervisor): each child with
//! its id, type, status, restart count and [`ProcessInfo`], and the subtree of each child that
//! is itself a supervisor. [`SupervisorTree`]'s `Display` draws it:
//!
//! ```text
//! <0.1.0> supervisor (static)
//! ├── store <0.4.0> worker, restarts 0: app::Store Waiting, 0 queued
//! └── conns <0.5.0> supervisor, restarts 1: dynamic_supervisor Waiting, 0 queued
//!     └── <0.8.0> worker, restarts 0: connection Running, 3 queued
//! ```
//!
//! # Consistency
//!
//! Each supervisor answers for its own children, between two of its messages, so its list is
//! consistent; the tree as a whole is not one snapshot: a child may exit or restart while the
//! walk goes on below another. A child supervisor that exits before it answers shows no
//! subtree, as does one that does not answer within the walk's timeout. The walk costs a call
//! per supervisor and a lock or two per child; a process that is not being walked pays nothing
//! for it.

use std::fmt;

use crate::Pid;
use crate::gen_server::{CallError, Timeout};
use crate::process::{ProcessInfo, info};
use crate::supervisor::{ChildInfo, ChildStatus, ChildType};

/// Which kind of supervisor a [`SupervisorTree`] node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SupervisorKind {
    /// A [`Supervisor`](crate::supervisor::Supervisor).
    Static,
    /// A [`DynamicSupervisor`](crate::dynamic_supervisor::DynamicSupervisor).
    Dynamic,
    /// A [`TaskSupervisor`](crate::task_supervisor::TaskSupervisor); its children are its
    /// running tasks.
    Task,
}

/// One supervisor and what it supervises.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SupervisorTree {
    /// The supervisor.
    pub pid: Pid,
    /// Which kind it is.
    pub kind: SupervisorKind,
    /// The supervisor's own process, as it was after it listed its children (`None` if it
    /// exited meanwhile).
    pub process: Option<ProcessInfo>,
    /// Its children, in the order the supervisor lists them (start order for a static one).
    pub children: Vec<TreeChild>,
}

/// One child in a [`SupervisorTree`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeChild {
    /// Its id, type, status and restart count, as its supervisor reported them.
    pub child: ChildInfo,
    /// Its process, if it is running (and still was when it was looked at).
    pub process: Option<ProcessInfo>,
    /// What it supervises, if it is a running supervisor.
    pub subtree: Option<SupervisorTree>,
}

/// Why [`tree`] has nothing to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// No live process has this pid.
    #[error("no process")]
    NoProc,
    /// The process is not a supervisor, a dynamic supervisor or a task supervisor.
    #[error("not a supervisor")]
    NotASupervisor,
    /// The supervisor did not answer (it exited while asked).
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Walks the supervision tree below the supervisor `root`, giving each supervisor up to
/// `timeout` to answer.
///
/// A supervisor answers between two of its messages, so one busy starting or stopping a child
/// answers late: a child supervisor that does not answer in time shows no subtree, and the
/// walk goes on. (Called from a child's `init`, the walk would wait for the supervisor that is
/// waiting for that `init`: the timeout ends it.)
///
/// ```
/// use otp_core::observer::{self, SupervisorKind};
/// use otp_core::supervisor::{ChildSpec, ChildStatus, SupFlags, Supervisor, Strategy};
/// use otp_core::task_supervisor::TaskSupervisor;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let root = Supervisor::start(
///     SupFlags::new(Strategy::OneForOne),
///     vec![ChildSpec::supervisor("tasks", TaskSupervisor::start)],
/// )
/// .await?;
/// let tree = observer::tree(root.pid(), std::time::Duration::from_secs(5)).await?;
/// assert_eq!(tree.kind, SupervisorKind::Static);
/// let tasks = &tree.children[0];
/// assert_eq!(tasks.child.id.as_deref(), Some("tasks"));
/// assert!(matches!(tasks.child.status, ChildStatus::Running(_)));
/// assert_eq!(tasks.subtree.as_ref().map(|t| t.kind), Some(SupervisorKind::Task));
/// println!("{tree}");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// - [`TreeError::NoProc`] if `root` is not alive.
/// - [`TreeError::NotASupervisor`] if it is not one of otp-core's supervisors.
/// - [`TreeError::Call`] if it did not answer in time, or exited before it answered.
pub async fn tree(root: Pid, timeout: impl Into<Timeout>) -> Result<SupervisorTree, TreeError> {
    if !crate::process::is_alive(root) {
        return Err(TreeError::NoProc);
    }
    walk(root, timeout.into())
        .await?
        .ok_or(TreeError::NotASupervisor)
}

/// The tree below `pid`; `Ok(None)` if it is not a supervisor. Boxed: it recurses.
fn walk(
    pid: Pid,
    timeout: Timeout,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Option<SupervisorTree>, CallError>> + Send>> {
    Box::pin(async move {
        let Some((kind, listed)) = children(pid, timeout).await? else {
            return Ok(None);
        };
        let mut children = Vec::with_capacity(listed.len());
        for child in listed {
            let (process, subtree) = match child.status {
                ChildStatus::Running(child_pid) => {
                    let subtree = match child.child_type {
                        // A child that exits, or does not answer in time, shows no subtree.
                        ChildType::Supervisor => walk(child_pid, timeout).await.ok().flatten(),
                        ChildType::Worker => None,
                    };
                    (info(child_pid), subtree)
                }
                ChildStatus::Restarting | ChildStatus::Undefined => (None, None),
            };
            children.push(TreeChild {
                child,
                process,
                subtree,
            });
        }
        Ok(Some(SupervisorTree {
            pid,
            kind,
            process: info(pid),
            children,
        }))
    })
}

/// The children of `pid` by its kind of supervisor; `None` if it is none of them.
async fn children(
    pid: Pid,
    timeout: Timeout,
) -> Result<Option<(SupervisorKind, Vec<ChildInfo>)>, CallError> {
    if let Some(listed) = crate::supervisor::children_of(pid, timeout).await {
        return Ok(Some((SupervisorKind::Static, listed?)));
    }
    if let Some(listed) = crate::dynamic_supervisor::children_of(pid, timeout).await {
        return Ok(Some((SupervisorKind::Dynamic, listed?)));
    }
    if let Some(tasks) = crate::task_supervisor::children_of(pid, timeout).await {
        let tasks = tasks?.into_iter().map(|task| ChildInfo {
            id: None,
            status: ChildStatus::Running(task),
            child_type: ChildType::Worker,
            // Tasks under a task supervisor are temporary: never restarted.
            restarts: 0,
        });
        return Ok(Some((SupervisorKind::Task, tasks.collect())));
    }
    Ok(None)
}

impl fmt::Display for SupervisorTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            SupervisorKind::Static => "static",
            SupervisorKind::Dynamic => "dynamic",
            SupervisorKind::Task => "tasks",
        };
        let name = self.process.as_ref().map_or("exited", |info| info.name);
        writeln!(f, "{} {name} ({kind})", self.pid)?;
        self.fmt_children(f, "")
    }
}

impl SupervisorTree {
    fn fmt_children(&self, f: &mut fmt::Formatter<'_>, indent: &str) -> fmt::Result {
        for (at, child) in self.children.iter().enumerate() {
            let last = at + 1 == self.children.len();
            let (branch, below) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            write!(f, "{indent}{branch}")?;
            if let Some(id) = &child.child.id {
                write!(f, "{id} ")?;
            }
            match child.child.status {
                ChildStatus::Running(pid) => write!(f, "{pid}")?,
                ChildStatus::Restarting => f.write_str("restarting")?,
                ChildStatus::Undefined => f.write_str("not running")?,
            }
            let child_type = match child.child.child_type {
                ChildType::Worker => "worker",
                ChildType::Supervisor => "supervisor",
            };
            write!(f, " {child_type}, restarts {}", child.child.restarts)?;
            if let Some(process) = &child.process {
                write!(
                    f,
                    ": {} {:?}, {} queued",
                    process.name, process.status, process.message_queue_len
                )?;
            }
            writeln!(f)?;
            if let Some(subtree) = &child.subtree {
                let indent = format!("{indent}{below}");
                subtree.fmt_children(f, &indent)?;
            }
        }
        Ok(())
    }
}
