//! Typed names that follow restarts (`otp_core::name`): Erlang's `{local, Name}` and Elixir's
//! `name:`, scoped to whoever holds the `Name`.

mod support;

use std::time::Duration;

use otp_core::dynamic_supervisor::{DynamicSupervisor, DynamicSupervisorOptions};
use otp_core::gen_server::{CallError, StartError};
use otp_core::monitor::monitor;
use otp_core::name::{Name, NameError};
use otp_core::registry::Registry;
use otp_core::supervisor::{
    ChildSpec, ChildStatus, RestartBackoff, Strategy, SupFlags, Supervisor, SupervisorEvent,
};
use otp_core::task_supervisor::TaskSupervisor;
use otp_core::testing::EventLog;
use otp_core::{ExitReason, GenServer, ServerRef, process};
use support::{Call, Probe, ProbeArgs, Reply, WAIT, next_event_matching};

fn probe_spec(id: &'static str, name: &Name<ServerRef<Probe>>, log: &EventLog) -> ChildSpec {
    let log = log.clone();
    ChildSpec::new(
        id,
        name.registering(move || Probe::start(ProbeArgs::new(id, &log))),
    )
}

#[tokio::test]
async fn a_name_follows_its_child_across_restarts() {
    let log = EventLog::new();
    let name = Name::new("probe");
    let tree = Supervisor::start(
        SupFlags::new(Strategy::OneForOne),
        vec![probe_spec("probe", &name, &log)],
    )
    .await
    .unwrap();
    let mut events = tree.subscribe();
    assert_eq!(name.call(Call::Echo(1)).await, Ok(Reply::Value(1)));

    for _ in 0..3 {
        let before = name.get().unwrap().pid();
        process::exit(before, ExitReason::Killed);
        let restarted = next_event_matching(&mut events, |event| {
            matches!(event, SupervisorEvent::ChildRestarted { .. })
        })
        .await;
        let SupervisorEvent::ChildRestarted { pid, old_pid, .. } = restarted else {
            unreachable!()
        };
        assert_eq!(old_pid, Some(before));
        assert_eq!(name.get().unwrap().pid(), pid);
        assert_eq!(name.call(Call::Echo(2)).await, Ok(Reply::Value(2)));
    }
    tree.stop(WAIT).await.unwrap();
    assert_eq!(
        name.get().err(),
        Some(NameError::Unregistered("probe".into()))
    );
}

#[tokio::test]
async fn a_name_is_released_before_its_holders_down_is_delivered() {
    let log = EventLog::new();
    for reason in [
        ExitReason::Killed,
        ExitReason::Normal,
        ExitReason::error("boom"),
    ] {
        let name: Name<ServerRef<Probe>> = Name::new("probe");
        let server = Probe::start(ProbeArgs::new("p", &log)).await.unwrap();
        name.register(&server).unwrap();
        let watcher = monitor(server.pid());
        let seen_on_down = {
            let name = name.clone();
            async move {
                watcher.await;
                name.whereis().map(|s| s.pid())
            }
        };
        if reason == ExitReason::Killed {
            process::exit(server.pid(), reason);
        } else {
            server.stop(reason, WAIT).await.unwrap();
        }
        assert_eq!(
            tokio::time::timeout(WAIT, seen_on_down).await.unwrap(),
            None
        );
        // Free at once for the next holder.
        let next = Probe::start(ProbeArgs::new("q", &log)).await.unwrap();
        name.register(&next).unwrap();
        assert_eq!(name.get().unwrap(), next);
    }
}

#[tokio::test(start_paused = true)]
async fn a_lookup_while_the_child_is_restarting_fails_at_once() {
    let log = EventLog::new();
    let name = Name::new("probe");
    let backoff = RestartBackoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(1),
        reset_after: Duration::from_secs(600),
    };
    let tree = Supervisor::start(
        SupFlags::new(Strategy::OneForOne),
        vec![probe_spec("probe", &name, &log).backoff(backoff)],
    )
    .await
    .unwrap();
    let mut events = tree.subscribe();
    process::exit(name.get().unwrap().pid(), ExitReason::Killed);
    next_event_matching(&mut events, |event| {
        matches!(event, SupervisorEvent::ChildExited { .. })
    })
    .await;

    // The restart waits a second: the name leads nowhere meanwhile, and nothing waits for it.
    assert_eq!(
        name.get().err(),
        Some(NameError::Unregistered("probe".into()))
    );
    assert_eq!(name.call(Call::Echo(1)).await, Err(CallError::NoProc));
    assert!(name.cast(support::Cast::Log("x".into())).is_err());

    next_event_matching(&mut events, |event| {
        matches!(event, SupervisorEvent::ChildRestarted { .. })
    })
    .await;
    assert_eq!(name.call(Call::Echo(3)).await, Ok(Reply::Value(3)));
    tree.stop(WAIT).await.unwrap();
}

#[tokio::test]
async fn a_held_name_cannot_be_taken_and_the_rejected_child_is_stopped() {
    let log = EventLog::new();
    let name: Name<ServerRef<Probe>> = Name::new("probe");
    let holder = Probe::start(ProbeArgs::new("holder", &log)).await.unwrap();
    name.register(&holder).unwrap();

    let other = Probe::start(ProbeArgs::new("other", &log)).await.unwrap();
    assert_eq!(
        name.register(&other),
        Err(NameError::Taken {
            name: "probe".into(),
            holder: holder.pid()
        })
    );
    // Registering the holder again is refused too, as in Erlang.
    assert!(matches!(
        name.register(&holder),
        Err(NameError::Taken { .. })
    ));

    // Through a supervisor: the child that would take the name is killed, and the start fails
    // with the holder's pid, once the rejected process has exited.
    let started = Supervisor::start(
        SupFlags::new(Strategy::OneForOne),
        vec![probe_spec("duplicate", &name, &log)],
    )
    .await;
    let error = started.unwrap_err().to_string();
    assert!(error.contains(&holder.pid().to_string()), "{error}");
    assert_eq!(log.count("init(duplicate)"), 1);
    assert_eq!(name.get().unwrap(), holder);
}

#[tokio::test]
async fn registering_a_process_that_has_exited_fails_and_registers_nothing() {
    let log = EventLog::new();
    let name: Name<ServerRef<Probe>> = Name::new("probe");
    let server = Probe::start(ProbeArgs::new("p", &log)).await.unwrap();
    server.stop(ExitReason::Normal, WAIT).await.unwrap();
    assert_eq!(
        name.register(&server),
        Err(NameError::Exited {
            name: "probe".into(),
            pid: server.pid()
        })
    );
    assert!(name.whereis().is_none());
}

#[tokio::test]
async fn every_kind_of_child_can_be_named() {
    let registry: Name<Registry<String, u32>> = Name::new("registry");
    let workers: Name<DynamicSupervisor> = Name::new("workers");
    let tasks: Name<TaskSupervisor> = Name::new("tasks");
    let inner: Name<Supervisor> = Name::new("inner");
    let acceptor: Name<otp_core::task::TaskRef> = Name::new("acceptor");
    let tree = Supervisor::start(
        SupFlags::new(Strategy::OneForOne),
        vec![
            ChildSpec::new("registry", registry.registering(Registry::start)),
            ChildSpec::supervisor(
                "workers",
                workers
                    .registering(|| DynamicSupervisor::start(DynamicSupervisorOptions::default())),
            ),
            ChildSpec::supervisor("tasks", tasks.registering(TaskSupervisor::start)),
            ChildSpec::supervisor(
                "inner",
                inner.registering(|| Supervisor::start(SupFlags::new(Strategy::OneForOne), vec![])),
            ),
            ChildSpec::new(
                "acceptor",
                acceptor.registering(|| {
                    std::future::ready(otp_core::task::start(std::future::pending()))
                }),
            ),
        ],
    )
    .await
    .unwrap();
    let children = tree.which_children().await.unwrap();
    let statuses: Vec<_> = children.iter().map(|child| child.status).collect();
    assert_eq!(
        statuses,
        vec![
            ChildStatus::Running(registry.get().unwrap().pid()),
            ChildStatus::Running(workers.get().unwrap().pid()),
            ChildStatus::Running(tasks.get().unwrap().pid()),
            ChildStatus::Running(inner.get().unwrap().pid()),
            ChildStatus::Running(acceptor.get().unwrap().pid()),
        ]
    );
    // Typed: each name gives its own kind of handle.
    let answer = tasks
        .get()
        .unwrap()
        .async_nolink(async { 42 })
        .await
        .unwrap();
    assert_eq!(answer.await, Ok(42));
    assert_eq!(
        workers
            .get()
            .unwrap()
            .count_children()
            .await
            .unwrap()
            .active,
        0
    );
    assert_eq!(registry.get().unwrap().count(), 0);
    tree.stop(WAIT).await.unwrap();
    for name in [
        registry.label(),
        workers.label(),
        tasks.label(),
        inner.label(),
    ] {
        assert!(!name.is_empty());
    }
    assert!(registry.whereis().is_none() && workers.whereis().is_none());
    assert!(tasks.whereis().is_none() && inner.whereis().is_none());
    assert!(acceptor.whereis().is_none());
}

#[tokio::test]
async fn a_name_follows_a_dynamic_child_across_restarts() {
    let log = EventLog::new();
    let name = Name::new("dynamic");
    let workers = DynamicSupervisor::start(DynamicSupervisorOptions::default())
        .await
        .unwrap();
    let mut events = workers.subscribe();
    let first = workers
        .start_child(probe_spec("dynamic", &name, &log))
        .await
        .unwrap();
    assert_eq!(name.get().unwrap().pid(), first);
    process::exit(first, ExitReason::Killed);
    let restarted = next_event_matching(&mut events, |event| {
        matches!(event, SupervisorEvent::ChildRestarted { .. })
    })
    .await;
    let SupervisorEvent::ChildRestarted { pid, .. } = restarted else {
        unreachable!()
    };
    assert_eq!(name.get().unwrap().pid(), pid);
    workers.stop(WAIT).await.unwrap();
}

// A registration racing its process's exit is refused, or released by that exit: once the
// process's `Down` has arrived, the name never leads to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_racing_the_holders_exit_never_leaves_a_dead_holder() {
    let log = EventLog::new();
    let name: Name<ServerRef<Probe>> = Name::new("racing");
    for _ in 0..500 {
        let server = Probe::start(ProbeArgs::new("r", &log)).await.unwrap();
        let watcher = monitor(server.pid());
        let killer = {
            let pid = server.pid();
            std::thread::spawn(move || process::exit(pid, ExitReason::Killed))
        };
        let registered = name.register(&server);
        killer.join().unwrap();
        tokio::time::timeout(WAIT, watcher).await.unwrap();
        assert!(
            name.whereis().is_none(),
            "a dead holder after {registered:?}"
        );
    }
}

#[tokio::test]
async fn a_start_that_fails_registers_nothing() {
    let log = EventLog::new();
    let name: Name<ServerRef<Probe>> = Name::new("failing");
    let start = name.registering(move || {
        Probe::start(ProbeArgs::new("f", &log).init(support::InitScript::Fail("no")))
    });
    assert!(matches!(start().await, Err(StartError::InitFailed(_))));
    assert!(name.whereis().is_none());
}
