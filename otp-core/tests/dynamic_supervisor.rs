//! DynamicSupervisor: start, terminate, which, count children; restart types; max_children;
//! concurrent shutdown (specification DYN-01..08, SHD-07). Paused clock where time matters.

mod support;

use std::time::Duration;

use otp_core::ExitReason;
use otp_core::dynamic_supervisor::{
    DynamicStartError, DynamicSupervisor, DynamicSupervisorOptions,
};
use otp_core::gen_server::{CallError, StartError, Timeout};
use otp_core::supervisor::{
    ChildCounts, ChildStatus, Restart, Shutdown, SpecError, SupervisorStartError,
    TerminateChildError,
};
use otp_core::testing::{assert_down, await_down};
use support::child::{Probes, Script};
use support::{WAIT, start_probe};
use tokio::time::Instant;

fn options() -> DynamicSupervisorOptions {
    DynamicSupervisorOptions {
        max_restarts: 100,
        max_seconds: Duration::from_secs(3600),
        max_children: None,
    }
}

async fn counts(sup: &DynamicSupervisor) -> (usize, usize) {
    let c = sup.count_children().await.unwrap();
    (c.workers, c.active)
}

// OTP: DYN-01; Ex dynamic_supervisor.ex start_child/2 doc
#[tokio::test]
async fn children_with_the_same_spec_all_start_and_have_no_ids() {
    let probes = Probes::new();
    let sup = DynamicSupervisor::start(options()).await.unwrap();
    let spec = probes.worker("c").spec();
    let a = sup.start_child(spec.clone()).await.unwrap();
    let b = sup.start_child(spec).await.unwrap();
    assert_ne!(a, b);
    assert_eq!(
        sup.count_children().await.unwrap(),
        ChildCounts {
            specs: 2,
            active: 2,
            supervisors: 0,
            workers: 2
        }
    );
    let children = sup.which_children().await.unwrap();
    assert!(children.iter().all(|c| c.id.is_none()));
    let mut pids: Vec<_> = children
        .iter()
        .map(|c| match c.status {
            ChildStatus::Running(pid) => pid,
            other => panic!("{other:?}"),
        })
        .collect();
    pids.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(pids, expected);
}

// OTP: DYN-02; Ex dynamic_supervisor_test "with different returns", "with throw/error/exit"
#[tokio::test]
async fn start_child_reports_ignore_errors_and_crashes_and_adds_nothing() {
    let probes = Probes::new();
    let sup = DynamicSupervisor::start(options()).await.unwrap();
    assert_eq!(
        sup.start_child(probes.worker("i").script(|_| Script::Ignore).spec())
            .await,
        Err(DynamicStartError::Ignored)
    );
    support::assert_same(
        sup.start_child(probes.worker("e").script(|_| Script::Error("found")).spec())
            .await,
        Err(DynamicStartError::Failed(StartError::InitFailed(
            ExitReason::error("found"),
        ))),
    );
    assert!(matches!(
        sup.start_child(probes.worker("p").script(|_| Script::Panic).spec())
            .await,
        Err(DynamicStartError::Failed(StartError::InitFailed(
            ExitReason::Panic(_)
        )))
    ));
    assert_eq!(sup.count_children().await.unwrap(), ChildCounts::default());
    assert!(sup.is_alive());
}

// OTP: DYN-03; Ex dynamic_supervisor_test terminate_child/2; supervisor_SUITE child_adm_simple
#[tokio::test(start_paused = true)]
async fn terminate_child_uses_the_childs_policy_and_touches_no_stranger() {
    let probes = Probes::new();
    let sup = DynamicSupervisor::start(options()).await.unwrap();
    let brutal = sup
        .start_child(
            probes
                .worker("b")
                .graceful(Duration::ZERO)
                .shutdown(Shutdown::BrutalKill)
                .spec(),
        )
        .await
        .unwrap();
    let timed = sup
        .start_child(
            probes
                .worker("t")
                .graceful(Duration::ZERO)
                .shutdown(Shutdown::Timeout(Duration::from_secs(1)))
                .spec(),
        )
        .await
        .unwrap();
    sup.terminate_child(brutal).await.unwrap();
    sup.terminate_child(timed).await.unwrap();
    assert_eq!(
        probes.events()[2..],
        [
            "exit(b#1, killed)",
            "terminate(t#1, shutdown)",
            "exit(t#1, shutdown)"
        ]
    );
    assert_eq!(
        sup.terminate_child(brutal).await,
        Err(TerminateChildError::NotFound)
    );
    let stranger = start_probe("x", &otp_core::testing::EventLog::new()).await;
    assert_eq!(
        sup.terminate_child(stranger.pid()).await,
        Err(TerminateChildError::NotFound)
    );
    assert!(stranger.is_alive());
    assert_eq!(counts(&sup).await, (0, 0));
}

// OTP: DYN-04; Ex dynamic_supervisor_test restart-type cases
#[tokio::test]
async fn restart_types_on_dynamic_children() {
    // permanent: restarted regardless of reason.
    let probes = Probes::new();
    let sup = DynamicSupervisor::start(options()).await.unwrap();
    sup.start_child(probes.worker("p").spec()).await.unwrap();
    assert_eq!(counts(&sup).await, (1, 1));
    probes.exit("p", ExitReason::Shutdown);
    probes.wait_for("start(p#2)").await;
    assert_eq!(counts(&sup).await, (1, 1));
    probes.crash("p");
    probes.wait_for("start(p#3)").await;
    assert_eq!(counts(&sup).await, (1, 1));

    // transient: removed after normal / shutdown / shutdown-with, restarted after a crash.
    let probes = Probes::new();
    let transient = probes.worker("t").restart(Restart::Transient).spec();
    for (n, reason) in [
        ExitReason::Normal,
        ExitReason::Shutdown,
        ExitReason::shutdown_with("x"),
    ]
    .into_iter()
    .enumerate()
    {
        sup.start_child(transient.clone()).await.unwrap();
        let before = counts(&sup).await;
        probes.exit("t", reason.clone());
        probes
            .wait_for(&format!("exit(t#{}, {reason})", n + 1))
            .await;
        assert_eq!(counts(&sup).await, (before.0 - 1, before.1 - 1));
    }
    sup.start_child(transient).await.unwrap();
    probes.crash("t");
    probes.wait_for("start(t#5)").await;

    // temporary: removed whatever the reason.
    let probes = Probes::new();
    let temporary = probes.worker("x").restart(Restart::Temporary).spec();
    sup.start_child(temporary).await.unwrap();
    probes.crash("x");
    probes.wait_for("exit(x#1, error: crash)").await;
    assert_eq!(probes.log.count("start(x#2)"), 0);
    assert_eq!(counts(&sup).await, (2, 2));
}

// OTP: DYN-04 "child is restarted with different values" / DYN-06: same arguments on restart
#[tokio::test]
async fn a_restarted_child_gets_the_same_start_arguments() {
    let log = otp_core::testing::EventLog::new();
    let sup = DynamicSupervisor::start(options()).await.unwrap();
    for arg in ["x", "y"] {
        let log = log.clone();
        let spec = otp_core::supervisor::ChildSpec::new(arg, move || {
            use otp_core::gen_server::GenServer;
            support::child::Worker::start(support::child::WorkerArgs::for_test(
                &format!("args({arg})"),
                &log,
            ))
        });
        let pid = sup.start_child(spec).await.unwrap();
        otp_core::process::exit(pid, ExitReason::Killed);
    }
    log.wait_until(|events| events.len() == 4, WAIT)
        .await
        .unwrap();
    assert_eq!(log.count("start(args(x))"), 2);
    assert_eq!(log.count("start(args(y))"), 2);
}

// OTP: Ex dynamic_supervisor_test "with max_children"; restarting children count
// Multi-threaded: a failed restart is retried at once, over and over, and the test must run
// beside that loop, as it does on the BEAM. For the same reason the intensity must allow many
// restarts (Elixir's test uses `max_restarts: 100_000`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_children_is_enforced_counting_children_being_restarted() {
    let probes = Probes::new();
    let sup = DynamicSupervisor::start(DynamicSupervisorOptions {
        max_children: Some(2),
        max_restarts: 100_000,
        ..options()
    })
    .await
    .unwrap();
    sup.start_child(probes.worker("a").spec()).await.unwrap();
    let failing = probes.worker("b").script(|n| {
        if n == 1 {
            Script::Ok
        } else {
            Script::Error("down")
        }
    });
    sup.start_child(failing.spec()).await.unwrap();
    assert_eq!(
        sup.start_child(probes.worker("c").spec()).await,
        Err(DynamicStartError::MaxChildren)
    );
    probes.crash("b");
    probes.wait_for("failed(b#2)").await;
    // b is waiting for its retry: it still counts.
    assert_eq!(
        sup.start_child(probes.worker("c").spec()).await,
        Err(DynamicStartError::MaxChildren)
    );
    let restarting = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.status == ChildStatus::Restarting)
        .count();
    assert!(restarting <= 1);
    sup.stop(Timeout::Infinity).await.unwrap();
}

// OTP: DYN-08; Ex dynamic_supervisor_test "child triggers maximum restarts"
#[tokio::test]
async fn exceeding_intensity_makes_the_dynamic_supervisor_exit_shutdown() {
    assert!(matches!(
        DynamicSupervisor::start(DynamicSupervisorOptions {
            max_seconds: Duration::ZERO,
            ..options()
        })
        .await,
        Err(SupervisorStartError::InvalidSpec(SpecError::ZeroPeriod))
    ));
    let defaults = DynamicSupervisorOptions::default();
    assert_eq!(
        (
            defaults.max_restarts,
            defaults.max_seconds,
            defaults.max_children
        ),
        (3, Duration::from_secs(5), None)
    );

    let probes = Probes::new();
    let sup = DynamicSupervisor::start(DynamicSupervisorOptions {
        max_restarts: 1,
        ..options()
    })
    .await
    .unwrap();
    let down = sup.monitor();
    sup.start_child(
        probes
            .worker("a")
            .script(|n| {
                if n == 1 {
                    Script::Ok
                } else {
                    Script::Error("x")
                }
            })
            .spec(),
    )
    .await
    .unwrap();
    probes.crash("a");
    assert_down(down, ExitReason::Shutdown, WAIT).await;
    assert_eq!(sup.count_children().await, Err(CallError::NoProc));
}

// OTP: SHD-07; Ex dynamic_supervisor_test "terminates with mixed children"; supervisor_SUITE simple_one_for_one_shutdown
#[tokio::test(start_paused = true)]
async fn shutdown_stops_all_children_concurrently_each_by_its_policy() {
    let probes = Probes::new();
    let sup = DynamicSupervisor::start(options()).await.unwrap();
    for i in 0..4 {
        sup.start_child(
            probes
                .worker(&format!("g{i}"))
                .graceful(Duration::from_millis(400))
                .shutdown(Shutdown::Timeout(Duration::from_millis(1000)))
                .spec(),
        )
        .await
        .unwrap();
    }
    sup.start_child(
        probes
            .worker("s")
            .stubborn()
            .shutdown(Shutdown::Timeout(Duration::from_millis(600)))
            .spec(),
    )
    .await
    .unwrap();
    sup.start_child(
        probes
            .worker("b")
            .graceful(Duration::ZERO)
            .shutdown(Shutdown::BrutalKill)
            .spec(),
    )
    .await
    .unwrap();
    let t0 = Instant::now();
    let (stubborn_killed_at, stopped) = tokio::join!(
        async {
            probes.wait_for("exit(s#1, killed)").await;
            t0.elapsed()
        },
        sup.stop(WAIT)
    );
    stopped.unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(1200),
        "{:?}",
        t0.elapsed()
    );
    assert!(stubborn_killed_at >= Duration::from_millis(600));
    let events = probes.events();
    assert!(events.contains(&"exit(b#1, killed)".to_string()));
    assert!(!events.contains(&"terminate(b#1, shutdown)".to_string()));
    for i in 0..4 {
        assert!(events.contains(&format!("terminate(g{i}#1, shutdown)")));
        assert!(events.contains(&format!("exit(g{i}#1, shutdown)")));
    }
}

// OTP: a dynamic supervisor killed outright takes its children with it
#[tokio::test]
async fn killing_a_dynamic_supervisor_kills_its_children() {
    let probes = Probes::new();
    let sup = DynamicSupervisor::start(options()).await.unwrap();
    let child = sup.start_child(probes.worker("a").spec()).await.unwrap();
    otp_core::process::exit(sup.pid(), ExitReason::Killed);
    assert_eq!(await_down(child, WAIT).await, ExitReason::Killed);
}

// A restart backoff is a static supervisor's feature: a dynamic one rejects it instead of
// silently ignoring it
#[tokio::test]
async fn a_dynamic_supervisor_rejects_a_child_with_a_restart_backoff() {
    use otp_core::supervisor::{RestartBackoff, SpecError};
    let probes = support::child::Probes::new();
    let sup = DynamicSupervisor::start(DynamicSupervisorOptions::default())
        .await
        .unwrap();
    let backoff = RestartBackoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(100),
        reset_after: Duration::from_secs(1),
    };
    assert_eq!(
        sup.start_child(probes.worker("a").spec().backoff(backoff))
            .await,
        Err(DynamicStartError::InvalidSpec(
            SpecError::BackoffUnsupported("a".into())
        ))
    );
    assert!(probes.events().is_empty());
}

// OTP: DYN-03, DYN-08. Elixir keys a child waiting for its restart by the pid that exited:
// terminate_child finds it by that pid, its retries stop and its max_children slot is free
// (it used to be NotFound, retried forever, its slot taken)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_whose_restart_keeps_failing_is_terminated_by_its_old_pid() {
    let probes = Probes::new();
    let sup = DynamicSupervisor::start(DynamicSupervisorOptions {
        max_children: Some(1),
        max_restarts: 100_000,
        ..options()
    })
    .await
    .unwrap();
    let failing = probes.worker("b").script(|n| {
        if n == 1 {
            Script::Ok
        } else {
            Script::Error("down")
        }
    });
    let old = sup.start_child(failing.spec()).await.unwrap();
    probes.crash("b");
    probes.wait_for("failed(b#2)").await;
    let children = sup.which_children().await.unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].status, ChildStatus::Restarting);

    assert_eq!(sup.terminate_child(old).await, Ok(()));
    assert_eq!(
        sup.terminate_child(old).await,
        Err(TerminateChildError::NotFound)
    );
    assert_eq!(counts(&sup).await, (0, 0));
    // No retry is left: two round trips later, no new attempt was made.
    let attempts = probes.events().len();
    sup.which_children().await.unwrap();
    sup.which_children().await.unwrap();
    assert_eq!(probes.events().len(), attempts, "{:?}", probes.events());
    // Its slot is free.
    sup.start_child(probes.worker("c").spec()).await.unwrap();
    assert!(sup.is_alive());
    sup.stop(Timeout::Infinity).await.unwrap();
}

/// A stand-in for a socket: logs `closed(name)` when dropped.
struct Socket {
    name: &'static str,
    log: otp_core::testing::EventLog,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.log.push(format!("closed({})", self.name));
    }
}

/// A connection server that owns its socket.
struct Connection {
    _socket: Socket,
}

impl otp_core::GenServer for Connection {
    type Args = (Socket, support::InitScript);
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    async fn init(
        (socket, script): (Socket, support::InitScript),
        _: &mut otp_core::gen_server::Context<Self>,
    ) -> Result<otp_core::gen_server::Init<Self>, otp_core::gen_server::BoxError> {
        match script {
            support::InitScript::Fail(message) => Err(message.into()),
            support::InitScript::Panic(message) => panic!("{message}"),
            _ => Ok(otp_core::gen_server::Init::Ready(Connection {
                _socket: socket,
            })),
        }
    }
}

#[tokio::test]
async fn a_temporary_childs_arguments_come_back_when_it_is_not_started() {
    use otp_core::GenServer;
    let log = otp_core::testing::EventLog::new();
    let socket = |name| Socket {
        name,
        log: log.clone(),
    };
    let options = DynamicSupervisorOptions {
        max_children: Some(1),
        ..Default::default()
    };
    let connections = DynamicSupervisor::start(options).await.unwrap();
    let first = connections
        .start_temporary((socket("a"), support::InitScript::Ok), Connection::start)
        .await
        .unwrap();

    // Refused by max_children: the socket comes back, open.
    let refused = connections
        .start_temporary((socket("b"), support::InitScript::Ok), Connection::start)
        .await
        .unwrap_err();
    assert_eq!(refused.error, DynamicStartError::MaxChildren);
    let (back, _) = refused.args.expect("the arguments come back");
    assert_eq!(back.name, "b");
    assert_eq!(log.count("closed(b)"), 0);
    drop(back);

    // Started: the child owns its socket until it exits.
    assert_eq!(log.count("closed(a)"), 0);
    connections.terminate_child(first).await.unwrap();
    assert_eq!(log.count("closed(a)"), 1);

    // A start that ran and failed, or panicked, consumed the arguments.
    for script in [
        support::InitScript::Fail("refused"),
        support::InitScript::Panic("boom"),
    ] {
        let failed = connections
            .start_temporary((socket("c"), script), Connection::start)
            .await
            .unwrap_err();
        assert!(
            matches!(failed.error, DynamicStartError::Failed(_)),
            "{failed}"
        );
        assert!(failed.args.is_none());
    }
    assert_eq!(log.count("closed(c)"), 2);

    // The supervisor is gone: the socket comes back too.
    connections.stop(WAIT).await.unwrap();
    let gone = connections
        .start_temporary((socket("d"), support::InitScript::Ok), Connection::start)
        .await
        .unwrap_err();
    assert_eq!(gone.error, DynamicStartError::NoProc);
    assert!(gone.args.is_some());
}
