//! The event loop's one step: what each scheduled action does.

use super::*;

impl World {
    pub(super) fn step(&mut self, action: Action) {
        self.stats.steps += 1;
        match action {
            Action::ToClient {
                incarnation,
                input,
                data_on,
            } => {
                if incarnation != self.client.incarnation {
                    return;
                }
                if let Some(socket) = data_on
                    && self
                        .pipes
                        .get(&(incarnation, socket))
                        .is_none_or(|pipe| pipe.cut)
                {
                    return;
                }
                if let Input::Started { operation, .. } = &input {
                    // Followed from here, whether or not the start is still
                    // waited for.
                    self.expected.insert(operation.id.clone());
                }
                if let Input::SocketOpened(socket) = &input
                    && self
                        .pipes
                        .get(&(incarnation, *socket))
                        .is_some_and(|pipe| pipe.closed_by_client)
                {
                    return;
                }
                self.input(input);
            }
            Action::TickDue {
                incarnation,
                generation,
            } => {
                if incarnation == self.client.incarnation
                    && self.client.timer_generation == generation
                {
                    // Fired: the next input sets it again.
                    self.client.timer = None;
                    self.input(Input::Tick);
                }
            }
            Action::OpenReachesServer {
                incarnation,
                socket,
            } => {
                let cut = self
                    .pipes
                    .get(&(incarnation, socket))
                    .is_none_or(|pipe| pipe.cut);
                if incarnation != self.client.incarnation || cut {
                    return;
                }
                let refused = !self.server.up
                    || self.client.offline
                    || (self.stormy && self.rng.chance(self.p_fail_open));
                if refused {
                    self.stats.failed_opens += 1;
                    self.cut(incarnation, socket);
                    let delay = self.latency();
                    self.control(socket, delay, Input::SocketClosed(socket));
                    return;
                }
                let conn = self.server.connect((incarnation, socket), self.now);
                self.pipes
                    .get_mut(&(incarnation, socket))
                    .expect("pipe")
                    .conn = Some(conn);
                let delay = self.latency();
                self.control(socket, delay, Input::SocketOpened(socket));
                self.at(PING_MS as i64, Action::Ping { conn });
            }
            Action::FrameReachesServer {
                incarnation,
                socket,
                frame,
            } => {
                let conn = self
                    .pipes
                    .get(&(incarnation, socket))
                    .filter(|pipe| !pipe.cut)
                    .and_then(|pipe| pipe.conn);
                if let Some(conn) = conn {
                    self.server_frame(conn, frame);
                }
            }
            Action::HistoryReachesServer {
                incarnation,
                request,
                operation_id,
                after,
                limit,
            } => {
                if incarnation != self.client.incarnation {
                    return;
                }
                let answer = if !self.server.up
                    || (self.stormy && self.rng.chance(self.p_history_fail / 2.0))
                {
                    self.stats.history_failures += 1;
                    Input::HistoryFailed {
                        request,
                        error: HistoryError::Transient("502 Bad Gateway".into()),
                    }
                } else {
                    match self.server.page(&operation_id, after, limit) {
                        Some(page) => Input::HistoryReceived { request, page },
                        None => Input::HistoryFailed {
                            request,
                            error: HistoryError::NotFound,
                        },
                    }
                };
                let delay = self.latency();
                if self.stormy && self.rng.chance(self.p_duplicate_page) {
                    self.stats.duplicate_pages += 1;
                    let again = delay + self.between(0, 3_000);
                    self.reply(again, answer.clone());
                }
                self.reply(delay, answer);
            }
            Action::StartReachesServer { incarnation, start } => {
                if incarnation != self.client.incarnation {
                    // The page that asked is gone, and the answer with it.
                    return;
                }
                let input = if self.server.up {
                    let op = self.server.start(&mut self.rng);
                    self.stats.ops += 1;
                    let delay = self.between(0, 3_000);
                    self.at(delay, Action::RunnerStep { op });
                    let op = &self.server.ops[op];
                    Input::Started {
                        start,
                        operation: Operation {
                            id: op.id.clone(),
                            kind: op.kind.to_owned(),
                            status: Status::NotStarted,
                            created_at: Timestamp(self.now),
                            updated_at: Timestamp(self.now),
                            epoch: op.epoch(),
                            head: Seq::ZERO,
                            percent_complete: None,
                            params: json!({ "kind": op.kind }),
                        },
                    }
                } else {
                    let error = ApiError {
                        code: "unavailable".into(),
                        message: "The server is restarting.".into(),
                    };
                    Input::StartFailed { start, error }
                };
                let delay = self.latency();
                self.reply(delay, input);
            }
            Action::CancelReachesServer {
                incarnation,
                operation_id,
            } => {
                if incarnation != self.client.incarnation {
                    return;
                }
                let mut out = Outbox::new();
                let result = if self.server.up {
                    self.server.cancel(&operation_id, self.now, &mut out)
                } else {
                    Err("The server is restarting.".into())
                };
                if !out.is_empty() {
                    self.stats.events_committed += 1;
                }
                self.send_out(out);
                let answer = match result {
                    Ok(()) => Input::CancelAccepted(operation_id),
                    Err(message) => Input::CancelFailed {
                        operation_id,
                        message,
                    },
                };
                let delay = self.latency();
                self.reply(delay, answer);
            }
            Action::AnswerSubscribe {
                conn,
                operation_id,
                registration,
                after,
            } => {
                // Some servers also push what lies between `after` and the
                // head; clients dedupe.
                let replay = self.rng.chance(0.2).then_some(after);
                if replay.is_some() {
                    self.stats.replayed_pushes += 1;
                }
                let mut out = Outbox::new();
                self.server
                    .answer_subscribe(conn, &operation_id, registration, replay, &mut out);
                self.send_out(out);
            }
            Action::RunnerStep { op } => {
                if !self.server.up {
                    let delay = self.between(500, 2_000);
                    self.at(delay, Action::RunnerStep { op });
                    return;
                }
                let mut out = Outbox::new();
                let before = self.server.ops[op].head();
                let more = self.server.step(op, self.now, &mut out);
                if self.server.ops[op].head() != before {
                    self.stats.events_committed += 1;
                }
                self.send_out(out);
                if more {
                    // Bursts (several events in one millisecond) and pauses.
                    let delay = if self.rng.chance(0.2) {
                        0
                    } else {
                        self.between(1, 3_000)
                    };
                    self.at(delay, Action::RunnerStep { op });
                }
            }
            Action::Ping { conn } => {
                let Some(c) = self.server.conns.get(&conn) else {
                    return;
                };
                // Rule 5: a client silent for two intervals is dropped.
                if self.now - c.last_heard > 2 * PING_MS as i64 + 5_000 {
                    let (incarnation, socket) = c.client;
                    self.cut(incarnation, socket);
                    if incarnation == self.client.incarnation {
                        let delay = self.latency();
                        self.control(socket, delay, Input::SocketClosed(socket));
                    }
                    return;
                }
                self.send_out(vec![(conn, ServerFrame::Ping)]);
                self.at(PING_MS as i64, Action::Ping { conn });
            }
            Action::ServerUp => {
                self.server.up = true;
            }
            Action::Chaos => {
                if !self.stormy {
                    return;
                }
                self.chaos();
                let mean = self.knobs.chaos_every_ms;
                let delay = self.between(1, 2 * mean);
                self.at(delay, Action::Chaos);
            }
            Action::Quiesce => {
                self.stormy = false;
                self.server.up = true;
                if self.client.offline {
                    self.client.offline = false;
                    self.input(Input::Online);
                }
                if self.client.hidden {
                    self.client.hidden = false;
                    self.input(Input::Visible);
                }
            }
        }
    }
}
