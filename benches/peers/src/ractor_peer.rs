//! ractor 0.16: an `Actor` with `RpcReplyPort` calls; for W5 children `spawn_linked` to a
//! supervisor actor (ractor restarts nothing by itself: no strategies, no intensity); for W6 a
//! supervisor actor whose `handle_supervisor_evt` respawns the failed child under its name, as
//! ractor's documentation shows; for W8 ractor's global name registry.

use std::time::{Duration, Instant};

use benches::{percentiles_us, restart_sample};
use ractor::registry::where_is;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::workloads::{self, await_inits, on_tokio, ran_init, terminated, tokio_task};
use crate::{Figures, Server};

pub enum Msg {
    Add(u64, RpcReplyPort<u64>),
    Get(RpcReplyPort<u64>),
    Inc,
    Crash,
}

pub struct Counter;

impl Actor for Counter {
    type Msg = Msg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<u64, ActorProcessingErr> {
        ran_init();
        Ok(0)
    }

    async fn post_stop(&self, _: ActorRef<Msg>, _: &mut u64) -> Result<(), ActorProcessingErr> {
        terminated();
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<Msg>,
        message: Msg,
        value: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            Msg::Add(n, reply) => {
                *value += n;
                let _ = reply.send(*value);
            }
            Msg::Get(reply) => {
                let _ = reply.send(*value);
            }
            Msg::Inc => *value += 1,
            Msg::Crash => panic!("crash"),
        }
        Ok(())
    }
}

fn reply(result: Result<ractor::rpc::CallResult<u64>, impl std::fmt::Debug>) -> Option<u64> {
    match result {
        Ok(ractor::rpc::CallResult::Success(value)) => Some(value),
        _ => None,
    }
}

impl Server for ActorRef<Msg> {
    async fn spawn() -> Self {
        Actor::spawn(None, Counter, ()).await.expect("spawn").0
    }

    async fn add(&self, n: u64) -> u64 {
        reply(self.call(|port| Msg::Add(n, port), None).await).expect("call")
    }

    fn inc(&self) {
        let _ = self.cast(Msg::Inc);
    }

    async fn get(&self) -> u64 {
        reply(self.call(Msg::Get, None).await).expect("call")
    }

    async fn stop(&self) {
        self.get_cell().stop(None);
    }
}

/// A supervisor actor: W5's link target, and W6's restarter of the child named "crashy".
struct Parent;

impl Actor for Parent {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(child, _) = event
            && let Some(name) = child.get_name()
        {
            Actor::spawn_linked(Some(name), Counter, (), myself.get_cell()).await?;
        }
        Ok(())
    }
}

async fn supervised_start(children: usize) -> Figures {
    let (parent, _) = Actor::spawn(None, Parent, ()).await.expect("parent");
    let start = Instant::now();
    for _ in 0..children {
        Actor::spawn_linked(None, Counter, (), parent.get_cell())
            .await
            .expect("child");
    }
    await_inits(children).await;
    let started = start.elapsed();
    let start = Instant::now();
    parent.stop_children_and_wait(None, None).await;
    parent.stop_and_wait(None, None).await.expect("stop");
    workloads::await_stops(children).await;
    let stopped = start.elapsed();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / children as f64;
    Figures::Measured(vec![
        ("us_per_start_child", per(started)),
        ("us_per_child_shutdown", per(stopped)),
    ])
}

async fn restart() -> Figures {
    let (parent, _) = Actor::spawn(None, Parent, ()).await.expect("parent");
    Actor::spawn_linked(Some("crashy".into()), Counter, (), parent.get_cell())
        .await
        .expect("child");
    let lookup = || where_is("crashy").map(ActorRef::<Msg>::from);
    let mut samples = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let sample = restart_sample(
            || {
                if let Some(child) = lookup() {
                    let _ = child.cast(Msg::Crash);
                }
            },
            lookup,
            |child| async move { reply(child.call(Msg::Get, None).await).is_some() },
        );
        samples.push(sample.await);
    }
    let (p50, p99) = percentiles_us(&mut samples);
    Figures::Measured(vec![("p50_us", p50), ("p99_us", p99)])
}

async fn registry() -> Figures {
    workloads::registry(
        |name| async move {
            Actor::spawn(Some(name), Counter, ())
                .await
                .expect("spawn")
                .0
        },
        |name: &String| where_is(name).map(ActorRef::<Msg>::from),
        tokio_task,
    )
    .await
}

pub fn run(workload: &str) -> Option<Figures> {
    let workload = workload.to_owned();
    on_tokio(async move {
        match workload.as_str() {
            "w5" => Some(supervised_start(100_000).await),
            "w6" => Some(restart().await),
            "w8" => Some(registry().await),
            other => workloads::common::<ActorRef<Msg>>(other, tokio_task).await,
        }
    })
}
