//! A plain future as a supervised child (`ChildSpec::task`, Elixir's `{Task, fun}`), and
//! unsupervised tasks (`otp_core::task::start`).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use otp_core::gen_server::BoxError;
use otp_core::monitor::monitor;
use otp_core::supervisor::{
    ChildSpec, ChildStatus, Restart, Strategy, SupFlags, Supervisor, SupervisorEvent,
};
use otp_core::testing::EventLog;
use otp_core::{ExitReason, task};
use support::{WAIT, next_event_matching};

fn exited_with(event: &SupervisorEvent) -> Option<ExitReason> {
    match event {
        SupervisorEvent::ChildExited { reason, .. } => Some(reason.clone()),
        _ => None,
    }
}

/// A task child that ends as `end` says for its first two starts (0-based), panics on the
/// third and runs until stopped from the fourth on.
fn counting_task(
    id: &'static str,
    starts: &Arc<AtomicUsize>,
    end: fn(usize) -> Result<(), BoxError>,
) -> ChildSpec {
    let starts = starts.clone();
    ChildSpec::task(id, move || {
        let n = starts.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::task::yield_now().await;
            match n {
                0 | 1 => end(n),
                2 => panic!("third start panics"),
                _ => std::future::pending().await,
            }
        }
    })
}

#[tokio::test]
async fn a_permanent_task_child_is_restarted_whether_it_returns_fails_or_panics() {
    let starts = Arc::new(AtomicUsize::new(0));
    let spec = counting_task("t", &starts, |n| match n {
        0 => Ok(()),
        _ => Err("failed".into()),
    })
    .restart(Restart::Permanent);
    let tree = Supervisor::start(
        SupFlags::new(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(5))
            .unwrap(),
        vec![spec],
    )
    .await
    .unwrap();
    let mut events = tree.subscribe();
    let mut reasons = Vec::new();
    for _ in 0..3 {
        let event = next_event_matching(&mut events, |e| exited_with(e).is_some()).await;
        reasons.push(exited_with(&event).unwrap().to_string());
    }
    assert_eq!(reasons[0], ExitReason::Normal.to_string());
    assert!(reasons[1].contains("failed"), "{reasons:?}");
    assert!(reasons[2].contains("third start panics"), "{reasons:?}");
    next_event_matching(&mut events, |e| {
        matches!(e, SupervisorEvent::ChildRestarted { .. })
    })
    .await;
    assert_eq!(starts.load(Ordering::SeqCst), 4);
    tree.stop(WAIT).await.unwrap();
}

#[tokio::test]
async fn a_task_child_is_temporary_by_default_and_forgotten_when_it_ends() {
    let starts = Arc::new(AtomicUsize::new(0));
    let spec = counting_task("t", &starts, |_| Err("once".into()));
    assert_eq!(spec.get_restart(), Restart::Temporary);
    let tree = Supervisor::start(SupFlags::new(Strategy::OneForOne), vec![spec])
        .await
        .unwrap();
    let mut events = tree.subscribe();
    next_event_matching(&mut events, |e| exited_with(e).is_some()).await;
    assert_eq!(tree.count_children().await.unwrap().specs, 0);
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    tree.stop(WAIT).await.unwrap();
}

#[tokio::test]
async fn a_transient_task_child_that_returns_ok_stays_down() {
    let starts = Arc::new(AtomicUsize::new(0));
    let spec = counting_task("t", &starts, |_| Ok(())).restart(Restart::Transient);
    let tree = Supervisor::start(SupFlags::new(Strategy::OneForOne), vec![spec])
        .await
        .unwrap();
    let mut events = tree.subscribe();
    let event = next_event_matching(&mut events, |e| exited_with(e).is_some()).await;
    assert_eq!(exited_with(&event), Some(ExitReason::Normal));
    let children = tree.which_children().await.unwrap();
    assert_eq!(children[0].status, ChildStatus::Undefined);
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    tree.stop(WAIT).await.unwrap();
}

/// Logs `dropped` when the task that owns it is ended.
struct DropLog(EventLog);

impl Drop for DropLog {
    fn drop(&mut self) {
        self.0.push("dropped");
    }
}

#[tokio::test]
async fn stopping_the_supervisor_ends_a_task_child_at_its_await_and_drops_what_it_owned() {
    let log = EventLog::new();
    let spec = {
        let log = log.clone();
        ChildSpec::task("blocking", move || {
            let owned = DropLog(log.clone());
            log.push("started");
            async move {
                let _owned = owned;
                std::future::pending::<()>().await;
                Ok(())
            }
        })
        .restart(Restart::Permanent)
    };
    let tree = Supervisor::start(SupFlags::new(Strategy::OneForOne), vec![spec])
        .await
        .unwrap();
    log.wait_for("started", WAIT).await;
    let ChildStatus::Running(pid) = tree.which_children().await.unwrap()[0].status else {
        panic!("the task child runs");
    };
    let watcher = monitor(pid);
    tree.stop(WAIT).await.unwrap();
    let down = tokio::time::timeout(WAIT, watcher).await.unwrap();
    assert_eq!(down.reason, ExitReason::Shutdown);
    assert_eq!(log.count("dropped"), 1);
}

#[tokio::test]
async fn a_task_function_that_panics_before_returning_its_future_fails_that_start_only() {
    let log = EventLog::new();
    let sibling = {
        let log = log.clone();
        ChildSpec::task("sibling", move || {
            log.push("sibling");
            std::future::pending()
        })
    };
    let panicking = ChildSpec::task(
        "panicking",
        || -> std::future::Ready<Result<(), BoxError>> { panic!("no future") },
    );
    let started =
        Supervisor::start(SupFlags::new(Strategy::OneForOne), vec![sibling, panicking]).await;
    let error = started.unwrap_err().to_string();
    assert!(error.contains("no future"), "{error}");
    assert_eq!(log.count("sibling"), 1);
}

#[tokio::test]
async fn an_unsupervised_task_reports_its_exit_reason_to_monitors() {
    let ok = task::start(async { Ok(()) }).unwrap();
    let failed = task::start(async { Err("bad".into()) }).unwrap();
    let blocked = task::start(std::future::pending()).unwrap();
    let (ok_down, failed_down) = (ok.monitor(), failed.monitor());
    assert_eq!(
        tokio::time::timeout(WAIT, ok_down).await.unwrap().reason,
        ExitReason::Normal
    );
    let reason = tokio::time::timeout(WAIT, failed_down)
        .await
        .unwrap()
        .reason;
    assert!(reason.to_string().contains("bad"), "{reason}");
    assert!(blocked.is_alive());
    let blocked_down = blocked.monitor();
    otp_core::process::exit(blocked.pid(), ExitReason::Killed);
    assert_eq!(
        tokio::time::timeout(WAIT, blocked_down)
            .await
            .unwrap()
            .reason,
        ExitReason::Killed
    );
    assert!(!blocked.is_alive());
}

#[test]
fn starting_a_task_outside_a_runtime_is_a_typed_error() {
    let started = task::start(async { Ok(()) });
    assert_eq!(
        started.unwrap_err(),
        otp_core::gen_server::StartError::NoRuntime
    );
}
