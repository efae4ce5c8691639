//! W6's two contenders, shared by `supervisor_restart.rs` and the peers binary: one supervised,
//! named child that panics on "crash"; `RESTARTS` times, crash it, then look it up by name and
//! call "get" until it answers, yielding between attempts.

use std::time::Duration;

use otp_core::ServerRef;
use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init, StartOptions};
use otp_core::registry::Registry;
use otp_core::supervisor::{ChildSpec, Strategy, SupFlags, Supervisor};

use crate::{FloorNames, Request, restart_sample, spawn_floor_supervisor};

/// The number of timed restarts.
pub const RESTARTS: usize = 10_000;

/// The supervised child: replies to calls with its value, panics on any cast.
pub struct Crashy(u64);

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

/// The floor: a hand-written restart loop (`benches::spawn_floor_supervisor`) and a
/// `RwLock<HashMap>` of names.
pub async fn floor() -> Vec<Duration> {
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
pub async fn otp_core(window: Duration, history: usize) -> Vec<Duration> {
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
