//! W9 pipeline: 10,000 `run_pipeline` (start + execute) of a one-step pipeline whose step does
//! no work (`NoopExecutor`), from one caller; executions per second from the first start until
//! all report completed. Then one `list_executions` with 10,000 executions.
//!
//! There is no plain-tokio floor for this workload; the reference is the fixed Elixir seed on
//! the BEAM (47,376 executions/s; list 10k in 91 ms). Targets: in memory ≥ 150,000/s and list
//! ≤ 2 ms; with the SQLite store ≥ 50,000/s and listing 10,000 from the store ≤ 10 ms.
//!
//! With `--json` (`cargo bench -p benches --bench pipeline -- --json`, as
//! `benches/peers/run.py` runs it), the last line of the output is the figures as one JSON
//! object.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipeline_manager::execution_store::{ExecutionStore, ListFilter, StoreConfig};
use pipeline_manager::sqlite_store::SqliteStore;
use pipeline_manager::step_runner::{Containment, NoopExecutor, ShellExecutor};
use pipeline_manager::{ManagerConfig, PipelineManager, PipelineSpec, StepAction, StepSpec};

/// The allocator the pipeline-manager binary ships with (see its `main.rs`); build with
/// `--no-default-features` to measure on the system allocator instead.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const ALLOCATOR_NAME: &str = if cfg!(all(feature = "jemalloc", not(target_env = "msvc"))) {
    "jemalloc"
} else {
    "system allocator"
};

const EXECUTIONS: usize = 10_000;

/// The argument that makes this bench its real steps' init (as `pipeline-manager __step-init`
/// does for the binary), so those rows need nothing built beside it.
const STEP_INIT: &str = "__step-init";

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|first| first == STEP_INIT) {
        return pipeline_manager::step_init::main(args.collect());
    }
    let json = std::env::args_os().any(|arg| arg == "--json");
    let runtime = benches::runtime();
    // The caller runs in a task on the runtime's workers, as in every other workload: from a
    // thread outside the runtime each round trip would pay two thread wake-ups.
    let run = runtime.spawn(async move {
        let mut figures = Figures::default();
        // W9 twice: executions in memory only, then recorded in the SQLite store (each
        // `run_pipeline` returns once its execution is durable, in the store's journal).
        let memory = w9(StoreConfig::Memory, "in memory", &mut figures).await;
        let manager = w9(StoreConfig::Sqlite, "with the SQLite store", &mut figures).await;
        let listing = Instant::now();
        let listed = manager.list_executions(None);
        let took = listing.elapsed();
        println!(
            "W9 list_executions: {} executions in {:.3} ms (BEAM seed: 91 ms)",
            listed.len(),
            took.as_secs_f64() * 1e3
        );
        figures.add("board_list_10k_ms", took.as_secs_f64() * 1e3);
        // The CLI's `list`: a reader of its own on the database, while the manager runs. It
        // sees what the manager has committed, at most `COMMIT_DELAY` behind: a read through
        // the manager first commits everything, so that the reader lists all 10,000.
        manager
            .history(ListFilter {
                limit: Some(1),
                ..ListFilter::default()
            })
            .await
            .expect("history");
        let listing = Instant::now();
        let store = SqliteStore::open_read_only(&store_dir())
            .expect("open the store")
            .expect("a store");
        let listed = store.list(&ListFilter::default()).expect("list");
        let took = listing.elapsed();
        println!(
            "W9 list from the store: {} executions in {:.3} ms (target: 10 ms)",
            listed.len(),
            took.as_secs_f64() * 1e3
        );
        figures.add("store_list_10k_ms", took.as_secs_f64() * 1e3);
        memory.shutdown().await.expect("shutdown");
        // Real steps: 1,000 executions of one `true` command through the shell executor, so
        // each pays its fork/exec, its init and containment, output drain and log files; once
        // per kind of containment.
        for containment in [Containment::Namespace, Containment::Subreaper] {
            real_steps(containment, &mut figures).await;
        }

        // One execution of 16,000 no-op steps: each step's status update used to copy every
        // step's progress (19 s of CPU in debug builds); now updates share the unchanged ones.
        const STEPS: usize = 16_000;
        let steps = (0..STEPS)
            .map(|i| StepSpec::new(format!("s{i}"), StepAction::Run("true".into())))
            .collect();
        let long = Instant::now();
        let id = manager
            .run_pipeline(PipelineSpec::new("long", steps).expect("a valid spec"))
            .await
            .expect("run");
        let status = manager
            .wait(&id, Duration::from_secs(600))
            .await
            .expect("wait");
        assert_eq!(status.status, pipeline_manager::Status::Completed);
        let took = long.elapsed();
        println!(
            "W9 one execution of {STEPS} no-op steps: {:.0} ms = {:.1} µs per step",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e6 / STEPS as f64
        );
        figures.add("long_us_per_step", took.as_secs_f64() * 1e6 / STEPS as f64);
        manager.shutdown().await.expect("shutdown");
        figures
    });
    let figures = runtime.block_on(run).expect("bench task");
    if json {
        println!("{}", figures.to_json());
    }
    std::process::ExitCode::SUCCESS
}

/// The figures of one run, by name, for `--json`.
#[derive(Default)]
struct Figures(Vec<(String, f64)>);

impl Figures {
    fn add(&mut self, name: impl Into<String>, value: f64) {
        self.0.push((name.into(), value));
    }

    /// One JSON object; names are plain identifiers and values finite, so nothing needs
    /// escaping.
    fn to_json(&self) -> String {
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(name, value)| format!("\"{name}\": {value}"))
            .collect();
        format!("{{{}}}", fields.join(", "))
    }
}

fn store_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("otp-bench-pipeline-store")
}

/// W9: `EXECUTIONS` sequential `run_pipeline`s of a one-step no-op pipeline from one caller,
/// then waiting for each to complete. Returns the manager, with its executions.
async fn w9(store: StoreConfig, label: &str, figures: &mut Figures) -> PipelineManager {
    let figure = match store {
        StoreConfig::Memory => "memory_per_s",
        _ => "store_per_s",
    };
    let output_dir = match store {
        StoreConfig::Memory => std::env::temp_dir().join("otp-bench-pipeline"),
        _ => store_dir(),
    };
    // A fresh store each run: the history of earlier runs would be listed too.
    let _ = std::fs::remove_dir_all(&output_dir);
    let config = ManagerConfig {
        output_dir,
        executor: Arc::new(NoopExecutor),
        store,
        ..ManagerConfig::default()
    };
    let manager = PipelineManager::start(config).await.expect("manager");
    // One spec, shared by every run (`run_pipeline` takes an `Arc` as it is).
    let spec = Arc::new(
        PipelineSpec::new(
            "noop",
            vec![StepSpec::new("noop", StepAction::Run("true".into()))],
        )
        .expect("a valid spec"),
    );
    let started = Instant::now();
    let mut ids = Vec::with_capacity(EXECUTIONS);
    for _ in 0..EXECUTIONS {
        ids.push(manager.run_pipeline(spec.clone()).await.expect("run"));
    }
    for id in &ids {
        let status = manager
            .wait(id, Duration::from_secs(60))
            .await
            .expect("wait");
        assert_eq!(status.status, pipeline_manager::Status::Completed);
    }
    let elapsed = started.elapsed();
    println!(
        "W9 run_pipeline {label} ({ALLOCATOR_NAME}): {EXECUTIONS} executions in {:.1} ms = {:.0} executions/s (BEAM seed: 47,376/s)",
        elapsed.as_secs_f64() * 1e3,
        EXECUTIONS as f64 / elapsed.as_secs_f64()
    );
    figures.add(figure, EXECUTIONS as f64 / elapsed.as_secs_f64());
    manager
}

/// W9 with a real step: 1,000 executions of `true` run by the shell executor under
/// `containment`, with this bench program as their init.
async fn real_steps(containment: Containment, figures: &mut Figures) {
    const REAL: usize = 1_000;
    let dir = std::env::temp_dir().join("otp-bench-pipeline-real");
    let real = PipelineManager::start(ManagerConfig {
        output_dir: dir.clone(),
        store: StoreConfig::Memory,
        executor: Arc::new(
            ShellExecutor::new()
                .with_init_command(std::env::current_exe().expect("this program"), [STEP_INIT])
                .with_containment(containment),
        ),
        ..ManagerConfig::default()
    })
    .await
    .expect("manager");
    let spec = Arc::new(
        PipelineSpec::new(
            "true",
            vec![StepSpec::new(
                "true",
                StepAction::Command(vec!["true".into()]),
            )],
        )
        .expect("a valid spec"),
    );
    let started = Instant::now();
    let mut ids = Vec::with_capacity(REAL);
    for _ in 0..REAL {
        ids.push(real.run_pipeline(spec.clone()).await.expect("run"));
    }
    for id in &ids {
        let status = real.wait(id, Duration::from_secs(60)).await.expect("wait");
        if status.status != pipeline_manager::Status::Completed {
            println!(
                "W9 with a real step ({containment:?}): not measured: {:?}",
                status.steps[0].exit
            );
            real.shutdown().await.expect("shutdown");
            return;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "W9 with a real step (`true`, {containment:?}): {REAL} executions in {:.0} ms = {:.0} executions/s, {:.0} µs per step",
        elapsed.as_secs_f64() * 1e3,
        REAL as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / REAL as f64
    );
    figures.add(
        format!("real_{containment:?}_per_s").to_lowercase(),
        REAL as f64 / elapsed.as_secs_f64(),
    );
    real.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_dir_all(dir);
}
