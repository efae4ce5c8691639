//! A static Supervisor under each strategy: crash one child and watch what the supervisor does,
//! through its event stream (and, with `RUST_LOG=info`, its `tracing` events).
//!
//! Run with `cargo run -p examples --example supervision_tree`.

use std::time::Duration;

use otp_core::gen_server::{BoxError, Context, GenServer, Init};
use otp_core::supervisor::{ChildSpec, Strategy, SupFlags, Supervisor, SupervisorEvent};
use otp_core::{Pid, ServerRef};

/// A worker that crashes when told to (let it crash: the supervisor restarts it).
struct Worker;

impl GenServer for Worker {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Worker))
    }

    async fn handle_cast(&mut self, _: (), _: &mut Context<Self>) -> Result<(), BoxError> {
        Err("told to crash".into())
    }
}

fn describe(event: &SupervisorEvent, names: &[(Pid, &str)]) -> String {
    let name = |pid: &Pid| {
        names
            .iter()
            .find(|(p, _)| p == pid)
            .map_or_else(|| pid.to_string(), |(_, n)| n.to_string())
    };
    match event {
        SupervisorEvent::ChildExited {
            child, pid, reason, ..
        } => {
            format!(
                "  exited     {} ({}) with {reason}",
                child.as_deref().unwrap_or("?"),
                name(pid)
            )
        }
        SupervisorEvent::ChildRestarted { child, pid, .. } => {
            format!("  restarted  {} as {pid}", child.as_deref().unwrap_or("?"))
        }
        other => format!("  {other:?}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();

    for strategy in [
        Strategy::OneForOne,
        Strategy::OneForAll,
        Strategy::RestForOne,
    ] {
        println!("{strategy:?}: crash b of [a, b, c]");
        let flags = SupFlags::new(strategy).intensity(5, Duration::from_secs(10))?;
        // Keep each child's handle as it starts, to crash it by name below.
        let (tx, mut started) =
            tokio::sync::mpsc::unbounded_channel::<(&'static str, ServerRef<Worker>)>();
        let spec = |id: &'static str| {
            let tx = tx.clone();
            ChildSpec::new(id, move || {
                let tx = tx.clone();
                async move {
                    let worker = Worker::start(()).await?;
                    let _ = tx.send((id, worker.clone()));
                    Ok::<_, otp_core::gen_server::StartError>(worker)
                }
            })
        };
        let supervisor = Supervisor::start(flags, vec![spec("a"), spec("b"), spec("c")]).await?;
        let mut events = supervisor.subscribe();
        let mut names = Vec::new();
        let mut b = None;
        while let Ok((id, worker)) = started.try_recv() {
            names.push((worker.pid(), id));
            if id == "b" {
                b = Some(worker);
            }
        }
        b.ok_or("b did not start")?.cast(()).ok();

        // Read events until the supervisor has restarted everything the strategy restarts.
        let expected = match strategy {
            Strategy::OneForOne => 1,
            Strategy::OneForAll => 3,
            Strategy::RestForOne => 2,
        };
        let mut restarted = 0;
        while restarted < expected {
            let event = events.next().await?;
            if matches!(event, SupervisorEvent::ChildRestarted { .. }) {
                restarted += 1;
            }
            println!("{}", describe(&event, &names));
        }
        supervisor.stop(Duration::from_secs(5)).await?;
    }
    Ok(())
}
