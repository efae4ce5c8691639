//! W6 restart: one supervised, named child that panics on "crash". 10,000 times: send crash,
//! then look the child up by name and call "get" until it answers (on failure yield and retry).
//! p50 and p99 µs from crash-send to the first successful reply, with the intensity limit raised
//! so that 10,000 restarts in a row are allowed. A silent panic hook, as for every contender.
//! The floor is a hand-written restart loop; otp-core runs with 0 and with 10,000 restarts in
//! its intensity window, to show the restart cost does not grow with the history.

use std::time::Duration;

use benches::{
    FloorNames, Request, percentiles_us, restart_sample, runtime, spawn_floor_supervisor,
};
use otp_core::ServerRef;
use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init, StartOptions};
use otp_core::registry::Registry;
use otp_core::supervisor::{ChildSpec, Strategy, SupFlags, Supervisor};

struct Crashy(u64);

impl GenServer for Crashy {
    type Args = ();
    type Call = Request;
    type Reply = u64;
    type Cast = ();
    type Info = std::convert::Infallible;
    type Continue = std::convert::Infallible;

    async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Crashy(0)))
    }

    async fn handle_call(
        &mut self,
        _: Request,
        _: Caller<'_, u64>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<u64>, BoxError> {
        Ok(CallResult::Reply(self.0))
    }

    async fn handle_cast(&mut self, _: (), _: &mut Context<Self>) -> Result<(), BoxError> {
        panic!("crash")
    }
}

const RESTARTS: usize = 10_000;

/// The floor: a hand-written restart loop (`benches::spawn_floor_supervisor`) and a
/// `RwLock<HashMap>` of names.
async fn floor() -> Vec<Duration> {
    let names = FloorNames::default();
    spawn_floor_supervisor("crashy", names.clone());
    let mut samples = Vec::with_capacity(RESTARTS);
    for _ in 0..RESTARTS {
        let sample = restart_sample(
            || {
                if let Some(server) = names.read().get("crashy") {
                    server.crash();
                }
            },
            || names.read().get("crashy").cloned(),
            |server| async move { server.try_call(Request::Get).await.is_some() },
        );
        samples.push(sample.await);
    }
    samples
}

/// otp-core: a `one_for_one` supervisor with a named child. `window` is the intensity period:
/// 1 µs keeps the restart history empty; an hour keeps every restart in it. `history` restarts
/// are made, untimed, before the timed ones.
async fn otp_core(window: Duration, history: usize) -> Vec<Duration> {
    let names: Registry<&'static str, ServerRef<Crashy>> =
        Registry::start().await.expect("registry");
    let via = names.via("crashy");
    let spec_via = via.clone();
    let flags = SupFlags::new(Strategy::OneForOne)
        .intensity(u32::MAX, window)
        .expect("flags");
    let spec = ChildSpec::new("crashy", move || {
        Crashy::start_with((), StartOptions::new().name(spec_via.clone()))
    });
    let _sup = Supervisor::start(flags, vec![spec])
        .await
        .expect("supervisor");
    let mut samples = Vec::with_capacity(RESTARTS);
    for round in 0..history + RESTARTS {
        let sample = restart_sample(
            || {
                let _ = via.cast(());
            },
            || via.whereis(),
            |server| async move { server.call(Request::Get).await.is_ok() },
        )
        .await;
        if round >= history {
            samples.push(sample);
        }
    }
    samples
}

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    let rt = runtime();
    let run = |name: &str, samples: Vec<Duration>| {
        let mut samples = samples;
        let (p50, p99) = percentiles_us(&mut samples);
        println!("  {name:<40} p50 {p50:>6.1} µs   p99 {p99:>6.1} µs");
        (p50, p99)
    };
    println!("W6 restart ({RESTARTS} crash -> first successful call after restart)");
    let floor = run(
        "floor_tokio (hand-written restart loop)",
        rt.block_on(async { tokio::spawn(floor()).await.expect("floor") }),
    );
    let empty = run(
        "otp_core, 0 restarts in the window",
        rt.block_on(async {
            tokio::spawn(otp_core(Duration::from_micros(1), 0))
                .await
                .expect("otp-core")
        }),
    );
    let full = run(
        "otp_core, 10,000 restarts in the window",
        rt.block_on(async {
            tokio::spawn(otp_core(Duration::from_secs(3600), RESTARTS))
                .await
                .expect("otp-core")
        }),
    );
    println!(
        "  ratios to the floor: p50 {:.2}x / {:.2}x, p99 {:.2}x / {:.2}x",
        empty.0 / floor.0,
        full.0 / floor.0,
        empty.1 / floor.1,
        full.1 / floor.1
    );
}
