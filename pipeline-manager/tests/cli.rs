//! The `pipeline-manager` binary on fixture pipelines: exit codes and output.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn cli(test: &str) -> Command {
    let dir = common::output_dir(test);
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipeline-manager"));
    // Marks the CLI, and so every step process it starts, with the test's name.
    command
        .current_dir(dir)
        .env(common::MARK, common::mark(test));
    command
}

fn run(test: &str, args: &[&str]) -> Output {
    cli(test).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What the CLI run by test `test` has written to `file` in its (first) execution's
/// directory, once it is there and not empty. The step's task creates that directory, so it
/// may appear just after the "running" line: bounded at 20 s, without sleeping.
fn run_file(test: &str, file: &str) -> String {
    let runs = std::env::temp_dir()
        .join(format!("pm-test-{}-{test}", std::process::id()))
        .join("runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = common::first_execution_dir(&runs)
            .and_then(|workdir| std::fs::read_to_string(workdir.join(file)).ok())
            .filter(|text| !text.trim().is_empty());
        if let Some(text) = text {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{test}: the step never wrote {file}"
        );
        std::hint::spin_loop();
    }
}

#[test]
fn a_completed_run_exits_0_and_prints_the_summary() {
    let out = run("cli-ok", &["run", fixture("ok.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("completed"), "{stdout}");
    assert!(stdout.contains("hello.txt (6 bytes)"), "{stdout}");
}

// The README's first command: the demo, whose steps need each other as a DAG, completes.
// Run by a copy of the program alone, with no `pipeline-step-init` beside it (`cargo run`
// builds only the manager): it is its own steps' init.
#[test]
fn the_demo_completes_run_by_the_program_alone() {
    let test = "cli-demo";
    let dir = common::output_dir(test);
    let alone = dir.join("bin");
    std::fs::create_dir_all(&alone).unwrap();
    let program = alone.join("pipeline-manager");
    std::fs::copy(env!("CARGO_BIN_EXE_pipeline-manager"), &program).unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/demo.toml");
    let out = Command::new(&program)
        .current_dir(&dir)
        .env(common::MARK, common::mark(test))
        .args(["run", "--json", demo.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let statuses: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(statuses[0]["status"], "completed");
    assert_eq!(statuses[0]["steps_completed"], 6);
    assert!(common::processes_marked(&common::mark(test)).is_empty());
}

#[test]
fn a_failed_run_exits_1_and_shows_the_step_output() {
    let out = run(
        "cli-fail",
        &[
            "run",
            fixture("ok.toml").to_str().unwrap(),
            fixture("fail.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("step \"broken\" failed: exit status 4"),
        "{stdout}"
    );
    assert!(stdout.contains("something went wrong"), "{stdout}");
}

#[test]
fn an_invalid_spec_exits_2_naming_file_line_and_field_and_runs_nothing() {
    let out = run(
        "cli-bad",
        &[
            "run",
            fixture("ok.toml").to_str().unwrap(),
            fixture("bad.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.toml:5: steps[0].colour: unknown field `colour`"),
        "{stderr}"
    );
    let dir = std::env::temp_dir().join(format!("pm-test-{}-cli-bad", std::process::id()));
    assert!(!dir.join("runs").exists(), "nothing may run");
    let missing = run("cli-missing", &["validate", "/nonexistent.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent.toml: cannot read"));
    let usage = run("cli-usage", &["frobnicate"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn validate_checks_without_running() {
    let out = run(
        "cli-validate",
        &["validate", fixture("ok.toml").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("ok (2 steps)"));
}

#[test]
fn json_prints_the_final_statuses() {
    let out = run(
        "cli-json",
        &["run", "--json", fixture("ok.toml").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    let statuses: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(statuses[0]["status"], "completed");
    assert_eq!(statuses[0]["steps_completed"], 2);
    assert_eq!(statuses[0]["steps"][1]["output_tail"][0], "hello");
}

#[test]
fn ctrl_c_cancels_running_executions_kills_their_processes_and_exits_130() {
    let mut child = cli("cli-ctrl-c")
        .args(["run", fixture("long.toml").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Plain progress lines (stderr is not a terminal): wait until the step is running.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("running wait") {
            break;
        }
    }
    run_file("cli-ctrl-c", "ready");
    assert!(!common::processes_marked(&common::mark("cli-ctrl-c")).is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(stdout.contains("cancelled"), "{stdout}");
    common::assert_none_marked_blocking(&common::mark("cli-ctrl-c"));
}

// `logs` prints what the steps printed, from their log files: a step's stdout to stdout and
// its stderr to stderr; by execution id or directory; a step that does not exist is exit 2
#[test]
fn logs_prints_each_steps_output_by_id_or_directory() {
    // `cli` starts each test in a fresh directory; these commands share one.
    let dir = common::output_dir("cli-logs");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pipeline-manager"))
            .current_dir(&dir)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "run",
        "--json",
        fixture("ok.toml").to_str().unwrap(),
        fixture("fail.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let statuses: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = |pipeline: &str| {
        statuses
            .as_array()
            .unwrap()
            .iter()
            .find(|status| status["pipeline"] == pipeline)
            .map(|status| status["execution_id"].as_str().unwrap().to_string())
            .unwrap()
    };

    let read = run(&["logs", &id("ok"), "read"]);
    assert_eq!(read.status.code(), Some(0), "{}", text(&read.stderr));
    assert_eq!(text(&read.stdout), "hello\n");

    let broken = run(&["logs", &format!("runs/{}", id("fail"))]);
    assert_eq!(broken.status.code(), Some(0), "{}", text(&broken.stderr));
    assert_eq!(text(&broken.stderr), "something went wrong\n");

    let both = run(&["logs", &id("ok")]);
    assert_eq!(text(&both.stdout), "==> write <==\n==> read <==\nhello\n");

    let missing = run(&["logs", &id("ok"), "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no step \"nope\""));
    let file = format!("runs/{}/logs/2-read.stdout", id("ok"));
    let a_file = run(&["logs", &file]);
    assert_eq!(a_file.status.code(), Some(2));
    assert!(
        text(&a_file.stderr).contains("not a file"),
        "{}",
        text(&a_file.stderr)
    );
    let unknown = run(&["logs", "exec-unknown"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no logs in"));
}

// `run ... | head -1`: a closed stdout used to make the summary's println! panic. The output
// is dropped and the exit code still says how the executions ended
#[test]
fn a_closed_stdout_does_not_make_the_cli_panic() {
    let mut child = cli("cli-closed-stdout")
        .args(["run", fixture("ok.toml").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

// Names and output are shown with their control characters escaped (a name could hold a
// terminal escape sequence); counts agree with their noun
#[test]
fn control_characters_are_escaped_and_one_step_is_singular() {
    let dir = common::output_dir("cli-escapes");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("odd.toml");
    std::fs::write(
        &spec,
        "name = \"odd\\u001b[31mname\"\n[[steps]]\nname = \"only\"\nrun = \"printf 'x\\\\033[2Jy\\\\n'; exit 1\"\n",
    )
    .unwrap();
    let validated = Command::new(env!("CARGO_BIN_EXE_pipeline-manager"))
        .current_dir(&dir)
        .args(["validate", "odd.toml"])
        .output()
        .unwrap();
    assert_eq!(text(&validated.stdout), "odd.toml: ok (1 step)\n");
    let out = Command::new(env!("CARGO_BIN_EXE_pipeline-manager"))
        .current_dir(&dir)
        .args(["run", "odd.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains('\u{1b}'),
        "a raw escape reached the terminal: {stdout:?}"
    );
    assert!(stdout.contains("odd\\u{1b}[31mname"), "{stdout}");
    assert!(stdout.contains("x\\u{1b}[2Jy"), "{stdout}");
    assert!(!text(&out.stderr).contains('\u{1b}'));
}

// A bad --output-dir is reported before anything runs, exit 2
#[test]
fn an_output_dir_that_is_a_file_is_exit_2_before_anything_runs() {
    let dir = common::output_dir("cli-output-file");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("not-a-dir"), "x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pipeline-manager"))
        .current_dir(&dir)
        .args([
            "run",
            "--output-dir",
            "not-a-dir",
            fixture("ok.toml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--output-dir not-a-dir"), "{stderr}");
    assert!(!stderr.contains("running"), "something ran: {stderr}");
}

// A second ctrl-c stops at once; the summary (and --json) still lists every execution, with
// its last known status (it used to list only those that had finished)
#[test]
fn after_a_second_ctrl_c_the_summary_still_lists_every_execution() {
    let mut child = cli("cli-ctrl-c-twice")
        .args(["run", "--json", fixture("stubborn.toml").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    run_file("cli-ctrl-c-twice", "started.txt");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    // The second once the first was taken (signals sent together arrive as one). The step
    // ignores SIGTERM, so the cancel is still waiting out its grace period.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let first_seen = stderr
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.starts_with("interrupted:"));
    assert!(first_seen, "the CLI did not report the first ctrl-c");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let statuses: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses = statuses.as_array().unwrap();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0]["pipeline"], "stubborn");
}

// Found trying it as a new user: `run ... > /dev/full` exited 0 with the report lost. A closed
// pipe is not an error (`| head`), a failed write is
#[test]
fn a_report_that_cannot_be_written_is_exit_1() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = cli("cli-full")
        .args(["run", "--json", fixture("ok.toml").to_str().unwrap()])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("could not write the report"),
        "{}",
        text(&out.stderr)
    );
}

// Found trying it as a new user: ctrl-\ (SIGQUIT) ended the CLI with the steps still running.
// It now stops a run as ctrl-c does
#[test]
fn sigquit_cancels_the_run_and_kills_its_processes_like_ctrl_c() {
    let child = cli("cli-quit")
        .args(["run", fixture("long.toml").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    run_file("cli-quit", "ready");
    assert!(!common::processes_marked(&common::mark("cli-quit")).is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGQUIT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    common::assert_none_marked_blocking(&common::mark("cli-quit"));
}
