//! W7 memory: bytes per idle server, from the RSS delta over 100,000 idle servers.
//!
//! Each contender runs in a fresh process (this binary re-executes itself), because freed
//! memory is not always returned to the OS.

use std::process::Command;

use benches::{Counter, FloorCounter, runtime};
use otp_core::GenServer;

const SERVERS: usize = 100_000;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn measure(contender: &str) -> f64 {
    let rt = runtime();
    rt.block_on(async {
        // Warm up the runtime and allocator so their fixed costs stay out of the delta.
        let warm: Vec<_> = (0..1_000).map(|_| FloorCounter::spawn()).collect();
        drop(warm);
        let before = rss_bytes();
        match contender {
            "floor_tokio" => {
                let handles: Vec<_> = (0..SERVERS).map(|_| FloorCounter::spawn()).collect();
                tokio::task::yield_now().await;
                let after = rss_bytes();
                drop(handles);
                (after - before) as f64 / SERVERS as f64
            }
            _ => {
                let mut handles = Vec::with_capacity(SERVERS);
                for _ in 0..SERVERS {
                    handles.push(Counter::start(()).await.expect("start"));
                }
                let after = rss_bytes();
                (after - before) as f64 / SERVERS as f64
            }
        }
    })
}

fn main() {
    if let Some(contender) = std::env::args().nth(1).filter(|a| !a.starts_with('-')) {
        println!("{:.0}", measure(&contender));
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let mut results = Vec::new();
    for contender in ["floor_tokio", "otp_core"] {
        let output = Command::new(&exe)
            .arg(contender)
            .output()
            .expect("run contender");
        let bytes: f64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or(f64::NAN);
        results.push((contender, bytes));
    }
    let floor = results[0].1;
    println!("W7 idle memory ({SERVERS} servers, bytes per idle server)");
    for (contender, bytes) in results {
        println!(
            "  {contender:<12} {bytes:>8.0} B   {:.2}x floor",
            bytes / floor
        );
    }
}
