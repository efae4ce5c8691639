//! W6 restart: one supervised, named child that panics on "crash". 10,000 times: send crash,
//! then look the child up by name and call "get" until it answers (on failure yield and retry).
//! p50 and p99 µs from crash-send to the first successful reply, with the intensity limit raised
//! so that 10,000 restarts in a row are allowed. A silent panic hook, as for every contender.
//! The floor is a hand-written restart loop; otp-core runs with 0 and with 10,000 restarts in
//! its intensity window, to show the restart cost does not grow with the history.
//! The contenders are in `benches::restart`, shared with the peers binary.

use std::time::Duration;

use benches::restart::{RESTARTS, floor, otp_core};
use benches::{percentiles_us, runtime};

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
