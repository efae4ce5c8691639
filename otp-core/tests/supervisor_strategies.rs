//! Strategies and ordering: one_for_one, one_for_all, rest_for_one (specification STR-01..08).

mod support;

use std::time::Duration;

use otp_core::ExitReason;
use otp_core::ServerRef;
use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init, StartOptions};
use otp_core::registry::Registry;
use otp_core::supervisor::{ChildSpec, ChildStatus, Restart, Strategy, SupFlags, Supervisor};
use otp_core::testing::EventLog;
use support::child::{Probes, Script};

fn flags(strategy: Strategy) -> SupFlags {
    SupFlags::new(strategy)
        .intensity(10, Duration::from_secs(3600))
        .unwrap()
}

/// A server whose init calls another server by name (STR-01).
struct Caller2 {
    log: EventLog,
}

impl GenServer for Caller2 {
    type Args = (
        EventLog,
        Registry<String, ServerRef<support::child::Worker>>,
    );
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    async fn init((log, names): Self::Args, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        let reply = names.via("c7".to_string()).call(()).await?;
        log.push(format!("c3 called {reply}"));
        Ok(Init::Ready(Caller2 { log }))
    }

    async fn handle_call(
        &mut self,
        _: (),
        _: Caller<'_, ()>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<()>, BoxError> {
        self.log.push("called");
        Ok(CallResult::Reply(()))
    }
}

// OTP: STR-01; supervisor_SUITE order_of_children
#[tokio::test]
async fn children_start_in_spec_order_each_init_finishing_before_the_next() {
    let probes = Probes::new();
    let names: Registry<String, ServerRef<support::child::Worker>> =
        Registry::start().await.unwrap();
    let c7_names = names.clone();
    let c7_log = probes.log.clone();
    let c7 = ChildSpec::new("c7", move || {
        let names = c7_names.clone();
        let log = c7_log.clone();
        async move {
            support::child::Worker::start_with(
                support::child::WorkerArgs::for_test("c7#1", &log),
                StartOptions::new().name(names.via("c7".to_string())),
            )
            .await
        }
    });
    let c3_log = probes.log.clone();
    let c3_names = names.clone();
    let c3 = ChildSpec::new("c3", move || {
        Caller2::start((c3_log.clone(), c3_names.clone()))
    });
    let sup = Supervisor::start(
        flags(Strategy::OneForOne),
        vec![c7, c3, probes.worker("c10").spec()],
    )
    .await
    .unwrap();
    // start returned only after the last child's init.
    assert_eq!(
        probes.events(),
        ["start(c7#1)", "c3 called c7#1", "start(c10#1)"]
    );
    assert_eq!(sup.count_children().await.unwrap().active, 3);
}

// OTP: STR-02; supervisor_SUITE one_for_one
#[tokio::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let probes = Probes::new();
    let _sup = Supervisor::start(
        flags(Strategy::OneForOne),
        vec![
            probes.worker("a").spec(),
            probes.worker("b").spec(),
            probes.worker("c").spec(),
        ],
    )
    .await
    .unwrap();
    let (a, c) = (probes.pid("a"), probes.pid("c"));
    probes.crash("b");
    probes.wait_for("start(b#2)").await;
    assert_eq!((probes.pid("a"), probes.pid("c")), (a, c));
    let events = probes.events();
    assert_eq!(&events[3..], ["exit(b#1, error: crash)", "start(b#2)"]);
}

// OTP: STR-03; supervisor_SUITE one_for_all
#[tokio::test]
async fn one_for_all_stops_the_others_in_reverse_then_starts_all_in_order() {
    let probes = Probes::new();
    let graceful = |id: &str| probes.worker(id).graceful(Duration::ZERO).spec();
    let _sup = Supervisor::start(
        flags(Strategy::OneForAll),
        vec![graceful("c1"), graceful("c2"), graceful("c3")],
    )
    .await
    .unwrap();
    probes.crash("c1");
    probes.wait_for("start(c3#2)").await;
    let events = probes.events();
    assert_eq!(
        &events[3..],
        [
            "terminate(c1#1, error: crash)",
            "exit(c1#1, error: crash)",
            "terminate(c3#1, shutdown)",
            "exit(c3#1, shutdown)",
            "terminate(c2#1, shutdown)",
            "exit(c2#1, shutdown)",
            "start(c1#2)",
            "start(c2#2)",
            "start(c3#2)"
        ]
    );
    assert!(!events.iter().any(|e| e.contains("#3")));
}

// OTP: STR-04; supervisor_SUITE order_of_children, rest_for_one
#[tokio::test]
async fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    let probes = Probes::new();
    let ids = ["c1", "c2", "c3", "c4", "c5"];
    let _sup = Supervisor::start(
        flags(Strategy::RestForOne),
        ids.iter().map(|id| probes.worker(id).spec()).collect(),
    )
    .await
    .unwrap();
    let (c1, c2) = (probes.pid("c1"), probes.pid("c2"));
    probes.crash("c3");
    probes.wait_for("start(c5#2)").await;
    let events = probes.events();
    assert_eq!(
        &events[5..],
        [
            "exit(c3#1, error: crash)",
            "exit(c5#1, shutdown)",
            "exit(c4#1, shutdown)",
            "start(c3#2)",
            "start(c4#2)",
            "start(c5#2)"
        ]
    );
    assert_eq!((probes.pid("c1"), probes.pid("c2")), (c1, c2));
}

// OTP: STR-06; supervisor_SUITE temporary_bystander
#[tokio::test]
async fn a_temporary_sibling_stopped_by_a_group_restart_is_removed() {
    for strategy in [Strategy::OneForAll, Strategy::RestForOne] {
        let probes = Probes::new();
        let sup = Supervisor::start(
            flags(strategy),
            vec![
                probes.worker("p1").spec(),
                probes.worker("t2").restart(Restart::Temporary).spec(),
            ],
        )
        .await
        .unwrap();
        probes.exit("p1", ExitReason::Normal);
        probes.wait_for("start(p1#2)").await;
        let events = probes.events();
        assert!(
            events.contains(&"exit(t2#1, shutdown)".to_string()),
            "{strategy:?}: {events:?}"
        );
        assert_eq!(probes.log.count("start(t2#2)"), 0);
        let children = sup.which_children().await.unwrap();
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].id.as_deref(), Some("p1"));
    }
}

// OTP: STR-08; supervisor_SUITE one_for_all_other_child_fails_restart
#[tokio::test]
async fn one_for_all_retries_the_whole_group_when_a_sibling_fails_to_restart() {
    let probes = Probes::new();
    let c2 = probes.worker("c2").script(|n| {
        if n == 2 {
            Script::Error("flaky")
        } else {
            Script::Ok
        }
    });
    let sup = Supervisor::start(
        flags(Strategy::OneForAll),
        vec![probes.worker("c1").spec(), c2.spec()],
    )
    .await
    .unwrap();
    probes.crash("c1");
    probes.wait_for("start(c2#3)").await;
    let events = probes.events();
    assert_eq!(
        &events[2..],
        [
            "exit(c1#1, error: crash)",
            "exit(c2#1, shutdown)",
            "start(c1#2)",
            "failed(c2#2)",
            "exit(c1#2, shutdown)",
            "start(c1#3)",
            "start(c2#3)"
        ]
    );
    let children = sup.which_children().await.unwrap();
    assert!(
        children
            .iter()
            .all(|c| matches!(c.status, ChildStatus::Running(_)))
    );
}

// OTP: supervisor_SUITE rest_for_one_other_child_fails_restart. The retry goes on from the
// child that failed to start: the children restarted before it stay running (they were once
// stopped by the retry path and never started again)
#[tokio::test]
async fn rest_for_one_keeps_the_restarted_children_when_a_later_one_fails_to_restart() {
    let probes = Probes::new();
    let c = probes.worker("c").script(|n| {
        if n == 2 {
            Script::Error("flaky")
        } else {
            Script::Ok
        }
    });
    let sup = Supervisor::start(
        flags(Strategy::RestForOne),
        vec![
            probes.worker("a").spec(),
            probes.worker("b").spec(),
            c.spec(),
        ],
    )
    .await
    .unwrap();
    probes.crash("b");
    probes.wait_for("start(c#3)").await;
    let events = probes.events();
    assert_eq!(
        &events[3..],
        [
            "exit(b#1, error: crash)",
            "exit(c#1, shutdown)",
            "start(b#2)",
            "failed(c#2)",
            "start(c#3)"
        ]
    );
    let children = sup.which_children().await.unwrap();
    assert_eq!(children.len(), 3);
    assert!(
        children
            .iter()
            .all(|c| matches!(c.status, ChildStatus::Running(_))),
        "{children:?}"
    );
    assert_eq!(probes.log.count("start(a#2)"), 0);
}
