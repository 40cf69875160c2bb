//! The HTTP endpoints of PROTOCOL.md, and every bad input they must refuse
//! with a JSON `{code, message}`.

mod common;

use std::time::Duration;

use common::{Data, TestServer, Ws, assert_gap_free, shape, successful_payment};
use optrail_core::{ApiError, EventsPage, Operation, OperationList, Seq, Status};
use serde_json::{Value, json};

async fn server() -> (Data, TestServer) {
    let data = Data::new();
    let server = TestServer::start(data.config()).await;
    (data, server)
}

/// Asserts status and code, and that the message is a sentence.
async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> ApiError {
    assert_eq!(response.status(), status);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let error: ApiError = response.json().await.expect("a JSON error body");
    assert_eq!(error.code, code, "{}", error.message);
    assert!(!error.message.is_empty());
    error
}

#[tokio::test]
async fn start_answers_202_with_location_epoch_and_head() {
    let (_data, server) = server().await;
    let response = server
        .http
        .post(server.url("/operations"))
        .json(&json!({"kind": "payment", "params": {"amount": 12.5, "stepMs": 0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let operation: Operation = response.json().await.unwrap();
    assert_eq!(location, format!("/operations/{}", operation.id));
    assert_eq!(operation.id.as_str().len(), 32);
    assert!(
        operation
            .id
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(operation.kind, "payment");
    assert_eq!(operation.status, Status::NotStarted);
    assert_eq!(operation.epoch.0, 1);
    assert_eq!(operation.head, Seq::ZERO);
    assert_eq!(operation.params["amount"], json!(12.5));
    assert_eq!(operation.params["currency"], json!("EUR"));
    server.stop().await;
}

#[tokio::test]
async fn a_payment_runs_every_stage_with_gap_free_seqs_worker_ids_and_quoted_description() {
    let (_data, server) = server().await;
    let description = r#"Beans <script>alert("x")</script> & "more""#;
    let operation = server
        .start_operation(
            "payment",
            json!({"amount": 3, "description": description, "stepMs": 1, "steps": 4, "failureRate": 0}),
        )
        .await;
    let finished = server.finished(&operation.id).await;
    assert_eq!(finished.status, Status::Succeeded);
    assert_eq!(finished.percent_complete, Some(100.0));
    let events = server.all_events(&operation.id).await;
    assert_gap_free(&events);
    assert_eq!(shape(&events), successful_payment(4));
    assert_eq!(finished.head, Seq(events.len() as u64));
    for event in &events {
        assert!(event.details["workerId"].is_string(), "{event:?}");
        assert!(!event.message.is_empty());
    }
    assert!(
        events[0].message.contains(description),
        "{}",
        events[0].message
    );
    server.stop().await;
}

#[tokio::test]
async fn a_vm_runs_its_provisioning_stages_and_quotes_its_name() {
    let (_data, server) = server().await;
    let operation = server
        .start_operation(
            "vm",
            json!({"name": "<web-1>", "size": "large", "stepMs": 1, "steps": 2, "failureRate": 0}),
        )
        .await;
    assert_eq!(
        server.finished(&operation.id).await.status,
        Status::Succeeded
    );
    let events = server.all_events(&operation.id).await;
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ValidationStarted",
            "ResourcesAllocated",
            "DiskProvisioning",
            "ProgressUpdated",
            "ProgressUpdated",
            "Booting",
            "VmProvisioned"
        ]
    );
    assert!(events.iter().all(|e| e.message.contains("\"<web-1>\"")));
    server.stop().await;
}

#[tokio::test]
async fn a_forced_failure_ends_failed_with_a_reason() {
    let (_data, server) = server().await;
    for kind in ["payment", "vm"] {
        let operation = server
            .start_operation(
                kind,
                json!({"amount": 1, "name": "db", "fail": true, "stepMs": 1}),
            )
            .await;
        assert_eq!(server.finished(&operation.id).await.status, Status::Failed);
        let events = server.all_events(&operation.id).await;
        assert_gap_free(&events);
        let last = events.last().unwrap();
        assert!(
            ["PaymentFailed", "VmProvisioningFailed"].contains(&last.kind.as_str()),
            "{last:?}"
        );
        assert!(
            last.details["reason"]
                .as_str()
                .is_some_and(|r| !r.is_empty())
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn events_are_paged_after_a_seq_with_has_more_and_a_clamped_limit() {
    let (_data, server) = server().await;
    let operation = server
        .start_operation(
            "payment",
            json!({"amount": 1, "stepMs": 0, "steps": 30, "failureRate": 0}),
        )
        .await;
    server.finished(&operation.id).await;
    let first = server.events_page(&operation.id, 0, 5).await;
    assert_eq!(first.operation_id, operation.id);
    assert_eq!(first.kind, "payment");
    assert_eq!(first.epoch.0, 1);
    assert_eq!(first.head, Seq(34));
    assert_eq!(first.status, Status::Succeeded);
    assert!(first.has_more);
    let seqs: Vec<_> = first.events.iter().map(|e| e.seq.unwrap().0).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let middle = server.events_page(&operation.id, 30, 5).await;
    let seqs: Vec<_> = middle.events.iter().map(|e| e.seq.unwrap().0).collect();
    assert_eq!(seqs, [31, 32, 33, 34]);
    assert!(!middle.has_more);
    let beyond = server.events_page(&operation.id, 1000, 5).await;
    assert!(beyond.events.is_empty() && !beyond.has_more);
    // Above the maximum is clamped, not refused; no limit means 100.
    let clamped = server.events_page(&operation.id, 0, 1_000_000).await;
    assert_eq!(clamped.events.len(), 34);
    let response = server
        .http
        .get(server.url(&format!("/operations/{}/events", operation.id)))
        .send()
        .await
        .unwrap();
    let page: EventsPage = response.json().await.unwrap();
    assert_eq!(page.events.len(), 34);
    server.stop().await;
}

#[tokio::test]
async fn the_list_is_newest_first_and_pages_with_next_before() {
    let (_data, server) = server().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let operation = server
            .start_operation("vm", json!({"name": "a", "stepMs": 60000}))
            .await;
        ids.push(operation.id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut url = server.url("/operations?limit=2");
        if let Some(cursor) = &before {
            url.push_str(&format!("&before={cursor}"));
        }
        let list: OperationList = server
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(list.operations.len() <= 2);
        seen.extend(list.operations.into_iter().map(|o| o.id));
        match list.next_before {
            Some(cursor) => before = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let all: OperationList = server
        .http
        .get(server.url("/operations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.operations.len(), 5);
    assert!(all.next_before.is_none());
    server.stop().await;
}

#[tokio::test]
async fn cancel_appends_operation_canceled_stops_the_run_and_a_second_cancel_is_409() {
    let (_data, server) = server().await;
    let operation = server
        .start_operation(
            "payment",
            json!({"amount": 1, "stepMs": 100, "steps": 50, "failureRate": 0}),
        )
        .await;
    server.reached(&operation.id, 2).await;
    let url = server.url(&format!("/operations/{}", operation.id));
    let response = server.http.delete(&url).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let canceled: Operation = response.json().await.unwrap();
    assert_eq!(canceled.status, Status::Canceled);
    let events = server.all_events(&operation.id).await;
    assert_gap_free(&events);
    let last = events.last().unwrap();
    assert_eq!(last.kind.as_str(), "OperationCanceled");
    assert_eq!(last.seq, Some(canceled.head));
    assert!(last.details["workerId"].is_string());
    // The run stopped: nothing follows the terminal event.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.all_events(&operation.id).await.len(), events.len());
    let again = server.http.delete(&url).send().await.unwrap();
    expect_error(again, 409, "operation_finished").await;
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_operation_is_404_operation_not_found_everywhere() {
    let (_data, server) = server().await;
    let id = "0123456789abcdef0123456789abcdef";
    for (method, path) in [
        ("GET", format!("/operations/{id}")),
        ("GET", format!("/operations/{id}/events")),
        ("DELETE", format!("/operations/{id}")),
    ] {
        let request = server
            .http
            .request(method.parse().unwrap(), server.url(&path));
        expect_error(request.send().await.unwrap(), 404, "operation_not_found").await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_malformed_operation_id_is_400_invalid_operation_id() {
    let (_data, server) = server().await;
    for id in [
        "xyz",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcdef0",
        "%00%ff",
        "..%2F..%2Fetc",
    ] {
        let response = server
            .http
            .get(server.url(&format!("/operations/{id}/events")))
            .send()
            .await
            .unwrap();
        expect_error(response, 400, "invalid_operation_id").await;
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_after_limit_and_before_values_are_400_invalid_query() {
    let (_data, server) = server().await;
    let operation = server
        .start_operation("vm", json!({"name": "a", "stepMs": 60000}))
        .await;
    let events = format!("/operations/{}/events", operation.id);
    for query in [
        "after=-1",
        "after=abc",
        "after=1.5",
        "after=",
        "after=99999999999999999999999",
        "after=9223372036854775808",
        "limit=0",
        "limit=-5",
        "limit=ten",
        "after=%FF",
    ] {
        let response = server
            .http
            .get(server.url(&format!("{events}?{query}")))
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 400, "invalid_query").await;
        assert!(
            error.message.contains("after")
                || error.message.contains("limit")
                || error.message.contains("query"),
            "{query}: {}",
            error.message
        );
    }
    for query in ["before=0", "before=x", "limit=0"] {
        let response = server
            .http
            .get(server.url(&format!("/operations?{query}")))
            .send()
            .await
            .unwrap();
        expect_error(response, 400, "invalid_query").await;
    }
    // The largest seq there can be is fine: an empty page.
    let page = server.events_page(&operation.id, i64::MAX as u64, 10).await;
    assert!(page.events.is_empty() && !page.has_more);
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_invalid_json_unsupported_media_type_or_unknown_kind() {
    let (_data, server) = server().await;
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = server.http.post(server.url("/operations")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let json = Some("application/json");
    expect_error(post("{not json", json).await.unwrap(), 400, "invalid_json").await;
    expect_error(post("", json).await.unwrap(), 400, "invalid_json").await;
    expect_error(post("[1,2]", json).await.unwrap(), 400, "invalid_json").await;
    expect_error(
        post(r#"{"params":{}}"#, json).await.unwrap(),
        400,
        "invalid_json",
    )
    .await;
    expect_error(
        post(r#"{"kind":"vm"}"#, None).await.unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    expect_error(
        post(r#"{"kind":"vm"}"#, Some("text/plain")).await.unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    expect_error(
        post(r#"{"kind":"teleport","params":{}}"#, json)
            .await
            .unwrap(),
        400,
        "unknown_kind",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn params_out_of_range_are_400_invalid_params_naming_the_field() {
    let (_data, server) = server().await;
    let cases: [(&str, Value, &str); 8] = [
        ("payment", json!({}), "amount"),
        ("payment", json!({"amount": 0}), "amount"),
        (
            "payment",
            json!({"amount": 1, "description": "é".repeat(201)}),
            "description",
        ),
        ("payment", json!({"amount": 1, "stepMs": -1}), "stepMs"),
        ("payment", json!({"amount": 1, "steps": 100_001}), "steps"),
        (
            "payment",
            json!({"amount": 1, "failureRate": 1.5}),
            "failureRate",
        ),
        ("vm", json!({"name": ""}), "name"),
        ("vm", json!("web"), "params"),
    ];
    for (kind, params, field) in cases {
        let response = server
            .http
            .post(server.url("/operations"))
            .json(&json!({"kind": kind, "params": params}))
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 400, "invalid_params").await;
        assert!(error.message.contains(field), "{}", error.message);
    }
    // Exactly 200 characters is fine.
    server
        .start_operation(
            "payment",
            json!({"amount": 1, "description": "é".repeat(200), "stepMs": 60000}),
        )
        .await;
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_body_is_413_body_too_large() {
    let (_data, server) = server().await;
    let description = "x".repeat(17 * 1024);
    let response = server
        .http
        .post(server.url("/operations"))
        .json(&json!({"kind": "payment", "params": {"amount": 1, "description": description}}))
        .send()
        .await
        .unwrap();
    expect_error(response, 413, "body_too_large").await;
    server.stop().await;
}

#[tokio::test]
async fn starting_too_often_is_429_rate_limited_with_retry_after() {
    let data = Data::new();
    let mut config = data.config();
    config.limits.starts_per_minute = 3;
    let server = TestServer::start(config).await;
    for _ in 0..3 {
        server
            .start_operation("vm", json!({"name": "a", "stepMs": 60000}))
            .await;
    }
    let response = server
        .http
        .post(server.url("/operations"))
        .json(&json!({"kind": "vm", "params": {"name": "a"}}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    expect_error(response, 429, "rate_limited").await;
    // Refused requests do not count: an invalid one is still a 400.
    let response = server
        .http
        .post(server.url("/operations"))
        .json(&json!({"kind": "vm", "params": {}}))
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_params").await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors_and_healthz_says_ok() {
    let (_data, server) = server().await;
    let response = server
        .http
        .get(server.url("/nowhere"))
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    let response = server
        .http
        .put(server.url("/operations"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("allow"));
    expect_error(response, 405, "method_not_allowed").await;
    let response = server.http.get(server.url("/ws")).send().await.unwrap();
    expect_error(response, 426, "upgrade_required").await;
    let response = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    server.stop().await;
}

#[tokio::test]
async fn the_static_dir_serves_the_widget_with_index_html_for_unknown_paths() {
    let data = Data::new();
    let site = data.dir.path().join("dist");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(
        site.join("index.html"),
        "<!doctype html><title>optrail</title>",
    )
    .unwrap();
    std::fs::write(site.join("app.js"), "console.log(1)").unwrap();
    let mut config = data.config();
    config.static_dir = Some(site);
    let server = TestServer::start(config).await;
    let index = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.text().await.unwrap().contains("<title>optrail"));
    let asset = server.http.get(server.url("/app.js")).send().await.unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(asset.text().await.unwrap(), "console.log(1)");
    let deep = server
        .http
        .get(server.url("/some/deep/link"))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), 200);
    assert!(deep.text().await.unwrap().contains("<title>optrail"));
    // The API still answers in JSON.
    let list = server
        .http
        .get(server.url("/operations"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn demo_pages_placeholder_tokens_count_as_anonymous_when_no_token_can_be_verified() {
    let data = Data::new();
    let server = TestServer::start(data.config()).await;
    let operation = server
        .start_operation("vm", json!({"name": "a", "stepMs": 0, "failureRate": 0}))
        .await;
    let listed = server
        .http
        .get(server.url("/operations"))
        .bearer_auth("demo-token")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let list: OperationList = listed.json().await.unwrap();
    assert!(list.operations.iter().any(|o| o.id == operation.id));
    let ws = format!("{}?access_token=demo-token", server.ws_url());
    let mut ws = Ws::connect(&ws, None).await;
    ws.subscribe(&operation.id, 0).await;
    assert!(matches!(
        ws.next_frame().await,
        optrail_core::ServerFrame::Subscribed { .. }
    ));
    server.stop().await;
}
