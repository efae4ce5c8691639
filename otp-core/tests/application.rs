//! Application: run a root supervisor until asked to stop or until the root gives up; stop
//! the whole tree in order; report an exit status.

mod support;

use std::time::Duration;

use otp_core::ExitReason;
use otp_core::application::{AppExit, Application};
use otp_core::supervisor::{Strategy, SupFlags, Supervisor, SupervisorStartError};
use support::child::{Probes, Script};
use tokio::sync::oneshot;

fn flags(max_restarts: u32) -> SupFlags {
    SupFlags::new(Strategy::OneForOne)
        .intensity(max_restarts, Duration::from_secs(3600))
        .unwrap()
}

#[tokio::test]
async fn stopping_an_application_stops_the_tree_in_order_and_succeeds() {
    let probes = Probes::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let p = probes.clone();
    let run = tokio::spawn(Application::run_until(
        move || {
            Supervisor::start(
                flags(3),
                vec![
                    p.worker("a").graceful(Duration::ZERO).spec(),
                    p.worker("b").graceful(Duration::ZERO).spec(),
                ],
            )
        },
        async {
            let _ = stopped.await;
        },
    ));
    probes.wait_for("start(b#1)").await;
    stop.send(()).unwrap();
    let outcome = run.await.unwrap();
    assert_eq!(outcome, AppExit::Stopped);
    assert!(outcome.is_success());
    assert_eq!(
        &probes.events()[2..],
        [
            "terminate(b#1, shutdown)",
            "exit(b#1, shutdown)",
            "terminate(a#1, shutdown)",
            "exit(a#1, shutdown)"
        ]
    );
}

#[tokio::test]
async fn an_application_whose_root_gives_up_fails() {
    let probes = Probes::new();
    let p = probes.clone();
    let run = tokio::spawn(Application::run_until(
        move || Supervisor::start(flags(0), vec![p.worker("a").spec()]),
        std::future::pending(),
    ));
    probes.wait_for("start(a#1)").await;
    probes.crash("a");
    let outcome = run.await.unwrap();
    assert_eq!(outcome, AppExit::RootExited(ExitReason::Shutdown));
    assert!(!outcome.is_success());
}

#[tokio::test]
async fn an_application_whose_root_cannot_start_fails() {
    let probes = Probes::new();
    let outcome = Application::run_until(
        || {
            Supervisor::start(
                flags(0),
                vec![probes.worker("a").script(|_| Script::Error("no")).spec()],
            )
        },
        std::future::pending(),
    )
    .await;
    assert!(matches!(
        outcome,
        AppExit::StartFailed(SupervisorStartError::FailedToStartChild { .. })
    ));
}
