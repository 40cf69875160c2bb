//! The one live socket: opening it when something needs it, closing it
//! when nothing does, the reconnect backoff, the connect deadline and the
//! watchdog that notices a socket dead before the browser does.

use super::Session;
use super::api::{Command, ConnectionState, SocketId};
use super::operation::{OperationState, Subscription};
use crate::protocol::OperationId;
use crate::timestamp::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Socket {
    Closed,
    Connecting {
        id: SocketId,
        /// When it was asked for: the connect deadline counts from here.
        since: Timestamp,
    },
    Open {
        id: SocketId,
        opened_at: Timestamp,
        last_frame_at: Timestamp,
    },
    Waiting {
        until: Timestamp,
    },
}

impl Session {
    pub(super) fn wants_socket(&self) -> bool {
        self.operations.iter().any(OperationState::needs_live)
    }

    /// Opens a socket if one is needed and none is open, connecting or
    /// scheduled. The only place that opens sockets.
    pub(super) fn ensure_socket(&mut self) {
        if self.socket == Socket::Closed && !self.offline && self.wants_socket() {
            self.next_socket += 1;
            let id = SocketId(self.next_socket);
            self.socket = Socket::Connecting {
                id,
                since: self.now,
            };
            self.commands.push_back(Command::OpenSocket(id));
        }
    }

    pub(super) fn close_socket_if_idle(&mut self) {
        if self.wants_socket() {
            return;
        }
        match self.socket {
            Socket::Open { id, .. } | Socket::Connecting { id, .. } => {
                self.commands.push_back(Command::CloseSocket(id));
                self.socket = Socket::Closed;
                self.forget_subscriptions();
            }
            Socket::Waiting { .. } => self.socket = Socket::Closed,
            Socket::Closed => {}
        }
    }

    pub(super) fn current_socket(&self) -> Option<SocketId> {
        match self.socket {
            Socket::Connecting { id, .. } | Socket::Open { id, .. } => Some(id),
            _ => None,
        }
    }

    pub(super) fn socket_opened(&mut self, id: SocketId) {
        if !matches!(self.socket, Socket::Connecting { id: current, .. } if current == id) {
            // An old socket or one we gave up on: close it, it is not ours.
            self.commands.push_back(Command::CloseSocket(id));
            return;
        }
        self.socket = Socket::Open {
            id,
            opened_at: self.now,
            last_frame_at: self.now,
        };
        // Until this server says otherwise.
        self.server_ping_ms = None;
        self.unsubscribing.clear();
        let ids: Vec<OperationId> = self
            .operations
            .iter()
            .filter(|op| op.needs_live())
            .map(|op| op.id().clone())
            .collect();
        for op in ids {
            self.subscribe(&op);
        }
    }

    pub(super) fn socket_closed(&mut self, id: SocketId) {
        if self.current_socket() == Some(id) {
            self.lost_socket(self.now);
        }
    }

    /// Every subscription ended with the socket it was on.
    fn forget_subscriptions(&mut self) {
        self.unsubscribing.clear();
        for op in &mut self.operations {
            op.subscription = Subscription::None;
        }
    }

    /// The current socket is gone (closed, declared dead, or never opened).
    /// The only path that schedules a reconnect. `alive_until` is the last
    /// instant it was known to work: a socket that worked for a while was
    /// healthy, however it ended, and the next reconnect starts from the
    /// shortest delay.
    fn lost_socket(&mut self, alive_until: Timestamp) {
        if let Socket::Open { opened_at, .. } = self.socket
            && alive_until.0 - opened_at.0 >= self.options.healthy_after_ms as i64
        {
            self.backoff.reset();
        }
        self.forget_subscriptions();
        self.socket = Socket::Closed;
        if self.offline || !self.wants_socket() {
            return;
        }
        let delay = self.backoff.next_delay_ms(&mut self.rng);
        self.socket = Socket::Waiting {
            until: Timestamp(self.now.0 + delay as i64),
        };
    }

    fn watchdog_limit(&self) -> i64 {
        let interval = self
            .server_ping_ms
            .unwrap_or(self.options.server_ping_interval_ms);
        2 * interval as i64
    }

    /// When the socket next needs attention: the connect deadline, the
    /// watchdog, or the reconnect.
    pub(super) fn socket_deadline(&self) -> Option<Timestamp> {
        match self.socket {
            Socket::Closed => None,
            Socket::Connecting { since, .. } => {
                Some(Timestamp(since.0 + self.options.connect_timeout_ms as i64))
            }
            Socket::Open { last_frame_at, .. } => {
                Some(Timestamp(last_frame_at.0 + self.watchdog_limit()))
            }
            Socket::Waiting { until } => Some(until),
        }
    }

    /// Does whatever the socket's deadline says is due. Runs on every
    /// input, so a dead socket is noticed whenever anything happens at all,
    /// not only when a (possibly throttled) tick arrives.
    pub(super) fn socket_due(&mut self, proof_of_life: bool) {
        let now = self.now;
        match self.socket {
            // A frame on the current socket is proof of life, not a reason
            // to declare it dead because it came late.
            Socket::Open {
                id, last_frame_at, ..
            } if !proof_of_life && now.0 - last_frame_at.0 >= self.watchdog_limit() => {
                self.commands.push_back(Command::CloseSocket(id));
                self.lost_socket(last_frame_at);
            }
            Socket::Connecting { id, since }
                if now.0 - since.0 >= self.options.connect_timeout_ms as i64 =>
            {
                // Given up: a late open of this socket is closed as not ours.
                self.commands.push_back(Command::CloseSocket(id));
                self.lost_socket(now);
            }
            Socket::Waiting { until } if now >= until => {
                self.socket = Socket::Closed;
                self.ensure_socket();
            }
            _ => {}
        }
    }

    pub(super) fn went_online(&mut self) {
        self.offline = false;
        if matches!(self.socket, Socket::Waiting { .. } | Socket::Closed) {
            self.socket = Socket::Closed;
            self.ensure_socket();
        }
    }

    pub(super) fn went_offline(&mut self) {
        self.offline = true;
        if matches!(self.socket, Socket::Waiting { .. }) {
            self.socket = Socket::Closed;
        }
    }

    /// The live channel as a person would describe it.
    pub fn connection(&self) -> ConnectionState {
        match self.socket {
            _ if self.offline && !matches!(self.socket, Socket::Open { .. }) => {
                if self.wants_socket() {
                    ConnectionState::Offline
                } else {
                    ConnectionState::Idle
                }
            }
            Socket::Closed => ConnectionState::Idle,
            Socket::Connecting { .. } => ConnectionState::Connecting,
            Socket::Open { .. } => ConnectionState::Live,
            Socket::Waiting { until } => ConnectionState::Reconnecting { at: until },
        }
    }
}
