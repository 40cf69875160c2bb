//! One WebSocket connection of the live channel: many subscriptions over
//! one socket.
//!
//! A single task reads frames, drains the connection's push queue and
//! pings, one thing at a time. That is what orders `subscribed` before the
//! pushes: while a `subscribe` registers with the bus and reads the head,
//! pushes that race it wait in the queue and go out after the answer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures_util::SinkExt;
use optrail_core::follow::{Answer, Push};
use optrail_core::{ClientFrame, Following, OperationId, ServerFrame};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::AppState;
use crate::auth::Audience;
use crate::bus::{Overflow, Published, Subscriber};
use crate::client::SocketSlot;
use crate::error::Error;
use crate::operation_id::parse_operation_id;

/// Close code when the token a socket was opened with expires: the client
/// reconnects at once with a fresh token (application range, after HTTP's
/// 401 as other WebSocket protocols do). Every subscription of the socket
/// ends with it.
pub const TOKEN_EXPIRED: u16 = 4401;

/// The most frames one write takes when pushes queued up.
const MAX_BURST: usize = 64;

/// Who opened the socket: what it may subscribe to, and until when.
#[derive(Debug, Clone)]
pub struct Watcher {
    pub audience: Audience,
    pub expires_at: Option<SystemTime>,
}

/// Serves one upgraded socket until it closes, the client falls silent,
/// its queue overflows, its token expires or the server shuts down.
pub async fn serve(socket: WebSocket, app: AppState, watcher: Watcher, slot: SocketSlot) {
    let inbox = app.bus.connect(app.config.limits.connection_queue);
    let mut connection = Connection {
        app,
        socket,
        watcher,
        _slot: slot,
        subscriber: inbox.subscriber,
        overflow: inbox.overflow,
        following: Following::new(),
    };
    connection.run(inbox.queue).await;
}

struct Connection {
    app: AppState,
    socket: WebSocket,
    watcher: Watcher,
    /// Counts this socket against its client's cap while it lives.
    _slot: SocketSlot,
    subscriber: Subscriber,
    overflow: Arc<Overflow>,
    /// The subscribe rule's state: which operations this socket follows,
    /// and the heads their `subscribed` answers reported.
    following: Following,
}

/// What to do after handling one input.
enum Flow {
    Continue,
    /// The socket is gone: just stop.
    Stop,
    /// Say why, then stop.
    Close(u16, &'static str),
}

/// One input of the loop.
enum Input {
    Frame(Message),
    SocketGone,
    Push(Arc<Published>),
    PingDue,
    Silent,
    Overflowed,
    TokenExpired,
    ShuttingDown,
}

impl Connection {
    async fn run(&mut self, mut queue: mpsc::Receiver<Arc<Published>>) {
        let interval = self.app.config.ping_interval.max(Duration::from_millis(1));
        let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let silence = tokio::time::sleep(2 * interval);
        tokio::pin!(silence);
        let mut shutdown = self.app.shutdown.clone();
        let overflow = self.overflow.clone();
        let expiry = tokio::time::sleep_until(self.expiry());
        tokio::pin!(expiry);
        // First, how often this server pings: a client's dead-socket check
        // must not assume another interval.
        let hello = ServerFrame::Hello {
            ping_interval_ms: interval.as_millis() as u64,
        };
        if !matches!(self.send(&hello).await, Flow::Continue) {
            return;
        }
        loop {
            let input = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stopping| *stopping) => Input::ShuttingDown,
                () = overflow.wait() => Input::Overflowed,
                () = &mut expiry => Input::TokenExpired,
                frame = self.socket.recv() => match frame {
                    Some(Ok(message)) => Input::Frame(message),
                    Some(Err(_)) | None => Input::SocketGone,
                },
                Some(push) = queue.recv() => Input::Push(push),
                _ = ping.tick() => Input::PingDue,
                () = &mut silence => Input::Silent,
            };
            let flow = match input {
                Input::Frame(message) => {
                    silence.as_mut().reset(Instant::now() + 2 * interval);
                    self.received(message).await
                }
                Input::SocketGone => Flow::Stop,
                Input::Push(published) => self.push(published, &mut queue).await,
                Input::PingDue => self.send(&ServerFrame::Ping).await,
                Input::Silent => Flow::Close(close_code::AWAY, "no frame for two ping intervals"),
                Input::Overflowed => Flow::Close(
                    close_code::AGAIN,
                    "too far behind the events: reconnect and resubscribe",
                ),
                // A close, not an `error` frame: expiry is routine (tokens
                // live minutes), not a problem to show; the reason names
                // the error code for people reading traces.
                Input::TokenExpired => {
                    Flow::Close(TOKEN_EXPIRED, "token_expired: reconnect with a fresh token")
                }
                Input::ShuttingDown => Flow::Close(close_code::RESTART, "the server is stopping"),
            };
            match flow {
                Flow::Continue => {}
                Flow::Stop => break,
                Flow::Close(code, reason) => {
                    let frame = CloseFrame {
                        code,
                        reason: Utf8Bytes::from_static(reason),
                    };
                    // Bounded: a client that is not reading never takes it.
                    let close = self.socket.send(Message::Close(Some(frame)));
                    let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
                    break;
                }
            }
        }
    }

    /// When the socket's token expires; far away for a socket without one.
    fn expiry(&self) -> Instant {
        const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        let left = match self.watcher.expires_at {
            Some(at) => at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
            None => NEVER,
        };
        Instant::now() + left
    }

    async fn received(&mut self, message: Message) -> Flow {
        match message {
            Message::Text(text) => self.text(text.as_str()).await,
            Message::Binary(bytes) => {
                let limit = self.app.config.limits.frame_bytes;
                if bytes.len() > limit {
                    return self.too_large(bytes.len(), limit).await;
                }
                let error = Error::InvalidJson("frames must be JSON text, not binary".into());
                self.refuse(None, &error).await
            }
            Message::Ping(_) | Message::Pong(_) => Flow::Continue,
            Message::Close(_) => Flow::Stop,
        }
    }

    async fn text(&mut self, text: &str) -> Flow {
        let limit = self.app.config.limits.frame_bytes;
        if text.len() > limit {
            return self.too_large(text.len(), limit).await;
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                let error = Error::InvalidJson(format!("the frame is not JSON: {e}"));
                return self.refuse(None, &error).await;
            }
        };
        let operation = value
            .get("operationId")
            .and_then(Value::as_str)
            .map(OperationId::from);
        match value.get("type").and_then(Value::as_str) {
            Some("subscribe" | "unsubscribe" | "ping" | "pong") => {
                match serde_json::from_value::<ClientFrame>(value) {
                    Ok(frame) => self.frame(frame).await,
                    Err(e) => {
                        let error = Error::InvalidJson(format!("the frame is malformed: {e}"));
                        self.refuse(operation, &error).await
                    }
                }
            }
            // Unknown frame types are ignored, so clients may grow.
            Some(_) => Flow::Continue,
            None => {
                let error =
                    Error::InvalidJson("a frame is a JSON object with a string \"type\"".into());
                self.refuse(operation, &error).await
            }
        }
    }

    /// `frame_too_large`, then the socket closes.
    async fn too_large(&mut self, size: usize, limit: usize) -> Flow {
        match self
            .refuse(None, &Error::FrameTooLarge { size, limit })
            .await
        {
            Flow::Continue => Flow::Close(close_code::SIZE, "frame too large"),
            other => other,
        }
    }

    async fn frame(&mut self, frame: ClientFrame) -> Flow {
        match frame {
            ClientFrame::Subscribe { operation_id, .. } => self.subscribe(operation_id).await,
            ClientFrame::Unsubscribe { operation_id } => {
                self.end(&operation_id);
                self.send(&ServerFrame::Unsubscribed { operation_id }).await
            }
            ClientFrame::Ping => self.send(&ServerFrame::Pong).await,
            ClientFrame::Pong => Flow::Continue,
        }
    }

    /// [`Following`]'s rule, carried out: register first, then read the
    /// head, then answer. Every event committed after the head was read is
    /// pushed, because it is published after its commit, which is after the
    /// registration.
    async fn subscribe(&mut self, raw: OperationId) -> Flow {
        let id = match parse_operation_id(raw.as_str()) {
            Ok(id) => id,
            Err(error) => return self.refuse(Some(raw), &error).await,
        };
        let limit = self.app.config.limits.subscriptions_per_connection;
        if !self.following.contains(&id) && self.following.len() >= limit {
            return self
                .refuse(Some(id), &Error::TooManySubscriptions(limit))
                .await;
        }
        let registration = self.following.register(id.clone());
        self.app.bus.subscribe(&id, &self.subscriber);
        // With several instances (Postgres), this one relays the
        // operation's events from now on, before the head is read.
        self.app.store.watch(&id).await;
        // Another owner's operation reads as unknown: the answer is the
        // same `operation_not_found` either way.
        match self.app.store.head(&id, &self.watcher.audience).await {
            Ok(Some(head)) => {
                let finished = head.status.is_terminal();
                let answer =
                    self.following
                        .answer(&id, registration, head.epoch, head.head, finished);
                // This task handles one frame at a time: nothing replaces
                // the registration before its answer, but the rule says
                // what a stale one gets.
                if answer == Answer::Stale {
                    return Flow::Continue;
                }
                // Everything is in the history already. Off the bus now,
                // even if the socket fails below.
                let ended = answer == Answer::SubscribedThenEnded;
                if ended {
                    self.leave_bus(&id);
                }
                let subscribed = ServerFrame::Subscribed {
                    operation_id: id.clone(),
                    epoch: head.epoch,
                    head: head.head,
                };
                if let Flow::Stop = self.send(&subscribed).await {
                    return Flow::Stop;
                }
                if ended {
                    self.send(&ServerFrame::Unsubscribed { operation_id: id })
                        .await
                } else {
                    Flow::Continue
                }
            }
            Ok(None) => {
                self.end(&id);
                let error = Error::OperationNotFound(id.clone());
                self.refuse(Some(id), &error).await
            }
            Err(error) => {
                self.end(&id);
                self.refuse(Some(id), &error).await
            }
        }
    }

    /// Sends `first` and whatever else is already queued (up to
    /// [`MAX_BURST`] frames), then flushes once: a connection that fell
    /// behind catches up with one write instead of one per event. The
    /// frames are the bus's shared bytes, serialized once per event.
    async fn push(
        &mut self,
        first: Arc<Published>,
        queue: &mut mpsc::Receiver<Arc<Published>>,
    ) -> Flow {
        let mut frames = Vec::new();
        let mut next = Some(first);
        while let Some(published) = next.take() {
            self.frames_for(&published, &mut frames);
            if frames.len() < MAX_BURST {
                next = queue.try_recv().ok();
            }
        }
        self.send_all(frames).await
    }

    /// The frames one push adds, as [`Following::push`] decides: the event,
    /// unless the subscription is gone or the event was covered by the
    /// `subscribed` head, and after a terminal event the end of the
    /// subscription.
    fn frames_for(&mut self, published: &Published, frames: &mut Vec<Utf8Bytes>) {
        let id = &published.operation_id;
        let push = self
            .following
            .push(id, published.epoch, published.seq, published.terminal);
        if push == Push::Skip {
            return;
        }
        frames.push(published.frame.clone());
        if push == Push::SendThenEnd {
            self.leave_bus(id);
            let end = ServerFrame::Unsubscribed {
                operation_id: id.clone(),
            };
            frames.push(Utf8Bytes::from(end.to_json()));
        }
    }

    /// Stops following `id`: an `unsubscribe`, or a `subscribe` that failed.
    fn end(&mut self, id: &OperationId) {
        self.following.end(id);
        self.leave_bus(id);
    }

    /// Takes this socket off the bus for `id`, once it no longer follows it.
    fn leave_bus(&self, id: &OperationId) {
        self.app.bus.unsubscribe(id, self.subscriber.connection);
    }

    /// An `error` frame; the socket stays up.
    async fn refuse(&mut self, operation_id: Option<OperationId>, error: &Error) -> Flow {
        if let Error::Storage(_) | Error::Internal(_) = error {
            tracing::error!(error = %error, "a frame failed");
        }
        self.send(&ServerFrame::Error {
            operation_id,
            code: error.code().to_owned(),
            message: error.to_string(),
        })
        .await
    }

    async fn send(&mut self, frame: &ServerFrame) -> Flow {
        self.send_text(Utf8Bytes::from(frame.to_json())).await
    }

    /// Sends one frame. A client that does not take it within two ping
    /// intervals, or whose queue overflows meanwhile, is dropped without
    /// further ado: it is not reading, so a close frame would not get
    /// through either.
    async fn send_text(&mut self, text: Utf8Bytes) -> Flow {
        self.send_all(vec![text]).await
    }

    /// Sends frames in order with one flush at the end, under the same
    /// patience as [`Connection::send_text`].
    async fn send_all(&mut self, frames: Vec<Utf8Bytes>) -> Flow {
        if frames.is_empty() {
            return Flow::Continue;
        }
        let patience = 2 * self.app.config.ping_interval;
        let socket = &mut self.socket;
        let sending = async move {
            for frame in frames {
                socket.feed(Message::Text(frame)).await?;
            }
            socket.flush().await
        };
        tokio::select! {
            sent = tokio::time::timeout(patience, sending) => {
                match sent {
                    Ok(Ok(())) => Flow::Continue,
                    Ok(Err(_)) | Err(_) => Flow::Stop,
                }
            }
            () = self.overflow.wait() => Flow::Stop,
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for id in self.following.operations() {
            self.leave_bus(id);
        }
    }
}
