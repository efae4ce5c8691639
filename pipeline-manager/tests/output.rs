//! Step output with real commands: output far beyond a pipe's 64 KiB, on both streams, is read
//! while the step runs and written in full to its log files; memory keeps a bounded tail;
//! bytes that are not UTF-8 are shown lossily and capture goes on.

mod common;

use common::{WAIT, manager, shell};
use pipeline_manager::{Status, StepExit};

fn read_log(status: &pipeline_manager::ExecutionStatus, file: &str) -> Vec<u8> {
    let path = status.workdir.join("logs").join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// It used to hang: the output was read only after the step exited, and the pipe filled at
// 64 KiB. 200,000 lines (1.3 MB) on each stream, the step with a timeout that a blocked step
// would hit
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_printing_megabytes_on_both_streams_finishes_and_logs_all_of_it() {
    let manager = manager("output-megabytes").await;
    let spec = common::edited(
        shell(
            "loud",
            &[("print", "seq 1 200000; seq 200001 400000 >&2; echo done")],
        ),
        |draft| draft.steps[0].timeout = Some(std::time::Duration::from_secs(60)),
    );
    let id = manager.run_pipeline(spec).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Completed, "{:?}", status.error);
    assert_eq!(status.steps[0].exit, Some(StepExit::Success));

    let stdout = String::from_utf8(read_log(&status, "1-print.stdout")).unwrap();
    let expected: String = (1..=200_000).map(|n| format!("{n}\n")).collect::<String>() + "done\n";
    assert_eq!(stdout.len(), expected.len());
    assert!(
        stdout == expected,
        "stdout log differs from what the step printed"
    );
    let stderr = String::from_utf8(read_log(&status, "1-print.stderr")).unwrap();
    let expected: String = (200_001..=400_000).map(|n| format!("{n}\n")).collect();
    assert!(
        stderr == expected,
        "stderr log differs from what the step printed"
    );

    // The status keeps the last lines only. The streams are read concurrently, so which one
    // ended last varies, but the very last line is one of their ends.
    let tail = &status.steps[0].output_tail;
    assert_eq!(tail.len(), pipeline_manager::step_runner::OUTPUT_TAIL_LINES);
    let last = tail.last().map(String::as_str);
    assert!(matches!(last, Some("done" | "400000")), "{tail:?}");
    manager.shutdown().await.unwrap();
}

// One line far longer than the in-memory tail: the log has all of it, the status its end
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_huge_line_is_logged_whole_and_its_end_kept_in_memory() {
    let manager = manager("output-huge-line").await;
    let spec = shell(
        "wide",
        &[("line", "head -c 3000000 /dev/zero | tr '\\0' x; echo")],
    );
    let id = manager.run_pipeline(spec).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Completed, "{:?}", status.error);
    let log = read_log(&status, "1-line.stdout");
    assert_eq!(log.len(), 3_000_001);
    let tail = &status.steps[0].output_tail;
    assert_eq!(tail.len(), 1);
    let kept = tail[0].len();
    assert!(
        kept > 0 && kept <= pipeline_manager::step_runner::OUTPUT_TAIL_BYTES,
        "{kept} bytes kept"
    );
    assert!(tail[0].bytes().all(|b| b == b'x'));
    manager.shutdown().await.unwrap();
}

// A byte that is not UTF-8 used to end the capture silently; now it shows as U+FFFD and what
// follows is kept, in the log byte for byte
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_that_is_not_utf8_is_shown_lossily_and_capture_goes_on() {
    let manager = manager("output-not-utf8").await;
    let spec = shell("bytes", &[("mixed", "printf 'a\\377b\\nafter\\n'")]);
    let id = manager.run_pipeline(spec).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Completed, "{:?}", status.error);
    assert_eq!(status.steps[0].output_tail, ["a\u{FFFD}b", "after"]);
    assert_eq!(read_log(&status, "1-mixed.stdout"), b"a\xffb\nafter\n");
    manager.shutdown().await.unwrap();
}

// Step names become file names: whatever a name holds, its log stays inside logs/
#[test]
fn a_step_name_cannot_lead_a_log_out_of_the_logs_directory() {
    use pipeline_manager::step_runner::log_stem;
    let workdir = std::path::Path::new("/runs/exec");
    assert_eq!(
        log_stem(workdir, 0, "../../etc/passwd"),
        workdir.join("logs").join("1-.._.._etc_passwd")
    );
    assert_eq!(
        log_stem(workdir, 11, "build & test"),
        workdir.join("logs").join("12-build___test")
    );
    let stem = log_stem(workdir, 0, "build.release");
    assert_eq!(
        pipeline_manager::step_runner::log_file(&stem, "stdout"),
        workdir.join("logs").join("1-build.release.stdout")
    );
}

/// The peak resident set of this test process, from `/proc/self/status`.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

// The bound: a single 200 MB line must not take the manager past ~150 MB of RSS (the
// manager runs in this test process, so its peak is this process's)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_line_does_not_grow_the_managers_memory() {
    let manager = manager("output-200mb").await;
    let spec = shell(
        "huge",
        &[("line", "head -c 200000000 /dev/zero | tr '\\0' x; echo")],
    );
    let id = manager.run_pipeline(spec).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Completed, "{:?}", status.error);
    let log = status.workdir.join("logs").join("1-line.stdout");
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 200_000_001);
    std::fs::remove_file(&log).unwrap();
    let peak = peak_rss_bytes();
    assert!(peak < 150_000_000, "peak RSS {} MB", peak / 1_000_000);
    manager.shutdown().await.unwrap();
}

// Found trying it as a new user: the stream replaced everything after a name's last dot
// (`build.release` logged to `1-build.stdout`), and a 300-character name made file names
// too long, so nothing was logged
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotted_and_very_long_step_names_get_their_own_log_files() {
    let manager = manager("output-names").await;
    let long = "x".repeat(300);
    let spec = shell(
        "names",
        &[("build.release", "echo built"), (&long, "echo long")],
    );
    let id = manager.run_pipeline(spec).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Completed, "{:?}", status.error);
    assert_eq!(read_log(&status, "1-build.release.stdout"), b"built\n");
    let shortened = format!("2-{}.stdout", "x".repeat(100));
    assert_eq!(read_log(&status, &shortened), b"long\n");
    assert!(
        status.steps[1]
            .output_tail
            .iter()
            .all(|line| !line.contains("not written")),
        "{:?}",
        status.steps[1].output_tail
    );
    manager.shutdown().await.unwrap();
}
