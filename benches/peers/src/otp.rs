//! otp-core: a `GenServer`, `DynamicSupervisor` (W5), a `one_for_one` `Supervisor` with a named
//! child (W6) and the `Registry` (W8).
//!
//! Two rows: `otp-core`, where the workload and W3's and W8's callers are plain tokio tasks, as
//! for every peer and as users call from handlers, `main` and tests; and `otp-core-processes`,
//! where they are otp-core processes (supervised tasks), as code inside a supervision tree
//! calls.

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use benches::percentiles_us;
use otp_core::dynamic_supervisor::{DynamicSupervisor, DynamicSupervisorOptions};
use otp_core::gen_server::{
    BoxError, CallResult, Caller, Context, GenServer, Init, StartOptions, Timeout,
};
use otp_core::registry::Registry;
use otp_core::supervisor::ChildSpec;
use otp_core::task_supervisor::TaskSupervisor;
use otp_core::{ExitReason, ServerRef};

use crate::workloads::{self, SpawnTask, Task, await_inits, on_tokio, ran_init, terminated};
use crate::{Figures, Server};

/// The counter's calls.
#[derive(Debug, Clone, Copy)]
pub enum Call {
    Add(u64),
    Get,
}

/// The counter's casts.
#[derive(Debug, Clone, Copy)]
pub enum Cast {
    Inc,
    Stop,
    Crash,
}

/// The otp-core counter server.
pub struct Counter(u64);

impl GenServer for Counter {
    type Args = ();
    type Call = Call;
    type Reply = u64;
    type Cast = Cast;
    type Info = Infallible;
    type Continue = Infallible;

    async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        ran_init();
        Ok(Init::Ready(Counter(0)))
    }

    async fn handle_call(
        &mut self,
        request: Call,
        _: Caller<'_, u64>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<u64>, BoxError> {
        if let Call::Add(n) = request {
            self.0 += n;
        }
        Ok(CallResult::Reply(self.0))
    }

    async fn handle_cast(&mut self, cast: Cast, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match cast {
            Cast::Inc => self.0 += 1,
            Cast::Stop => ctx.stop(ExitReason::Normal),
            Cast::Crash => panic!("crash"),
        }
        Ok(())
    }

    async fn terminate(&mut self, _: &ExitReason, _: &mut Context<Self>) {
        terminated();
    }
}

impl Server for ServerRef<Counter> {
    async fn spawn() -> Self {
        Counter::start(()).await.expect("start")
    }

    async fn add(&self, n: u64) -> u64 {
        self.call(Call::Add(n)).await.expect("call")
    }

    fn inc(&self) {
        let _ = self.cast(Cast::Inc);
    }

    async fn get(&self) -> u64 {
        self.call(Call::Get).await.expect("call")
    }

    async fn stop(&self) {
        let _ = self.cast(Cast::Stop);
    }
}

static TASKS: OnceLock<TaskSupervisor> = OnceLock::new();

/// Starts a task as an otp-core process under the workload's task supervisor.
// The outer future resolves once the task is started, the inner one when it has finished.
#[allow(clippy::async_yields_async)]
fn process_task(task: Task) -> std::pin::Pin<Box<dyn Future<Output = Task> + Send>> {
    Box::pin(async move {
        let tasks = TASKS.get().expect("task supervisor");
        let handle = tasks.async_nolink(task).await.expect("task");
        Box::pin(async move {
            let _ = handle.await;
        }) as Task
    })
}

/// W5: `children` children started one after the other under a `DynamicSupervisor`, then the
/// supervisor shut down with them.
async fn supervised_start(children: usize) -> Figures {
    let supervisor = DynamicSupervisor::start(DynamicSupervisorOptions::default())
        .await
        .expect("supervisor");
    let spec = ChildSpec::new("counter", || Counter::start(()));
    let start = Instant::now();
    for _ in 0..children {
        supervisor.start_child(spec.clone()).await.expect("child");
    }
    await_inits(children).await;
    let started = start.elapsed();
    let start = Instant::now();
    supervisor.stop(Timeout::Infinity).await.expect("stop");
    let stopped = start.elapsed();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / children as f64;
    Figures::Measured(vec![
        ("us_per_start_child", per(started)),
        ("us_per_child_shutdown", per(stopped)),
    ])
}

/// W6: a `one_for_one` supervisor whose child is registered as "crashy" (`benches::restart`).
/// `window` is the intensity period (1 µs keeps the restart history empty, an hour keeps every
/// restart in it); `history` untimed restarts come first.
async fn restart(window: Duration, history: usize) -> Figures {
    let mut samples = benches::restart::otp_core(window, history).await;
    let (p50, p99) = percentiles_us(&mut samples);
    Figures::Measured(vec![("p50_us", p50), ("p99_us", p99)])
}

/// W8 on otp-core's `Registry`: each server registered by its via-name as it starts.
async fn registry(spawn_task: SpawnTask) -> Figures {
    let names: Registry<String, ServerRef<Counter>> = Registry::start().await.expect("registry");
    let register = names.clone();
    workloads::registry(
        move |name| {
            let via = register.via(name);
            async move {
                Counter::start_with((), StartOptions::new().name(via))
                    .await
                    .expect("start")
            }
        },
        move |name: &String| names.lookup(name).map(|(_, server)| server),
        spawn_task,
    )
    .await
}

async fn workload(name: String, spawn_task: SpawnTask) -> Option<Figures> {
    Some(match name.as_str() {
        "w5" => supervised_start(100_000).await,
        "w6" => restart(Duration::from_secs(3600), 0).await,
        "w8" => registry(spawn_task).await,
        "scale-dynsup-1k" => supervised_start(1_000).await,
        "scale-dynsup-100k" => supervised_start(100_000).await,
        "scale-dynsup-1m" => supervised_start(1_000_000).await,
        "scale-restart-history-0" => restart(Duration::from_micros(1), 0).await,
        "scale-restart-history-10k" => restart(Duration::from_secs(3600), 10_000).await,
        other => return workloads::common::<ServerRef<Counter>>(other, spawn_task).await,
    })
}

/// The main row: the workload and its callers are plain tokio tasks.
pub fn run(name: &str) -> Option<Figures> {
    let name = name.to_owned();
    on_tokio(workload(name, workloads::tokio_task))
}

/// The second row: the workload and its callers are otp-core processes.
pub fn run_as_processes(name: &str) -> Option<Figures> {
    let name = name.to_owned();
    on_tokio(async move {
        let tasks = TaskSupervisor::start().await.expect("task supervisor");
        let _ = TASKS.set(tasks.clone());
        let handle = tasks
            .async_nolink(workload(name, process_task))
            .await
            .expect("workload");
        handle.await.expect("workload process")
    })
}
