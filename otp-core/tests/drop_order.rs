//! A server's state is dropped before its names are released and before its `Down` is
//! delivered, however it exits: a `Drop` that frees a resource (closes a socket, removes a
//! file) is done before a restarted incarnation can take the name, or a monitor learn of the
//! exit.

mod support;

use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
use otp_core::name::Name;
use otp_core::supervisor::{ChildSpec, Strategy, SupFlags, Supervisor, SupervisorEvent};
use otp_core::testing::EventLog;
use otp_core::{ExitReason, ServerRef};

use support::{WAIT, next_event_matching};

/// Logs, when dropped, whether its server's name was still held.
struct Guard {
    name: Name<ServerRef<Holder>>,
    log: EventLog,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let held = self.name.whereis().is_some();
        self.log.push(format!("dropped(name held: {held})"));
    }
}

struct Holder {
    _guard: Guard,
}

impl GenServer for Holder {
    type Args = (Name<ServerRef<Holder>>, EventLog);
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    async fn init((name, log): Self::Args, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        log.push("init");
        Ok(Init::Ready(Holder {
            _guard: Guard { name, log },
        }))
    }

    async fn handle_call(
        &mut self,
        (): (),
        _: Caller<'_, ()>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<()>, BoxError> {
        Err("crash".into())
    }
}

/// Starts a holder registered under `name`, and returns it.
async fn start_named(name: &Name<ServerRef<Holder>>, log: &EventLog) -> ServerRef<Holder> {
    let server = Holder::start((name.clone(), log.clone())).await.unwrap();
    name.register(&server).unwrap();
    server
}

async fn exits_in_order(end: impl AsyncFnOnce(&ServerRef<Holder>), expected: ExitReason) {
    let (name, log) = (Name::new("holder"), EventLog::new());
    let server = start_named(&name, &log).await;
    let monitor = server.monitor();
    end(&server).await;
    let down = tokio::time::timeout(WAIT, monitor).await.expect("a Down");
    // Errors compare by identity: compare what they say.
    assert_eq!(down.reason.to_string(), expected.to_string());
    log.push("down");
    assert_eq!(log.events(), ["init", "dropped(name held: true)", "down"]);
    assert!(name.whereis().is_none(), "released after the drop");
}

#[tokio::test]
async fn the_state_is_dropped_before_the_name_is_released_on_a_stop() {
    exits_in_order(
        async |server| server.stop(ExitReason::Normal, WAIT).await.unwrap(),
        ExitReason::Normal,
    )
    .await;
}

#[tokio::test]
async fn the_state_is_dropped_before_the_name_is_released_on_a_crash() {
    exits_in_order(
        async |server| drop(server.call(()).await),
        ExitReason::error("crash"),
    )
    .await;
}

#[tokio::test]
async fn the_state_is_dropped_before_the_name_is_released_on_a_kill() {
    exits_in_order(
        async |server| assert!(otp_core::process::exit(server.pid(), ExitReason::Killed)),
        ExitReason::Killed,
    )
    .await;
}

#[tokio::test]
async fn a_restarted_child_starts_after_its_predecessor_was_dropped() {
    let (name, log) = (Name::<ServerRef<Holder>>::new("holder"), EventLog::new());
    let (for_start, for_log) = (name.clone(), log.clone());
    let supervisor = Supervisor::start(
        SupFlags::new(Strategy::OneForOne),
        vec![ChildSpec::new(
            "holder",
            name.registering(move || Holder::start((for_start.clone(), for_log.clone()))),
        )],
    )
    .await
    .unwrap();
    let mut events = supervisor.subscribe();
    let first = name.get().unwrap();
    otp_core::process::exit(first.pid(), ExitReason::Killed);
    next_event_matching(&mut events, |event| {
        matches!(event, SupervisorEvent::ChildRestarted { .. })
    })
    .await;
    assert_eq!(log.events(), ["init", "dropped(name held: true)", "init"]);
    assert_ne!(name.get().unwrap().pid(), first.pid());
    supervisor.stop(WAIT).await.unwrap();
}
