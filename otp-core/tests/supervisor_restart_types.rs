//! Restart type × exit reason on a static one_for_one supervisor (specification RST-01..05,
//! `supervisor_SUITE` groups permanent_*, transient_*, temporary_*).

mod support;

use std::time::Duration;

use otp_core::ExitReason;
use otp_core::supervisor::{
    ChildCounts, ChildStatus, ChildType, Restart, RestartChildError, StartChildError, Strategy,
    SupFlags, Supervisor,
};
use support::child::Probes;

fn flags() -> SupFlags {
    // High intensity, so it never interferes.
    SupFlags::new(Strategy::OneForOne)
        .intensity(100, Duration::from_secs(3600))
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

fn reasons() -> Vec<ExitReason> {
    vec![
        ExitReason::Normal,
        ExitReason::Shutdown,
        ExitReason::shutdown_with("info"),
    ]
}

// OTP: RST-01; supervisor_SUITE permanent_normal, permanent_shutdown, permanent_abnormal
#[tokio::test]
async fn permanent_child_is_restarted_after_every_exit_reason() {
    let probes = Probes::new();
    let sup = Supervisor::start(flags(), vec![probes.worker("c").spec()])
        .await
        .unwrap();
    let mut incarnation = 1;
    for reason in reasons() {
        let old = probes.pid("c");
        probes.exit("c", reason);
        incarnation += 1;
        probes.wait_for(&format!("start(c#{incarnation})")).await;
        assert_ne!(probes.pid("c"), old);
        assert_eq!(sup.count_children().await.unwrap(), counts(1, 1, 0, 1));
    }
    probes.crash("c");
    probes.wait_for("start(c#5)").await;
    probes.kill("c");
    probes.wait_for("start(c#6)").await;
    assert_eq!(sup.count_children().await.unwrap(), counts(1, 1, 0, 1));
}

// OTP: RST-02; supervisor_SUITE transient_normal
#[tokio::test]
async fn transient_child_exiting_normal_is_not_restarted_and_its_spec_is_kept() {
    let probes = Probes::new();
    let spec = probes.worker("c").restart(Restart::Transient).spec();
    let sup = Supervisor::start(flags(), vec![spec.clone()])
        .await
        .unwrap();
    probes.exit("c", ExitReason::Normal);
    probes.wait_for("exit(c#1, normal)").await;
    // Any call is handled after the exit: the supervisor has decided by now.
    let children = sup.which_children().await.unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].status, ChildStatus::Undefined);
    assert_eq!(children[0].child_type, ChildType::Worker);
    assert_eq!(sup.count_children().await.unwrap(), counts(1, 0, 0, 1));
    assert!(!probes.events().contains(&"start(c#2)".to_string()));
    assert_eq!(
        sup.start_child(spec).await,
        Err(StartChildError::AlreadyPresent)
    );
    assert!(sup.restart_child("c").await.unwrap().is_some());
}

// OTP: RST-03; supervisor_SUITE transient_shutdown
#[tokio::test]
async fn transient_child_exiting_shutdown_or_shutdown_with_is_not_restarted() {
    let probes = Probes::new();
    let sup = Supervisor::start(
        flags(),
        vec![probes.worker("c").restart(Restart::Transient).spec()],
    )
    .await
    .unwrap();
    probes.exit("c", ExitReason::Shutdown);
    probes.wait_for("exit(c#1, shutdown)").await;
    assert_eq!(sup.count_children().await.unwrap(), counts(1, 0, 0, 1));
    sup.restart_child("c").await.unwrap();
    probes.exit("c", ExitReason::shutdown_with("x"));
    probes.wait_for("exit(c#2, shutdown: x)").await;
    assert_eq!(sup.count_children().await.unwrap(), counts(1, 0, 0, 1));
    assert!(sup.is_alive());
    assert_eq!(probes.log.count("start(c#3)"), 0);
}

// OTP: RST-04; supervisor_SUITE transient_abnormal
#[tokio::test]
async fn transient_child_is_restarted_after_a_crash_or_a_kill() {
    let probes = Probes::new();
    let sup = Supervisor::start(
        flags(),
        vec![probes.worker("c").restart(Restart::Transient).spec()],
    )
    .await
    .unwrap();
    probes.crash("c");
    probes.wait_for("start(c#2)").await;
    probes.kill("c");
    probes.wait_for("start(c#3)").await;
    assert_eq!(sup.count_children().await.unwrap(), counts(1, 1, 0, 1));
}

// OTP: RST-05; supervisor_SUITE temporary_*, do_not_save_child_specs_for_temporary_children
#[tokio::test]
async fn temporary_child_is_never_restarted_and_its_spec_is_removed() {
    let probes = Probes::new();
    let sup = Supervisor::start(flags(), vec![]).await.unwrap();
    let spec = probes.worker("c").restart(Restart::Temporary).spec();
    let mut n = 0;
    for reason in reasons()
        .into_iter()
        .chain([ExitReason::error("crash"), ExitReason::Killed])
    {
        sup.start_child(spec.clone()).await.unwrap();
        n += 1;
        match &reason {
            ExitReason::Killed => probes.kill("c"),
            ExitReason::Error(_) => probes.crash("c"),
            _ => probes.exit("c", reason.clone()),
        }
        probes.wait_for(&format!("exit(c#{n}, {reason})")).await;
        assert!(sup.which_children().await.unwrap().is_empty());
        assert_eq!(sup.count_children().await.unwrap(), counts(0, 0, 0, 0));
    }
    // Not restarted, ever.
    assert_eq!(probes.log.count(&format!("start(c#{})", n + 1)), 0);
    // Terminated temporary children are removed too.
    sup.start_child(spec).await.unwrap();
    sup.terminate_child("c").await.unwrap();
    assert_eq!(
        sup.restart_child("c").await,
        Err(RestartChildError::NotFound)
    );
}
