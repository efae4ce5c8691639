//! W6 restart: one supervised, named child that panics on "crash". 10,000 times: send crash,
//! then look the child up by name and call "get" until it answers (on failure yield and retry).
//! p50 and p99 µs from crash-send to the first successful reply, with the intensity limit raised
//! so that 10,000 restarts in a row are allowed. A silent panic hook, as for every contender.
//! (The hand-written restart-loop floor comes with the benchmarks issue.)

use std::time::{Duration, Instant};

use benches::{Request, runtime};
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

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    let rt = runtime();
    let mut samples = rt.block_on(async {
        tokio::spawn(async {
            let names: Registry<&'static str, ServerRef<Crashy>> =
                Registry::start().await.expect("registry");
            let via = names.via("crashy");
            let spec_via = via.clone();
            let flags = SupFlags::new(Strategy::OneForOne)
                .intensity(u32::MAX, Duration::from_secs(3600))
                .expect("flags");
            let spec = ChildSpec::new("crashy", move || {
                Crashy::start_with((), StartOptions::new().name(spec_via.clone()))
            });
            let _sup = Supervisor::start(flags, vec![spec])
                .await
                .expect("supervisor");
            let mut samples = Vec::with_capacity(RESTARTS);
            for _ in 0..RESTARTS {
                let crashed = Instant::now();
                let _ = via.cast(());
                loop {
                    match via.whereis() {
                        Some(server) if server.call(Request::Get).await.is_ok() => break,
                        _ => tokio::task::yield_now().await,
                    }
                }
                samples.push(crashed.elapsed());
            }
            samples
        })
        .await
        .expect("bench task")
    });
    samples.sort();
    let p50 = samples[samples.len() / 2].as_secs_f64() * 1e6;
    let p99 = samples[samples.len() * 99 / 100].as_secs_f64() * 1e6;
    let first = samples[..RESTARTS / 10]
        .iter()
        .sum::<Duration>()
        .as_secs_f64()
        * 1e6
        / (RESTARTS / 10) as f64;
    println!(
        "W6 restart ({RESTARTS} in one window): p50 {p50:.1} µs, p99 {p99:.1} µs (mean of the first 10%: {first:.1} µs)"
    );
}
