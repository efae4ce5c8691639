//! W1–W8 (`shared/bench/WORKLOADS.md`) on the plain-tokio floor, otp-core, ractor, kameo and
//! actix, one workload per process: `peers <contender> <workload>` prints one JSON object of
//! figures. `run.py` runs every pair five times in fresh processes and writes `RESULTS.md`.
//!
//! W1–W4 and W7 are written once, over the [`Server`] trait, which each contender implements
//! the way its documentation shows; W5, W6 and W8 use each framework's own supervisor and
//! registry, and a contender that has none says so instead of faking it.

mod actix_peer;
mod floor;
mod kameo_peer;
mod otp;
mod ractor_peer;
mod workloads;

use std::future::Future;
use std::process::ExitCode;

/// The counter server every contender implements: `add(n)` and `get` are calls, `inc` a cast.
pub trait Server: Clone + Send + Sync + 'static {
    /// Starts one idle server. Its init calls [`workloads::ran_init`] (start may return first).
    fn spawn() -> impl Future<Output = Self> + Send;
    /// Adds `n`, replies with the new value.
    fn add(&self, n: u64) -> impl Future<Output = u64> + Send;
    /// Adds 1, no reply.
    fn inc(&self);
    /// Replies with the value.
    fn get(&self) -> impl Future<Output = u64> + Send;
    /// Asks the server to stop gracefully; its termination calls [`workloads::terminated`].
    fn stop(&self) -> impl Future<Output = ()> + Send;
}

/// The figures one run produced, as `(name, value)` pairs, or why the workload does not fit.
pub enum Figures {
    /// Measured.
    Measured(Vec<(&'static str, f64)>),
    /// The contender has no idiomatic way to run this workload.
    DoesNotFit(&'static str),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [contender, workload] = args.as_slice() else {
        eprintln!(
            "usage: peers <floor|otp-core|otp-core-processes|ractor|kameo|actix> <w1|w2|w3|w4|w5|w6|w7|w8|scale-*>"
        );
        return ExitCode::from(2);
    };
    // The W6 crashes are expected; every contender runs with the same silent hook.
    std::panic::set_hook(Box::new(|_| {}));
    let figures = match contender.as_str() {
        "floor" => floor::run(workload),
        "otp-core" => otp::run(workload),
        "otp-core-processes" => otp::run_as_processes(workload),
        "ractor" => ractor_peer::run(workload),
        "kameo" => kameo_peer::run(workload),
        "actix" => actix_peer::run(workload),
        _ => None,
    };
    match figures {
        Some(Figures::Measured(figures)) => {
            let fields: Vec<String> = figures
                .iter()
                .map(|(name, value)| format!("\"{name}\": {value}"))
                .collect();
            println!("{{{}}}", fields.join(", "));
            ExitCode::SUCCESS
        }
        Some(Figures::DoesNotFit(why)) => {
            println!("{{\"does_not_fit\": \"{why}\"}}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("unknown contender or workload: {contender} {workload}");
            ExitCode::from(2)
        }
    }
}
