//! Links and trapping exits, against Erlang's semantics: abnormal exits propagate with their
//! reason, `normal` does not, a kill cannot be trapped, trapped signals arrive as `Exit`
//! messages, linking a dead pid is `noproc`, `unlink` stops signals, `start_link` is atomic and
//! a failed `start_link` leaves no stray signal; and the race of a link set while its target dies.

mod support;

use std::convert::Infallible;

use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init, StartError};
use otp_core::link::{self, Exit, LinkError};
use otp_core::name::Name;
use otp_core::supervisor::{ChildSpec, Strategy, SupFlags, Supervisor, SupervisorEvent};
use otp_core::testing::{EventLog, await_exit};
use otp_core::{ExitReason, Pid, ServerRef};

use support::WAIT;

/// A server that links, unlinks and start_links on request, and logs `exit(<pid>, <reason>)`
/// for each trapped signal and `terminate(<reason>)`.
struct Linker {
    log: EventLog,
}

struct LinkerArgs {
    log: EventLog,
    trap: bool,
    /// Fails `init` (for `start_link` of a failing server).
    fail_init: bool,
}

fn args(log: &EventLog, trap: bool) -> LinkerArgs {
    LinkerArgs {
        log: log.clone(),
        trap,
        fail_init: false,
    }
}

enum Call {
    Link(Pid),
    Unlink(Pid),
    /// Starts a linked, non-trapping `Linker`.
    StartLinked(LinkerArgs),
    TrapOff,
}

enum Reply {
    Linked(Result<(), LinkError>),
    Started(Result<ServerRef<Linker>, StartError>),
    Ok,
}

enum Cast {
    Crash(&'static str),
    Panic,
}

impl GenServer for Linker {
    type Args = LinkerArgs;
    type Call = Call;
    type Reply = Reply;
    type Cast = Cast;
    type Info = Exit;
    type Continue = Infallible;

    async fn init(args: LinkerArgs, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        if args.fail_init {
            return Err("init failed".into());
        }
        if args.trap {
            ctx.trap_exits(|exit| exit);
        }
        Ok(Init::Ready(Linker { log: args.log }))
    }

    async fn handle_call(
        &mut self,
        call: Call,
        _: Caller<'_, Reply>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<Reply>, BoxError> {
        Ok(CallResult::Reply(match call {
            Call::Link(pid) => Reply::Linked(link::link(pid)),
            Call::Unlink(pid) => Reply::Linked(link::unlink(pid)),
            Call::StartLinked(args) => Reply::Started(Linker::start_link(args).await),
            Call::TrapOff => {
                ctx.stop_trapping_exits();
                Reply::Ok
            }
        }))
    }

    async fn handle_cast(&mut self, cast: Cast, _: &mut Context<Self>) -> Result<(), BoxError> {
        match cast {
            Cast::Crash(message) => Err(message.into()),
            Cast::Panic => panic!("linked panic"),
        }
    }

    async fn handle_info(&mut self, exit: Exit, _: &mut Context<Self>) -> Result<(), BoxError> {
        self.log
            .push(format!("exit({}, {})", exit.pid, exit.reason));
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        self.log.push(format!("terminate({reason})"));
    }
}

async fn linker(log: &EventLog, trap: bool) -> ServerRef<Linker> {
    Linker::start(args(log, trap)).await.unwrap()
}

async fn link(from: &ServerRef<Linker>, to: Pid) {
    match from.call(Call::Link(to)).await {
        Ok(Reply::Linked(Ok(()))) => {}
        _ => panic!("link failed"),
    }
}

fn error(message: &str) -> impl Fn(&ExitReason) -> bool + '_ {
    move |reason| matches!(reason, ExitReason::Error(e) if e.to_string() == message)
}

#[tokio::test]
async fn an_abnormal_exit_kills_the_linked_process_with_the_same_reason() {
    let log = EventLog::new();
    let a = linker(&log, false).await;
    let b = linker(&log, false).await;
    link(&a, b.pid()).await;
    b.cast(Cast::Crash("b crashed")).ok().unwrap();
    let reason = await_exit(&a, WAIT).await;
    assert!(error("b crashed")(&reason), "{reason:?}");
    // A non-trapping process killed by a signal runs no `terminate`, as in Erlang; `b`'s own
    // crash does run its `terminate`.
    assert_eq!(
        log.count("terminate(error: b crashed)"),
        1,
        "{:?}",
        log.events()
    );
}

#[tokio::test]
async fn links_are_two_way_and_propagate_along_a_chain() {
    let log = EventLog::new();
    let a = linker(&log, false).await;
    let b = linker(&log, false).await;
    let c = linker(&log, false).await;
    link(&a, b.pid()).await;
    link(&c, b.pid()).await;
    // `a` is the one that crashes: the signal goes a -> b -> c.
    a.cast(Cast::Panic).ok().unwrap();
    for server in [&b, &c] {
        let reason = await_exit(server, WAIT).await;
        assert!(
            matches!(&reason, ExitReason::Panic(m) if m.contains("linked panic")),
            "{reason:?}"
        );
    }
}

#[tokio::test]
async fn a_normal_exit_does_not_propagate_and_ends_the_link() {
    let log = EventLog::new();
    let a = linker(&log, false).await;
    let b = linker(&log, false).await;
    link(&a, b.pid()).await;
    b.stop(ExitReason::Normal, WAIT).await.unwrap();
    // `a` lives on: a call it answers after `b`'s exit is complete proves it.
    assert!(matches!(a.call(Call::TrapOff).await, Ok(Reply::Ok)));
    assert!(a.is_alive());
}

#[tokio::test]
async fn a_shutdown_exit_propagates_as_abnormal() {
    let log = EventLog::new();
    let a = linker(&log, false).await;
    let b = linker(&log, false).await;
    link(&a, b.pid()).await;
    b.stop(ExitReason::Shutdown, WAIT).await.unwrap();
    assert_eq!(await_exit(&a, WAIT).await, ExitReason::Shutdown);
}

#[tokio::test]
async fn a_trapping_server_receives_exits_as_messages_and_lives_on() {
    let log = EventLog::new();
    let trapper = linker(&log, true).await;
    let crasher = linker(&log, false).await;
    let normal = linker(&log, false).await;
    link(&trapper, crasher.pid()).await;
    link(&trapper, normal.pid()).await;
    crasher.cast(Cast::Crash("boom")).ok().unwrap();
    log.wait_for(&format!("exit({}, error: boom)", crasher.pid()), WAIT)
        .await;
    normal.stop(ExitReason::Normal, WAIT).await.unwrap();
    log.wait_for(&format!("exit({}, normal)", normal.pid()), WAIT)
        .await;
    assert!(trapper.is_alive());
}

#[tokio::test]
async fn a_kill_cannot_be_trapped_but_reaches_links_as_killed() {
    let log = EventLog::new();
    let trapper = linker(&log, true).await;
    let victim = linker(&log, true).await;
    let bystander = linker(&log, false).await;
    link(&trapper, victim.pid()).await;
    link(&bystander, victim.pid()).await;
    // The victim traps exits, and the kill kills it all the same.
    otp_core::process::exit(victim.pid(), ExitReason::Killed);
    assert_eq!(await_exit(&victim, WAIT).await, ExitReason::Killed);
    // Its links get `Killed`: a trapping process as a message, any other dies of it.
    log.wait_for(&format!("exit({}, killed)", victim.pid()), WAIT)
        .await;
    assert_eq!(await_exit(&bystander, WAIT).await, ExitReason::Killed);
    assert!(trapper.is_alive());
}

#[tokio::test]
async fn linking_a_dead_pid_is_noproc() {
    let log = EventLog::new();
    let dead = linker(&log, false).await;
    dead.stop(ExitReason::Normal, WAIT).await.unwrap();

    let trapper = linker(&log, true).await;
    link(&trapper, dead.pid()).await;
    log.wait_for(&format!("exit({}, noproc)", dead.pid()), WAIT)
        .await;
    assert!(trapper.is_alive());

    let plain = linker(&log, false).await;
    link(&plain, dead.pid()).await;
    assert_eq!(await_exit(&plain, WAIT).await, ExitReason::NoProc);
}

#[tokio::test]
async fn after_unlink_no_signal_arrives() {
    let log = EventLog::new();
    let a = linker(&log, false).await;
    let b = linker(&log, false).await;
    link(&a, b.pid()).await;
    // Linking twice is one link; one unlink removes it.
    link(&a, b.pid()).await;
    assert!(matches!(
        a.call(Call::Unlink(b.pid())).await,
        Ok(Reply::Linked(Ok(())))
    ));
    b.cast(Cast::Crash("b crashed")).ok().unwrap();
    await_exit(&b, WAIT).await;
    assert!(matches!(a.call(Call::TrapOff).await, Ok(Reply::Ok)));
    assert!(a.is_alive());
}

#[tokio::test]
async fn the_other_side_can_unlink_too() {
    let log = EventLog::new();
    let a = linker(&log, false).await;
    let b = linker(&log, false).await;
    link(&a, b.pid()).await;
    // `b` removes the link `a` made.
    assert!(matches!(
        b.call(Call::Unlink(a.pid())).await,
        Ok(Reply::Linked(Ok(())))
    ));
    a.cast(Cast::Crash("a crashed")).ok().unwrap();
    await_exit(&a, WAIT).await;
    assert!(matches!(b.call(Call::TrapOff).await, Ok(Reply::Ok)));
}

#[tokio::test]
async fn link_outside_a_process_is_a_typed_error() {
    let log = EventLog::new();
    let a = linker(&log, false).await;
    assert_eq!(link::link(a.pid()), Err(LinkError::NotInProcess));
    assert_eq!(link::unlink(a.pid()), Err(LinkError::NotInProcess));
    assert!(matches!(
        Linker::start_link(args(&log, false)).await,
        Err(StartError::NotInProcess)
    ));
}

#[tokio::test]
async fn a_start_linked_server_dies_with_its_starter_and_the_starter_with_it() {
    let log = EventLog::new();
    // The child crashes: its starter (not trapping) dies of it.
    let starter = linker(&log, false).await;
    let Ok(Reply::Started(Ok(child))) = starter.call(Call::StartLinked(args(&log, false))).await
    else {
        panic!("start_link failed")
    };
    child.cast(Cast::Crash("child crashed")).ok().unwrap();
    assert!(error("child crashed")(&await_exit(&starter, WAIT).await));

    // The starter crashes: its linked child dies of it.
    let starter = linker(&log, false).await;
    let Ok(Reply::Started(Ok(child))) = starter.call(Call::StartLinked(args(&log, false))).await
    else {
        panic!("start_link failed")
    };
    starter.cast(Cast::Crash("starter crashed")).ok().unwrap();
    assert!(error("starter crashed")(&await_exit(&child, WAIT).await));
}

#[tokio::test]
async fn a_failed_start_link_leaves_no_stray_exit_signal() {
    let log = EventLog::new();
    for trap in [false, true] {
        let starter = linker(&log, trap).await;
        let mut failing = args(&log, false);
        failing.fail_init = true;
        let Ok(Reply::Started(result)) = starter.call(Call::StartLinked(failing)).await else {
            panic!("the starter answers")
        };
        assert!(matches!(result, Err(StartError::InitFailed(_))));
        // The starter lives on and, trapping, got no `Exit` for the failed child.
        assert!(matches!(starter.call(Call::TrapOff).await, Ok(Reply::Ok)));
        assert!(starter.is_alive());
        assert!(
            !log.events().iter().any(|e| e.starts_with("exit(")),
            "{:?}",
            log.events()
        );
    }
}

#[tokio::test]
async fn a_task_linked_to_a_server_dies_with_it() {
    let log = EventLog::new();
    let server = linker(&log, false).await;
    let pid = server.pid();
    let (linked_tx, linked) = tokio::sync::oneshot::channel();
    let task = otp_core::task::start(async move {
        link::link(pid)?;
        let _ = linked_tx.send(());
        std::future::pending::<()>().await;
        Ok(())
    })
    .unwrap();
    let monitor = task.monitor();
    tokio::time::timeout(WAIT, linked).await.unwrap().unwrap();
    server.cast(Cast::Crash("server crashed")).ok().unwrap();
    let down = tokio::time::timeout(WAIT, monitor).await.unwrap();
    assert!(error("server crashed")(&down.reason), "{:?}", down.reason);
}

#[tokio::test]
async fn linked_siblings_under_a_supervisor_die_together_and_are_both_restarted() {
    let log = EventLog::new();
    let a: Name<ServerRef<Linker>> = Name::new("a");
    let b: Name<ServerRef<Linker>> = Name::new("b");
    let (a_log, b_log) = (log.clone(), log.clone());
    let supervisor = Supervisor::start(
        SupFlags::new(Strategy::OneForOne),
        vec![
            ChildSpec::new(
                "a",
                a.registering(move || Linker::start(args(&a_log, false))),
            ),
            ChildSpec::new(
                "b",
                b.registering(move || Linker::start(args(&b_log, false))),
            ),
        ],
    )
    .await
    .unwrap();
    let mut events = supervisor.subscribe();
    let (first_a, first_b) = (a.get().unwrap(), b.get().unwrap());
    link(&first_a, first_b.pid()).await;
    first_b.cast(Cast::Crash("b crashed")).ok().unwrap();
    // `a` dies of `b`'s crash, with its reason; the supervisor restarts both.
    assert!(error("b crashed")(&await_exit(&first_a, WAIT).await));
    let mut restarted = std::collections::BTreeSet::new();
    while restarted.len() < 2 {
        if let SupervisorEvent::ChildRestarted {
            child: Some(child), ..
        } = support::next_event_matching(&mut events, |event| {
            matches!(event, SupervisorEvent::ChildRestarted { .. })
        })
        .await
        {
            restarted.insert(child.to_string());
        }
    }
    let (second_a, second_b) = (a.get().unwrap(), b.get().unwrap());
    assert!(second_a != first_a && second_b != first_b);
    // The new incarnations are not linked: a crash of one leaves the other running.
    second_b.cast(Cast::Crash("b again")).ok().unwrap();
    support::next_event_matching(&mut events, |event| {
        matches!(event, SupervisorEvent::ChildRestarted { child: Some(child), .. } if child.as_ref() == "b")
    })
    .await;
    assert!(second_a.is_alive());
    supervisor.stop(WAIT).await.unwrap();
}

/// Links racing the target's kill, on two threads: every link either gets the target's
/// `Killed` signal or `NoProc`, exactly once; never nothing (a lost signal), never both.
#[test]
fn a_link_racing_the_targets_exit_gets_exactly_one_signal() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let log = EventLog::new();
        let trapper = linker(&log, true).await;
        for round in 0..300 {
            let target = linker(&EventLog::new(), false).await;
            let pid = target.pid();
            let kill = tokio::spawn(async move {
                otp_core::process::exit(pid, ExitReason::Killed);
            });
            link(&trapper, pid).await;
            kill.await.unwrap();
            let killed = format!("exit({pid}, killed)");
            let noproc = format!("exit({pid}, noproc)");
            let events = log
                .wait_until(
                    |events| events.iter().any(|e| *e == killed || *e == noproc),
                    WAIT,
                )
                .await
                .unwrap_or_else(|events| panic!("round {round}: no signal; log: {events:?}"));
            let signals = events
                .iter()
                .filter(|e| **e == killed || **e == noproc)
                .count();
            assert_eq!(signals, 1, "round {round}: {events:?}");
        }
        // No late duplicate arrived for any round: a call round trip after the last one.
        assert!(matches!(trapper.call(Call::TrapOff).await, Ok(Reply::Ok)));
        let events = log.events();
        let mut pids: Vec<&str> = events
            .iter()
            .filter_map(|e| e.strip_prefix("exit(")?.split(',').next())
            .collect();
        let total = pids.len();
        pids.dedup();
        assert_eq!(total, 300);
        assert_eq!(pids.len(), 300, "one signal per target");
    });
}

#[tokio::test]
async fn start_linked_children_crash_and_stop_without_taking_their_supervisor_down() {
    let log = EventLog::new();
    let name: Name<ServerRef<Linker>> = Name::new("w");
    let child_log = log.clone();
    let supervisor = Supervisor::start(
        SupFlags::new(Strategy::OneForOne),
        vec![ChildSpec::new(
            "w",
            // Erlang's idiom: the child links to its supervisor, which runs the start function.
            name.registering(move || Linker::start_link(args(&child_log, false))),
        )],
    )
    .await
    .unwrap();
    let mut events = supervisor.subscribe();
    let first = name.get().unwrap();
    let child_info = otp_core::process::info(first.pid()).unwrap();
    assert_eq!(child_info.links, 1, "linked to its supervisor");
    assert_eq!(child_info.parent, Some(supervisor.pid()));

    first.cast(Cast::Crash("child crashed")).ok().unwrap();
    support::next_event_matching(&mut events, |event| {
        matches!(event, SupervisorEvent::ChildRestarted { .. })
    })
    .await;
    supervisor.terminate_child("w").await.unwrap();
    supervisor.restart_child("w").await.unwrap();
    let third = name.get().unwrap();
    assert!(otp_core::process::exit(third.pid(), ExitReason::Killed));
    support::next_event_matching(&mut events, |event| {
        matches!(event, SupervisorEvent::ChildRestarted { .. })
    })
    .await;
    assert_eq!(supervisor.count_children().await.unwrap().active, 1);
    supervisor.stop(WAIT).await.unwrap();
}

#[tokio::test]
async fn a_start_linked_dynamic_child_crashes_without_taking_its_supervisor_down() {
    use otp_core::dynamic_supervisor::{DynamicSupervisor, DynamicSupervisorOptions};
    let log = EventLog::new();
    let dynamic = DynamicSupervisor::start(DynamicSupervisorOptions::default())
        .await
        .unwrap();
    let child_log = log.clone();
    let pid = dynamic
        .start_temporary(args(&child_log, false), Linker::start_link)
        .await
        .unwrap();
    assert!(otp_core::process::exit(
        pid,
        ExitReason::error("child crashed")
    ));
    otp_core::testing::await_down(pid, WAIT).await;
    assert!(dynamic.is_alive());
    assert_eq!(dynamic.count_children().await.unwrap().active, 0);
}

#[tokio::test]
async fn a_trapping_child_stops_with_its_parents_exit_and_runs_terminate() {
    for (parent_exit, expected) in [
        (Err("parent failed"), "terminate(error: parent failed)"),
        (Ok(()), "terminate(normal)"),
    ] {
        let log = EventLog::new();
        let (child_tx, child_rx) = tokio::sync::oneshot::channel();
        let (end_tx, end_rx) = tokio::sync::oneshot::channel::<()>();
        let child_args = args(&log, true);
        let parent = otp_core::task::start(async move {
            let child = Linker::start_link(child_args).await?;
            let _ = child_tx.send(child);
            let _ = end_rx.await;
            parent_exit.map_err(Into::into)
        })
        .unwrap();
        let child = tokio::time::timeout(WAIT, child_rx).await.unwrap().unwrap();
        end_tx.send(()).unwrap();
        otp_core::testing::await_down(parent.pid(), WAIT).await;
        let reason = await_exit(&child, WAIT).await;
        assert_eq!(log.events(), [expected], "as Erlang's gen_server: {reason}");
    }
}

#[tokio::test]
async fn a_supervisor_linked_to_its_parent_stops_with_it_and_stops_its_children() {
    let log = EventLog::new();
    let (sup_tx, sup_rx) = tokio::sync::oneshot::channel();
    let (end_tx, end_rx) = tokio::sync::oneshot::channel::<()>();
    let child_log = log.clone();
    let parent = otp_core::task::start(async move {
        let supervisor = Supervisor::start(
            SupFlags::new(Strategy::OneForOne),
            vec![ChildSpec::new("w", move || {
                Linker::start(args(&child_log, false))
            })],
        )
        .await?;
        link::link(supervisor.pid())?;
        let _ = sup_tx.send(supervisor);
        let _ = end_rx.await;
        Err("parent failed".into())
    })
    .unwrap();
    let supervisor = tokio::time::timeout(WAIT, sup_rx).await.unwrap().unwrap();
    let down = supervisor.monitor();
    end_tx.send(()).unwrap();
    otp_core::testing::await_down(parent.pid(), WAIT).await;
    let down = tokio::time::timeout(WAIT, down).await.unwrap();
    assert!(error("parent failed")(&down.reason), "{:?}", down.reason);
    assert_eq!(
        log.events(),
        ["terminate(shutdown)"],
        "its child was shut down in order"
    );
}
