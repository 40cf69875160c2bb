//! A TCP proxy on loopback that can cut every connection through it on
//! command, swallow chosen requests, or send new connections to another
//! upstream: the "network" (or the load balancer) between the browser and
//! the server.
//!
//! It forwards bytes untouched (HTTP, WebSocket upgrades and frames alike),
//! so the server sees the proxy's `Host` and the browser's `Origin`, which
//! agree: same origin. A cut drops both sides of every open connection at
//! once, wherever they are: mid-frame, mid-response, mid-handshake. A held
//! request ([`FaultyProxy::hold`]) is read and never forwarded nor answered:
//! its connection stays open and silent until the browser gives up on it,
//! as behind a stalled load balancer. [`FaultyProxy::switch_to`] moves new
//! connections to another server instance, as a load balancer does when it
//! drains one; the open ones stay where they are until cut.
//!
//! It reads the request line of each HTTP request (the browser neither
//! pipelines nor splits a request line on loopback), and stops reading once
//! a connection is upgraded to a WebSocket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

use crate::{Context, Result};

struct State {
    /// Where new connections go.
    upstream: SocketAddr,
    next: u64,
    open: HashMap<u64, AbortHandle>,
    websockets_opened: usize,
    connections_opened: usize,
    cuts: usize,
    /// Request lines seen (`GET /path HTTP/1.1`), in order, each with the
    /// upstream its connection went to.
    requests: Vec<(SocketAddr, String)>,
    /// Request-line prefixes to hold, and how many more of each.
    holds: Vec<(String, usize)>,
    /// Request lines held so far.
    held: Vec<String>,
}

impl State {
    fn new(upstream: SocketAddr) -> Self {
        Self {
            upstream,
            next: 0,
            open: HashMap::new(),
            websockets_opened: 0,
            connections_opened: 0,
            cuts: 0,
            requests: Vec::new(),
            holds: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Records a request line sent to `upstream`; whether it is to be held.
    fn request(&mut self, upstream: SocketAddr, line: &str) -> bool {
        self.requests.push((upstream, line.to_owned()));
        if line.starts_with("GET /ws") {
            self.websockets_opened += 1;
        }
        let hold = self
            .holds
            .iter_mut()
            .find(|(prefix, left)| *left > 0 && line.starts_with(prefix.as_str()));
        match hold {
            Some((_, left)) => {
                *left -= 1;
                self.held.push(line.to_owned());
                true
            }
            None => false,
        }
    }
}

/// A running proxy; dropping it closes everything.
pub struct FaultyProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
}

impl FaultyProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("the proxy cannot listen")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::new(upstream)));
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Self {
            addr,
            state,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT`: what the browser opens.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every open connection (both sides); how many there were.
    pub fn cut_all(&self) -> usize {
        let mut state = lock(&self.state);
        let open: Vec<AbortHandle> = state.open.drain().map(|(_, task)| task).collect();
        state.cuts += 1;
        for task in &open {
            task.abort();
        }
        open.len()
    }

    /// Sends every new connection to `upstream` from now on (another
    /// instance of the server on the same database); the open ones stay
    /// where they are until [`FaultyProxy::cut_all`] or their server ends
    /// them.
    pub fn switch_to(&self, upstream: SocketAddr) {
        lock(&self.state).upstream = upstream;
    }

    /// WebSocket handshakes (`GET /ws`) seen so far.
    pub fn websockets_opened(&self) -> usize {
        lock(&self.state).websockets_opened
    }

    /// Connections accepted so far.
    pub fn connections_opened(&self) -> usize {
        lock(&self.state).connections_opened
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        lock(&self.state).open.len()
    }

    /// Holds the next `times` requests whose request line starts with
    /// `prefix` (`"GET /ws"`, `"GET /operations/ID/events"`): they are
    /// swallowed, never forwarded, never answered.
    pub fn hold(&self, prefix: &str, times: usize) {
        lock(&self.state).holds.push((prefix.to_owned(), times));
    }

    /// The request lines held so far, in order.
    pub fn held(&self) -> Vec<String> {
        lock(&self.state).held.clone()
    }

    /// How many requests so far had a request line starting with `prefix`
    /// (held ones included).
    pub fn requests_starting_with(&self, prefix: &str) -> usize {
        lock(&self.state)
            .requests
            .iter()
            .filter(|(_, line)| line.starts_with(prefix))
            .count()
    }

    /// How many requests so far went to `upstream` with a request line
    /// starting with `prefix` (held ones included).
    pub fn requests_to(&self, upstream: SocketAddr, prefix: &str) -> usize {
        lock(&self.state)
            .requests
            .iter()
            .filter(|(to, line)| *to == upstream && line.starts_with(prefix))
            .count()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for (_, task) in lock(&self.state).open.drain() {
            task.abort();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        // Registered under the lock, so the task's own removal (which takes
        // the lock) always comes after its insertion.
        let mut guard = lock(&state);
        let id = guard.next;
        guard.next += 1;
        guard.connections_opened += 1;
        let task = tokio::spawn(forward(id, client, guard.upstream, state.clone()));
        guard.open.insert(id, task.abort_handle());
    }
}

async fn forward(id: u64, client: TcpStream, upstream: SocketAddr, state: Arc<Mutex<State>>) {
    let _ = client.set_nodelay(true);
    if let Ok(server) = TcpStream::connect(upstream).await {
        let _ = server.set_nodelay(true);
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let up = async {
            let mut buffer = vec![0u8; 16 * 1024];
            // Request lines are read until the connection is upgraded; once
            // a request is held, nothing more goes up.
            let (mut upgraded, mut holding) = (false, false);
            loop {
                let n = match client_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let chunk = &buffer[..n];
                if !upgraded && let Some(line) = request_line(chunk) {
                    holding |= lock(&state).request(upstream, line);
                    upgraded = is_websocket_upgrade(chunk);
                }
                if !holding && server_write.write_all(chunk).await.is_err() {
                    break;
                }
            }
            let _ = server_write.shutdown().await;
        };
        let down = async {
            let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            let _ = client_write.shutdown().await;
        };
        tokio::join!(up, down);
    }
    lock(&state).open.remove(&id);
}

/// The request line if `chunk` starts an HTTP request (`GET /x HTTP/1.1`).
fn request_line(chunk: &[u8]) -> Option<&str> {
    let end = chunk.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&chunk[..end]).ok()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let is_method = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    let is_http = parts.nth(1).is_some_and(|v| v.starts_with("HTTP/1."));
    (is_method && is_http).then_some(line)
}

fn is_websocket_upgrade(chunk: &[u8]) -> bool {
    String::from_utf8_lossy(chunk)
        .to_ascii_lowercase()
        .contains("upgrade: websocket")
}
