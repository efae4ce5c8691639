//! Registry with unique keys, and via-names for servers (specification REG-01..REG-09, GS-02 and
//! GS-13 name cases). Every case runs with one partition and with several.

mod support;

use std::num::NonZeroUsize;
use std::time::Duration;

use otp_core::gen_server::{
    BoxError, CallError, CallResult, Caller, Context, GenServer, Init, SendError, StartError,
    StartOptions,
};
use otp_core::registry::{RegisterError, Registry};
use otp_core::testing::{EventLog, await_exit};
use otp_core::{ExitReason, Pid, ServerRef};
use support::{Call, InitScript, Probe, ProbeArgs, Reply, WAIT};

/// A server that registers keys in a registry on request, so tests can act as "process p".
struct Holder {
    registry: Registry<String, u32>,
}

enum HolderCall {
    Register(String, u32),
    Unregister(String),
    Panic,
}

impl GenServer for Holder {
    type Args = Registry<String, u32>;
    type Call = HolderCall;
    type Reply = Result<(), RegisterError>;
    type Cast = ();
    type Info = ();
    type Continue = ();

    async fn init(
        registry: Registry<String, u32>,
        _: &mut Context<Self>,
    ) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Holder { registry }))
    }

    async fn handle_call(
        &mut self,
        request: HolderCall,
        _: Caller<'_, Self::Reply>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<Self::Reply>, BoxError> {
        Ok(CallResult::Reply(match request {
            HolderCall::Register(key, value) => self.registry.register(key, value),
            HolderCall::Unregister(key) => {
                self.registry.unregister(&key);
                Ok(())
            }
            HolderCall::Panic => panic!("holder crashed"),
        }))
    }
}

const PARTITIONS: [usize; 2] = [1, 8];

async fn registry(partitions: usize) -> Registry<String, u32> {
    Registry::start_partitioned(NonZeroUsize::new(partitions).unwrap())
        .await
        .unwrap()
}

async fn holder(registry: &Registry<String, u32>) -> ServerRef<Holder> {
    Holder::start(registry.clone()).await.unwrap()
}

async fn register(holder: &ServerRef<Holder>, key: &str, value: u32) -> Result<(), RegisterError> {
    holder
        .call(HolderCall::Register(key.to_string(), value))
        .await
        .unwrap()
}

fn key(k: &str) -> String {
    k.to_string()
}

// OTP: REG-01; Ex registry/unique_test "has unique registrations", "counts the number of keys"
#[tokio::test]
async fn register_lookup_keys_and_count() {
    for partitions in PARTITIONS {
        let registry = registry(partitions).await;
        let p = holder(&registry).await;
        assert_eq!(register(&p, "hello", 1).await, Ok(()));
        assert_eq!(register(&p, "world", 2).await, Ok(()));
        assert_eq!(registry.lookup(&key("hello")), Some((p.pid(), 1)));
        assert_eq!(registry.lookup(&key("world")), Some((p.pid(), 2)));
        assert_eq!(registry.lookup(&key("other")), None);
        assert_eq!(registry.keys(p.pid()), ["hello", "world"]);
        assert_eq!(registry.count(), 2);
    }
}

// OTP: REG-02; Ex registry.ex register/3 doc ({:error, {:already_registered, self()}})
#[tokio::test]
async fn registering_a_key_twice_from_the_same_process_is_already_registered_self() {
    for partitions in PARTITIONS {
        let registry = registry(partitions).await;
        let p = holder(&registry).await;
        register(&p, "k", 1).await.unwrap();
        assert_eq!(
            register(&p, "k", 2).await,
            Err(RegisterError::AlreadyRegistered(p.pid()))
        );
        assert_eq!(registry.lookup(&key("k")), Some((p.pid(), 1)));
        assert_eq!(registry.keys(p.pid()), ["k"]);
        assert_eq!(registry.count(), 1);
    }
}

// OTP: REG-03; Ex registry/unique_test "has unique registrations across processes"
#[tokio::test]
async fn registering_a_key_held_by_another_process_names_the_holder() {
    for partitions in PARTITIONS {
        let registry = registry(partitions).await;
        let t = holder(&registry).await;
        let me = holder(&registry).await;
        register(&t, "k", 1).await.unwrap();
        assert_eq!(
            register(&me, "k", 2).await,
            Err(RegisterError::AlreadyRegistered(t.pid()))
        );
        assert!(registry.keys(me.pid()).is_empty());
        assert_eq!(registry.lookup(&key("k")), Some((t.pid(), 1)));
    }
}

// OTP: REG-04; Ex registry/unique_test "unregisters process by key", "unregisters with no entries"
#[tokio::test]
async fn unregister_removes_only_the_callers_own_entry_and_is_idempotent() {
    for partitions in PARTITIONS {
        let registry = registry(partitions).await;
        let p = holder(&registry).await;
        let other = holder(&registry).await;
        register(&p, "hello", 1).await.unwrap();
        register(&p, "world", 2).await.unwrap();
        p.call(HolderCall::Unregister(key("hello")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(registry.keys(p.pid()), ["world"]);
        assert_eq!(registry.lookup(&key("hello")), None);
        p.call(HolderCall::Unregister(key("nothing")))
            .await
            .unwrap()
            .unwrap();
        other
            .call(HolderCall::Unregister(key("world")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(registry.lookup(&key("world")), Some((p.pid(), 2)));
        // The key is free for anyone after its owner unregistered it.
        assert_eq!(register(&other, "hello", 3).await, Ok(()));
    }
}

#[tokio::test]
async fn register_outside_a_process_is_an_error() {
    let registry = registry(1).await;
    assert_eq!(
        registry.register(key("k"), 1),
        Err(RegisterError::NotAProcess)
    );
    assert_eq!(registry.count(), 0);
}

// OTP: REG-05; Ex registry_test "clean up registry on process crash"; divergence D8 (stronger)
#[tokio::test]
async fn keys_are_gone_before_the_down_is_delivered() {
    for partitions in PARTITIONS {
        let registry = registry(partitions).await;
        for exit in [
            ExitReason::Normal,
            ExitReason::Killed,
            ExitReason::Panic("holder crashed".into()),
        ] {
            let t = holder(&registry).await;
            register(&t, "k1", 1).await.unwrap();
            register(&t, "k2", 2).await.unwrap();
            let down = t.monitor();
            match &exit {
                ExitReason::Normal => t.stop(ExitReason::Normal, WAIT).await.unwrap(),
                ExitReason::Killed => assert!(otp_core::process::exit(t.pid(), ExitReason::Killed)),
                _ => {
                    let _ = t.call(HolderCall::Panic).await;
                }
            }
            let down = down.await;
            assert_eq!(down.reason, exit);
            // No sync point needed: the entries were removed before the Down was sent.
            assert_eq!(registry.lookup(&key("k1")), None);
            assert_eq!(registry.lookup(&key("k2")), None);
            assert!(registry.keys(t.pid()).is_empty());
            assert_eq!(registry.count(), 0);
            // And the key can be taken again at once.
            let next = holder(&registry).await;
            assert_eq!(register(&next, "k1", 9).await, Ok(()));
            next.stop(ExitReason::Normal, WAIT).await.unwrap();
        }
    }
}

// OTP: REG-05 after REG-04: keys registered after an unregister still go with their owner
#[tokio::test]
async fn keys_registered_after_unregistering_the_only_one_are_removed_at_exit() {
    for partitions in PARTITIONS {
        let registry = registry(partitions).await;
        let t = holder(&registry).await;
        register(&t, "first", 1).await.unwrap();
        t.call(HolderCall::Unregister(key("first")))
            .await
            .unwrap()
            .unwrap();
        assert!(registry.keys(t.pid()).is_empty());
        register(&t, "second", 2).await.unwrap();
        register(&t, "third", 3).await.unwrap();
        assert_eq!(registry.keys(t.pid()), ["second", "third"]);
        let down = t.monitor();
        t.stop(ExitReason::Normal, WAIT).await.unwrap();
        down.await;
        assert_eq!(registry.lookup(&key("second")), None);
        assert_eq!(registry.lookup(&key("third")), None);
        assert_eq!(registry.count(), 0);
    }
}

// OTP: Ex registry: when the registry itself goes, its entries go with it
#[tokio::test]
async fn a_stopped_registry_forgets_everything_and_refuses_registrations() {
    let registry = registry(4).await;
    let p = holder(&registry).await;
    register(&p, "k", 1).await.unwrap();
    registry.stop(WAIT).await.unwrap();
    assert_eq!(registry.lookup(&key("k")), None);
    assert_eq!(registry.count(), 0);
    assert_eq!(
        register(&p, "other", 1).await,
        Err(RegisterError::RegistryDown)
    );
}

type Names = Registry<String, ServerRef<Probe>>;

async fn names(partitions: usize) -> Names {
    Registry::start_partitioned(NonZeroUsize::new(partitions).unwrap())
        .await
        .unwrap()
}

async fn start_named(
    names: &Names,
    name: &str,
    id: &str,
    log: &EventLog,
    init: InitScript,
) -> Result<ServerRef<Probe>, StartError> {
    Probe::start_with(
        ProbeArgs::new(id, log).init(init),
        StartOptions::new().name(names.via(name.to_string())),
    )
    .await
}

// OTP: REG-08; Ex registry/unique_test "via callbacks"; gen_server_SUITE start (via)
#[tokio::test]
async fn via_names_register_address_and_reject_duplicates() {
    for partitions in PARTITIONS {
        let names = names(partitions).await;
        let log = EventLog::new();
        let a = start_named(&names, "n", "a", &log, InitScript::Ok)
            .await
            .unwrap();
        let n = names.via(key("n"));
        assert_eq!(n.call(Call::Echo(1)).await, Ok(Reply::Value(1)));
        assert_eq!(n.whereis(), Some(a.clone()));
        // GS-13: the newcomer's init never runs, the holder is unaffected.
        let b = start_named(&names, "n", "b", &log, InitScript::Ok).await;
        assert_eq!(b.err(), Some(StartError::AlreadyStarted(a.pid())));
        assert_eq!(log.events(), ["init(a)"]);
        assert_eq!(n.call(Call::Echo(2)).await, Ok(Reply::Value(2)));
        // Unknown names: call → NoProc, cast → the message back (D13).
        let unknown = names.via(key("unknown"));
        assert_eq!(unknown.call(Call::Echo(1)).await, Err(CallError::NoProc));
        assert!(matches!(
            unknown.cast(support::Cast::Log("x".into())),
            Err(SendError::NoProc(_))
        ));
    }
}

// OTP: REG-08 / GS-02; gen_server.erl init_it (name released before the starter is told)
#[tokio::test]
async fn a_name_is_free_again_as_soon_as_a_failed_start_returns() {
    for partitions in PARTITIONS {
        let names = names(partitions).await;
        let log = EventLog::new();
        for init in [
            InitScript::Stop(ExitReason::Shutdown),
            InitScript::Ignore,
            InitScript::Fail("nope"),
            InitScript::Panic("nope"),
        ] {
            let failed = start_named(&names, "m", "c", &log, init).await;
            assert!(failed.is_err());
            assert_eq!(names.via(key("m")).whereis(), None);
            let retried = start_named(&names, "m", "d", &log, InitScript::Ok)
                .await
                .unwrap();
            retried.stop(ExitReason::Normal, WAIT).await.unwrap();
        }
    }
}

// OTP: REG-08 with a start timeout: the killed newcomer's name is released too
#[tokio::test(start_paused = true)]
async fn a_name_is_free_again_after_a_start_timeout() {
    let names = names(2).await;
    let log = EventLog::new();
    let timed_out = Probe::start_with(
        ProbeArgs::new("slow", &log).init(InitScript::Block),
        StartOptions::new()
            .name(names.via(key("m")))
            .timeout(Duration::from_millis(100)),
    )
    .await;
    assert_eq!(timed_out.err(), Some(StartError::Timeout));
    assert!(
        start_named(&names, "m", "ok", &log, InitScript::Ok)
            .await
            .is_ok()
    );
}

// OTP: REG-07; Ex registry.ex whereis_name/1 (never a dead pid)
#[tokio::test]
async fn resolving_a_name_never_returns_a_dead_process() {
    for partitions in PARTITIONS {
        let names = names(partitions).await;
        let log = EventLog::new();
        let s = start_named(&names, "n", "s", &log, InitScript::Ok)
            .await
            .unwrap();
        assert!(otp_core::process::exit(s.pid(), ExitReason::Killed));
        assert_eq!(await_exit(&s, WAIT).await, ExitReason::Killed);
        let n = names.via(key("n"));
        assert_eq!(n.whereis(), None);
        assert_eq!(n.call(Call::Echo(1)).await, Err(CallError::NoProc));
    }
}

// OTP: REG-09 (without a supervisor yet): a name keeps working for a new incarnation
#[tokio::test]
async fn a_name_reaches_the_new_holder_after_the_old_one_exits() {
    let names = names(4).await;
    let log = EventLog::new();
    let n = names.via(key("n"));
    let first = start_named(&names, "n", "first", &log, InitScript::Ok)
        .await
        .unwrap();
    assert_eq!(n.call(Call::Echo(1)).await, Ok(Reply::Value(1)));
    let _ = first.call(Call::Panic("crash")).await;
    let second = start_named(&names, "n", "second", &log, InitScript::Ok)
        .await
        .unwrap();
    // The caller's `Via` is unchanged and reaches the new process.
    assert_eq!(n.whereis(), Some(second));
    assert_eq!(n.call(Call::Echo(2)).await, Ok(Reply::Value(2)));
}

// OTP: GS-07 through a via-name
#[tokio::test]
async fn calling_yourself_through_a_name_fails_at_once() {
    struct SelfCaller {
        me: Option<otp_core::registry::Via<String, SelfCaller>>,
    }
    impl GenServer for SelfCaller {
        type Args = ();
        type Call = otp_core::registry::Via<String, SelfCaller>;
        type Reply = Result<(), CallError>;
        type Cast = ();
        type Info = ();
        type Continue = ();
        async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
            Ok(Init::Ready(SelfCaller { me: None }))
        }
        async fn handle_call(
            &mut self,
            me: Self::Call,
            _: Caller<'_, Self::Reply>,
            _: &mut Context<Self>,
        ) -> Result<CallResult<Self::Reply>, BoxError> {
            let result =
                Box::pin(me.call_timeout(me.clone(), otp_core::gen_server::Timeout::Infinity))
                    .await;
            self.me = Some(me);
            Ok(CallResult::Reply(result.map(|_| ())))
        }
    }
    let registry: Registry<String, ServerRef<SelfCaller>> = Registry::start().await.unwrap();
    let name = registry.via(key("me"));
    SelfCaller::start_with((), StartOptions::new().name(name.clone()))
        .await
        .unwrap();
    assert_eq!(
        name.call(name.clone()).await,
        Ok(Err(CallError::CallingSelf))
    );
}

mod model {
    //! The registry against a plain `HashMap` model: any sequence of register / unregister /
    //! exit by a few processes gives the same observable state, for any partition count.
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Register(usize, u8),
        Unregister(usize, u8),
        Exit(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3usize, 0..4u8).prop_map(|(p, k)| Op::Register(p, k)),
            (0..3usize, 0..4u8).prop_map(|(p, k)| Op::Unregister(p, k)),
            (0..3usize).prop_map(Op::Exit),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn registry_matches_a_hashmap_model(partitions in 1usize..6, ops in proptest::collection::vec(op(), 1..25)) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let registry = registry(partitions).await;
                let mut holders = Vec::new();
                for _ in 0..3 {
                    holders.push(holder(&registry).await);
                }
                let mut model: HashMap<String, (Pid, u32)> = HashMap::new();
                for (i, op) in ops.into_iter().enumerate() {
                    match op {
                        Op::Register(p, k) => {
                            let k = format!("k{k}");
                            let expected = match model.get(&k) {
                                Some((holder, _)) => Err(RegisterError::AlreadyRegistered(*holder)),
                                None => {
                                    model.insert(k.clone(), (holders[p].pid(), i as u32));
                                    Ok(())
                                }
                            };
                            assert_eq!(register(&holders[p], &k, i as u32).await, expected);
                        }
                        Op::Unregister(p, k) => {
                            let k = format!("k{k}");
                            if model.get(&k).is_some_and(|(holder, _)| *holder == holders[p].pid()) {
                                model.remove(&k);
                            }
                            holders[p].call(HolderCall::Unregister(k)).await.unwrap().unwrap();
                        }
                        Op::Exit(p) => {
                            let pid = holders[p].pid();
                            holders[p].stop(ExitReason::Normal, WAIT).await.unwrap();
                            model.retain(|_, (holder, _)| *holder != pid);
                            holders[p] = holder(&registry).await;
                        }
                    }
                    for k in 0..4 {
                        let k = format!("k{k}");
                        assert_eq!(registry.lookup(&k), model.get(&k).copied());
                    }
                    assert_eq!(registry.count(), model.len());
                }
            });
        }
    }
}

/// A registry value whose `Drop` uses its own registry.
#[derive(Clone)]
struct LooksUpOnDrop(Registry<u32, LooksUpOnDrop>);

impl Drop for LooksUpOnDrop {
    fn drop(&mut self) {
        let _ = self.0.lookup(&0);
    }
}

// Keys and values are user types: they are dropped outside the registry's locks, also when the
// registry stops (close used to drop every entry under the partition's write lock: deadlock)
#[test]
fn keys_and_values_are_dropped_outside_the_registrys_locks() {
    support::watched_on_two_threads("a registry lock deadlocked", || async {
        use otp_core::task_supervisor::TaskSupervisor;
        let registry: Registry<u32, LooksUpOnDrop> =
            Registry::start_partitioned(NonZeroUsize::new(1).unwrap())
                .await
                .unwrap();
        let tasks = TaskSupervisor::start().await.unwrap();
        let (registered, done) = tokio::sync::oneshot::channel();
        let own = registry.clone();
        tasks
            .start_child(async move {
                own.register(1, LooksUpOnDrop(own.clone()))?;
                own.register(2, LooksUpOnDrop(own.clone()))?;
                own.unregister(&1);
                let _ = registered.send(());
                std::future::pending::<()>().await;
                Ok(())
            })
            .await
            .unwrap();
        done.await.unwrap();
        assert!(registry.lookup(&1).is_none());
        assert!(registry.lookup(&2).is_some());
        assert_eq!(
            registry.stop(WAIT).await,
            Ok(()),
            "closing the registry deadlocked"
        );
        assert!(registry.lookup(&2).is_none());
        tasks.stop(WAIT).await.unwrap();
    });
}
