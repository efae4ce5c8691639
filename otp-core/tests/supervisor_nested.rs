//! Supervision trees: escalation when a child supervisor gives up, names surviving restarts,
//! and terminate under a supervisor (specification NEST-01..04, REG-09, GS-10 d/f).

mod support;

use std::time::Duration;

use otp_core::gen_server::{GenServer, StartOptions};
use otp_core::registry::Registry;
use otp_core::supervisor::{
    ChildCounts, ChildSpec, ChildStatus, Restart, Shutdown, Strategy, SupFlags, Supervisor,
    SupervisorEvent,
};
use otp_core::testing::{EventLog, assert_down};
use otp_core::{ExitReason, ServerRef};
use support::WAIT;
use support::child::{Probes, Worker, WorkerArgs};

fn flags(max_restarts: u32) -> SupFlags {
    SupFlags::new(Strategy::OneForOne)
        .intensity(max_restarts, Duration::from_secs(3600))
        .unwrap()
}

fn child_supervisor(probes: &Probes, id: &str, restart: Restart) -> ChildSpec {
    let w = probes.worker("w").spec();
    let log = probes.log.clone();
    let label = id.to_string();
    ChildSpec::supervisor(id, move || {
        let w = w.clone();
        let log = log.clone();
        let label = label.clone();
        async move {
            let sup = Supervisor::start(flags(1), vec![w]).await?;
            log.push(format!("start({label})"));
            let exit_log = log.clone();
            otp_core::testing::on_exit(sup.pid(), move |reason| {
                exit_log.push(format!("exit({label}, {reason})"))
            });
            Ok::<_, otp_core::supervisor::SupervisorStartError>(sup)
        }
    })
    .restart(restart)
}

// OTP: NEST-01; supervisor_SUITE tree
#[tokio::test]
async fn a_child_supervisor_that_gives_up_is_restarted_with_a_fresh_subtree() {
    let probes = Probes::new();
    let parent = Supervisor::start(
        flags(5),
        vec![
            child_supervisor(&probes, "C", Restart::Permanent),
            probes.worker("s").spec(),
        ],
    )
    .await
    .unwrap();
    let mut events = parent.subscribe();
    let s = probes.pid("s");
    probes.crash("w");
    probes.wait_for("start(w#2)").await;
    probes.crash("w");
    probes.wait_for("start(w#3)").await;
    let log = probes.events();
    let tail: Vec<&String> = log
        .iter()
        .skip_while(|e| *e != "exit(w#2, error: crash)")
        .collect();
    assert_eq!(
        tail,
        [
            "exit(w#2, error: crash)",
            "exit(C, shutdown)",
            "start(w#3)",
            "start(C)"
        ]
    );
    assert_eq!(probes.pid("s"), s);
    assert!(parent.is_alive());
    assert_eq!(
        parent.count_children().await.unwrap(),
        ChildCounts {
            specs: 2,
            active: 2,
            supervisors: 1,
            workers: 1
        }
    );
    // The parent reported the escalation as a child exit with reason shutdown, then a restart.
    let exited = support::next_event(&mut events, "child_exited of C", |event| match event {
        SupervisorEvent::ChildExited { child, reason, .. } if child.as_deref() == Some("C") => {
            Some(reason)
        }
        _ => None,
    })
    .await;
    assert_eq!(exited, ExitReason::Shutdown);
    support::next_event(&mut events, "child_restarted of C", |event| match event {
        SupervisorEvent::ChildRestarted { child, .. } if child.as_deref() == Some("C") => Some(()),
        _ => None,
    })
    .await;
}

// OTP: NEST-03; Ex supervisor.ex "Exit reasons and restarts"
#[tokio::test]
async fn a_transient_child_supervisor_that_gives_up_is_not_restarted() {
    let probes = Probes::new();
    let parent = Supervisor::start(
        flags(5),
        vec![child_supervisor(&probes, "C", Restart::Transient)],
    )
    .await
    .unwrap();
    probes.crash("w");
    probes.wait_for("start(w#2)").await;
    probes.crash("w");
    probes.wait_for("exit(C, shutdown)").await;
    let children = parent.which_children().await.unwrap();
    assert_eq!(children[0].status, ChildStatus::Undefined);
    assert!(parent.is_alive());
    assert_eq!(probes.log.count("start(C)"), 1);
}

// OTP: NEST-04 — escalation propagates to the root
#[tokio::test]
async fn escalation_propagates_to_the_root() {
    let probes = Probes::new();
    let w = probes.worker("w").spec();
    let m_log = probes.log.clone();
    let m = ChildSpec::supervisor("M", move || {
        let w = w.clone();
        let log = m_log.clone();
        async move {
            let sup = Supervisor::start(flags(0), vec![w]).await?;
            otp_core::testing::on_exit(sup.pid(), move |reason| {
                log.push(format!("exit(M, {reason})"))
            });
            Ok::<_, otp_core::supervisor::SupervisorStartError>(sup)
        }
    });
    let top = Supervisor::start(flags(0), vec![m]).await.unwrap();
    let top_log = probes.log.clone();
    otp_core::testing::on_exit(top.pid(), move |reason| {
        top_log.push(format!("exit(T, {reason})"))
    });
    let down = top.monitor();
    probes.crash("w");
    assert_down(down, ExitReason::Shutdown, WAIT).await;
    let exits: Vec<String> = probes
        .events()
        .into_iter()
        .filter(|e| e.starts_with("exit("))
        .collect();
    assert_eq!(
        exits,
        [
            "exit(w#1, error: crash)",
            "exit(M, shutdown)",
            "exit(T, shutdown)"
        ]
    );
    assert_eq!(probes.log.count("start(w#2)"), 0);
}

// OTP: REG-09; Ex supervisor_test "start_link/2" (:dyn_stack restarted, called by name)
#[tokio::test]
async fn a_named_child_is_found_under_the_same_name_after_a_restart() {
    let log = EventLog::new();
    let names: Registry<String, ServerRef<Worker>> = Registry::start().await.unwrap();
    let via = names.via("counter".to_string());
    let spec_via = via.clone();
    let spec_log = log.clone();
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let spec = ChildSpec::new("named", move || {
        let via = spec_via.clone();
        let log = spec_log.clone();
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        async move {
            Worker::start_with(
                WorkerArgs::for_test(&format!("named#{n}"), &log),
                StartOptions::new().name(via),
            )
            .await
        }
    });
    let sup = Supervisor::start(flags(5), vec![spec]).await.unwrap();
    let mut events = sup.subscribe();
    assert_eq!(via.call(()).await.unwrap(), "named#1");
    via.cast(support::child::Command::Crash).unwrap();
    // Wait for the restart event instead of polling.
    support::next_event(&mut events, "child_restarted", |event| match event {
        SupervisorEvent::ChildRestarted { .. } => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(via.call(()).await.unwrap(), "named#2");
}

// OTP: GS-10 (d) and (f): terminate under a supervisor's graceful shutdown, not on brutal_kill
#[tokio::test]
async fn a_graceful_child_runs_terminate_on_supervisor_shutdown_but_not_on_brutal_kill() {
    let probes = Probes::new();
    let sup = Supervisor::start(
        flags(5),
        vec![
            probes.worker("graceful").graceful(Duration::ZERO).spec(),
            probes
                .worker("brutal")
                .graceful(Duration::ZERO)
                .shutdown(Shutdown::BrutalKill)
                .spec(),
        ],
    )
    .await
    .unwrap();
    sup.stop(WAIT).await.unwrap();
    assert_eq!(
        &probes.events()[2..],
        [
            "exit(brutal#1, killed)",
            "terminate(graceful#1, shutdown)",
            "exit(graceful#1, shutdown)"
        ]
    );
}
