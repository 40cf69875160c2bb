//! The checks' side of the wire: a publisher, viewers with minted tokens,
//! and a WebSocket client, all with timeouts so that a server that does
//! not answer fails a check instead of hanging it.

use std::time::{Duration, SystemTime};

use futures_util::{SinkExt, StreamExt};
use optrail_core::{Operation, OperationId, ServerFrame};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::auth::Scopes;
use crate::token::mint;

/// How long any one answer or frame may take.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The server under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` (no trailing slash), where `/operations` lives.
    pub base: String,
    pub publisher_key: String,
    /// Lets the checks mint viewer tokens; without it the authorization
    /// checks are skipped.
    pub token_secret: Option<String>,
}

/// An answer: status and body (JSON, or the text as a JSON string).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

pub struct Peer {
    http: reqwest::Client,
    target: Target,
}

impl Peer {
    pub fn new(target: &Target) -> Peer {
        Peer {
            http: reqwest::Client::builder()
                .timeout(PATIENCE)
                .build()
                .unwrap_or_default(),
            target: Target {
                base: target.base.trim_end_matches('/').to_owned(),
                ..target.clone()
            },
        }
    }

    pub fn can_mint(&self) -> bool {
        self.target.token_secret.is_some()
    }

    pub fn key(&self) -> &str {
        &self.target.publisher_key
    }

    /// A token for `owner`, valid for `lifetime`.
    pub fn token(&self, owner: &str, scopes: Scopes, lifetime: Duration) -> String {
        let secret = self.target.token_secret.as_deref().unwrap_or_default();
        mint(
            secret.as_bytes(),
            owner,
            scopes,
            SystemTime::now() + lifetime,
        )
    }

    pub fn viewer(&self, owner: &str) -> String {
        self.token(owner, Scopes::ALL, Duration::from_secs(600))
    }

    /// Any request; `bearer` is a token, the key, or none.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.target.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            body,
            headers,
        })
    }

    /// A request with a body as given, for malformed and oversize bodies.
    pub async fn raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: String,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.target.base);
        let mut request = self.http.post(&url).bearer_auth(self.key()).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            body,
            headers,
        })
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Result<Answer, String> {
        self.request(Method::GET, path, Some(bearer), None).await
    }

    /// A publisher-fed operation for `owner`.
    pub async fn create(&self, owner: &str, kind: &str) -> Result<Operation, String> {
        let body = json!({"kind": kind, "owner": owner, "params": {"conformance": true}});
        let answer = self
            .request(Method::POST, "/operations", Some(self.key()), Some(&body))
            .await?;
        if answer.status != 201 {
            return Err(format!(
                "POST /operations as the publisher answered {}: {}",
                answer.status, answer.body
            ));
        }
        serde_json::from_value(answer.body).map_err(|e| format!("the created operation: {e}"))
    }

    /// `POST /operations/{id}/events` as the publisher.
    pub async fn append(&self, id: &OperationId, events: Value) -> Result<Answer, String> {
        let body = json!({ "events": events });
        self.request(
            Method::POST,
            &format!("/operations/{id}/events"),
            Some(self.key()),
            Some(&body),
        )
        .await
    }

    /// The seqs an append answered, or why it did not.
    pub async fn append_ok(&self, id: &OperationId, events: Value) -> Result<Vec<u64>, String> {
        let answer = self.append(id, events).await?;
        if answer.status != 200 {
            return Err(format!(
                "append answered {}: {}",
                answer.status, answer.body
            ));
        }
        answer.body["events"]
            .as_array()
            .map(|events| events.iter().filter_map(|e| e["seq"].as_u64()).collect())
            .ok_or_else(|| format!("the append answer has no events: {}", answer.body))
    }

    /// Every event's seq and id, page by page, as `bearer` reads them.
    pub async fn history(
        &self,
        id: &OperationId,
        bearer: &str,
    ) -> Result<Vec<(u64, String)>, String> {
        let mut events = Vec::new();
        loop {
            let after = events.last().map_or(0, |(seq, _)| *seq);
            let answer = self
                .get(
                    &format!("/operations/{id}/events?after={after}&limit=1000"),
                    bearer,
                )
                .await?;
            if answer.status != 200 {
                return Err(format!(
                    "events answered {}: {}",
                    answer.status, answer.body
                ));
            }
            let page = answer.body["events"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for event in &page {
                let seq = event["seq"].as_u64().ok_or("an event without seq")?;
                events.push((seq, event["id"].as_str().unwrap_or_default().to_owned()));
            }
            if answer.body["hasMore"] != json!(true) || page.is_empty() {
                return Ok(events);
            }
        }
    }

    /// Opens `/ws` with `credential` as `access_token`.
    pub async fn socket(&self, credential: &str) -> Result<Socket, String> {
        let url = format!(
            "{}/ws?access_token={credential}",
            self.target.base.replacen("http", "ws", 1)
        );
        let request = url
            .into_client_request()
            .map_err(|e| format!("the WebSocket URL: {e}"))?;
        let connect = tokio_tungstenite::connect_async(request);
        let (stream, _) = tokio::time::timeout(PATIENCE, connect)
            .await
            .map_err(|_| "the WebSocket did not open".to_owned())?
            .map_err(|e| format!("the WebSocket did not open: {e}"))?;
        Ok(Socket { stream })
    }
}

/// A fresh owner no one else uses.
pub fn owner() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("conformance-{hex}")
}

pub struct Socket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    pub async fn send(&mut self, frame: Value) -> Result<(), String> {
        self.send_text(frame.to_string()).await
    }

    pub async fn send_text(&mut self, text: String) -> Result<(), String> {
        self.stream
            .send(Message::text(text))
            .await
            .map_err(|e| format!("sending a frame: {e}"))
    }

    pub async fn subscribe(&mut self, id: &OperationId, after: u64) -> Result<(), String> {
        self.send(json!({"type": "subscribe", "operationId": id, "after": after}))
            .await
    }

    /// The next frame other than a ping (answered), or why there is none.
    pub async fn next_frame(&mut self) -> Result<ServerFrame, String> {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .map_err(|_| format!("no frame within {PATIENCE:?}"))?;
            match message {
                Some(Ok(Message::Text(text))) => match ServerFrame::parse(text.as_str()) {
                    Ok(ServerFrame::Ping) => self.send(json!({"type": "pong"})).await?,
                    // Connection-level news (optional in the protocol): a
                    // client takes note and reads on.
                    Ok(ServerFrame::Hello { .. }) => {}
                    Ok(frame) => return Ok(frame),
                    Err(e) => return Err(format!("a frame that does not parse: {e}: {text}")),
                },
                Some(Ok(Message::Close(frame))) => {
                    return Err(format!("the socket closed ({frame:?})"));
                }
                Some(Err(e)) => return Err(format!("the socket failed: {e}")),
                None => return Err("the socket closed".into()),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The close code, skipping other frames.
    pub async fn closed(&mut self) -> Result<Option<u16>, String> {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .map_err(|_| format!("the socket stayed open for {PATIENCE:?}"))?;
            match message {
                Some(Ok(Message::Close(frame))) => return Ok(frame.map(|f| u16::from(f.code))),
                Some(Err(_)) | None => return Ok(None),
                Some(Ok(_)) => {}
            }
        }
    }
}
