//! Ordered start, start failures, and reverse-order shutdown with brutal_kill / timeout /
//! infinity (specification SHD-01..05, SHD-08, INIT-01..03, INIT-05). Paused clock.

mod support;

use std::time::Duration;

use otp_core::ExitReason;
use otp_core::gen_server::{GenServer, StartError, StopError};
use otp_core::registry::Registry;
use otp_core::supervisor::{
    ChildCounts, ChildSpec, Restart, Shutdown, SpecError, StartChildError, Strategy, SupFlags,
    Supervisor, SupervisorStartError,
};
use otp_core::testing::{assert_down, await_down};
use support::WAIT;
use support::child::{Probes, Script};
use tokio::time::Instant;

fn flags() -> SupFlags {
    SupFlags::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(3600))
        .unwrap()
}

// OTP: SHD-01; supervisor_SUITE order_of_children; supervisor.erl shutdown/1
#[tokio::test(start_paused = true)]
async fn shutdown_stops_children_in_reverse_start_order_one_at_a_time() {
    let probes = Probes::new();
    let slow = |id: &str| {
        probes
            .worker(id)
            .graceful(Duration::from_millis(200))
            .spec()
    };
    let sup = Supervisor::start(flags(), vec![slow("a"), slow("b"), slow("c")])
        .await
        .unwrap();
    let started = Instant::now();
    sup.stop(WAIT).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(
        &probes.events()[3..],
        [
            "terminate(c#1, shutdown)",
            "exit(c#1, shutdown)",
            "terminate(b#1, shutdown)",
            "exit(b#1, shutdown)",
            "terminate(a#1, shutdown)",
            "exit(a#1, shutdown)"
        ]
    );
}

// OTP: SHD-02; supervisor_SUITE sup_stop_timeout
#[tokio::test(start_paused = true)]
async fn a_child_that_outlives_its_shutdown_timeout_is_killed_and_shutdown_continues() {
    let probes = Probes::new();
    let a = probes
        .worker("a")
        .graceful(Duration::ZERO)
        .shutdown(Shutdown::Timeout(Duration::from_millis(1000)));
    let b = probes
        .worker("b")
        .stubborn()
        .shutdown(Shutdown::Timeout(Duration::from_millis(300)));
    let sup = Supervisor::start(flags(), vec![a.spec(), b.spec()])
        .await
        .unwrap();
    let down = sup.monitor();
    let t0 = Instant::now();
    let (b_killed_at, _) = tokio::join!(
        async {
            probes.wait_for("exit(b#1, killed)").await;
            t0.elapsed()
        },
        sup.stop(WAIT)
    );
    assert!(b_killed_at >= Duration::from_millis(300) && b_killed_at < Duration::from_millis(1300));
    assert_eq!(
        &probes.events()[2..],
        [
            "stopping(b#1, shutdown)",
            "exit(b#1, killed)",
            "terminate(a#1, shutdown)",
            "exit(a#1, shutdown)"
        ]
    );
    assert_down(down, ExitReason::Shutdown, WAIT).await;
}

// OTP: SHD-03; supervisor_SUITE sup_stop_brutal_kill
#[tokio::test(start_paused = true)]
async fn brutal_kill_kills_at_once_and_terminate_never_runs() {
    let probes = Probes::new();
    let a = probes.worker("a").graceful(Duration::ZERO);
    let b = probes
        .worker("b")
        .graceful(Duration::ZERO)
        .shutdown(Shutdown::BrutalKill);
    let sup = Supervisor::start(flags(), vec![a.spec(), b.spec()])
        .await
        .unwrap();
    sup.stop(WAIT).await.unwrap();
    assert_eq!(
        &probes.events()[2..],
        [
            "exit(b#1, killed)",
            "terminate(a#1, shutdown)",
            "exit(a#1, shutdown)"
        ]
    );
}

// OTP: SHD-04; supervisor_SUITE sup_stop_infinity
#[tokio::test(start_paused = true)]
async fn infinity_waits_as_long_as_the_child_needs() {
    let probes = Probes::new();
    let a = probes
        .worker("a")
        .graceful(Duration::from_millis(1500))
        .shutdown(Shutdown::Infinity);
    let b = probes
        .worker("b")
        .graceful(Duration::from_millis(1500))
        .shutdown(Shutdown::Timeout(Duration::from_millis(500)));
    let sup = Supervisor::start(flags(), vec![a.spec(), b.spec()])
        .await
        .unwrap();
    let t0 = Instant::now();
    sup.stop(WAIT).await.unwrap();
    assert_eq!(
        &probes.events()[2..],
        [
            "exit(b#1, killed)",
            "terminate(a#1, shutdown)",
            "exit(a#1, shutdown)"
        ]
    );
    assert_eq!(t0.elapsed(), Duration::from_millis(2000));
}

// OTP: SHD-05 — nested shutdown: the child supervisor's whole subtree first
#[tokio::test(start_paused = true)]
async fn a_child_supervisor_stops_its_subtree_before_the_parent_continues() {
    let probes = Probes::new();
    let inner = {
        let x = probes
            .worker("x")
            .graceful(Duration::from_millis(50))
            .spec();
        let y = probes
            .worker("y")
            .graceful(Duration::from_millis(50))
            .spec();
        ChildSpec::supervisor("s1", move || {
            Supervisor::start(flags(), vec![x.clone(), y.clone()])
        })
    };
    let w = probes.worker("w").graceful(Duration::ZERO).spec();
    let top = Supervisor::start(flags(), vec![inner, w]).await.unwrap();
    top.stop(WAIT).await.unwrap();
    let exits: Vec<String> = probes
        .events()
        .into_iter()
        .filter(|e| e.starts_with("exit("))
        .collect();
    assert_eq!(
        exits,
        [
            "exit(w#1, shutdown)",
            "exit(y#1, shutdown)",
            "exit(x#1, shutdown)"
        ]
    );
}

// OTP: SHD-08; Ex supervisor.ex stop/3 ("Synchronously stops")
#[tokio::test(start_paused = true)]
async fn stop_is_synchronous_and_a_second_stop_is_noproc() {
    let probes = Probes::new();
    let g = |id: &str| probes.worker(id).graceful(Duration::from_millis(10)).spec();
    let sup = Supervisor::start(flags(), vec![g("a"), g("b"), g("c")])
        .await
        .unwrap();
    sup.stop(WAIT).await.unwrap();
    assert_eq!(
        probes
            .events()
            .iter()
            .filter(|e| e.starts_with("exit("))
            .count(),
        3
    );
    assert!(!sup.is_alive());
    assert_eq!(sup.stop(WAIT).await, Err(StopError::NoProc));
}

// OTP: INIT-01; supervisor.erl start_link/3 doc; supervisor_SUITE faulty_application_shutdown
#[tokio::test(start_paused = true)]
async fn a_failing_child_tears_down_the_started_ones_in_reverse_and_fails_the_start() {
    let probes = Probes::new();
    let result = Supervisor::start(
        flags(),
        vec![
            probes.worker("c1").graceful(Duration::ZERO).spec(),
            probes.worker("c2").graceful(Duration::ZERO).spec(),
            probes.worker("c3").script(|_| Script::Error("boom")).spec(),
            probes.worker("c4").spec(),
        ],
    )
    .await;
    match result {
        Err(SupervisorStartError::FailedToStartChild { id, error }) => {
            assert_eq!(id, "c3");
            support::assert_same(error, StartError::InitFailed(ExitReason::error("boom")));
        }
        other => panic!("expected FailedToStartChild, got {other:?}"),
    }
    assert_eq!(
        probes.events(),
        [
            "start(c1#1)",
            "start(c2#1)",
            "failed(c3#1)",
            "terminate(c2#1, shutdown)",
            "exit(c2#1, shutdown)",
            "terminate(c1#1, shutdown)",
            "exit(c1#1, shutdown)"
        ]
    );
}

// OTP: INIT-02; supervisor_SUITE sup_start_ignore_child, sup_start_ignore_temporary_child
#[tokio::test]
async fn an_ignored_child_does_not_fail_the_start() {
    let probes = Probes::new();
    let sup = Supervisor::start(
        flags(),
        vec![
            probes
                .worker("ignored")
                .script(|n| if n == 1 { Script::Ignore } else { Script::Ok })
                .spec(),
            probes.worker("ok").spec(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        sup.count_children().await.unwrap(),
        ChildCounts {
            specs: 2,
            active: 1,
            supervisors: 0,
            workers: 2
        }
    );
    assert!(sup.restart_child("ignored").await.unwrap().is_some());

    let probes = Probes::new();
    let sup = Supervisor::start(
        flags(),
        vec![
            probes
                .worker("t")
                .restart(Restart::Temporary)
                .script(|_| Script::Ignore)
                .spec(),
            probes.worker("ok").spec(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        sup.count_children().await.unwrap(),
        ChildCounts {
            specs: 1,
            active: 1,
            supervisors: 0,
            workers: 1
        }
    );
}

// OTP: INIT-03; supervisor_SUITE sup_start_child_returns_error, already_started_outside_supervisor
#[tokio::test]
async fn start_child_whose_init_fails_returns_the_error_and_keeps_nothing() {
    let probes = Probes::new();
    let sup = Supervisor::start(flags(), vec![]).await.unwrap();
    let failed = sup
        .start_child(probes.worker("c").script(|_| Script::Error("boom")).spec())
        .await;
    support::assert_same(
        failed,
        Err(StartChildError::Failed(StartError::InitFailed(
            ExitReason::error("boom"),
        ))),
    );
    let crashed = sup
        .start_child(probes.worker("d").script(|_| Script::Panic).spec())
        .await;
    assert!(matches!(
        crashed,
        Err(StartChildError::Failed(StartError::InitFailed(
            ExitReason::Panic(_)
        )))
    ));
    assert_eq!(sup.count_children().await.unwrap(), ChildCounts::default());

    // A name held elsewhere: already_started(holder), unwrapped.
    let names: Registry<String, otp_core::ServerRef<support::child::Worker>> =
        Registry::start().await.unwrap();
    let log = probes.log.clone();
    let holder = support::child::Worker::start_with(
        support::child::WorkerArgs::for_test("holder", &log),
        otp_core::gen_server::StartOptions::new().name(names.via("n".to_string())),
    )
    .await
    .unwrap();
    let via = names.via("n".to_string());
    let named = ChildSpec::new("named", move || {
        let via = via.clone();
        let log = log.clone();
        async move {
            support::child::Worker::start_with(
                support::child::WorkerArgs::for_test("named", &log),
                otp_core::gen_server::StartOptions::new().name(via),
            )
            .await
        }
    });
    assert_eq!(
        sup.start_child(named).await,
        Err(StartChildError::AlreadyStarted(holder.pid()))
    );
    assert!(sup.is_alive());
}

// OTP: INIT-05; supervisor_SUITE sup_flags, child_specs (duplicate_child_name)
#[tokio::test]
async fn invalid_flags_and_specs_are_rejected_before_anything_starts() {
    assert_eq!(
        SupFlags::new(Strategy::OneForOne).intensity(1, Duration::ZERO),
        Err(SpecError::ZeroPeriod)
    );
    let probes = Probes::new();
    let duplicate = Supervisor::start(
        flags(),
        vec![probes.worker("a").spec(), probes.worker("a").spec()],
    )
    .await;
    assert!(
        matches!(duplicate, Err(SupervisorStartError::InvalidSpec(SpecError::DuplicateId(id))) if id == "a")
    );
    let zero = Supervisor::start(
        flags(),
        vec![
            probes
                .worker("b")
                .shutdown(Shutdown::Timeout(Duration::ZERO))
                .spec(),
        ],
    )
    .await;
    assert!(matches!(
        zero,
        Err(SupervisorStartError::InvalidSpec(
            SpecError::ZeroShutdownTimeout(_)
        ))
    ));
    assert!(
        probes.events().is_empty(),
        "nothing may start: {:?}",
        probes.events()
    );
    let sup = Supervisor::start(flags(), vec![]).await.unwrap();
    let bad_child = sup
        .start_child(
            probes
                .worker("c")
                .shutdown(Shutdown::Timeout(Duration::ZERO))
                .spec(),
        )
        .await;
    assert!(matches!(bad_child, Err(StartChildError::InvalidSpec(_))));
}

// OTP: Rust-specific — a start function that panics is that child's failure, not the supervisor's
#[tokio::test]
async fn a_panicking_start_function_fails_only_that_child() {
    let sup = Supervisor::start(flags(), vec![]).await.unwrap();
    let spec = ChildSpec::new("p", || async {
        panic!("start fn broke");
        #[allow(unreachable_code)]
        Err::<otp_core::ServerRef<support::child::Worker>, _>(StartError::Ignored)
    });
    let result = sup.start_child(spec).await;
    assert!(matches!(
        result,
        Err(StartChildError::Failed(StartError::InitFailed(
            ExitReason::Panic(_)
        )))
    ));
    assert!(sup.is_alive());
}

// OTP: a killed supervisor takes its children with it (no process outlives its tree)
#[tokio::test]
async fn killing_a_supervisor_kills_its_children() {
    let probes = Probes::new();
    let sup = Supervisor::start(flags(), vec![probes.worker("a").spec()])
        .await
        .unwrap();
    let child = probes.pid("a");
    otp_core::process::exit(sup.pid(), ExitReason::Killed);
    assert_eq!(await_down(child, WAIT).await, ExitReason::Killed);
}
