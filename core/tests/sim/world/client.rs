//! The simulated tab: the session, and the adapter that carries out its
//! commands over the simulated network (sockets, history, starts, timer).

use super::*;

impl World {
    pub(super) fn input(&mut self, input: Input) {
        self.stats.inputs += 1;
        self.trace(|| format!("client <- {input:?}"));
        self.client.session.handle(input, Timestamp(self.now));
        self.check_never_shows_uncommitted();
        while let Some(command) = self.client.session.poll_command() {
            self.execute(command);
        }
        self.arm_timer();
    }

    /// Keeps the one timer at the session's deadline, as the driver does.
    pub(super) fn arm_timer(&mut self) {
        let deadline = self.client.session.poll_timeout();
        if deadline == self.client.timer {
            return;
        }
        self.client.timer = deadline;
        self.client.timer_generation += 1;
        let Some(at) = deadline else { return };
        // Hidden tabs throttle timers heavily; visible ones are a little
        // late too.
        let late = if self.client.hidden {
            self.between(0, 60_000)
        } else if self.punctual_timers || self.rng.chance(0.5) {
            0
        } else {
            self.between(0, 20)
        };
        let delay = (at.0 - self.now).max(0) + late;
        let (incarnation, generation) = (self.client.incarnation, self.client.timer_generation);
        self.at(
            delay,
            Action::TickDue {
                incarnation,
                generation,
            },
        );
    }

    pub(super) fn execute(&mut self, command: Command) {
        self.trace(|| format!("client -> {command:?}"));
        if self.knobs.record_commands {
            self.commands.push(format!("{} {command:?}", self.now - T0));
        }
        self.commands_since += 1;
        let incarnation = self.client.incarnation;
        match command {
            Command::OpenSocket(socket) => {
                self.pipes.insert(
                    (incarnation, socket),
                    Pipe {
                        conn: None,
                        cut: false,
                        closed_by_client: false,
                        to_client_last: self.now,
                        to_server_last: self.now,
                    },
                );
                if self.client.offline {
                    let delay = self.between(1, 50);
                    self.stats.failed_opens += 1;
                    self.control(socket, delay, Input::SocketClosed(socket));
                } else {
                    let delay = if self.stormy {
                        self.between(1, 4_000)
                    } else {
                        self.latency()
                    };
                    self.at(
                        delay,
                        Action::OpenReachesServer {
                            incarnation,
                            socket,
                        },
                    );
                }
            }
            Command::CloseSocket(socket) => {
                self.cut(incarnation, socket);
                if let Some(pipe) = self.pipes.get_mut(&(incarnation, socket)) {
                    pipe.closed_by_client = true;
                }
                // Browsers fire `close` after `close()`; the session must
                // shrug off news about a socket it gave up.
                if self.rng.chance(0.5) {
                    let delay = self.latency();
                    self.control(socket, delay, Input::SocketClosed(socket));
                }
            }
            Command::Send(socket, frame) => {
                let Some(pipe) = self.pipes.get(&(incarnation, socket)) else {
                    return;
                };
                if pipe.cut || pipe.conn.is_none() {
                    return;
                }
                let latency = self.latency();
                let pipe = self.pipes.get_mut(&(incarnation, socket)).expect("pipe");
                let at = (self.now + latency).max(pipe.to_server_last);
                pipe.to_server_last = at;
                let delay = at - self.now;
                self.at(
                    delay,
                    Action::FrameReachesServer {
                        incarnation,
                        socket,
                        frame,
                    },
                );
            }
            Command::FetchHistory {
                request,
                operation_id,
                after,
                limit,
            } => {
                self.stats.history_requests += 1;
                let fails_on_the_way =
                    self.client.offline || (self.stormy && self.rng.chance(self.p_history_fail));
                if fails_on_the_way {
                    self.stats.history_failures += 1;
                    let delay = self.latency();
                    self.reply(
                        delay,
                        Input::HistoryFailed {
                            request,
                            error: HistoryError::Transient("network error".into()),
                        },
                    );
                } else {
                    let delay = self.latency();
                    self.at(
                        delay,
                        Action::HistoryReachesServer {
                            incarnation,
                            request,
                            operation_id,
                            after,
                            limit,
                        },
                    );
                }
            }
            Command::Cancel(operation_id) => {
                self.stats.cancels += 1;
                let delay = self.latency();
                self.at(
                    delay,
                    Action::CancelReachesServer {
                        incarnation,
                        operation_id,
                    },
                );
            }
            Command::StartOperation { start, .. } => {
                self.stats.starts += 1;
                let fails_on_the_way =
                    self.client.offline || (self.stormy && self.rng.chance(self.p_history_fail));
                let delay = self.latency();
                if fails_on_the_way {
                    let error = ApiError {
                        code: "unreachable".into(),
                        message: "the server could not be reached".into(),
                    };
                    self.reply(delay, Input::StartFailed { start, error });
                } else {
                    self.at(delay, Action::StartReachesServer { incarnation, start });
                }
            }
            Command::StartFinished { start, outcome } => {
                if outcome.is_err() {
                    self.stats.failed_starts += 1;
                }
                if !self.client.starting.remove(&start) {
                    self.violation.get_or_insert_with(|| {
                        format!("start {start:?} finished twice, or was never asked for")
                    });
                }
            }
            Command::Persist(set) => self.client.persisted = set,
        }
    }

    /// An answer over HTTP (history, cancel): lost on reload.
    pub(super) fn reply(&mut self, delay: i64, input: Input) {
        let incarnation = self.client.incarnation;
        self.at(
            delay,
            Action::ToClient {
                incarnation,
                input,
                data_on: None,
            },
        );
    }

    /// Socket open / close news, in order with the socket's frames.
    pub(super) fn control(&mut self, socket: SocketId, delay: i64, input: Input) {
        let incarnation = self.client.incarnation;
        let at = match self.pipes.get_mut(&(incarnation, socket)) {
            Some(pipe) => {
                let at = (self.now + delay).max(pipe.to_client_last);
                pipe.to_client_last = at;
                at
            }
            None => self.now + delay,
        };
        self.at(
            at - self.now,
            Action::ToClient {
                incarnation,
                input,
                data_on: None,
            },
        );
    }

    /// Cuts a pipe: the server forgets the connection and nothing more gets
    /// through in either direction.
    pub(super) fn cut(&mut self, incarnation: u64, socket: SocketId) {
        if let Some(pipe) = self.pipes.get_mut(&(incarnation, socket)) {
            pipe.cut = true;
            if let Some(conn) = pipe.conn.take() {
                self.server.disconnect(conn);
            }
        }
    }

    pub(super) fn open_pipes(&self) -> Vec<SocketId> {
        self.pipes
            .iter()
            .filter(|((inc, _), pipe)| {
                *inc == self.client.incarnation && !pipe.cut && pipe.conn.is_some()
            })
            .map(|((_, socket), _)| *socket)
            .collect()
    }

    /// Drops a socket: a clean close the browser reports, or a silent
    /// half-open death only the watchdog can notice.
    pub(super) fn drop_socket(&mut self, socket: SocketId) {
        let incarnation = self.client.incarnation;
        self.cut(incarnation, socket);
        self.stats.socket_drops += 1;
        if self.rng.chance(0.3) {
            self.stats.silent_drops += 1;
            // Maybe the browser notices minutes later, maybe never.
            if self.rng.chance(0.5) {
                let delay = self.between(60_000, 600_000);
                self.control(socket, delay, Input::SocketClosed(socket));
            }
        } else {
            let delay = self.latency();
            self.control(socket, delay, Input::SocketClosed(socket));
        }
    }

    pub(super) fn reload(&mut self) {
        self.stats.reloads += 1;
        let old = self.client.incarnation;
        let sockets: Vec<SocketId> = self
            .pipes
            .keys()
            .filter(|(inc, _)| *inc == old)
            .map(|(_, s)| *s)
            .collect();
        for socket in sockets {
            self.cut(old, socket);
        }
        let seed = self.rng.next_u64();
        self.client.session = Session::new(self.options.clone(), seed);
        self.client.incarnation += 1;
        self.client.timer = None;
        // Whoever asked for a start went with the page.
        self.client.starting.clear();
        self.trace(|| "client reloads".to_owned());
        let set = self.client.persisted.clone();
        self.input(Input::Restore(set));
        if self.client.offline {
            self.input(Input::Offline);
        }
        if self.client.hidden {
            self.input(Input::Hidden);
        }
    }

    /// The person starts an operation; it is expected once the server's
    /// answer reaches this page.
    pub(super) fn track_new(&mut self) {
        self.client.next_start += 1;
        let start = StartId(self.client.next_start);
        self.client.starting.insert(start);
        let kind = if self.rng.chance(0.5) {
            "payment"
        } else {
            "vm"
        };
        self.input(Input::Start {
            start,
            request: StartRequest {
                kind: kind.into(),
                params: json!({ "kind": kind }),
            },
        });
    }
}
