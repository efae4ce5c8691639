//! `process::current()` (Erlang `self()`): which process the running code belongs to, in
//! callbacks, in tasks, in code they await, and in the `Drop` of what a killed process owned.

use std::sync::Arc;
use std::time::Duration;

use otp_core::ExitReason;
use otp_core::gen_server::{CallResult, Caller, Context, GenServer, Init};
use otp_core::process::{self, BoxError, Pid};
use otp_core::task_supervisor::TaskSupervisor;
use otp_core::testing::await_exit;
use parking_lot::Mutex;

const WAIT: Duration = Duration::from_secs(5);

/// Records `process::current()` when dropped.
struct DropProbe(Arc<Mutex<Vec<Option<Pid>>>>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.0.lock().push(process::current());
    }
}

/// Answers every call with `process::current()`, as seen from its callbacks.
struct Whoami {
    seen_in_init: Option<Pid>,
    _probe: DropProbe,
}

impl GenServer for Whoami {
    type Args = Arc<Mutex<Vec<Option<Pid>>>>;
    type Call = ();
    type Reply = (Option<Pid>, Option<Pid>);
    type Cast = ();
    type Info = ();
    type Continue = ();

    async fn init(drops: Self::Args, _ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Whoami {
            seen_in_init: process::current(),
            _probe: DropProbe(drops),
        }))
    }

    async fn handle_call(
        &mut self,
        (): (),
        _caller: Caller<'_, Self::Reply>,
        _ctx: &mut Context<Self>,
    ) -> Result<CallResult<Self::Reply>, BoxError> {
        // Across an `.await`, the server may resume on another worker thread.
        tokio::task::yield_now().await;
        Ok(CallResult::Reply((self.seen_in_init, process::current())))
    }
}

#[tokio::test]
async fn outside_any_process_there_is_no_current_process() {
    assert_eq!(process::current(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_servers_callbacks_the_current_process_is_the_server() {
    let drops = Arc::new(Mutex::new(Vec::new()));
    let server = Whoami::start(drops).await.expect("start");
    let (in_init, in_call) = server.call(()).await.expect("call");
    assert_eq!(in_init, Some(server.pid()));
    assert_eq!(in_call, Some(server.pid()));
    // The caller's own task is not a process, and the call did not leave the server current.
    assert_eq!(process::current(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_servers_state_is_dropped_with_the_server_current() {
    let drops = Arc::new(Mutex::new(Vec::new()));
    let server = Whoami::start(drops.clone()).await.expect("start");
    assert!(process::exit(server.pid(), ExitReason::Killed));
    assert_eq!(await_exit(&server, WAIT).await, ExitReason::Killed);
    assert_eq!(*drops.lock(), [Some(server.pid())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_supervised_task_the_current_process_is_the_task_and_a_call_does_not_change_it() {
    let drops = Arc::new(Mutex::new(Vec::new()));
    let server = Whoami::start(drops).await.expect("start");
    let tasks = TaskSupervisor::start().await.expect("task supervisor");
    let handle = tasks
        .async_nolink(async move {
            let before = process::current();
            let (_, callee) = server.call(()).await.expect("call");
            (before, callee, process::current())
        })
        .await
        .expect("task");
    let task = handle.pid();
    let (before, callee, after) = handle.await.expect("task result");
    assert_eq!(before, Some(task));
    assert_ne!(callee, Some(task));
    assert_eq!(after, Some(task));
}
