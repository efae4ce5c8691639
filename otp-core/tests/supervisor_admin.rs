//! The static supervisor's administration API (specification ADM-01..07).

mod support;

use std::time::Duration;

use otp_core::gen_server::CallError;
use otp_core::supervisor::{
    ChildCounts, ChildSpec, ChildStatus, ChildType, DeleteChildError, RestartChildError,
    StartChildError, Strategy, SupFlags, Supervisor, TerminateChildError,
};
use support::child::{Probes, Script};

fn flags() -> SupFlags {
    SupFlags::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(3600))
        .unwrap()
}

fn counts(specs: usize, active: usize, supervisors: usize, workers: usize) -> ChildCounts {
    ChildCounts {
        specs,
        active,
        supervisors,
        workers,
    }
}

// OTP: ADM-01; supervisor_SUITE tree, which_children
#[tokio::test]
async fn which_children_and_count_children_report_state_and_type() {
    let probes = Probes::new();
    let inner = ChildSpec::supervisor("sup", || Supervisor::start(flags(), vec![]));
    let sup = Supervisor::start(
        flags(),
        vec![
            probes.worker("worker1").spec(),
            probes.worker("worker2").spec(),
            inner,
        ],
    )
    .await
    .unwrap();
    assert_eq!(sup.count_children().await.unwrap(), counts(3, 3, 1, 2));
    sup.terminate_child("worker1").await.unwrap();
    assert_eq!(sup.count_children().await.unwrap(), counts(3, 2, 1, 2));
    let children = sup.which_children().await.unwrap();
    // Documented: start order (D9).
    let ids: Vec<_> = children
        .iter()
        .map(|c| c.id.as_deref().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["worker1", "worker2", "sup"]);
    assert_eq!(children[0].status, ChildStatus::Undefined);
    assert_eq!(
        children[1].status,
        ChildStatus::Running(probes.pid("worker2"))
    );
    assert_eq!(children[2].child_type, ChildType::Supervisor);
}

// OTP: ADM-02; supervisor_SUITE child_adm
#[tokio::test]
async fn start_child_with_a_duplicate_id() {
    let probes = Probes::new();
    let spec = probes.worker("c").spec();
    let sup = Supervisor::start(flags(), vec![spec.clone()])
        .await
        .unwrap();
    assert_eq!(
        sup.start_child(spec.clone()).await,
        Err(StartChildError::AlreadyStarted(probes.pid("c")))
    );
    sup.terminate_child("c").await.unwrap();
    assert_eq!(
        sup.start_child(spec).await,
        Err(StartChildError::AlreadyPresent)
    );
    assert_eq!(probes.log.count("start(c#2)"), 0);
}

// OTP: ADM-03; supervisor_SUITE child_adm, extra_return
#[tokio::test]
async fn terminate_child_stops_by_policy_keeps_the_spec_and_is_idempotent() {
    let probes = Probes::new();
    let sup = Supervisor::start(flags(), vec![probes.worker("c").spec()])
        .await
        .unwrap();
    sup.terminate_child("c").await.unwrap();
    assert!(probes.events().contains(&"exit(c#1, shutdown)".to_string()));
    assert_eq!(sup.count_children().await.unwrap(), counts(1, 0, 0, 1));
    assert_eq!(sup.terminate_child("c").await, Ok(()));
    assert_eq!(
        sup.terminate_child("nope").await,
        Err(TerminateChildError::NotFound)
    );
    assert_eq!(probes.log.count("start(c#2)"), 0);
}

// OTP: ADM-04; supervisor_SUITE child_adm, sup_start_restart_child_returns_error
#[tokio::test]
async fn restart_child_results() {
    let probes = Probes::new();
    let flaky = probes.worker("f").script(|n| match n {
        1 => Script::Ok,
        2 => Script::Error("nope"),
        3 => Script::Ignore,
        _ => Script::Ok,
    });
    let sup = Supervisor::start(flags(), vec![probes.worker("c").spec(), flaky.spec()])
        .await
        .unwrap();
    assert_eq!(
        sup.restart_child("c").await,
        Err(RestartChildError::Running)
    );
    assert_eq!(
        sup.restart_child("nope").await,
        Err(RestartChildError::NotFound)
    );
    sup.terminate_child("c").await.unwrap();
    let pid = sup.restart_child("c").await.unwrap().unwrap();
    assert_eq!(pid, probes.pid("c"));

    sup.terminate_child("f").await.unwrap();
    assert!(matches!(
        sup.restart_child("f").await,
        Err(RestartChildError::Failed(_))
    ));
    let which = sup.which_children().await.unwrap();
    assert_eq!(which[1].status, ChildStatus::Undefined);
    // An ignoring start: ok, not running.
    assert_eq!(sup.restart_child("f").await, Ok(None));
    assert_eq!(
        sup.which_children().await.unwrap()[1].status,
        ChildStatus::Undefined
    );
    assert!(sup.restart_child("f").await.unwrap().is_some());
}

// OTP: ADM-04/ADM-05 restarting state — a child whose restart keeps failing
// Multi-threaded: a failed restart is retried at once, over and over, and the test must run
// beside that loop, as it does on the BEAM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_being_restarted_reports_restarting() {
    let probes = Probes::new();
    // Retries go through the supervisor's mailbox; a call queued first sees `Restarting`.
    let failing = probes.worker("a").script(|n| {
        if n == 1 {
            Script::Ok
        } else {
            Script::Error("no")
        }
    });
    let sup = Supervisor::start(
        SupFlags::new(Strategy::OneForOne)
            .intensity(100_000, Duration::from_secs(3600))
            .unwrap(),
        vec![failing.spec()],
    )
    .await
    .unwrap();
    probes.crash("a");
    probes.wait_for("failed(a#2)").await;
    let status = sup.which_children().await.unwrap()[0].status;
    assert_eq!(status, ChildStatus::Restarting);
    assert_eq!(
        sup.restart_child("a").await,
        Err(RestartChildError::Restarting)
    );
    assert_eq!(
        sup.delete_child("a").await,
        Err(DeleteChildError::Restarting)
    );
    // Terminating it cancels the retries.
    sup.terminate_child("a").await.unwrap();
    let attempts = probes
        .events()
        .iter()
        .filter(|e| e.starts_with("failed("))
        .count();
    // Any retry queued before the termination is handled before this call, and does nothing.
    let _ = sup.count_children().await.unwrap();
    assert_eq!(
        probes
            .events()
            .iter()
            .filter(|e| e.starts_with("failed("))
            .count(),
        attempts
    );
    assert_eq!(
        sup.which_children().await.unwrap()[0].status,
        ChildStatus::Undefined
    );
}

// OTP: ADM-05; supervisor_SUITE child_adm; Ex supervisor_test "child life cycle"
#[tokio::test]
async fn delete_child_removes_only_stopped_children() {
    let probes = Probes::new();
    let spec = probes.worker("c").spec();
    let sup = Supervisor::start(flags(), vec![spec.clone()])
        .await
        .unwrap();
    assert_eq!(sup.delete_child("c").await, Err(DeleteChildError::Running));
    sup.terminate_child("c").await.unwrap();
    assert_eq!(sup.delete_child("c").await, Ok(()));
    assert_eq!(
        sup.restart_child("c").await,
        Err(RestartChildError::NotFound)
    );
    assert_eq!(sup.count_children().await.unwrap(), counts(0, 0, 0, 0));
    assert_eq!(sup.delete_child("c").await, Err(DeleteChildError::NotFound));
    assert!(sup.start_child(spec).await.unwrap().is_some());
}

// OTP: ADM-07; supervisor_SUITE child_adm ({'EXIT',{noproc,…}})
#[tokio::test]
async fn operations_on_a_stopped_supervisor_fail_with_noproc() {
    let probes = Probes::new();
    let sup = Supervisor::start(flags(), vec![]).await.unwrap();
    sup.stop(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        sup.start_child(probes.worker("c").spec()).await,
        Err(StartChildError::NoProc)
    );
    assert_eq!(
        sup.terminate_child("c").await,
        Err(TerminateChildError::NoProc)
    );
    assert_eq!(sup.restart_child("c").await, Err(RestartChildError::NoProc));
    assert_eq!(sup.delete_child("c").await, Err(DeleteChildError::NoProc));
    assert_eq!(sup.which_children().await, Err(CallError::NoProc));
    assert_eq!(sup.count_children().await, Err(CallError::NoProc));
    assert!(probes.events().is_empty());
}

// An event stream ends once its supervisor has exited and its last events are read, even while
// a handle to the supervisor is still held (`while let Ok(event) = events.next().await` used to
// hang)
#[tokio::test]
async fn an_event_stream_is_closed_after_its_supervisor_exits() {
    use otp_core::dynamic_supervisor::{DynamicSupervisor, DynamicSupervisorOptions};
    use otp_core::supervisor::{EventStreamError, SupervisorEvent};

    let probes = Probes::new();
    let sup = Supervisor::start(flags(), vec![]).await.unwrap();
    let mut events = sup.subscribe();
    sup.start_child(probes.worker("a").spec()).await.unwrap();
    sup.stop(Duration::from_secs(5)).await.unwrap();
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.next().await {
                Ok(event) => seen.push(event),
                Err(error) => break error,
            }
        }
    })
    .await
    .expect("the stream of an exited supervisor never closed");
    assert_eq!(closed, EventStreamError::Closed);
    assert!(matches!(seen[0], SupervisorEvent::ChildStarted { .. }));
    assert!(matches!(
        seen.last(),
        Some(SupervisorEvent::ChildExited { .. })
    ));
    // Subscribing after the exit gives a stream that is closed at once.
    assert_eq!(sup.subscribe().next().await, Err(EventStreamError::Closed));

    let dynamic = DynamicSupervisor::start(DynamicSupervisorOptions::default())
        .await
        .unwrap();
    let mut events = dynamic.subscribe();
    dynamic.stop(Duration::from_secs(5)).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("the stream of an exited dynamic supervisor never closed");
    assert_eq!(next, Err(EventStreamError::Closed));
}
