//! Replies typed per request: `ServerRef::request` with the reply handle inside the request.
//! Each kind of request gets its own reply type; deferred replies, timeouts, crashes and
//! exits behave as for `call`.

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use otp_core::gen_server::{
    BoxError, CallError, CallResult, Caller, Context, GenServer, Init, ReplyTo,
};
use otp_core::name::Name;
use otp_core::{ExitReason, ServerRef};

/// A key-value store whose requests carry their own typed reply handles, plus one classic
/// call (`Classic`) answered through `Reply`, to show the two styles mix.
struct Store {
    map: HashMap<String, String>,
    /// Deferred `Get`s of keys not yet present, answered when the key is put.
    waiting: HashMap<String, Vec<ReplyTo<Option<String>>>>,
    /// A handle kept unanswered, to check what its caller sees when the server exits.
    parked: Vec<ReplyTo<usize>>,
}

enum Request {
    Get(String, ReplyTo<Option<String>>),
    /// Replies when the key is put (a deferred reply).
    GetWhenPut(String, ReplyTo<Option<String>>),
    Len(ReplyTo<usize>),
    /// Drops its handle without replying.
    Forget(ReplyTo<usize>),
    /// Keeps its handle without replying.
    Park(ReplyTo<usize>),
    Crash(ReplyTo<usize>),
    Panic(ReplyTo<usize>),
    /// Calls this server from inside it.
    CallSelf(ReplyTo<Result<usize, CallError>>),
    Classic,
}

#[derive(Debug)]
enum Cast {
    Put(String, String),
    Crash,
}

impl GenServer for Store {
    type Args = ();
    type Call = Request;
    type Reply = &'static str;
    type Cast = Cast;
    type Info = Infallible;
    type Continue = ();

    async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Store {
            map: HashMap::new(),
            waiting: HashMap::new(),
            parked: Vec::new(),
        }))
    }

    async fn handle_call(
        &mut self,
        request: Request,
        _: Caller<'_, &'static str>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<&'static str>, BoxError> {
        match request {
            Request::Get(key, reply) => drop(reply.reply(self.map.get(&key).cloned())),
            Request::GetWhenPut(key, reply) => match self.map.get(&key) {
                Some(value) => drop(reply.reply(Some(value.clone()))),
                None => self.waiting.entry(key).or_default().push(reply),
            },
            Request::Len(reply) => drop(reply.reply(self.map.len())),
            Request::Forget(reply) => drop(reply),
            Request::Park(reply) => self.parked.push(reply),
            // The handle is dropped with the crash; the caller gets the exit reason.
            Request::Crash(reply) => {
                drop(reply);
                return Err("asked to crash".into());
            }
            Request::Panic(reply) => {
                drop(reply);
                panic!("asked to panic");
            }
            Request::CallSelf(reply) => {
                let me = ctx.server_ref();
                let result = me.request(Request::Len).await;
                drop(reply.reply(result));
            }
            Request::Classic => return Ok(CallResult::Reply("classic")),
        }
        Ok(CallResult::NoReply)
    }

    async fn handle_cast(&mut self, cast: Cast, _: &mut Context<Self>) -> Result<(), BoxError> {
        match cast {
            Cast::Put(key, value) => {
                for reply in self.waiting.remove(&key).unwrap_or_default() {
                    let _ = reply.reply(Some(value.clone()));
                }
                self.map.insert(key, value);
                Ok(())
            }
            Cast::Crash => Err("crashed while holding a handle".into()),
        }
    }
}

async fn store() -> ServerRef<Store> {
    Store::start(()).await.expect("the store starts")
}

#[tokio::test]
async fn each_kind_of_request_gets_its_own_reply_type() {
    let store = store().await;
    store
        .cast(Cast::Put("lang".into(), "erlang".into()))
        .expect("the store runs");
    let value: Option<String> = store
        .request(|reply| Request::Get("lang".into(), reply))
        .await
        .unwrap();
    let missing: Option<String> = store
        .request(|reply| Request::Get("none".into(), reply))
        .await
        .unwrap();
    let len: usize = store.request(Request::Len).await.unwrap();
    assert_eq!(value.as_deref(), Some("erlang"));
    assert_eq!(missing, None);
    assert_eq!(len, 1);
    // The classic style still works beside it.
    assert_eq!(store.call(Request::Classic).await.unwrap(), "classic");
}

#[tokio::test]
async fn requests_from_a_process_and_from_a_plain_task_are_answered_alike() {
    let store = store().await;
    let from_process = {
        let store = store.clone();
        otp_core::task::start(async move {
            let len = store.request(Request::Len).await?;
            assert_eq!(len, 0);
            Ok(())
        })
        .unwrap()
    };
    assert_eq!(from_process.monitor().await.reason, ExitReason::Normal);
    assert_eq!(store.request(Request::Len).await.unwrap(), 0);
}

#[tokio::test]
async fn a_deferred_typed_reply_arrives_when_the_server_gives_it() {
    let store = store().await;
    // The first poll queues the request; this task's next request is queued behind it.
    let mut waiter = Box::pin(store.request(|reply| Request::GetWhenPut("late".into(), reply)));
    assert!(futures::poll!(&mut waiter).is_pending());
    assert_eq!(store.request(Request::Len).await.unwrap(), 0);
    // The store now holds the deferred handle; the put answers it.
    store
        .cast(Cast::Put("late".into(), "value".into()))
        .unwrap();
    let reply = tokio::time::timeout(support::WAIT, waiter)
        .await
        .expect("the deferred reply within the deadline");
    assert_eq!(reply.unwrap().as_deref(), Some("value"));
}

#[tokio::test]
async fn requests_and_casts_from_one_sender_are_handled_in_order() {
    let store = store().await;
    for i in 0..100 {
        store
            .cast(Cast::Put(format!("k{i}"), i.to_string()))
            .unwrap();
        assert_eq!(store.request(Request::Len).await.unwrap(), i + 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_handle_dropped_unanswered_times_the_caller_out_and_the_server_lives_on() {
    let store = store().await;
    let result = store
        .request_timeout(Request::Forget, Duration::from_millis(100))
        .await;
    assert_eq!(result, Err(CallError::Timeout));
    assert!(store.is_alive());
    assert_eq!(store.request(Request::Len).await.unwrap(), 0);
}

#[tokio::test]
async fn a_server_that_crashes_in_the_request_reports_its_reason() {
    let store = store().await;
    let crashed = store.request(Request::Crash).await;
    assert!(
        matches!(&crashed, Err(CallError::Exited(ExitReason::Error(e))) if e.to_string() == "asked to crash"),
        "{crashed:?}"
    );
    let store = self::store().await;
    let panicked = store.request(Request::Panic).await;
    assert!(
        matches!(&panicked, Err(CallError::Exited(ExitReason::Panic(m))) if m.contains("asked to panic")),
        "{panicked:?}"
    );
}

#[tokio::test]
async fn a_caller_whose_handle_the_server_holds_learns_of_its_exit() {
    let store = store().await;
    let mut parked = Box::pin(store.request(Request::Park));
    assert!(futures::poll!(&mut parked).is_pending());
    store.cast(Cast::Crash).unwrap();
    let result = tokio::time::timeout(support::WAIT, parked)
        .await
        .expect("the parked caller ends within the deadline");
    assert!(
        matches!(&result, Err(CallError::Exited(ExitReason::Error(_)))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_request_to_a_stopped_server_or_to_itself_fails_at_once() {
    let store = store().await;
    let self_call = store.request(Request::CallSelf).await.unwrap();
    assert_eq!(self_call, Err(CallError::CallingSelf));
    store.stop(ExitReason::Normal, support::WAIT).await.unwrap();
    assert_eq!(store.request(Request::Len).await, Err(CallError::NoProc));
    assert_eq!(
        store.request_timeout(Request::Len, Duration::ZERO).await,
        Err(CallError::InvalidTimeout)
    );
}

#[tokio::test]
async fn a_request_through_a_name_reaches_the_current_holder() {
    let name: Name<ServerRef<Store>> = Name::new("store");
    assert_eq!(name.request(Request::Len).await, Err(CallError::NoProc));
    let store = store().await;
    name.register(&store).unwrap();
    store.cast(Cast::Put("k".into(), "v".into())).unwrap();
    assert_eq!(name.request(Request::Len).await, Ok(1));
}
