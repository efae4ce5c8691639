//! kameo 0.22: an `Actor` with one `Message` impl per message, on an unbounded mailbox (the
//! floor's kind; kameo's default is bounded at 64, which would make W2 a backpressure test);
//! for W5 children `supervise`d by a supervisor actor, for W6 a `supervise`d child with a raised
//! restart limit that registers its name in `on_start`; for W8 kameo's local registry.

use std::time::{Duration, Instant};

use benches::{percentiles_us, restart_sample};
use kameo::error::Infallible;
use kameo::prelude::*;

use crate::workloads::{self, await_inits, on_tokio, ran_init, terminated, tokio_task};
use crate::{Figures, Server};

#[derive(Clone)]
pub struct Counter {
    value: u64,
    name: Option<&'static str>,
}

impl Actor for Counter {
    type Args = Option<&'static str>;
    type Error = Infallible;

    async fn on_start(name: Self::Args, me: ActorRef<Self>) -> Result<Self, Infallible> {
        if let Some(name) = name {
            // A restarted child keeps its name; a fresh one registers it.
            let _ = me.register(name);
        }
        ran_init();
        Ok(Counter { value: 0, name })
    }

    async fn on_stop(
        &mut self,
        _: WeakActorRef<Self>,
        _: ActorStopReason,
    ) -> Result<(), Infallible> {
        terminated();
        Ok(())
    }
}

pub struct Add(u64);
pub struct Get;
pub struct Inc;
pub struct Crash;

impl Message<Add> for Counter {
    type Reply = u64;

    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self, u64>) -> u64 {
        self.value += n;
        self.value
    }
}

impl Message<Get> for Counter {
    type Reply = u64;

    async fn handle(&mut self, _: Get, _: &mut Context<Self, u64>) -> u64 {
        self.value
    }
}

impl Message<Inc> for Counter {
    type Reply = ();

    async fn handle(&mut self, _: Inc, _: &mut Context<Self, ()>) {
        self.value += 1;
    }
}

impl Message<Crash> for Counter {
    type Reply = ();

    async fn handle(&mut self, _: Crash, _: &mut Context<Self, ()>) {
        panic!("crash {:?}", self.name)
    }
}

impl Server for ActorRef<Counter> {
    async fn spawn() -> Self {
        Counter::spawn_with_mailbox(None, mailbox::unbounded())
    }

    async fn add(&self, n: u64) -> u64 {
        self.ask(Add(n)).await.expect("ask")
    }

    fn inc(&self) {
        let _ = self.tell(Inc).try_send();
    }

    async fn get(&self) -> u64 {
        self.ask(Get).await.expect("ask")
    }

    async fn stop(&self) {
        let _ = self.stop_gracefully().await;
    }
}

/// A supervisor actor with no behaviour of its own.
struct Parent;

impl Actor for Parent {
    type Args = ();
    type Error = Infallible;

    async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Parent)
    }
}

async fn supervised_start(children: usize) -> Figures {
    let parent = Parent::spawn(());
    let start = Instant::now();
    for _ in 0..children {
        Counter::supervise(&parent, None)
            .spawn_with_mailbox(mailbox::unbounded())
            .await;
    }
    await_inits(children).await;
    let started = start.elapsed();
    let start = Instant::now();
    let _ = parent.stop_gracefully().await;
    parent.wait_for_shutdown().await;
    workloads::await_stops(children).await;
    let stopped = start.elapsed();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / children as f64;
    Figures::Measured(vec![
        ("us_per_start_child", per(started)),
        ("us_per_child_shutdown", per(stopped)),
    ])
}

async fn restart() -> Figures {
    let parent = Parent::spawn(());
    Counter::supervise(&parent, Some("crashy"))
        .restart_limit(u32::MAX, Duration::from_secs(3600))
        .spawn_with_mailbox(mailbox::unbounded())
        .await;
    let lookup = || ActorRef::<Counter>::lookup("crashy").ok().flatten();
    let mut samples = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let sample = restart_sample(
            || {
                if let Some(child) = lookup() {
                    let _ = child.tell(Crash).try_send();
                }
            },
            lookup,
            |child| async move { child.ask(Get).await.is_ok() },
        );
        samples.push(sample.await);
    }
    let (p50, p99) = percentiles_us(&mut samples);
    Figures::Measured(vec![("p50_us", p50), ("p99_us", p99)])
}

async fn registry() -> Figures {
    workloads::registry(
        |name| async move {
            let server = Counter::spawn_with_mailbox(None, mailbox::unbounded());
            server.register(name).expect("register");
            server
        },
        |name: &String| ActorRef::<Counter>::lookup(name.as_str()).ok().flatten(),
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
            other => workloads::common::<ActorRef<Counter>>(other, tokio_task).await,
        }
    })
}
