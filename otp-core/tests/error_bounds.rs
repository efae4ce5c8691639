//! Every public error is `Error + Send + Sync + 'static`, and every handle is `Send + Sync`
//! (after tokio's `sync_errors.rs` and `async_send_sync.rs`).

use otp_core::gen_server::{CallError, SendError, StartError, StopError};
use otp_core::registry::{RegisterError, Registry, Via};
use otp_core::task_supervisor::{
    ChildNotFound, TaskError, TaskHandle, TaskStartError, TaskSupervisor,
};
use otp_core::timer::TimerError;
use otp_core::{ExitReason, Pid, ServerRef};

fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
fn is_send_sync<T: Send + Sync>() {}
fn is_clone<T: Clone>() {}

struct Server;
impl otp_core::GenServer for Server {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();
    async fn init(
        _: (),
        _: &mut otp_core::gen_server::Context<Self>,
    ) -> Result<otp_core::gen_server::Init<Self>, otp_core::gen_server::BoxError> {
        Ok(otp_core::gen_server::Init::Ready(Server))
    }
}

#[test]
fn every_public_error_is_error_send_sync_static() {
    is_error::<StartError>();
    is_error::<CallError>();
    is_error::<SendError<String>>();
    is_error::<StopError>();
    is_error::<RegisterError>();
    is_error::<TimerError>();
    is_error::<TaskStartError>();
    is_error::<TaskError>();
    is_error::<ChildNotFound>();
    is_error::<otp_core::supervisor::SpecError>();
    is_error::<otp_core::supervisor::SupervisorStartError>();
    is_error::<otp_core::supervisor::StartChildError>();
    is_error::<otp_core::supervisor::TerminateChildError>();
    is_error::<otp_core::supervisor::RestartChildError>();
    is_error::<otp_core::supervisor::DeleteChildError>();
    is_error::<otp_core::supervisor::EventStreamError>();
    is_error::<otp_core::dynamic_supervisor::DynamicStartError>();
}

#[test]
fn handles_are_send_sync_and_cheap_to_clone() {
    is_send_sync::<ServerRef<Server>>();
    is_clone::<ServerRef<Server>>();
    is_send_sync::<Registry<String, u32>>();
    is_clone::<Registry<String, u32>>();
    is_send_sync::<Via<String, Server>>();
    is_send_sync::<TaskSupervisor>();
    is_clone::<TaskSupervisor>();
    is_send_sync::<TaskHandle<u32>>();
    is_send_sync::<ExitReason>();
    is_send_sync::<Pid>();
    is_send_sync::<otp_core::supervisor::Supervisor>();
    is_clone::<otp_core::supervisor::Supervisor>();
    is_send_sync::<otp_core::supervisor::ChildSpec>();
    is_send_sync::<otp_core::dynamic_supervisor::DynamicSupervisor>();
    is_clone::<otp_core::dynamic_supervisor::DynamicSupervisor>();
    is_send_sync::<otp_core::supervisor::SupervisorEvent>();
}

#[test]
fn error_messages_are_lowercase_without_a_full_stop() {
    let messages = [
        StartError::Ignored.to_string(),
        StartError::AlreadyStarted(Pid::new_unique()).to_string(),
        CallError::Timeout.to_string(),
        CallError::NoProc.to_string(),
        CallError::Exited(ExitReason::Killed).to_string(),
        StopError::Timeout.to_string(),
        RegisterError::RegistryDown.to_string(),
        TimerError::ZeroInterval.to_string(),
        TaskStartError::NoProc.to_string(),
        ChildNotFound.to_string(),
    ];
    for message in messages {
        let first = message.chars().next().unwrap();
        assert!(first.is_lowercase(), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }
}
