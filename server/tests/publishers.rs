//! Publishers feed operations; viewers see only their owner's: real HTTP,
//! WebSockets and SQLite, outside demo mode.

mod common;

use std::time::{Duration, SystemTime};

use common::{Data, TestServer, Ws};
use optrail_core::{Operation, OperationId, OperationList, Seq, ServerFrame, Status};
use optrail_server::auth::{Access, PublisherKey, Scopes};
use optrail_server::feed::AppendResponse;
use optrail_server::token::{TokenVerifier, mint};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

const KEY: &str = "publisher-key-for-tests-0123456789";
const SECRET: &[u8] = b"token-secret-for-tests-0123456789abcdef";

/// A server that only publishers and token holders can use.
async fn server() -> (Data, TestServer) {
    let data = Data::new();
    let mut config = data.config();
    config.access = Access {
        demo: false,
        publisher_key: Some(PublisherKey::new(KEY).unwrap()),
        tokens: Some(TokenVerifier::new(SECRET).unwrap()),
    };
    let server = TestServer::start(config).await;
    (data, server)
}

fn token(owner: &str, scopes: Scopes, lifetime: Duration) -> String {
    mint(SECRET, owner, scopes, SystemTime::now() + lifetime)
}

fn viewer(owner: &str) -> String {
    token(owner, Scopes::ALL, Duration::from_secs(600))
}

fn reader(owner: &str) -> String {
    token(
        owner,
        Scopes {
            read: true,
            cancel: false,
        },
        Duration::from_secs(600),
    )
}

trait Bearer {
    fn key(self) -> Self;
}

impl Bearer for RequestBuilder {
    fn key(self) -> Self {
        self.bearer_auth(KEY)
    }
}

async fn create(server: &TestServer, owner: &str, kind: &str) -> Operation {
    let response = server
        .http
        .post(server.url("/operations"))
        .key()
        .json(&json!({"kind": kind, "owner": owner, "params": {"env": "prod"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.unwrap()
}

async fn append(server: &TestServer, id: &OperationId, events: Value) -> (StatusCode, Value) {
    let response = server
        .http
        .post(server.url(&format!("/operations/{id}/events")))
        .key()
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

fn seqs(answer: &Value) -> Vec<u64> {
    let answer: AppendResponse = serde_json::from_value(answer.clone()).unwrap();
    answer.events.iter().map(|e| e.seq.0).collect()
}

fn ws_url(server: &TestServer, token: &str) -> String {
    format!("{}?access_token={token}", server.ws_url())
}

#[tokio::test]
async fn a_publisher_fed_operation_is_pushed_live_and_its_terminal_event_carries_the_status() {
    let (_data, server) = server().await;
    let op = create(&server, "alice", "deployment").await;
    assert_eq!(op.status, Status::NotStarted);
    assert_eq!(op.kind, "deployment");

    let mut ws = Ws::connect(&ws_url(&server, &viewer("alice")), None).await;
    ws.subscribe(&op.id, 0).await;
    assert!(matches!(
        ws.next_frame().await,
        ServerFrame::Subscribed { head: Seq(0), .. }
    ));

    let (status, answer) = append(
        &server,
        &op.id,
        json!([
            {"id": "e1", "type": "DeployStarted", "message": "Rolling out v42"},
            {"id": "e2", "type": "ProgressUpdated", "details": {"percentage": 50}},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(seqs(&answer), [1, 2]);
    assert_eq!(answer["status"], "Running");
    let (status, answer) = append(
        &server,
        &op.id,
        json!([{"id": "e3", "type": "DeployFinished", "status": "Succeeded"}]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(seqs(&answer), [3]);
    assert_eq!(answer["status"], "Succeeded");

    let mut pushed = Vec::new();
    loop {
        match ws.next_frame().await {
            ServerFrame::Event { event, .. } => pushed.push(event),
            ServerFrame::Unsubscribed { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let kinds: Vec<_> = pushed
        .iter()
        .map(|e| (e.kind.as_str(), e.seq, e.status))
        .collect();
    assert_eq!(
        kinds,
        [
            ("DeployStarted", Some(Seq(1)), None),
            ("ProgressUpdated", Some(Seq(2)), None),
            ("DeployFinished", Some(Seq(3)), Some(Status::Succeeded)),
        ]
    );
    let stored = server
        .http
        .get(server.url(&format!("/operations/{}", op.id)))
        .bearer_auth(viewer("alice"))
        .send()
        .await
        .unwrap()
        .json::<Operation>()
        .await
        .unwrap();
    assert_eq!(stored.status, Status::Succeeded);
    assert_eq!(stored.head, Seq(3));
    assert_eq!(stored.percent_complete, Some(50.0));
    server.stop().await;
}

#[tokio::test]
async fn a_retried_batch_gets_the_same_seqs_and_stores_nothing_twice() {
    let (_data, server) = server().await;
    let op = create(&server, "alice", "import").await;
    let batch = json!([{"id": "a", "type": "Step"}, {"id": "b", "type": "Step"}]);
    let (_, first) = append(&server, &op.id, batch.clone()).await;
    let (status, retry) = append(&server, &op.id, batch).await;
    assert_eq!(status, 200);
    assert_eq!(seqs(&first), [1, 2]);
    assert_eq!(seqs(&retry), [1, 2]);
    assert_eq!(retry["head"], 2);
    // A batch that overlaps what was stored only appends what is new.
    let (_, overlap) = append(
        &server,
        &op.id,
        json!([{"id": "b", "type": "Step"}, {"id": "c", "type": "Step"}]),
    )
    .await;
    assert_eq!(seqs(&overlap), [2, 3]);
    let events = server.all_events_with(&op.id, KEY).await;
    let ids: Vec<_> = events.iter().map(|e| e.id.0.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    common::assert_gap_free(&events);
    server.stop().await;
}

#[tokio::test]
async fn a_batch_is_atomic_and_nothing_is_appended_after_the_terminal_event() {
    let (_data, server) = server().await;
    let op = create(&server, "alice", "import").await;
    // The terminal event is not last: the whole batch is refused.
    let (status, answer) = append(
        &server,
        &op.id,
        json!([
            {"id": "x", "type": "Done", "status": "Failed"},
            {"id": "y", "type": "Late"},
        ]),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(answer["code"], "operation_finished");
    assert!(server.all_events_with(&op.id, KEY).await.is_empty());
    // An invalid event refuses the batch too, naming it.
    let (status, answer) = append(
        &server,
        &op.id,
        json!([{"id": "ok", "type": "Fine"}, {"id": "", "type": "Step"}]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(answer["code"], "invalid_event");
    assert!(answer["message"].as_str().unwrap().contains("events[1]"));
    let (status, answer) = append(
        &server,
        &op.id,
        json!([{"id": "r", "type": "Step", "status": "Running"}]),
    )
    .await;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (400, Some("invalid_event"))
    );

    let (_, ended) = append(
        &server,
        &op.id,
        json!([{"id": "x", "type": "Done", "status": "Failed"}]),
    )
    .await;
    assert_eq!(seqs(&ended), [1]);
    let (status, _) = append(&server, &op.id, json!([{"id": "z", "type": "Late"}])).await;
    assert_eq!(status, 409);
    // The retry of the batch that ended it still answers its seq.
    let (status, retry) = append(
        &server,
        &op.id,
        json!([{"id": "x", "type": "Done", "status": "Failed"}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(seqs(&retry), [1]);
    server.stop().await;
}

#[tokio::test]
async fn a_publisher_killed_mid_batch_commits_nothing_and_its_retry_commits_all() {
    let (_data, server) = server().await;
    let op = create(&server, "alice", "import").await;
    let body =
        json!({"events": [{"id": "a", "type": "Step"}, {"id": "b", "type": "Step"}]}).to_string();
    let mut tcp = tokio::net::TcpStream::connect(server.server.local_addr())
        .await
        .unwrap();
    let head = format!(
        "POST /operations/{}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        op.id,
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    drop(tcp);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.all_events_with(&op.id, KEY).await.is_empty());
    let (status, answer) = append(
        &server,
        &op.id,
        json!([{"id": "a", "type": "Step"}, {"id": "b", "type": "Step"}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(seqs(&answer), [1, 2]);
    server.stop().await;
}

#[tokio::test]
async fn an_append_whose_client_vanishes_after_sending_is_still_published() {
    let (_data, server) = server().await;
    let op = create(&server, "alice", "import").await;
    let mut ws = Ws::connect(&ws_url(&server, &viewer("alice")), None).await;
    ws.subscribe(&op.id, 0).await;
    assert!(matches!(
        ws.next_frame().await,
        ServerFrame::Subscribed { .. }
    ));
    let body = json!({"events": [{"id": "a", "type": "Step"}]}).to_string();
    let mut tcp = tokio::net::TcpStream::connect(server.server.local_addr())
        .await
        .unwrap();
    let request = format!(
        "POST /operations/{}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        op.id,
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    drop(tcp);
    // Whether the server read the request before noticing the close is a
    // race; what must hold is that a committed event is pushed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while server.all_events_with(&op.id, KEY).await.is_empty()
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !server.all_events_with(&op.id, KEY).await.is_empty() {
        match ws.next_frame().await {
            ServerFrame::Event { event, .. } => assert_eq!(event.seq, Some(Seq(1))),
            other => panic!("the committed event was not pushed: {other:?}"),
        }
    }
    server.stop().await;
}

/// The body of an error answer with the operation id blanked, to compare
/// "someone else's" with "does not exist".
async fn error_shape(
    server: &TestServer,
    request: RequestBuilder,
    id: &OperationId,
) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let _ = server;
    let body = response.text().await.unwrap();
    (status, body.replace(id.as_str(), "ID"))
}

/// The ids `GET path` lists for a viewer's token, or for the publisher.
async fn listed(server: &TestServer, path: &str, token: Option<&str>) -> Vec<OperationId> {
    let request = server.http.get(server.url(path));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request.key(),
    };
    let list: OperationList = request.send().await.unwrap().json().await.unwrap();
    list.operations.into_iter().map(|o| o.id).collect()
}

#[tokio::test]
async fn a_viewer_cannot_list_read_subscribe_to_or_cancel_another_owners_operation_nor_tell_it_exists()
 {
    let (_data, server) = server().await;
    let alices = create(&server, "alice", "payment").await;
    let bobs = create(&server, "bob", "payment").await;
    let unknown = OperationId("0123456789abcdef0123456789abcdef".into());
    let bob = viewer("bob");

    assert_eq!(
        listed(&server, "/operations", Some(&bob)).await,
        std::slice::from_ref(&bobs.id)
    );
    // Naming another owner changes nothing for a viewer.
    assert_eq!(
        listed(&server, "/operations?owner=alice", Some(&bob)).await,
        std::slice::from_ref(&bobs.id)
    );
    // A publisher sees everyone's, or one owner's.
    assert_eq!(listed(&server, "/operations", None).await.len(), 2);
    assert_eq!(
        listed(&server, "/operations?owner=alice", None).await,
        std::slice::from_ref(&alices.id)
    );

    for (method, path) in [
        ("GET", "/operations/{id}"),
        ("GET", "/operations/{id}/events"),
        ("DELETE", "/operations/{id}"),
    ] {
        let request = |id: &OperationId| {
            let url = server.url(&path.replace("{id}", id.as_str()));
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            server.http.request(method, url).bearer_auth(&bob)
        };
        let theirs = error_shape(&server, request(&alices.id), &alices.id).await;
        let nobodys = error_shape(&server, request(&unknown), &unknown).await;
        assert_eq!(theirs.0, 404, "{method} {path}: {theirs:?}");
        assert_eq!(theirs, nobodys, "{method} {path}");
    }

    let mut ws = Ws::connect(&ws_url(&server, &bob), None).await;
    ws.subscribe(&alices.id, 0).await;
    let theirs = ws.next_frame().await;
    ws.subscribe(&unknown, 0).await;
    let nobodys = ws.next_frame().await;
    let code = |frame: &ServerFrame| match frame {
        ServerFrame::Error { code, message, .. } => (
            code.clone(),
            message
                .replace(alices.id.as_str(), "ID")
                .replace(unknown.as_str(), "ID"),
        ),
        other => panic!("expected an error frame, got {other:?}"),
    };
    assert_eq!(code(&theirs), code(&nobodys));
    assert_eq!(code(&theirs).0, "operation_not_found");
    // Alice's events never reach Bob's socket either.
    append(&server, &alices.id, json!([{"id": "a", "type": "Step"}])).await;
    ws.subscribe(&bobs.id, 0).await;
    assert!(matches!(
        ws.next_frame().await,
        ServerFrame::Subscribed { .. }
    ));
    server.stop().await;
}

#[tokio::test]
async fn outside_demo_mode_every_request_needs_a_valid_credential_and_the_right_role() {
    let (_data, server) = server().await;
    let op = create(&server, "alice", "payment").await;
    let http = &server.http;
    let anonymous = http.get(server.url("/operations")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");
    let forged = mint(
        b"not the server's secret, but long enough",
        "alice",
        Scopes::ALL,
        SystemTime::now() + Duration::from_secs(60),
    );
    let response = http
        .get(server.url("/operations"))
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let wrong_key = http
        .post(server.url(&format!("/operations/{}/events", op.id)))
        .bearer_auth("not-the-publisher-key-at-all")
        .json(&json!({"events": [{"id": "a", "type": "Step"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_key.status(), 401);
    // A viewer may neither append nor start simulated runs.
    let appended = http
        .post(server.url(&format!("/operations/{}/events", op.id)))
        .bearer_auth(viewer("alice"))
        .json(&json!({"events": [{"id": "a", "type": "Step"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(appended.status(), 403);
    let started = http
        .post(server.url("/operations"))
        .bearer_auth(viewer("alice"))
        .json(&json!({"kind": "payment", "params": {"amount": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 403);
    // A read-only token cannot cancel, whatever the id.
    let canceled = http
        .delete(server.url(&format!("/operations/{}", op.id)))
        .bearer_auth(reader("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(canceled.status(), 403);
    // The WebSocket needs a token too.
    let refused = Ws::try_connect(&server.ws_url(), None).await;
    assert!(refused.is_err(), "an anonymous socket opened");
    server.stop().await;
}

#[tokio::test]
async fn a_viewers_cancel_reaches_the_publisher_as_one_cancel_requested_event() {
    let (_data, server) = server().await;
    let op = create(&server, "alice", "deployment").await;
    append(
        &server,
        &op.id,
        json!([{"id": "s", "type": "DeployStarted"}]),
    )
    .await;
    // The publisher follows its operation's stream with its key.
    let mut publisher = Ws::connect(&ws_url(&server, KEY), None).await;
    publisher.subscribe(&op.id, 1).await;
    assert!(matches!(
        publisher.next_frame().await,
        ServerFrame::Subscribed { head: Seq(1), .. }
    ));

    for _ in 0..2 {
        let response = server
            .http
            .delete(server.url(&format!("/operations/{}", op.id)))
            .bearer_auth(viewer("alice"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let answer: Operation = response.json().await.unwrap();
        assert_eq!(
            answer.status,
            Status::Running,
            "the publisher decides when it stops"
        );
        assert_eq!(answer.head, Seq(2), "asking twice is one request");
    }
    match publisher.next_frame().await {
        ServerFrame::Event { event, .. } => {
            assert_eq!(event.kind.as_str(), "CancelRequested");
            assert_eq!(event.seq, Some(Seq(2)));
        }
        other => panic!("expected the cancel request, got {other:?}"),
    }
    let (status, _) = append(
        &server,
        &op.id,
        json!([{"id": "c", "type": "DeployCanceled", "status": "Canceled"}]),
    )
    .await;
    assert_eq!(status, 200);
    let again = server
        .http
        .delete(server.url(&format!("/operations/{}", op.id)))
        .bearer_auth(viewer("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    server.stop().await;
}

#[tokio::test]
async fn a_token_that_expires_mid_stream_ends_the_socket_with_token_expired() {
    let (_data, server) = server().await;
    let op = create(&server, "alice", "deployment").await;
    // Two seconds: JWT expiry is in whole seconds.
    let short = token("alice", Scopes::ALL, Duration::from_secs(2));
    let mut ws = Ws::connect(&ws_url(&server, &short), None).await;
    ws.subscribe(&op.id, 0).await;
    assert!(matches!(
        ws.next_frame().await,
        ServerFrame::Subscribed { .. }
    ));
    // The socket closes with 4401, not an error frame: expiry is routine.
    assert_eq!(ws.closed().await, Some(optrail_server::live::TOKEN_EXPIRED));
    // Over HTTP the same token is now refused with the same code.
    let response = server
        .http
        .get(server.url("/operations"))
        .bearer_auth(&short)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "token_expired");
    server.stop().await;
}

#[tokio::test]
async fn a_publisher_create_is_idempotent_by_its_own_id() {
    let (_data, server) = server().await;
    let id = "00000000000000000000000000000042";
    let send = |owner: &str| {
        server
            .http
            .post(server.url("/operations"))
            .key()
            .json(&json!({"kind": "deployment", "owner": owner, "id": id}))
            .send()
    };
    assert_eq!(send("alice").await.unwrap().status(), 201);
    let retry = send("alice").await.unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.json::<Operation>().await.unwrap().id.as_str(), id);
    let clash = send("bob").await.unwrap();
    assert_eq!(clash.status(), 409);
    let body: Value = clash.json().await.unwrap();
    assert_eq!(body["code"], "operation_exists");
    server.stop().await;
}

#[tokio::test]
async fn a_socket_needs_the_read_scope_and_a_valid_token() {
    let (_data, server) = server().await;
    let cancel_only = token(
        "alice",
        Scopes {
            read: false,
            cancel: true,
        },
        Duration::from_secs(600),
    );
    for credential in [cancel_only.as_str(), "not-a-token"] {
        match Ws::try_connect(&ws_url(&server, credential), None).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert!(
                    [401, 403].contains(&response.status().as_u16()),
                    "{}",
                    response.status()
                );
            }
            other => panic!("the socket opened: {:?}", other.map(|_| ())),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_restart_leaves_publisher_fed_operations_to_their_publisher() {
    let data = Data::new();
    let mut config = data.config();
    config.access.publisher_key = Some(PublisherKey::new(KEY).unwrap());
    let server = TestServer::start(config.clone()).await;
    let op = create(&server, "demo", "deployment").await;
    append(&server, &op.id, json!([{"id": "a", "type": "Started"}])).await;
    server.stop().await;
    let server = TestServer::start(config).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = server.operation(&op.id).await;
    assert_eq!((after.status, after.head), (Status::Running, Seq(1)));
    let (status, answer) = append(
        &server,
        &op.id,
        json!([{"id": "b", "type": "Done", "status": "Succeeded"}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(seqs(&answer), [2]);
    server.stop().await;
}
