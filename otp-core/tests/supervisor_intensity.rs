//! Restart intensity: max_restarts within max_seconds, one window per supervisor (specification
//! INT-01..08). Runs on tokio's paused clock.

mod support;

use std::time::Duration;

use otp_core::ExitReason;
use otp_core::supervisor::{Restart, Strategy, SupFlags, Supervisor, SupervisorEvent};
use otp_core::testing::assert_down;
use support::WAIT;
use support::child::{Probes, Script};

fn flags(strategy: Strategy, max_restarts: u32) -> SupFlags {
    SupFlags::new(strategy)
        .intensity(max_restarts, Duration::from_secs(3600))
        .unwrap()
}

// OTP: INT-01; supervisor_SUITE one_for_one (intensity 2)
#[tokio::test(start_paused = true)]
async fn one_restart_more_than_allowed_stops_the_children_in_reverse_and_exits_shutdown() {
    let probes = Probes::new();
    let sup = Supervisor::start(
        flags(Strategy::OneForOne, 2),
        vec![
            probes.worker("a").spec(),
            probes.worker("b").spec(),
            probes.worker("z").graceful(Duration::ZERO).spec(),
        ],
    )
    .await
    .unwrap();
    let down = sup.monitor();
    probes.crash("a");
    probes.wait_for("start(a#2)").await;
    probes.crash("b");
    probes.wait_for("start(b#2)").await;
    assert!(sup.is_alive());
    probes.crash("a");
    assert_down(down, ExitReason::Shutdown, WAIT).await;
    let events = probes.events();
    assert!(!events.contains(&"start(a#3)".to_string()));
    let tail = &events[events.len() - 4..];
    assert_eq!(
        tail,
        [
            "exit(a#2, error: crash)",
            "terminate(z#1, shutdown)",
            "exit(z#1, shutdown)",
            "exit(b#2, shutdown)"
        ]
    );
}

// OTP: INT-03; supervisor_SUITE one_for_one_escalation; Ex "child triggers maximum intensity when trying again"
#[tokio::test(start_paused = true)]
async fn failed_restarts_count_are_retried_and_the_supervisor_gives_up() {
    let probes = Probes::new();
    let failing = probes.worker("a").script(|n| {
        if n == 1 {
            Script::Ok
        } else {
            Script::Error("no")
        }
    });
    let sup = Supervisor::start(
        flags(Strategy::OneForOne, 4),
        vec![
            failing.spec(),
            probes.worker("b").graceful(Duration::ZERO).spec(),
        ],
    )
    .await
    .unwrap();
    let down = sup.monitor();
    probes.crash("a");
    assert_down(down, ExitReason::Shutdown, WAIT).await;
    // Exactly 4 attempts after the crash, then b is stopped.
    let failures = probes
        .events()
        .iter()
        .filter(|e| e.starts_with("failed(a#"))
        .count();
    assert_eq!(failures, 4);
    let events = probes.events();
    assert_eq!(
        &events[events.len() - 2..],
        ["terminate(b#1, shutdown)", "exit(b#1, shutdown)"]
    );
}

// OTP: INT-05; supervisor.erl validIntensity (0 allowed)
#[tokio::test(start_paused = true)]
async fn intensity_zero_gives_up_on_the_first_restart_but_not_on_exits_needing_none() {
    let probes = Probes::new();
    let sup = Supervisor::start(
        flags(Strategy::OneForOne, 0),
        vec![probes.worker("t").restart(Restart::Transient).spec()],
    )
    .await
    .unwrap();
    probes.exit("t", ExitReason::Normal);
    probes.wait_for("exit(t#1, normal)").await;
    sup.restart_child("t").await.unwrap();
    probes.exit("t", ExitReason::Shutdown);
    probes.wait_for("exit(t#2, shutdown)").await;
    let temporary = probes.worker("x").restart(Restart::Temporary).spec();
    for n in 1..=3 {
        sup.start_child(temporary.clone()).await.unwrap();
        probes.crash("x");
        probes.wait_for(&format!("exit(x#{n}, error: crash)")).await;
    }
    assert!(sup.count_children().await.is_ok());

    let probes = Probes::new();
    let sup = Supervisor::start(
        flags(Strategy::OneForOne, 0),
        vec![probes.worker("p").spec()],
    )
    .await
    .unwrap();
    let down = sup.monitor();
    probes.crash("p");
    assert_down(down, ExitReason::Shutdown, WAIT).await;
    assert_eq!(probes.log.count("start(p#2)"), 0);
}

// OTP: INT-06; supervisor_SUITE one_for_all (intensity 2)
#[tokio::test(start_paused = true)]
async fn one_group_restart_counts_once() {
    let probes = Probes::new();
    let sup = Supervisor::start(
        flags(Strategy::OneForAll, 2),
        vec![
            probes.worker("a").spec(),
            probes.worker("b").spec(),
            probes.worker("c").spec(),
        ],
    )
    .await
    .unwrap();
    let down = sup.monitor();
    probes.crash("a");
    probes.wait_for("start(c#2)").await;
    assert!(sup.is_alive());
    probes.crash("b");
    probes.wait_for("start(c#3)").await;
    assert!(sup.is_alive());
    probes.crash("c");
    assert_down(down, ExitReason::Shutdown, WAIT).await;
}

// OTP: INT-07; supervisor_SUITE child_adm
#[tokio::test(start_paused = true)]
async fn administrative_operations_neither_count_nor_trigger_restarts() {
    let probes = Probes::new();
    let sup = Supervisor::start(
        flags(Strategy::OneForOne, 1),
        vec![probes.worker("a").spec()],
    )
    .await
    .unwrap();
    for n in 1..=5 {
        sup.terminate_child("a").await.unwrap();
        assert_eq!(probes.log.count(&format!("start(a#{})", n + 1)), 0);
        sup.restart_child("a").await.unwrap();
        probes.wait_for(&format!("start(a#{})", n + 1)).await;
    }
    assert!(sup.is_alive());
    // The window really was empty: one crash is allowed, the second is one too many.
    let down = sup.monitor();
    probes.crash("a");
    probes.wait_for("start(a#7)").await;
    probes.crash("a");
    assert_down(down, ExitReason::Shutdown, WAIT).await;
}

// OTP: INT-08; supervisor_SUITE permanent_normal
#[tokio::test(start_paused = true)]
async fn a_permanent_child_exiting_normal_still_uses_up_intensity() {
    let probes = Probes::new();
    let sup = Supervisor::start(
        flags(Strategy::OneForOne, 1),
        vec![probes.worker("a").spec()],
    )
    .await
    .unwrap();
    let down = sup.monitor();
    probes.exit("a", ExitReason::Normal);
    probes.wait_for("start(a#2)").await;
    probes.exit("a", ExitReason::Normal);
    assert_down(down, ExitReason::Shutdown, WAIT).await;
}

// OTP: the window slides: restarts older than max_seconds no longer count (D5)
#[tokio::test(start_paused = true)]
async fn restarts_older_than_the_period_fall_out_of_the_window() {
    let probes = Probes::new();
    let flags = SupFlags::new(Strategy::OneForOne)
        .intensity(1, Duration::from_secs(5))
        .unwrap();
    let sup = Supervisor::start(flags, vec![probes.worker("a").spec()])
        .await
        .unwrap();
    let mut events = sup.subscribe();
    for n in 2..=5 {
        probes.crash("a");
        probes.wait_for(&format!("start(a#{n})")).await;
        tokio::time::advance(Duration::from_secs(6)).await;
    }
    assert!(sup.is_alive());
    // The supervisor reported every restart on its event stream.
    for _ in 0..4 {
        support::next_event(&mut events, "child_restarted", |event| match event {
            SupervisorEvent::ChildRestarted { .. } => Some(()),
            _ => None,
        })
        .await;
    }
}

// Beyond OTP (opt-in): restart backoff spaces restarts out and counts them when performed.
#[tokio::test(start_paused = true)]
async fn restart_backoff_delays_restarts_and_resets_after_a_quiet_period() {
    use otp_core::supervisor::{ChildSpec, RestartBackoff};
    let probes = Probes::new();
    let backoff = RestartBackoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        reset_after: Duration::from_secs(10),
    };
    let spec: ChildSpec = probes.worker("a").spec().backoff(backoff);
    let sup = Supervisor::start(flags(Strategy::OneForOne, 10), vec![spec])
        .await
        .unwrap();
    let mut delays = Vec::new();
    for n in 2..=5 {
        let crashed = tokio::time::Instant::now();
        probes.crash("a");
        probes.wait_for(&format!("start(a#{n})")).await;
        delays.push(crashed.elapsed().as_millis());
    }
    // 100, 200, 400, then capped at 400.
    assert_eq!(delays, [100, 200, 400, 400]);
    // After a quiet period the delay starts again from `initial`.
    tokio::time::advance(Duration::from_secs(11)).await;
    let crashed = tokio::time::Instant::now();
    probes.crash("a");
    probes.wait_for("start(a#6)").await;
    assert_eq!(crashed.elapsed(), Duration::from_millis(100));
    assert!(sup.is_alive());
}

#[tokio::test(start_paused = true)]
async fn a_crash_loop_with_backoff_still_exhausts_intensity_within_the_window() {
    use otp_core::supervisor::RestartBackoff;
    let probes = Probes::new();
    let backoff = RestartBackoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        reset_after: Duration::from_secs(60),
    };
    let failing = probes.worker("a").script(|n| {
        if n == 1 {
            Script::Ok
        } else {
            Script::Error("no")
        }
    });
    let flags = SupFlags::new(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(5))
        .unwrap();
    let sup = Supervisor::start(flags, vec![failing.spec().backoff(backoff)])
        .await
        .unwrap();
    let down = sup.monitor();
    let crashed = tokio::time::Instant::now();
    probes.crash("a");
    assert_down(down, ExitReason::Shutdown, WAIT).await;
    // Attempts after 100, +200, +400 ms; the fourth (after +800 ms) is one too many.
    assert_eq!(
        probes
            .events()
            .iter()
            .filter(|e| e.starts_with("failed("))
            .count(),
        3
    );
    assert_eq!(crashed.elapsed(), Duration::from_millis(1500));
}

#[tokio::test]
async fn an_invalid_backoff_is_rejected_when_the_supervisor_starts() {
    use otp_core::supervisor::{RestartBackoff, SpecError, SupervisorStartError};
    let probes = Probes::new();
    let backoff = RestartBackoff {
        initial: Duration::ZERO,
        max: Duration::from_secs(1),
        reset_after: Duration::from_secs(1),
    };
    let result = Supervisor::start(
        flags(Strategy::OneForOne, 1),
        vec![probes.worker("a").spec().backoff(backoff)],
    )
    .await;
    assert!(matches!(
        result,
        Err(SupervisorStartError::InvalidSpec(
            SpecError::InvalidBackoff(_)
        ))
    ));
}

// Bad input: a backoff too long for a timer used to pass validation and crash the supervisor
// (timer DelayTooLong through `?`) at the child's first exit; it is rejected up front now
#[tokio::test(start_paused = true)]
async fn a_backoff_too_long_for_a_timer_is_rejected_instead_of_crashing_the_supervisor_later() {
    use otp_core::supervisor::{RestartBackoff, SpecError, StartChildError, SupervisorStartError};
    let probes = Probes::new();
    let huge = RestartBackoff {
        initial: Duration::from_secs(u64::MAX / 2),
        max: Duration::from_secs(u64::MAX / 2),
        reset_after: Duration::from_secs(1),
    };
    let result = Supervisor::start(
        flags(Strategy::OneForOne, 1),
        vec![probes.worker("a").spec().backoff(huge)],
    )
    .await;
    assert!(matches!(
        result,
        Err(SupervisorStartError::InvalidSpec(
            SpecError::InvalidBackoff(_)
        ))
    ));
    let sup = Supervisor::start(flags(Strategy::OneForOne, 1), vec![])
        .await
        .unwrap();
    assert!(matches!(
        sup.start_child(probes.worker("b").spec().backoff(huge))
            .await,
        Err(StartChildError::InvalidSpec(SpecError::InvalidBackoff(_)))
    ));
}

// The longest accepted backoff is scheduled like any other: the supervisor waits it out
#[tokio::test(start_paused = true)]
async fn the_longest_accepted_backoff_delays_the_restart_without_crashing_the_supervisor() {
    use otp_core::supervisor::{ChildStatus, RestartBackoff};
    let probes = Probes::new();
    let longest = RestartBackoff {
        initial: RestartBackoff::MAX_DELAY,
        max: RestartBackoff::MAX_DELAY,
        reset_after: Duration::from_secs(1),
    };
    let sup = Supervisor::start(
        flags(Strategy::OneForOne, 10),
        vec![probes.worker("a").spec().backoff(longest)],
    )
    .await
    .unwrap();
    let crashed = tokio::time::Instant::now();
    probes.crash("a");
    probes.wait_for("exit(a#1, error: crash)").await;
    // The exit is handled (a call behind it), then the clock jumps the whole delay at once.
    assert!(matches!(
        sup.which_children().await.unwrap()[0].status,
        ChildStatus::Restarting
    ));
    tokio::time::advance(RestartBackoff::MAX_DELAY).await;
    probes.wait_for("start(a#2)").await;
    assert_eq!(crashed.elapsed(), RestartBackoff::MAX_DELAY);
    assert!(sup.is_alive());
    assert!(matches!(
        sup.which_children().await.unwrap()[0].status,
        ChildStatus::Running(_)
    ));
}

// A restart delayed by a backoff is performed with what it knows of the exit: its event names
// the pid that exited, and if it is one too many, the give-up names the child's real exit
// reason (it used to say `None` and "restart failed")
#[tokio::test(start_paused = true)]
async fn a_delayed_restart_reports_the_exit_that_caused_it() {
    use otp_core::supervisor::RestartBackoff;
    let probes = Probes::new();
    let backoff = RestartBackoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(100),
        reset_after: Duration::from_secs(60),
    };
    let spec = probes.worker("a").spec().backoff(backoff);
    let sup = Supervisor::start(flags(Strategy::OneForOne, 1), vec![spec])
        .await
        .unwrap();
    let mut events = sup.subscribe();
    let down = sup.monitor();
    let first = probes.pid("a");
    probes.crash("a");
    probes.wait_for("start(a#2)").await;
    let restarted = support::next_event(&mut events, "child_restarted", |event| match event {
        SupervisorEvent::ChildRestarted { old_pid, .. } => Some(old_pid),
        _ => None,
    })
    .await;
    assert_eq!(restarted, Some(first));
    probes.crash("a");
    let gave_up = support::next_event(&mut events, "supervisor_gave_up", |event| match event {
        SupervisorEvent::GaveUp { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(gave_up.to_string(), "error: crash");
    assert_down(down, ExitReason::Shutdown, WAIT).await;
}

// Found in review: terminate_child cancelled a delayed restart only by its state, so the old
// timer, still pending, restarted the child early once it was restarting again with a longer
// backoff
#[tokio::test(start_paused = true)]
async fn a_cancelled_delayed_restart_does_not_cut_a_later_backoff_short() {
    use otp_core::supervisor::RestartBackoff;
    let probes = Probes::new();
    let backoff = RestartBackoff {
        initial: Duration::from_secs(10),
        max: Duration::from_secs(20),
        reset_after: Duration::from_secs(3600),
    };
    let spec = probes.worker("a").spec().backoff(backoff);
    let sup = Supervisor::start(flags(Strategy::OneForOne, 10), vec![spec])
        .await
        .unwrap();
    probes.crash("a");
    probes.wait_for("exit(a#1, error: crash)").await;
    // Its restart is due in 10 s; it is stopped and started again meanwhile.
    tokio::time::advance(Duration::from_secs(1)).await;
    sup.terminate_child("a").await.unwrap();
    sup.restart_child("a").await.unwrap();
    probes.crash("a");
    probes.wait_for("exit(a#2, error: crash)").await;
    let crashed = tokio::time::Instant::now();
    probes
        .log
        .wait_for("start(a#3)", Duration::from_secs(60))
        .await;
    assert!(
        crashed.elapsed() >= Duration::from_secs(20),
        "restarted after {:?}, not the 20 s backoff",
        crashed.elapsed()
    );
}
