//! The server side of the network: frames from the client, pushes to it,
//! and server restarts.

use super::*;

impl World {
    pub(super) fn send_out(&mut self, out: Outbox) {
        for (conn, frame) in out {
            let Some(c) = self.server.conns.get(&conn) else {
                continue;
            };
            let (incarnation, socket) = c.client;
            let latency = self.latency();
            let Some(pipe) = self.pipes.get_mut(&(incarnation, socket)) else {
                continue;
            };
            if pipe.cut {
                continue;
            }
            if matches!(&frame, ServerFrame::Event { event, .. }
                    if crate::sim::server::terminal_status(event.kind.as_str()).is_none())
                && self.stormy
                && self.rng.chance(self.p_lost_push)
            {
                self.stats.lost_pushes += 1;
                continue;
            }
            self.send_to_client(socket, latency, frame.to_json());
        }
    }

    /// A text frame on an open socket of the current page, after `latency`
    /// but never before the frames sent on it earlier (TCP keeps order).
    pub(super) fn send_to_client(&mut self, socket: SocketId, latency: i64, text: String) {
        let incarnation = self.client.incarnation;
        let pipe = self.pipes.get_mut(&(incarnation, socket)).expect("pipe");
        let at = (self.now + latency).max(pipe.to_client_last);
        pipe.to_client_last = at;
        self.at(
            at - self.now,
            Action::ToClient {
                incarnation,
                input: Input::FrameReceived(socket, text),
                data_on: Some(socket),
            },
        );
    }

    pub(super) fn restart_server(&mut self) {
        self.stats.server_restarts += 1;
        self.server.up = false;
        let conns: Vec<(u64, SocketId)> = self.server.conns.values().map(|c| c.client).collect();
        for (incarnation, socket) in conns {
            self.cut(incarnation, socket);
            if incarnation == self.client.incarnation {
                let delay = self.latency();
                self.control(socket, delay, Input::SocketClosed(socket));
            }
        }
        let down = self.between(100, 10_000);
        self.at(down, Action::ServerUp);
    }

    pub(super) fn server_frame(&mut self, conn: ConnId, frame: ClientFrame) {
        if let Some(c) = self.server.conns.get_mut(&conn) {
            c.last_heard = self.now;
        }
        let mut out = Outbox::new();
        match frame {
            ClientFrame::Subscribe {
                operation_id,
                after,
            } => {
                let held = self
                    .server
                    .conns
                    .get(&conn)
                    .map_or(0, |c| c.following.len());
                let refusal = if held >= self.subscription_limit {
                    self.stats.refused_subscriptions += 1;
                    Some("too_many_subscriptions")
                } else if self.stormy && self.rng.chance(self.p_refuse) {
                    self.stats.refused_subscriptions += 1;
                    Some("internal")
                } else {
                    None
                };
                if let Some(code) = refusal {
                    let error = ServerFrame::Error {
                        operation_id: Some(operation_id),
                        code: code.into(),
                        message: format!("refused: {code}"),
                    };
                    out.push((conn, error));
                } else if let Some(registration) =
                    self.server.subscribe(conn, &operation_id, &mut out)
                {
                    // Events committed while the head is being read are
                    // pushed before `subscribed` goes out.
                    let delay = if self.rng.chance(0.3) {
                        self.stats.slow_subscribe_answers += 1;
                        self.between(1, 2_000)
                    } else {
                        0
                    };
                    self.at(
                        delay,
                        Action::AnswerSubscribe {
                            conn,
                            operation_id,
                            registration,
                            after,
                        },
                    );
                }
            }
            ClientFrame::Unsubscribe { operation_id } => {
                self.server.unsubscribe(conn, &operation_id, &mut out)
            }
            ClientFrame::Ping => out.push((conn, ServerFrame::Pong)),
            ClientFrame::Pong => {}
        }
        self.send_out(out);
    }
}
