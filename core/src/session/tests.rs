//! Regression tests for bugs the simulation found; the scenarios in
//! `core/tests/` cover the rules themselves.

use super::*;
use crate::protocol::{ClientFrame, Epoch, EventsPage, Seq, ServerFrame, Status};
use crate::test_events::event;

const T0: i64 = 1_000_000;

fn drain(session: &mut Session) -> Vec<Command> {
    std::iter::from_fn(|| session.poll_command()).collect()
}

fn run(session: &mut Session, input: Input, at: i64) -> Vec<Command> {
    session.handle(input, Timestamp(at));
    drain(session)
}

fn frame(socket: SocketId, frame: ServerFrame) -> Input {
    Input::FrameReceived(socket, frame.to_json())
}

fn push(socket: SocketId, id: &OperationId, seq: u64, kind: &str) -> Input {
    frame(
        socket,
        ServerFrame::Event {
            operation_id: id.clone(),
            epoch: Some(Epoch(1)),
            event: event(seq, kind),
        },
    )
}

/// The whole two-event stream of `id` arrives live (at T0 + 10 and + 20);
/// the commands the end caused.
fn push_to_the_end(session: &mut Session, socket: SocketId, id: &OperationId) -> Vec<Command> {
    run(session, push(socket, id, 1, "ProcessingStarted"), T0 + 10);
    run(session, push(socket, id, 2, "PaymentSucceeded"), T0 + 20)
}

/// A fresh session that has just been told to track `id`.
fn tracking(id: &OperationId) -> Session {
    let mut session = Session::new(SessionOptions::default(), 1);
    run(
        &mut session,
        Input::Track {
            operation: TrackedOperation::by_id(id.clone()),
            epoch: None,
        },
        T0,
    );
    session
}

/// A session following `id` on socket 1, subscribed at `head`.
fn live(id: &OperationId, head: u64) -> (Session, SocketId) {
    let mut session = tracking(id);
    let socket = SocketId(1);
    run(&mut session, Input::SocketOpened(socket), T0);
    let subscribed = ServerFrame::Subscribed {
        operation_id: id.clone(),
        epoch: Epoch(1),
        head: Seq(head),
    };
    run(&mut session, frame(socket, subscribed), T0);
    (session, socket)
}

#[test]
fn events_pushed_after_the_catch_up_count_in_its_total() {
    let id = OperationId::from("a");
    let (mut session, socket) = live(&id, 0);
    let recovery = |session: &Session| session.operation(&id).unwrap().recovery;
    assert_eq!(recovery(&session), Recovery::Complete { total: 0 });
    for seq in 1..=3 {
        let at = T0 + seq as i64;
        run(&mut session, push(socket, &id, seq, "ProgressUpdated"), at);
    }
    // Not "all 0 events" next to three shown.
    assert_eq!(recovery(&session), Recovery::Complete { total: 3 });
}

#[test]
fn a_failed_cancel_of_an_unknown_operation_keeps_it_not_found() {
    let id = OperationId::from("nope");
    let mut session = Session::new(SessionOptions::default(), 1);
    let track = Input::Track {
        operation: TrackedOperation::by_id(id.clone()),
        epoch: None,
    };
    run(&mut session, track, T0);
    run(&mut session, Input::SocketOpened(SocketId(1)), T0);
    // The cancel goes out before the server's answer comes back.
    assert_eq!(
        run(&mut session, Input::Cancel(id.clone()), T0),
        [Command::Cancel(id.clone())]
    );
    let not_found = ServerFrame::Error {
        operation_id: Some(id.clone()),
        code: "operation_not_found".into(),
        message: "No such operation.".into(),
    };
    let commands = run(&mut session, frame(SocketId(1), not_found), T0 + 5);
    assert_eq!(commands, [Command::CloseSocket(SocketId(1))]);
    let failed = Input::CancelFailed {
        operation_id: id.clone(),
        message: "operation_not_found".into(),
    };
    run(&mut session, failed, T0 + 10);
    assert_eq!(
        session.operation(&id).unwrap().problem,
        Some(&Problem::NotFound)
    );
    assert_eq!(session.connection(), ConnectionState::Idle);
    // Nothing to cancel any more, and nothing reopens the socket.
    assert_eq!(run(&mut session, Input::Cancel(id.clone()), T0 + 20), []);
    assert_eq!(run(&mut session, Input::Online, T0 + 30), []);
}

#[test]
fn forget_then_track_again_on_the_same_socket_keeps_following() {
    let id = OperationId::from("op");
    let (mut session, socket) = live(&id, 0);
    // Another operation keeps the socket open.
    let other = Input::Track {
        operation: TrackedOperation::by_id(OperationId::from("other")),
        epoch: None,
    };
    run(&mut session, other, T0);
    run(&mut session, Input::Forget(id.clone()), T0 + 10);
    // The server had ended the subscription by itself (the reference
    // server does after a terminal push) before it read the unsubscribe.
    let unsubscribed = ServerFrame::Unsubscribed {
        operation_id: id.clone(),
    };
    run(&mut session, frame(socket, unsubscribed.clone()), T0 + 15);
    let track = Input::Track {
        operation: TrackedOperation::by_id(id.clone()),
        epoch: None,
    };
    let commands = run(&mut session, track, T0 + 20);
    assert!(commands.contains(&Command::Send(
        socket,
        ClientFrame::Subscribe {
            operation_id: id.clone(),
            after: Seq(0),
        }
    )));
    // Then it answers the unsubscribe, then the new subscribe.
    run(&mut session, frame(socket, unsubscribed), T0 + 30);
    let subscribed = ServerFrame::Subscribed {
        operation_id: id.clone(),
        epoch: Epoch(1),
        head: Seq(1),
    };
    let commands = run(&mut session, frame(socket, subscribed), T0 + 40);
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::FetchHistory { after: Seq(0), .. })),
        "catches up after the new subscription: {commands:?}"
    );
    run(
        &mut session,
        push(socket, &id, 2, "ProgressUpdated"),
        T0 + 50,
    );
    let view = session.operation(&id).unwrap();
    assert_eq!(view.log.len(), 1, "live events are taken, not dropped");
    assert_eq!(view.recovery, Recovery::CatchingUp);
}

#[test]
fn a_request_failing_after_the_operation_finished_is_not_retried() {
    let id = OperationId::from("op");
    let (mut session, socket) = live(&id, 1);
    // The catch-up request (1) is in flight when the end arrives live.
    push_to_the_end(&mut session, socket, &id);
    assert!(session.operation(&id).unwrap().finished);
    let failed = Input::HistoryFailed {
        request: RequestId(1),
        error: HistoryError::Transient("502".into()),
    };
    assert_eq!(run(&mut session, failed, T0 + 30), []);
    assert_eq!(session.operation(&id).unwrap().problem, None);
}

#[test]
fn a_stale_page_arriving_after_the_end_does_not_flip_the_remembered_status() {
    let id = OperationId::from("op");
    let (mut session, socket) = live(&id, 1);
    let end = push_to_the_end(&mut session, socket, &id);
    assert!(end.iter().any(|c| matches!(c, Command::Persist(_))));
    // The catch-up page was read when the operation was still running.
    let page = EventsPage {
        operation_id: id.clone(),
        kind: "payment".into(),
        epoch: Epoch(1),
        head: Seq(1),
        status: Status::Running,
        events: vec![event(1, "ProcessingStarted")],
        has_more: false,
        unreadable: 0,
    };
    let received = Input::HistoryReceived {
        request: RequestId(1),
        page,
    };
    assert_eq!(run(&mut session, received, T0 + 30), []);
    let view = session.operation(&id).unwrap();
    assert_eq!(view.tracked.status, Some(Status::Succeeded));
    assert_eq!(view.status, Status::Succeeded);
}

#[test]
fn a_tick_exactly_on_the_watchdog_deadline_declares_the_silent_socket_dead() {
    let id = OperationId::from("op");
    let (mut session, socket) = live(&id, 0);
    let limit = 2 * SessionOptions::default().server_ping_interval_ms as i64;
    // A timer may fire exactly at its instant. Re-arming the watchdog
    // for that same instant would spin forever.
    let commands = run(&mut session, Input::Tick, T0 + limit);
    assert_eq!(commands, [Command::CloseSocket(socket)]);
    assert!(matches!(
        session.connection(),
        ConnectionState::Reconnecting { .. }
    ));
    assert!(session.poll_timeout().unwrap().0 > T0 + limit);
}

#[test]
fn an_answer_to_the_old_subscription_is_not_taken_for_the_new_ones() {
    let id = OperationId::from("op");
    let mut session = Session::new(SessionOptions::default(), 1);
    for name in ["other", "op"] {
        let track = Input::Track {
            operation: TrackedOperation::by_id(OperationId::from(name)),
            epoch: None,
        };
        run(&mut session, track, T0);
    }
    let socket = SocketId(1);
    run(&mut session, Input::SocketOpened(socket), T0);
    // Forgotten and tracked again before the first subscribe's answer.
    let forget = run(&mut session, Input::Forget(id.clone()), T0 + 10);
    let unsubscribe = ClientFrame::Unsubscribe {
        operation_id: id.clone(),
    };
    assert_eq!(
        forget,
        [
            Command::Send(socket, unsubscribe),
            Command::Persist(session.tracked())
        ]
    );
    let track = Input::Track {
        operation: TrackedOperation::by_id(id.clone()),
        epoch: None,
    };
    let commands = run(&mut session, track, T0 + 20);
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::Send(_, ClientFrame::Subscribe { .. }))),
        "the new subscribe waits for the old one's end: {commands:?}"
    );
    // The server answers in order: subscribed (old), pushes, unsubscribed.
    let old_answer = ServerFrame::Subscribed {
        operation_id: id.clone(),
        epoch: Epoch(1),
        head: Seq(3),
    };
    assert_eq!(run(&mut session, frame(socket, old_answer), T0 + 30), []);
    run(
        &mut session,
        push(socket, &id, 4, "ProgressUpdated"),
        T0 + 31,
    );
    let ended = ServerFrame::Unsubscribed {
        operation_id: id.clone(),
    };
    let commands = run(&mut session, frame(socket, ended), T0 + 40);
    assert_eq!(
        commands,
        [Command::Send(
            socket,
            ClientFrame::Subscribe {
                operation_id: id.clone(),
                after: Seq(0),
            }
        )]
    );
    // The new answer starts the catch-up; later pushes are taken.
    let answer = ServerFrame::Subscribed {
        operation_id: id.clone(),
        epoch: Epoch(1),
        head: Seq(4),
    };
    let commands = run(&mut session, frame(socket, answer), T0 + 50);
    assert!(commands.iter().any(|c| matches!(
        c,
        Command::FetchHistory {
            after: Seq(0),
            limit: 500,
            ..
        }
    )));
    run(
        &mut session,
        push(socket, &id, 5, "ProgressUpdated"),
        T0 + 60,
    );
    assert_eq!(session.operation(&id).unwrap().log.len(), 1);
}

#[test]
fn a_healthy_connection_declared_dead_by_the_watchdog_resets_the_backoff() {
    let id = OperationId::from("op");
    let mut session = Session::new(SessionOptions::default(), 1);
    let track = Input::Track {
        operation: TrackedOperation::by_id(id),
        epoch: None,
    };
    run(&mut session, track, T0);
    // Ten failed attempts: the ceiling is at the 20 s cap.
    let mut now = T0;
    for attempt in 1..=10 {
        run(&mut session, Input::SocketClosed(SocketId(attempt)), now);
        now += 20_000;
        run(&mut session, Input::Tick, now);
    }
    let socket = SocketId(11);
    run(&mut session, Input::SocketOpened(socket), now);
    // An hour of life with pings, then silence.
    let opened = now;
    while now < opened + 3_600_000 {
        now += 15_000;
        run(&mut session, frame(socket, ServerFrame::Ping), now);
    }
    now += 30_000;
    let commands = run(&mut session, Input::Tick, now);
    assert_eq!(commands, [Command::CloseSocket(socket)]);
    let Some(at) = session.poll_timeout() else {
        panic!("a reconnect is scheduled");
    };
    assert!(at.0 - now <= 500, "waited {} ms", at.0 - now);
}

#[test]
fn a_retry_pending_when_the_operation_finishes_fetches_nothing() {
    let id = OperationId::from("op");
    let (mut session, socket) = live(&id, 2);
    // The catch-up request fails and is scheduled for a retry...
    session.handle(
        Input::HistoryFailed {
            request: RequestId(1),
            error: HistoryError::Transient("502".into()),
        },
        Timestamp(T0),
    );
    drain(&mut session);
    // ...but the whole stream arrives live in the meantime.
    push_to_the_end(&mut session, socket, &id);
    let view = session.operation(&id).unwrap();
    assert!(view.finished);
    assert_eq!(view.problem, None, "no stale 'history unavailable'");
    let commands = run(&mut session, Input::Tick, T0 + 60_000);
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::FetchHistory { .. })),
        "a finished operation asks for nothing: {commands:?}"
    );
}
#[test]
fn a_refused_cancel_is_forgotten_once_the_operation_ends() {
    let id = OperationId::from("op");
    let mut session = tracking(&id);
    run(&mut session, Input::Cancel(id.clone()), T0 + 1);
    let refused = Input::CancelFailed {
        operation_id: id.clone(),
        message: "the server could not be reached".into(),
    };
    run(&mut session, refused.clone(), T0 + 2);
    assert!(matches!(
        session.operation(&id).unwrap().problem,
        Some(Problem::CancelFailed(_))
    ));
    session.finish(&id);
    assert_eq!(session.operation(&id).unwrap().problem, None);
    // A refusal that arrives after the end is not shown either.
    run(&mut session, refused, T0 + 3);
    assert_eq!(session.operation(&id).unwrap().problem, None);
}
