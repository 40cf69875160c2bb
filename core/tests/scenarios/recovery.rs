//! Ordering and recovery: subscribe first, buffer, fill gaps, follow epochs,
//! survive reloads, stop at the end.

use optrail_core::{
    ClientFrame, Command, Input, Recovery, RequestId, Seq, Session, SessionOptions, SocketId,
    Status, TrackedOperation,
};

use super::{Script, fetches, op, opened_socket, page, subscribe};

#[test]
fn subscribe_goes_out_before_any_history_request() {
    let mut s = Script::new();
    let id = op("a");
    let commands = s.track(&id);
    assert!(
        fetches(&commands).is_empty(),
        "no history before subscribing"
    );
    let socket = opened_socket(&commands).unwrap();
    let commands = s.input(Input::SocketOpened(socket));
    assert_eq!(commands, [subscribe(socket, &id, 0)]);
    assert!(
        fetches(&commands).is_empty(),
        "not even once the socket is up"
    );
    let commands = s.subscribed(socket, &id, 1, 4);
    assert_eq!(fetches(&commands), [(RequestId(1), 0, 500)]);
}

#[test]
fn event_pushed_before_subscribed_is_kept() {
    let (mut s, id, socket) = Script::connected("a");
    // Committed between registration and the head read: pushed first.
    assert_eq!(s.push(socket, &id, 1, 3, "ProgressUpdated"), []);
    let commands = s.subscribed(socket, &id, 1, 3);
    // Only what is missing before the buffered event is asked for.
    assert_eq!(fetches(&commands), [(RequestId(1), 0, 2)]);
    let received = Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 3, 1, 2, "ProgressUpdated"),
    };
    assert_eq!(s.input(received), []);
    assert_eq!(s.shown(&id), ["a-1-1", "a-1-2", "a-1-3"]);
    let view = s.session.operation(&id).unwrap();
    assert_eq!(view.recovery, Recovery::Complete { total: 3 });
}

#[test]
fn gap_in_live_seqs_fetches_exactly_the_gap() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 2);
    let page_1 = Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 2, 1, 2, "ProgressUpdated"),
    };
    s.input(page_1);
    assert_eq!(s.push(socket, &id, 1, 3, "ProgressUpdated"), []);
    // 4, 5 and 6 were lost on the way.
    let commands = s.push(socket, &id, 1, 7, "ProgressUpdated");
    assert_eq!(fetches(&commands), [(RequestId(2), 3, 3)]);
    let gap = Input::HistoryReceived {
        request: RequestId(2),
        page: page(&id, 1, 7, 4, 6, "ProgressUpdated"),
    };
    assert_eq!(s.input(gap), []);
    assert_eq!(s.session.operation(&id).unwrap().log.contiguous(), Seq(7));
    assert_eq!(
        s.session.operation(&id).unwrap().recovery,
        Recovery::Replayed {
            missed: 3,
            total: 7
        }
    );
}

#[test]
fn long_history_loads_its_newest_page_first_then_back_to_the_start() {
    let options = SessionOptions {
        page_limit: 4,
        ..SessionOptions::default()
    };
    let mut s = Script::with(options, 1);
    let id = op("a");
    let socket = s.track_and_connect(&id);
    let mut commands = s.subscribed(socket, &id, 1, 10);
    let mut pages = Vec::new();
    while let Some(&(request, after, limit)) = fetches(&commands).first() {
        pages.push((after, limit));
        let to = (after + u64::from(limit)).min(10);
        let received = Input::HistoryReceived {
            request,
            page: page(&id, 1, 10, after + 1, to, "ProgressUpdated"),
        };
        commands = s.input(received);
    }
    // The tail a person sees first, then earlier pages backwards.
    assert_eq!(pages, [(6, 4), (2, 4), (0, 2)]);
    let view = s.session.operation(&id).unwrap();
    assert_eq!(view.log.len(), 10);
    assert_eq!(view.recovery, Recovery::Complete { total: 10 });
}

#[test]
fn epoch_change_discards_and_refetches() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 3);
    let first = Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 3, 1, 3, "ProgressUpdated"),
    };
    s.input(first);
    assert_eq!(s.shown(&id), ["a-1-1", "a-1-2", "a-1-3"]);
    // The connection drops; meanwhile the server rebuilds the stream.
    s.wait(1_000);
    s.input(Input::SocketClosed(socket));
    s.wait(30_000);
    let commands = s.input(Input::Tick);
    let socket = opened_socket(&commands).unwrap();
    let commands = s.input(Input::SocketOpened(socket));
    assert!(commands.contains(&subscribe(socket, &id, 3)));
    let commands = s.subscribed(socket, &id, 2, 2);
    assert!(s.shown(&id).is_empty(), "the old epoch's events are gone");
    assert_eq!(fetches(&commands), [(RequestId(2), 0, 500)]);
    let rebuilt = Input::HistoryReceived {
        request: RequestId(2),
        page: page(&id, 2, 2, 1, 2, "ProgressUpdated"),
    };
    s.input(rebuilt);
    assert_eq!(s.shown(&id), ["a-2-1", "a-2-2"]);
    let view = s.session.operation(&id).unwrap();
    assert_eq!(view.recovery, Recovery::Refetched { total: 2 });
    assert_eq!(view.epoch, Some(optrail_core::Epoch(2)));
}

#[test]
fn epoch_change_seen_in_a_push_discards_and_refetches() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 2);
    let first = Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 2, 1, 2, "ProgressUpdated"),
    };
    s.input(first);
    let commands = s.push(socket, &id, 2, 2, "ProgressUpdated");
    assert_eq!(s.shown(&id), ["a-2-2"]);
    assert_eq!(fetches(&commands), [(RequestId(2), 0, 1)]);
}

#[test]
fn answer_from_before_an_epoch_change_is_ignored() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 5);
    // Request 1 is in flight when a push reveals the rebuild.
    let commands = s.push(socket, &id, 2, 1, "ProcessingStarted");
    assert!(fetches(&commands).is_empty());
    let stale = Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 5, 1, 5, "ProgressUpdated"),
    };
    s.input(stale);
    assert_eq!(s.shown(&id), ["a-2-1"]);
}

#[test]
fn duplicated_history_page_is_ignored() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 2);
    let received = Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 2, 1, 2, "ProgressUpdated"),
    };
    s.input(received.clone());
    assert_eq!(s.input(received), []);
    let view = s.session.operation(&id).unwrap();
    assert_eq!(view.log.len(), 2);
    assert_eq!(view.recovery, Recovery::Complete { total: 2 });
}

#[test]
fn reload_mid_operation_resumes_without_duplicates() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 2);
    s.input(Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 2, 1, 2, "ProgressUpdated"),
    });
    s.push(socket, &id, 1, 3, "ProgressUpdated");
    let persisted = s.session.tracked();
    // Reload: a new session knows only what was persisted.
    let mut s = Script::new();
    let commands = s.input(Input::Restore(persisted));
    let socket = opened_socket(&commands).unwrap();
    let commands = s.input(Input::SocketOpened(socket));
    assert!(commands.contains(&subscribe(socket, &id, 0)));
    // Events 4 and 5 are pushed early and again after the answer.
    s.push(socket, &id, 1, 4, "ProgressUpdated");
    let commands = s.subscribed(socket, &id, 1, 5);
    assert_eq!(fetches(&commands), [(RequestId(1), 0, 3)]);
    s.push(socket, &id, 1, 5, "ProgressUpdated");
    s.push(socket, &id, 1, 4, "ProgressUpdated");
    s.input(Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 5, 1, 5, "ProgressUpdated"),
    });
    s.push(socket, &id, 1, 6, "PaymentSucceeded");
    let expected: Vec<String> = (1..=6).map(|seq| format!("a-1-{seq}")).collect();
    assert_eq!(s.shown(&id), expected);
    let view = s.session.operation(&id).unwrap();
    assert!(view.finished);
    assert_eq!(view.status, Status::Succeeded);
}

#[test]
fn terminal_on_load_is_fetched_once_and_never_subscribed() {
    let mut s = Script::new();
    let id = op("a");
    let remembered = TrackedOperation {
        status: Some(Status::Failed),
        ..TrackedOperation::by_id(id.clone())
    };
    let commands = s.input(Input::Restore(vec![remembered]));
    assert_eq!(fetches(&commands), [(RequestId(1), 0, 500)]);
    assert!(
        opened_socket(&commands).is_none(),
        "no socket: {commands:?}"
    );
    let received = Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 3, 1, 3, "PaymentFailed"),
    };
    assert_eq!(s.input(received), [], "no second request, no subscribe");
    let view = s.session.operation(&id).unwrap();
    assert!(view.finished);
    assert_eq!(view.status, Status::Failed);
    assert_eq!(s.session.connection(), optrail_core::ConnectionState::Idle);
    s.wait(60_000);
    assert_eq!(s.input(Input::Online), []);
    assert_eq!(s.input(Input::Visible), []);
}

#[test]
fn terminal_event_ends_the_subscription_and_closes_the_idle_socket() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 1);
    s.input(Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 1, 1, 1, "ProcessingStarted"),
    });
    let commands = s.push(socket, &id, 1, 2, "PaymentSucceeded");
    let unsubscribe = Command::Send(
        socket,
        ClientFrame::Unsubscribe {
            operation_id: id.clone(),
        },
    );
    assert_eq!(commands[0], unsubscribe);
    assert!(
        matches!(&commands[1], Command::Persist(set) if set[0].status == Some(Status::Succeeded))
    );
    assert_eq!(commands[2], Command::CloseSocket(socket));
    let view = s.session.operation(&id).unwrap();
    assert_eq!(view.progress, Some(100.0));
    // Late pushes change nothing.
    assert_eq!(s.push(socket, &id, 1, 2, "PaymentSucceeded"), []);
}

#[test]
fn terminal_event_with_a_gap_before_it_fetches_the_gap_first() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 0);
    let commands = s.push(socket, &id, 1, 3, "PaymentSucceeded");
    assert_eq!(fetches(&commands), [(RequestId(1), 0, 2)]);
    assert!(!s.session.operation(&id).unwrap().finished);
    let commands = s.input(Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 3, 1, 2, "ProgressUpdated"),
    });
    assert!(s.session.operation(&id).unwrap().finished);
    assert!(commands.contains(&Command::CloseSocket(socket)));
}

#[test]
fn history_failure_is_retried_with_backoff_and_shown() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 2);
    let commands = s.input(Input::HistoryFailed {
        request: RequestId(1),
        error: optrail_core::HistoryError::Transient("502".into()),
    });
    assert!(fetches(&commands).is_empty(), "not at once: {commands:?}");
    let Some(at) = s.session.poll_timeout() else {
        panic!("a retry is scheduled");
    };
    let at = at.0;
    assert!(matches!(
        s.session.operation(&id).unwrap().problem,
        Some(optrail_core::Problem::HistoryUnavailable { .. })
    ));
    s.now = at;
    let retry = Input::Tick;
    assert_eq!(fetches(&s.input(retry)), [(RequestId(2), 0, 500)]);
    assert_eq!(s.session.operation(&id).unwrap().problem, None);
}

#[test]
fn unknown_operation_is_reported_and_not_followed() {
    let (mut s, id, socket) = Script::connected("ghost");
    let error = optrail_core::ServerFrame::Error {
        operation_id: Some(id.clone()),
        code: "operation_not_found".into(),
        message: "No such operation.".into(),
    };
    assert_eq!(s.frame(socket, error), [Command::CloseSocket(socket)]);
    let view = s.session.operation(&id).unwrap();
    assert_eq!(view.problem, Some(&optrail_core::Problem::NotFound));
    assert_eq!(s.input(Input::Online), []);
}

#[test]
fn two_operations_share_one_socket() {
    let mut s = Session::new(SessionOptions::default(), 1);
    let now = optrail_core::Timestamp(super::T0);
    for name in ["a", "b"] {
        s.handle(
            Input::Track {
                operation: TrackedOperation::by_id(op(name)),
                epoch: None,
            },
            now,
        );
    }
    let commands: Vec<Command> = std::iter::from_fn(|| s.poll_command()).collect();
    let opens = commands
        .iter()
        .filter(|c| matches!(c, Command::OpenSocket(_)))
        .count();
    assert_eq!(opens, 1);
    s.handle(Input::SocketOpened(SocketId(1)), now);
    let commands: Vec<Command> = std::iter::from_fn(|| s.poll_command()).collect();
    assert!(commands.contains(&subscribe(SocketId(1), &op("a"), 0)));
    assert!(commands.contains(&subscribe(SocketId(1), &op("b"), 0)));
}

#[test]
fn a_history_request_that_never_answers_fails_at_its_deadline_and_is_retried() {
    let (mut s, id, socket) = Script::connected("a");
    let commands = s.subscribed(socket, &id, 1, 2);
    assert_eq!(fetches(&commands), [(RequestId(1), 0, 500)]);
    let timeout = SessionOptions::default().request_timeout_ms as i64;
    assert_eq!(
        s.session.poll_timeout().map(|at| at.0),
        Some(s.now + timeout),
        "the request's deadline"
    );
    // Early (a throttled tab's timer may be anything): nothing happens yet.
    s.wait(timeout / 2);
    let early = s.input(Input::Tick);
    assert!(fetches(&early).is_empty());
    assert_eq!(s.session.operation(&id).unwrap().problem, None);
    s.wait(timeout / 2);
    s.input(Input::Tick);
    let problem = s.session.operation(&id).unwrap().problem.cloned();
    let Some(optrail_core::Problem::HistoryUnavailable { reason, retry_at }) = problem else {
        panic!("the hang is shown as a failure: {problem:?}");
    };
    assert!(reason.contains("no answer"), "{reason}");
    // The late answer of the abandoned request is not taken.
    let late = Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 2, 1, 2, "ProgressUpdated"),
    };
    s.input(late);
    assert!(s.shown(&id).is_empty());
    s.now = retry_at.0;
    let retry = s.input(Input::Tick);
    assert_eq!(fetches(&retry), [(RequestId(2), 0, 500)]);
    s.input(Input::HistoryReceived {
        request: RequestId(2),
        page: page(&id, 1, 2, 1, 2, "ProgressUpdated"),
    });
    assert_eq!(s.shown(&id).len(), 2);
    assert_eq!(
        s.session.operation(&id).unwrap().recovery,
        Recovery::Complete { total: 2 }
    );
}

/// The problem shown for `id`, if it is "history unavailable": its reason.
fn unavailable(s: &Script, id: &optrail_core::OperationId) -> Option<String> {
    match s.session.operation(id)?.problem? {
        optrail_core::Problem::HistoryUnavailable { reason, .. } => Some(reason.clone()),
        _ => None,
    }
}

#[test]
fn a_history_page_that_adds_nothing_backs_off_instead_of_asking_again_at_once() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 3);
    // The server says its head is 3 but its history does not have it yet.
    let empty = Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 3, 1, 0, "ProgressUpdated"),
    };
    let commands = s.input(empty);
    assert!(
        fetches(&commands).is_empty(),
        "not asked again at once: {commands:?}"
    );
    let reason = unavailable(&s, &id).expect("shown as a history problem");
    assert!(reason.contains("nothing after seq 0"), "{reason}");
    let Some(optrail_core::Problem::HistoryUnavailable { retry_at, .. }) =
        s.session.operation(&id).unwrap().problem.cloned()
    else {
        panic!("a retry is scheduled");
    };
    assert!(s.session.poll_timeout() <= Some(retry_at));
    assert!(retry_at.0 > s.now, "later, not at once");
}

#[test]
fn a_history_page_for_another_operation_is_a_failure_retried_not_a_stall() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 2);
    let wrong = Input::HistoryReceived {
        request: RequestId(1),
        page: page(&op("b"), 1, 2, 1, 2, "ProgressUpdated"),
    };
    s.input(wrong);
    assert!(s.shown(&id).is_empty(), "nothing of b is taken for a");
    let Some(optrail_core::Problem::HistoryUnavailable { reason, retry_at }) =
        s.session.operation(&id).unwrap().problem.cloned()
    else {
        panic!("a wrong answer is shown and retried");
    };
    assert!(reason.contains("answered for"), "{reason}");
    s.now = retry_at.0;
    let retry = s.input(Input::Tick);
    assert_eq!(fetches(&retry), [(RequestId(2), 0, 500)]);
}

#[test]
fn a_rejected_pushed_seq_does_not_raise_the_head() {
    let (mut s, id, socket) = Script::connected("a");
    s.subscribed(socket, &id, 1, 2);
    s.input(Input::HistoryReceived {
        request: RequestId(1),
        page: page(&id, 1, 2, 1, 2, "ProgressUpdated"),
    });
    // Far beyond anything the log can hold: refused, and the session does
    // not go looking for history up to it.
    let commands = s.push(socket, &id, 1, 1 << 40, "Annotated");
    assert!(fetches(&commands).is_empty(), "{commands:?}");
    let view = s.session.operation(&id).unwrap();
    assert_eq!(view.head, Seq(2));
    assert_eq!(view.recovery, Recovery::Complete { total: 2 });
    assert_eq!(s.session.notices().rejected_events, 1);
}
