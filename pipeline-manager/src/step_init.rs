//! The first process of every step [`ShellExecutor`](crate::step_runner::ShellExecutor) runs:
//! the `pipeline-step-init` program, which starts the step's command, keeps every process the
//! command starts inside the step, and ends them all when the step ends.
//!
//! It is what `tini` or `dumb-init` are to a container, for one step, and it is a program of
//! its own rather than code in the manager because the manager may not fork without `exec`
//! (it is multi-threaded, and the workspace forbids `unsafe`). See
//! [`step_runner`](crate::step_runner#containment) for the two ways it contains a step and
//! what each covers.
//!
//! # Protocol
//!
//! The manager starts it as `pipeline-step-init PROGRAM [ARGS...]`, with one end of a Unix
//! socket as its stdin (the step's command gets `/dev/null`) and the step's output pipes as its
//! stdout and stderr. Over the socket the manager sends one byte per request:
//!
//! - [`TERMINATE`]: send SIGTERM to the step's processes;
//! - [`KILL`]: send SIGKILL to them.
//!
//! The end of the socket (the manager closed it, or died, SIGKILL included) is a kill. When the
//! command has exited and nothing it started is left, the init writes one line, a [`Report`],
//! and exits 0. No line means the init itself was killed.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, ExitCode, Stdio};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The request byte for SIGTERM.
pub const TERMINATE: u8 = b't';
/// The request byte for SIGKILL.
pub const KILL: u8 = b'k';

/// How the step's command ended, as the init reports it: one line, `exit N`, `signal N` or
/// `error MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
    /// It could not be started.
    Error(String),
}

impl Report {
    /// The report's line, newline included.
    pub fn line(&self) -> String {
        match self {
            Report::Exited(code) => format!("exit {code}\n"),
            Report::Signaled(signal) => format!("signal {signal}\n"),
            Report::Error(message) => format!("error {}\n", message.replace('\n', " ")),
        }
    }

    /// Reads a report's line; `None` if it is not one.
    pub fn parse(line: &str) -> Option<Report> {
        let (kind, value) = line.trim_end_matches('\n').split_once(' ')?;
        match kind {
            "exit" => value.parse().ok().map(Report::Exited),
            "signal" => value.parse().ok().map(Report::Signaled),
            "error" => Some(Report::Error(value.to_string())),
            _ => None,
        }
    }
}

/// How the init keeps the step's processes together: decided by where it finds itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// It is pid 1 of a PID namespace of its own: every process of the namespace is the
    /// step's, and the kernel kills them all when the init exits.
    Namespace,
    /// It is a child subreaper: the step's processes are its descendants, orphans included,
    /// and it kills them itself before it exits.
    Subreaper,
}

/// The `pipeline-step-init` program: runs `args` (a program and its arguments) as described in
/// the [module docs](self).
pub fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    let Some((program, program_args)) = args.split_first() else {
        eprintln!("usage: pipeline-step-init PROGRAM [ARGS...] (run by pipeline-manager)");
        return ExitCode::from(2);
    };
    let control = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => UnixStream::from(fd),
        Err(error) => {
            eprintln!("pipeline-step-init: no control socket: {error}");
            return ExitCode::from(2);
        }
    };
    match run(&control, program, program_args) {
        Ok(report) => {
            // The manager may be gone already; then nobody wants the report.
            let _ = (&control).write_all(report.line().as_bytes());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("pipeline-step-init: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(
    control: &UnixStream,
    program: &std::ffi::OsString,
    args: &[std::ffi::OsString],
) -> nix::Result<Report> {
    let scope = if std::process::id() == 1 {
        Scope::Namespace
    } else {
        nix::sys::prctl::set_child_subreaper(true)?;
        Scope::Subreaper
    };
    // SIGCHLD arrives as a readable file, so that one thread waits for both the manager's
    // requests and its children: then nothing can reap a child between the moment it is chosen
    // to be signalled and the signal (the one way a pid could be reused under us). std resets
    // the signal mask in the children it starts.
    let mut sigchld = SigSet::empty();
    sigchld.add(Signal::SIGCHLD);
    sigchld.thread_block()?;
    let children = SignalFd::with_flags(&sigchld, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;

    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());
    if scope == Scope::Subreaper {
        // Its own group, so that a SIGTERM reaches what it starts without leaving the group.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
    }
    let main_pid = match command.spawn() {
        Ok(child) => Pid::from_raw(child.id() as i32),
        Err(error) => {
            let name = program.to_string_lossy();
            return Ok(Report::Error(format!("could not run {name:?}: {error}")));
        }
    };
    let signal_step = |signal: Signal| {
        // Errors mean nobody is left to signal.
        let _ = match scope {
            // Every process of the namespace but the init itself.
            Scope::Namespace => kill(Pid::from_raw(-1), signal),
            // The command's group; it has not been reaped (only this thread reaps), so the
            // group id is still its. What left the group is killed when the command exits.
            Scope::Subreaper => killpg(main_pid, signal),
        };
    };

    let mut listening = true;
    let report = loop {
        let mut fds = [
            PollFd::new(children.as_fd(), PollFlags::POLLIN),
            PollFd::new(
                control.as_fd(),
                if listening {
                    PollFlags::POLLIN
                } else {
                    PollFlags::empty()
                },
            ),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => return Err(error),
        }
        let requests = fds[1].revents().unwrap_or(PollFlags::empty());
        if listening && !requests.is_empty() {
            let mut request = [0u8; 64];
            match (&*control).read(&mut request) {
                Ok(0) | Err(_) => {
                    // The manager is gone or let go of the step: nothing may outlive it.
                    listening = false;
                    signal_step(Signal::SIGKILL);
                }
                Ok(read) => {
                    for &byte in &request[..read] {
                        match byte {
                            TERMINATE => signal_step(Signal::SIGTERM),
                            KILL => signal_step(Signal::SIGKILL),
                            _ => {}
                        }
                    }
                }
            }
        }
        while children.read_signal()?.is_some() {}
        if let Some(report) = reap(main_pid)? {
            break report;
        }
    };
    if scope == Scope::Subreaper {
        kill_descendants()?;
    }
    // In a namespace, the kernel kills every other process of it as the init exits, and the
    // init's parent sees it exit only once they are all gone.
    Ok(report)
}

/// Reaps every child that has exited; how the command ended, once it has.
fn reap(main_pid: Pid) -> nix::Result<Option<Report>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main_pid => {
                return Ok(Some(Report::Exited(code)));
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == main_pid => {
                return Ok(Some(Report::Signaled(signal as i32)));
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(None),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => return Err(error),
        }
    }
}

/// Kills and reaps every descendant: as a subreaper, those are its children, orphans included,
/// and the children of a killed child become its own before that child can be reaped. Each
/// round kills every child there is, so even a process that keeps forking runs out.
fn kill_descendants() -> nix::Result<()> {
    loop {
        for child in children_of(Pid::this()) {
            // A child this thread has not reaped: its pid cannot have been reused.
            let _ = kill(child, Signal::SIGKILL);
        }
        match waitpid(None, None) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}

/// The pids whose parent is `parent`, this single-threaded process: from its thread's
/// `children` file where the kernel has one (`CONFIG_PROC_CHILDREN`), else from every
/// process's `stat`.
fn children_of(parent: Pid) -> Vec<Pid> {
    let listed = format!("/proc/{parent}/task/{parent}/children");
    if let Ok(children) = std::fs::read_to_string(listed) {
        return children
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .map(Pid::from_raw)
            .collect();
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| parent_of(pid) == Some(parent.as_raw()))
        .map(Pid::from_raw)
        .collect()
}

/// The parent of `pid`, from `/proc/<pid>/stat`: the fourth field, counted after the command
/// name, which is in parentheses and may hold spaces and parentheses of its own.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{Report, parent_of};

    #[test]
    fn a_report_reads_back_as_itself() {
        for report in [
            Report::Exited(0),
            Report::Exited(143),
            Report::Signaled(9),
            Report::Error("could not run \"x\": not\nfound".into()),
        ] {
            let read = Report::parse(&report.line()).unwrap();
            match (&report, &read) {
                (Report::Error(_), Report::Error(message)) => {
                    assert_eq!(message, "could not run \"x\": not found");
                }
                _ => assert_eq!(read, report),
            }
        }
        assert_eq!(Report::parse("exit x\n"), None);
        assert_eq!(Report::parse(""), None);
    }

    #[test]
    fn the_parent_is_read_after_the_command_name() {
        assert_eq!(
            parent_of(std::process::id() as i32),
            Some(nix::unistd::getppid().as_raw())
        );
    }
}
