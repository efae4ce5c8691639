//! Duplicate-key registries and dispatch (Elixir `Registry` with `keys: :duplicate`), and
//! `select` on both kinds. Every case runs with one partition and with several.

mod support;

use std::num::NonZeroUsize;

use otp_core::monitor::monitor;
use otp_core::registry::{DuplicateRegistry, RegisterError, Registry};
use otp_core::task::{self, TaskRef};
use otp_core::{ExitReason, Pid, process};
use support::WAIT;
use tokio::sync::oneshot;

type Topics = DuplicateRegistry<&'static str, u32>;

async fn topics(partitions: usize) -> Topics {
    DuplicateRegistry::start_partitioned(NonZeroUsize::new(partitions).unwrap())
        .await
        .unwrap()
}

/// A process that registers `entries`, reports how that went, then runs until `stop` is sent
/// or dropped.
struct Subscriber {
    task: TaskRef,
    stop: oneshot::Sender<()>,
}

async fn subscriber(topics: &Topics, entries: &[(&'static str, u32)]) -> Subscriber {
    let (registered_tx, registered_rx) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let (topics, entries) = (topics.clone(), entries.to_vec());
    let task = task::start(async move {
        let results: Vec<_> = entries
            .into_iter()
            .map(|(key, value)| topics.register(key, value))
            .collect();
        let _ = registered_tx.send(results);
        let _ = stopped.await;
        Ok(())
    })
    .unwrap();
    let results = registered_rx.await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    Subscriber { task, stop }
}

fn sorted(mut entries: Vec<(Pid, u32)>) -> Vec<(Pid, u32)> {
    entries.sort_by_key(|&(pid, value)| (pid.as_u64(), value));
    entries
}

#[tokio::test]
async fn many_processes_and_one_process_many_times_hold_a_duplicate_key() {
    for partitions in [1, 8] {
        let topics = topics(partitions).await;
        let a = subscriber(&topics, &[("news", 1), ("news", 2), ("sport", 3)]).await;
        let b = subscriber(&topics, &[("news", 4)]).await;
        let (pa, pb) = (a.task.pid(), b.task.pid());
        assert_eq!(
            sorted(topics.lookup(&"news")),
            sorted(vec![(pa, 1), (pa, 2), (pb, 4)])
        );
        assert_eq!(topics.lookup(&"sport"), vec![(pa, 3)]);
        assert!(topics.lookup(&"weather").is_empty());
        assert_eq!(topics.keys(pa), vec!["news", "news", "sport"]);
        assert_eq!(topics.count(), 4);
        drop((a, b));
    }
}

#[tokio::test]
async fn dispatch_reaches_every_subscriber_and_never_one_whose_down_was_delivered() {
    for partitions in [1, 8] {
        let topics = topics(partitions).await;
        let a = subscriber(&topics, &[("news", 1)]).await;
        let b = subscriber(&topics, &[("news", 2)]).await;
        let mut reached = Vec::new();
        let count = topics.dispatch(&"news", |pid, value| reached.push((pid, *value)));
        assert_eq!(count, 2);
        assert_eq!(
            sorted(reached),
            sorted(vec![(a.task.pid(), 1), (b.task.pid(), 2)])
        );

        for reason in [ExitReason::Killed, ExitReason::Normal] {
            let c = subscriber(&topics, &[("news", 3)]).await;
            let down = monitor(c.task.pid());
            if reason == ExitReason::Killed {
                process::exit(c.task.pid(), ExitReason::Killed);
            } else {
                c.stop.send(()).unwrap();
            }
            assert_eq!(
                tokio::time::timeout(WAIT, down).await.unwrap().reason,
                reason
            );
            let mut pids = Vec::new();
            topics.dispatch(&"news", |pid, _| pids.push(pid));
            assert!(
                !pids.contains(&c.task.pid()),
                "a dead subscriber was reached"
            );
            assert_eq!(pids.len(), 2);
        }
        drop((a, b));
    }
}

#[tokio::test]
async fn unregister_removes_every_entry_of_the_caller_under_the_key_and_only_those() {
    let topics = topics(4).await;
    let other = subscriber(&topics, &[("news", 9)]).await;
    let (done_tx, done_rx) = oneshot::channel();
    let for_task = topics.clone();
    task::start(async move {
        for value in 0..3 {
            for_task.register("news", value)?;
        }
        for_task.register("sport", 7)?;
        for_task.unregister(&"news");
        for_task.unregister(&"never-registered");
        let me = process::current().unwrap();
        let _ = done_tx.send((me, for_task.keys(me)));
        std::future::pending::<()>().await;
        Ok(())
    })
    .unwrap();
    let (me, keys) = done_rx.await.unwrap();
    assert_eq!(keys, vec!["sport"]);
    assert_eq!(topics.lookup(&"news"), vec![(other.task.pid(), 9)]);
    assert_eq!(topics.lookup(&"sport"), vec![(me, 7)]);
}

#[tokio::test]
async fn dispatch_holds_no_lock_while_it_delivers() {
    let topics = topics(1).await;
    let (done_tx, done_rx) = oneshot::channel();
    let for_task = topics.clone();
    task::start(async move {
        for_task.register("news", 1)?;
        // Registering on the same (only) partition from inside `deliver` would deadlock if the
        // partition's lock were held.
        let reached = for_task.dispatch(&"news", |_, value| {
            for_task.register("news", value + 1).unwrap();
        });
        let _ = done_tx.send((reached, for_task.lookup(&"news").len()));
        Ok(())
    })
    .unwrap();
    let (reached, after) = tokio::time::timeout(WAIT, done_rx).await.unwrap().unwrap();
    assert_eq!((reached, after), (1, 2));
}

#[tokio::test]
async fn select_lists_the_entries_that_match_on_key_pid_and_value() {
    let topics = topics(8).await;
    let a = subscriber(&topics, &[("news", 1), ("sport", 2), ("news", 30)]).await;
    let b = subscriber(&topics, &[("news", 40)]).await;
    let mut big_news = topics.select(|key, _, value| *key == "news" && *value >= 30);
    big_news.sort_by_key(|&(_, _, value)| value);
    assert_eq!(
        big_news,
        vec![("news", a.task.pid(), 30), ("news", b.task.pid(), 40)]
    );
    let of_a = topics.select(|_, pid, _| pid == a.task.pid());
    assert_eq!(of_a.len(), 3);

    // The same on a unique registry, from processes registered under their own keys.
    let unique: Registry<String, u32> = Registry::start().await.unwrap();
    let (done_tx, done_rx) = oneshot::channel();
    let for_task = unique.clone();
    task::start(async move {
        for (key, value) in [("a", 1), ("b", 2), ("c", 3)] {
            for_task.register(key.to_string(), value)?;
        }
        let _ = done_tx.send(());
        std::future::pending::<()>().await;
        Ok(())
    })
    .unwrap();
    done_rx.await.unwrap();
    let mut odd: Vec<_> = unique
        .select(|_, _, value| value % 2 == 1)
        .into_iter()
        .map(|(key, _, value)| (key, value))
        .collect();
    odd.sort();
    assert_eq!(odd, vec![("a".to_string(), 1), ("c".to_string(), 3)]);
}

#[tokio::test]
async fn a_stopped_duplicate_registry_forgets_everything_and_refuses_registrations() {
    let topics = topics(2).await;
    let _a = subscriber(&topics, &[("news", 1)]).await;
    topics.stop(WAIT).await.unwrap();
    assert_eq!(topics.count(), 0);
    let (tx, rx) = oneshot::channel();
    let for_task = topics.clone();
    task::start(async move {
        let _ = tx.send(for_task.register("news", 2));
        Ok(())
    })
    .unwrap();
    assert_eq!(rx.await.unwrap(), Err(RegisterError::RegistryDown));
    assert!(topics.lookup(&"news").is_empty());
}
