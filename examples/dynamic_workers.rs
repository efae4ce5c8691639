//! DynamicSupervisor + Registry: start named workers on demand, find one by name, kill it and
//! watch its name: a permanent worker comes back under the same name, a temporary one is gone.
//!
//! Run with `cargo run -p examples --example dynamic_workers`.

use std::time::Duration;

use otp_core::dynamic_supervisor::{DynamicSupervisor, DynamicSupervisorOptions};
use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init, StartOptions};
use otp_core::registry::Registry;
use otp_core::supervisor::{ChildSpec, Restart, SupervisorEvent};
use otp_core::{ExitReason, ServerRef};

/// A worker that answers with its own name and pid.
struct Worker {
    name: String,
}

impl GenServer for Worker {
    type Args = String;
    type Call = ();
    type Reply = String;
    type Cast = std::convert::Infallible;
    type Info = std::convert::Infallible;
    type Continue = ();

    async fn init(name: String, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Worker { name }))
    }

    async fn handle_call(
        &mut self,
        _: (),
        _: Caller<'_, String>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<String>, BoxError> {
        Ok(CallResult::Reply(format!("{} at {}", self.name, ctx.pid())))
    }
}

type Names = Registry<String, ServerRef<Worker>>;

fn named_worker(names: &Names, name: &str, restart: Restart) -> ChildSpec {
    let via = names.via(name.to_string());
    let name = name.to_string();
    ChildSpec::new(name.clone(), move || {
        Worker::start_with(name.clone(), StartOptions::new().name(via.clone()))
    })
    .restart(restart)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names: Names = Registry::start().await?;
    let workers = DynamicSupervisor::start(DynamicSupervisorOptions {
        max_children: Some(100),
        ..DynamicSupervisorOptions::default()
    })
    .await?;
    let mut events = workers.subscribe();

    workers
        .start_child(named_worker(&names, "steady", Restart::Permanent))
        .await?;
    workers
        .start_child(named_worker(&names, "one-shot", Restart::Temporary))
        .await?;
    println!("children: {}", workers.count_children().await?.active);

    let steady = names.via("steady".to_string());
    let one_shot = names.via("one-shot".to_string());
    println!("steady says: {}", steady.call(()).await?);
    println!("one-shot says: {}", one_shot.call(()).await?);

    // Kill both from outside.
    for via in [&steady, &one_shot] {
        if let Some(worker) = via.whereis() {
            otp_core::process::exit(worker.pid(), ExitReason::Killed);
        }
    }
    // Wait for the supervisor to act: one restart (steady), no restart for one-shot.
    loop {
        match events.next().await? {
            SupervisorEvent::ChildRestarted { pid, .. } => {
                println!("restarted as {pid}");
                break;
            }
            SupervisorEvent::ChildExited { pid, reason, .. } => println!("{pid} exited: {reason}"),
            _ => {}
        }
    }
    println!("steady says: {}", steady.call(()).await?);
    println!("one-shot: {:?}", one_shot.call(()).await);
    println!("names registered: {}", names.count());

    workers.stop(Duration::from_secs(5)).await?;
    println!("after shutdown, names registered: {}", names.count());
    Ok(())
}
