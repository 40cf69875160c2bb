//! The live channel: reconnects, backoff, offline, the watchdog, garbage.

use optrail_core::{
    ClientFrame, Command, ConnectionState, Input, ServerFrame, SessionOptions, SocketId,
};

use super::{Script, op, opened_socket, subscribe};

/// Fails `n` connection attempts in a row; returns the delays drawn.
fn fail_attempts(s: &mut Script, mut socket: SocketId, n: usize) -> (Vec<i64>, SocketId) {
    let mut delays = Vec::new();
    for _ in 0..n {
        s.input(Input::SocketClosed(socket));
        let at = s.reconnect_at().expect("a reconnect is scheduled");
        delays.push(at - s.now);
        s.now = at;
        let commands = s.input(Input::Tick);
        socket = opened_socket(&commands).expect("reconnects when the timer fires");
    }
    (delays, socket)
}

#[test]
fn reconnect_delays_grow_to_the_cap_with_full_jitter() {
    let mut ceilings_hit = [false; 2];
    for seed in 0..40 {
        let mut s = Script::with(SessionOptions::default(), seed);
        let commands = s.track(&op("a"));
        let socket = opened_socket(&commands).unwrap();
        let (delays, _) = fail_attempts(&mut s, socket, 10);
        for (attempt, delay) in delays.iter().enumerate() {
            let ceiling = (500_i64 << attempt).min(20_000);
            assert!(
                *delay <= ceiling,
                "seed {seed}: attempt {attempt} waited {delay}"
            );
        }
        ceilings_hit[0] |= delays[9] > 10_000;
        ceilings_hit[1] |= delays[9] < 5_000;
    }
    assert_eq!(ceilings_hit, [true, true], "jitter spreads over 0..=cap");
}

#[test]
fn backoff_resets_after_healthy_connection() {
    for seed in 0..20 {
        for watchdog in [false, true] {
            let mut s = Script::with(SessionOptions::default(), seed);
            let id = op("a");
            let socket = opened_socket(&s.track(&id)).unwrap();
            let (_, socket) = fail_attempts(&mut s, socket, 8);
            s.input(Input::SocketOpened(socket));
            // A minute of healthy life, pinged every 15 s.
            for _ in 0..4 {
                s.wait(15_000);
                s.frame(socket, ServerFrame::Ping);
            }
            if watchdog {
                // Then silence: the watchdog declares it dead.
                s.wait(30_000);
                s.input(Input::Tick);
            } else {
                s.input(Input::SocketClosed(socket));
            }
            let delay = s.reconnect_at().expect("reconnects") - s.now;
            assert!(
                delay <= 500,
                "seed {seed}, watchdog {watchdog}: waited {delay} ms after a healthy connection"
            );
        }
    }
}

#[test]
fn backoff_keeps_growing_for_connections_that_die_young() {
    let mut s = Script::with(SessionOptions::default(), 3);
    let socket = opened_socket(&s.track(&op("a"))).unwrap();
    let (_, mut socket) = fail_attempts(&mut s, socket, 6);
    let mut ceilings = Vec::new();
    for _ in 0..3 {
        s.input(Input::SocketOpened(socket));
        s.wait(2_000);
        s.input(Input::SocketClosed(socket));
        let at = s.reconnect_at().unwrap();
        ceilings.push(at - s.now);
        s.now = at;
        socket = opened_socket(&s.input(Input::Tick)).unwrap();
    }
    // After 6 failures the ceiling is at the cap; a delay of at most 500 ms
    // three times running would mean it was reset.
    assert!(ceilings.iter().any(|&d| d > 500), "{ceilings:?}");
}

#[test]
fn offline_pauses_reconnect_and_online_retries_at_once() {
    let (mut s, id, socket) = Script::connected("a");
    assert_eq!(s.input(Input::Offline), []);
    let commands = s.input(Input::SocketClosed(socket));
    assert_eq!(commands, [], "no reconnect while offline");
    assert_eq!(s.session.connection(), ConnectionState::Offline);
    s.wait(120_000);
    assert_eq!(s.input(Input::Visible), []);
    let commands = s.input(Input::Online);
    let socket = opened_socket(&commands).expect("reconnects at once");
    let commands = s.input(Input::SocketOpened(socket));
    assert!(commands.contains(&subscribe(socket, &id, 0)));
}

#[test]
fn online_cuts_a_pending_backoff_short() {
    let mut s = Script::new();
    let socket = s.track_and_connect(&op("a"));
    s.input(Input::SocketClosed(socket));
    assert!(s.reconnect_at().is_some());
    s.input(Input::Offline);
    s.wait(10);
    assert!(opened_socket(&s.input(Input::Online)).is_some());
}

#[test]
fn watchdog_declares_silent_socket_dead_even_if_timers_are_late() {
    let (mut s, _, socket) = Script::connected("a");
    s.wait(10_000);
    s.frame(socket, ServerFrame::Ping);
    // A hidden tab: the watchdog timer (due 30 s after the last frame) has
    // not fired. Any input at all notices the silence.
    s.input(Input::Hidden);
    s.wait(45_000);
    let commands = s.input(Input::Visible);
    assert_eq!(commands[0], Command::CloseSocket(socket));
    assert!(s.reconnect_at().is_some());
    assert!(matches!(
        s.session.connection(),
        ConnectionState::Reconnecting { .. }
    ));
    // The late timer, when it finally fires, changes nothing.
    s.wait(60_000);
    let commands = s.input(Input::Tick);
    assert!(!commands.contains(&Command::CloseSocket(socket)));
}

#[test]
fn watchdog_timer_firing_late_still_declares_death() {
    let mut s = Script::new();
    let socket = s.track_and_connect(&op("a"));
    s.wait(5 * 60_000);
    let commands = s.input(Input::Tick);
    assert_eq!(commands[0], Command::CloseSocket(socket));
}

#[test]
fn server_ping_is_answered_and_keeps_the_socket_alive() {
    let mut s = Script::new();
    let socket = s.track_and_connect(&op("a"));
    for _ in 0..10 {
        s.wait(15_000);
        assert_eq!(
            s.frame(socket, ServerFrame::Ping),
            [Command::Send(socket, ClientFrame::Pong)]
        );
        let commands = s.input(Input::Tick);
        assert!(!commands.contains(&Command::CloseSocket(socket)));
    }
    assert_eq!(s.session.connection(), ConnectionState::Live);
}

#[test]
fn malformed_frame_is_counted_not_fatal() {
    let (mut s, id, socket) = Script::connected("a");
    for garbage in [
        "{",
        "null",
        r#"{"type":"event","operationId":"a"}"#,
        "\u{0}",
    ] {
        assert_eq!(s.input(Input::FrameReceived(socket, garbage.into())), []);
    }
    assert_eq!(s.session.notices().malformed_frames, 4);
    assert_eq!(s.session.connection(), ConnectionState::Live);
    // Unknown frame types are not even malformed.
    s.input(Input::FrameReceived(
        socket,
        r#"{"type":"greeting"}"#.into(),
    ));
    assert_eq!(s.session.notices().malformed_frames, 4);
    s.subscribed(socket, &id, 1, 0);
    s.push(socket, &id, 1, 1, "ProcessingStarted");
    assert_eq!(s.shown(&id), ["a-1-1"]);
}

#[test]
fn visible_after_an_overdue_reconnect_connects_at_once() {
    let mut s = Script::new();
    let socket = s.track_and_connect(&op("a"));
    s.input(Input::Hidden);
    let at = {
        s.input(Input::SocketClosed(socket));
        s.reconnect_at()
    }
    .unwrap();
    // The throttled timer has not fired; the tab comes back later.
    s.now = at + 40_000;
    assert!(opened_socket(&s.input(Input::Visible)).is_some());
}

#[test]
fn news_about_an_old_socket_is_ignored() {
    let mut s = Script::new();
    let id = op("a");
    let old = s.track_and_connect(&id);
    let at = {
        s.input(Input::SocketClosed(old));
        s.reconnect_at()
    }
    .unwrap();
    s.now = at;
    let new = opened_socket(&s.input(Input::Tick)).unwrap();
    assert_ne!(old, new);
    assert_eq!(s.input(Input::SocketClosed(old)), []);
    assert_eq!(s.push(old, &id, 1, 1, "ProcessingStarted"), []);
    assert!(s.shown(&id).is_empty());
    assert_eq!(
        s.input(Input::SocketOpened(old)),
        [Command::CloseSocket(old)]
    );
    assert_eq!(s.session.connection(), ConnectionState::Connecting);
}

#[test]
fn a_socket_that_never_opens_is_given_up_at_its_deadline_and_reconnected() {
    let mut s = Script::new();
    let commands = s.track(&op("a"));
    let socket = opened_socket(&commands).unwrap();
    let timeout = SessionOptions::default().connect_timeout_ms as i64;
    assert!(commands.contains(&Command::OpenSocket(socket)));
    assert_eq!(
        s.session.poll_timeout(),
        Some(optrail_core::Timestamp(s.now + timeout))
    );
    s.wait(timeout - 1);
    assert!(
        s.input(Input::Tick)
            .iter()
            .all(|c| !matches!(c, Command::CloseSocket(_)))
    );
    assert_eq!(s.session.connection(), ConnectionState::Connecting);
    s.wait(1);
    let commands = s.input(Input::Tick);
    assert!(
        commands.contains(&Command::CloseSocket(socket)),
        "{commands:?}"
    );
    let at = s.reconnect_at().expect("a reconnect is scheduled");
    assert_eq!(
        s.session.connection(),
        ConnectionState::Reconnecting {
            at: optrail_core::Timestamp(at)
        }
    );
    // The abandoned socket opening late is closed as not ours.
    let late = s.input(Input::SocketOpened(socket));
    assert_eq!(late, [Command::CloseSocket(socket)]);
    s.now = at;
    let commands = s.input(Input::Tick);
    let next = opened_socket(&commands).expect("a new socket");
    assert_ne!(next, socket);
}
