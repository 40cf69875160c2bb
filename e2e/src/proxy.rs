//! A TCP proxy on loopback that can cut every connection through it on
//! command: the "network" between the browser and the server.
//!
//! It forwards bytes untouched (HTTP, WebSocket upgrades and frames alike),
//! so the server sees the proxy's `Host` and the browser's `Origin`, which
//! agree: same origin. A cut drops both sides of every open connection at
//! once, wherever they are: mid-frame, mid-response, mid-handshake.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

use crate::{Context, Result};

#[derive(Default)]
struct State {
    next: u64,
    open: HashMap<u64, AbortHandle>,
    websockets_opened: usize,
    connections_opened: usize,
    cuts: usize,
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
        let state = Arc::new(Mutex::new(State::default()));
        let accept = tokio::spawn(accept_loop(listener, upstream, state.clone()));
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

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, state: Arc<Mutex<State>>) {
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
        let task = tokio::spawn(forward(id, client, upstream, state.clone()));
        guard.open.insert(id, task.abort_handle());
    }
}

async fn forward(id: u64, mut client: TcpStream, upstream: SocketAddr, state: Arc<Mutex<State>>) {
    let _ = client.set_nodelay(true);
    if let Ok(mut server) = TcpStream::connect(upstream).await {
        let _ = server.set_nodelay(true);
        let mut first = vec![0u8; 8192];
        if let Ok(n) = client.read(&mut first).await
            && n > 0
        {
            if first[..n].starts_with(b"GET /ws") {
                lock(&state).websockets_opened += 1;
            }
            if server.write_all(&first[..n]).await.is_ok() {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        }
    }
    lock(&state).open.remove(&id);
}
