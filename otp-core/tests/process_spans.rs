//! Observability: every process runs inside a `tracing` span carrying its pid and name.
//!
//! A test binary of its own: tracing caches per-callsite interest globally, so a scoped
//! subscriber in one test races with tests on other threads that run without one.

mod support;

use otp_core::gen_server::{GenServer, StartOptions};
use otp_core::testing::{EventLog, await_exit};
use support::{Cast, Info, Probe, ProbeArgs, WAIT};

// OTP: rule "each process runs inside a tracing span carrying its pid and name"
#[test]
fn every_process_runs_in_a_span_with_its_pid_and_name() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pid = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let log = EventLog::new();
            let server = Probe::start_with(
                ProbeArgs::new("p", &log),
                StartOptions::new().label("traced"),
            )
            .await
            .unwrap();
            // An unhandled-by-design info is fine; a panic logs a warning inside the span.
            server.send(Info::Log("x".into())).unwrap();
            server.cast(Cast::Panic("traced crash")).unwrap();
            await_exit(&server, WAIT).await;
            server.pid()
        })
    });
    let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let span = format!("process{{pid={pid} name=\"traced\"}}");
    assert!(output.contains(&span), "no {span} in:\n{output}");
    assert!(output.contains("panic: traced crash"), "{output}");
}
