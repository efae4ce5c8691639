//! A process whose state (or what its `init` owned) panics when dropped still exits properly:
//! its exit is published, monitors get their `Down`, names are released, its mailbox is closed
//! and calls fail instead of queueing forever. A zombie is worse than any exit reason.

mod support;

use std::time::Duration;

use otp_core::ServerRef;
use otp_core::gen_server::{
    BoxError, CallError, CallResult, Caller, Context, GenServer, Init, StartError, StartOptions,
};
use otp_core::monitor::monitor;
use otp_core::registry::Registry;
use otp_core::testing::assert_down;
use otp_core::{ExitReason, Pid};
use support::WAIT;
use tokio::sync::oneshot;

/// Panics when dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("drop panicked");
        }
    }
}

/// A server whose state panics when dropped; its `init` sends its pid, then either serves or
/// waits forever, holding a `PanicsOnDrop`.
struct Fragile {
    _guard: PanicsOnDrop,
}

struct FragileArgs {
    pid: oneshot::Sender<Pid>,
    wait_in_init: bool,
}

impl GenServer for Fragile {
    type Args = FragileArgs;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    async fn init(args: FragileArgs, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        let guard = PanicsOnDrop;
        let _ = args.pid.send(ctx.pid());
        if args.wait_in_init {
            std::future::pending::<()>().await;
        }
        Ok(Init::Ready(Fragile { _guard: guard }))
    }

    async fn handle_call(
        &mut self,
        (): (),
        _: Caller<'_, ()>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<()>, BoxError> {
        Ok(CallResult::Reply(()))
    }
}

fn args(wait_in_init: bool) -> (FragileArgs, oneshot::Receiver<Pid>) {
    let (pid, rx) = oneshot::channel();
    (FragileArgs { pid, wait_in_init }, rx)
}

// OTP: exit(Pid, kill) always ends the process and its monitors get 'DOWN'
#[tokio::test]
async fn a_killed_server_whose_state_panics_in_drop_still_exits() {
    let registry: Registry<&'static str, ServerRef<Fragile>> = Registry::start().await.unwrap();
    let (args, _) = args(false);
    let server = Fragile::start_with(args, StartOptions::new().name(registry.via("fragile")))
        .await
        .unwrap();
    let down = server.monitor();
    assert!(otp_core::process::exit(server.pid(), ExitReason::Killed));
    assert_down(down, ExitReason::Killed, WAIT).await;
    assert!(!otp_core::process::is_alive(server.pid()));
    assert!(!server.is_alive());
    assert_eq!(server.call(()).await, Err(CallError::NoProc));
    assert!(registry.lookup(&"fragile").is_none());
}

#[tokio::test]
async fn a_server_stopped_gracefully_whose_state_panics_in_drop_still_exits() {
    let (args, _) = args(false);
    let server = Fragile::start(args).await.unwrap();
    let down = server.monitor();
    // The state is dropped after terminate; its panic is the exit reason.
    let _ = server.stop(ExitReason::Normal, WAIT).await;
    let down = tokio::time::timeout(WAIT, down).await.unwrap();
    assert!(matches!(down.reason, ExitReason::Panic(_)), "{down:?}");
    assert_eq!(server.call(()).await, Err(CallError::NoProc));
}

// What an `init` abandoned at its start timeout owned is dropped as the process, and the
// process exits killed even if that drop panics
#[tokio::test]
async fn a_start_timeout_with_an_init_whose_state_panics_in_drop_still_exits_the_process() {
    let (args, pid) = args(true);
    let (started, ()) = tokio::join!(
        Fragile::start_with(args, StartOptions::new().timeout(Duration::from_millis(20))),
        async {
            // Monitored while its init waits.
            let pid = pid.await.unwrap();
            assert_down(monitor(pid), ExitReason::Killed, WAIT).await;
            assert!(!otp_core::process::is_alive(pid));
        }
    );
    assert_eq!(started.err(), Some(StartError::Timeout));
}

#[tokio::test]
async fn a_dropped_start_with_an_init_whose_state_panics_in_drop_still_exits_the_process() {
    let (args, pid) = args(true);
    let start = Box::pin(Fragile::start(args));
    let mut start = start;
    // Poll the start until init is waiting, then drop it.
    assert!(
        tokio::time::timeout(Duration::from_millis(20), &mut start)
            .await
            .is_err()
    );
    let pid = pid.await.unwrap();
    let down = monitor(pid);
    drop(start);
    assert_down(down, ExitReason::Killed, WAIT).await;
    assert!(!otp_core::process::is_alive(pid));
}
