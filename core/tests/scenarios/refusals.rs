//! Every refusal, hang and odd answer has a visible, recoverable outcome.

use optrail_core::compat::{Action, Compat};
use optrail_core::{
    Command, ConnectionState, Input, Problem, RequestId, ServerFrame, SessionOptions, Timestamp,
};

use super::{Script, fetches, op, page, subscribe};

fn refusal(id: &optrail_core::OperationId, code: &str) -> ServerFrame {
    ServerFrame::Error {
        operation_id: Some(id.clone()),
        code: code.into(),
        message: format!("refused: {code}"),
    }
}

#[test]
fn an_id_the_server_could_never_know_is_not_found_and_never_asked_for_again() {
    for code in ["operation_not_found", "invalid_operation_id"] {
        let mut s = Script::new();
        let id = op("hello");
        let socket = s.track_and_connect(&id);
        let commands = s.frame(socket, refusal(&id, code));
        assert!(commands.contains(&Command::CloseSocket(socket)), "{code}");
        let view = s.session.operation(&id).unwrap();
        assert_eq!(view.problem, Some(&Problem::NotFound), "{code}");
        assert_eq!(s.session.connection(), ConnectionState::Idle);
        // Nothing more is asked for it, ever.
        assert_eq!(s.session.poll_timeout(), None, "{code}");
        s.wait(3_600_000);
        assert_eq!(s.input(Input::Tick), [], "{code}");
        // It can still be forgotten.
        s.input(Input::Forget(id.clone()));
        assert!(s.session.operation(&id).is_none());
    }
}

#[test]
fn an_internal_refusal_is_shown_read_from_history_meanwhile_and_asked_again_later() {
    let (mut s, id, socket) = Script::connected("a");
    let commands = s.frame(socket, refusal(&id, "internal"));
    assert_eq!(
        fetches(&commands),
        [(RequestId(1), 0, 500)],
        "history meanwhile"
    );
    let Some(Problem::Server { retry_at, .. }) = s.session.operation(&id).unwrap().problem.cloned()
    else {
        panic!("the refusal is shown with when it is retried");
    };
    s.now = retry_at.0;
    let commands = s.input(Input::Tick);
    assert!(
        commands.contains(&subscribe(socket, &id, 0)),
        "{commands:?}"
    );
    s.subscribed(socket, &id, 1, 0);
    assert_eq!(s.session.operation(&id).unwrap().problem, None);
}

#[test]
fn past_the_servers_subscription_limit_an_operation_waits_reads_history_and_gets_a_freed_slot() {
    let options = SessionOptions {
        max_subscriptions: 2,
        ..SessionOptions::default()
    };
    let mut s = Script::with(options, 1);
    let (a, b, c) = (op("a"), op("b"), op("c"));
    let socket = s.track_and_connect(&a);
    s.subscribed(socket, &a, 1, 0);
    let commands = s.track(&b);
    assert!(commands.contains(&subscribe(socket, &b, 0)));
    s.subscribed(socket, &b, 1, 0);
    // A third would exceed the limit: never asked for; read instead.
    let commands = s.track(&c);
    assert!(
        !commands.contains(&subscribe(socket, &c, 0)),
        "{commands:?}"
    );
    let read = fetches(&commands);
    assert_eq!(read.len(), 1, "{commands:?}");
    assert!(s.session.operation(&c).unwrap().waiting_for_slot);
    s.input(Input::HistoryReceived {
        request: read[0].0,
        page: page(&c, 1, 2, 1, 2, "ProgressUpdated"),
    });
    assert_eq!(s.shown(&c).len(), 2);
    // Polled while it waits.
    let poll = s.session.poll_timeout().expect("a poll is due");
    s.now = poll.0;
    assert_eq!(fetches(&s.input(Input::Tick)).len(), 1);
    // `a` ends: once its unsubscribe is confirmed, `c` gets the slot.
    s.push(socket, &a, 1, 1, "PaymentSucceeded");
    let commands = s.frame(
        socket,
        ServerFrame::Unsubscribed {
            operation_id: a.clone(),
        },
    );
    assert!(commands.contains(&subscribe(socket, &c, 2)), "{commands:?}");
    assert!(!s.session.operation(&c).unwrap().waiting_for_slot);
}

#[test]
fn a_too_many_subscriptions_refusal_teaches_the_limit() {
    let mut s = Script::new();
    let (a, b, c) = (op("a"), op("b"), op("c"));
    let socket = s.track_and_connect(&a);
    s.subscribed(socket, &a, 1, 0);
    s.track(&b);
    // The server allows one per connection, not the default 64.
    s.frame(socket, refusal(&b, "too_many_subscriptions"));
    assert!(s.session.operation(&b).unwrap().waiting_for_slot);
    let commands = s.track(&c);
    assert!(
        !commands.contains(&subscribe(socket, &c, 0)),
        "not asked again past the learned limit: {commands:?}"
    );
    assert!(s.session.operation(&c).unwrap().waiting_for_slot);
}

#[test]
fn the_servers_hello_sets_the_watchdog() {
    let (mut s, _, socket) = Script::connected("a");
    s.frame(
        socket,
        ServerFrame::Hello {
            ping_interval_ms: 40_000,
        },
    );
    // Silent for longer than twice the default 15 s: still fine.
    s.wait(45_000);
    assert!(!s.input(Input::Tick).contains(&Command::CloseSocket(socket)));
    assert_eq!(s.session.connection(), ConnectionState::Live);
    // Twice the server's own interval: dead.
    s.wait(40_000);
    assert!(s.input(Input::Tick).contains(&Command::CloseSocket(socket)));
}

#[test]
fn a_cancel_that_never_answers_fails_at_the_request_deadline() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 0);
    assert_eq!(
        s.input(Input::Cancel(id.clone())),
        [Command::Cancel(id.clone())]
    );
    let timeout = SessionOptions::default().request_timeout_ms as i64;
    assert_eq!(s.session.poll_timeout(), Some(Timestamp(s.now + timeout)));
    s.wait(timeout);
    s.input(Input::Tick);
    let view = s.session.operation(&id).unwrap();
    assert!(!view.cancel_requested, "Cancel can be pressed again");
    assert!(matches!(view.problem, Some(Problem::CancelFailed(_))));
    // An accepted cancel has no deadline: the end comes as an event.
    s.input(Input::Cancel(id.clone()));
    s.input(Input::CancelAccepted(id.clone()));
    s.wait(10 * timeout);
    s.input(Input::Tick);
    let view = s.session.operation(&id).unwrap();
    assert!(view.cancel_requested);
    assert_eq!(view.problem, None);
}

#[test]
fn events_a_history_page_could_not_read_are_counted_not_passed_over() {
    let options = SessionOptions {
        order: optrail_core::LogOrder::ByTime,
        ..SessionOptions::default()
    };
    let mut s = Script::with(options, 1);
    let id = op("seed");
    let socket = s.track_and_connect(&id);
    let commands = s.subscribed(socket, &id, 0, 0);
    let body = r#"{"events":[
        {"id":"a","type":"ProcessingStarted","happenedAt":"2026-12-01T01:49:46.2224417+00:00","message":null,"details":null},
        {"type":"ProgressUpdated"},
        {"id":"b","type":"PaymentSucceeded","happenedAt":"2026-12-01T03:49:47+0200"}
    ]}"#;
    let page = optrail_core::compat::history_page(id.clone(), body).unwrap();
    s.input(Input::HistoryReceived {
        request: fetches(&commands)[0].0,
        page,
    });
    let view = s.session.operation(&id).unwrap();
    assert_eq!(s.shown(&id), ["a", "b"]);
    assert_eq!(view.unreadable, 1);
    assert!(view.finished);
}

#[test]
fn compat_one_operations_socket_failing_touches_no_other() {
    let mut compat = Compat::new();
    let socket = match compat.command(Command::OpenSocket(optrail_core::SocketId(1))) {
        Action::Feed(Input::SocketOpened(socket)) => socket,
        other => panic!("the virtual socket opens at once: {other:?}"),
    };
    let (good, bad) = (op("good"), op("bad"));
    for id in [&good, &bad] {
        let opens = compat.command(subscribe(socket, id, 0));
        assert_eq!(opens, Action::OpenOperationSocket(id.clone()));
    }
    // The bad one's socket fails: only its subscription ends.
    let input = compat.socket_closed(&bad).expect("news for the session");
    let Input::Frame(on, ServerFrame::Error { operation_id, .. }) = &input else {
        panic!("a refusal of that operation alone: {input:?}");
    };
    assert_eq!((*on, operation_id.as_ref()), (socket, Some(&bad)));
    // The virtual socket lives on: the good one's frames still arrive.
    assert!(compat.frame(&good, "{}").is_some());
}
