//! What a server exposed beyond loopback also needs: CORS from the origin
//! allow-list, the Host allow-list, security headers, JSON 404s for API
//! paths, retention, and per-client limits that hold behind a proxy.

mod common;

use std::time::Duration;

use common::{Data, PATIENCE, TestServer, Ws};
use optrail_server::Durability;
use serde_json::{Value, json};

#[tokio::test]
async fn cors_preflight_answers_listed_origins_and_gives_others_nothing() {
    let data = Data::new();
    let mut config = data.config();
    config.allowed_origins = vec!["http://app.example".into()];
    let server = TestServer::start(config).await;
    let preflight = |origin: &'static str| {
        server
            .http
            .request(reqwest::Method::OPTIONS, server.url("/operations/0123"))
            .header("origin", origin)
            .header("access-control-request-method", "DELETE")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("http://app.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], "http://app.example");
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("DELETE"), "{methods}");
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    assert!(headers.get("access-control-allow-credentials").is_none());

    let refused = preflight("http://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // A real cross-origin call from a listed origin may read Location.
    let started = server
        .http
        .post(server.url("/operations"))
        .header("origin", "http://app.example")
        .json(&json!({"kind": "payment", "params": {"amount": 1, "stepMs": 0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    assert_eq!(
        started.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let exposed = started.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.to_ascii_lowercase().contains("location"),
        "{exposed}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_host_name_not_on_the_list_is_refused_and_ip_literals_and_listed_names_pass() {
    let data = Data::new();
    let mut config = data.config();
    config.allowed_hosts = vec!["optrail.test".into()];
    let server = TestServer::start(config).await;
    let get = |host: &'static str| {
        server
            .http
            .get(server.url("/healthz"))
            .header("host", host)
            .send()
    };
    let rebound = get("evil.example:8080").await.unwrap();
    assert_eq!(rebound.status(), 421);
    let body: Value = rebound.json().await.unwrap();
    assert_eq!(body["code"], "host_forbidden");
    assert_eq!(get("optrail.test").await.unwrap().status(), 200);
    assert_eq!(get("localhost:1234").await.unwrap().status(), 200);
    // reqwest's own Host is the loopback address.
    let direct = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn pages_carry_the_csp_the_widget_runs_under_and_unknown_api_paths_are_json_404s() {
    let data = Data::new();
    let site = data.dir.path().join("dist");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(
        site.join("index.html"),
        "<!doctype html><title>optrail</title><script type=\"module\">import init from '/optrail.js'; await init();</script>",
    )
    .unwrap();
    let mut config = data.config();
    config.static_dir = Some(site);
    let server = TestServer::start(config).await;

    let page = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-"),
        "{csp}"
    );
    assert!(csp.contains("object-src 'none'"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");

    for path in ["/operations/0123/nope", "/ws/extra", "/healthz/x"] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{path}");
    }
    let program = server
        .http
        .get(server.url("/no/such/api"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(program.status(), 404);
    assert_eq!(program.headers()["x-content-type-options"], "nosniff");
    // A person's deep link still gets the page.
    let deep = server
        .http
        .get(server.url("/some/deep/link"))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), 200);
    assert!(deep.text().await.unwrap().contains("<title>optrail"));
    server.stop().await;
}

#[tokio::test]
async fn finished_operations_past_their_retention_are_removed_and_unfinished_ones_kept() {
    let data = Data::new();
    let mut config = data.config();
    config.retention.max_age = Some(Duration::from_millis(300));
    config.retention.every = Duration::from_millis(50);
    let server = TestServer::start(config).await;
    let quick = server
        .start_operation(
            "payment",
            json!({"amount": 1, "stepMs": 0, "failureRate": 0}),
        )
        .await;
    let slow = server
        .start_operation("vm", json!({"name": "slow", "stepMs": 60000}))
        .await;
    server.finished(&quick.id).await;
    tokio::time::timeout(PATIENCE, async {
        loop {
            let response = server
                .http
                .get(server.url(&format!("/operations/{}", quick.id)))
                .send()
                .await
                .unwrap();
            if response.status() == 404 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the finished operation is removed");
    let events = server
        .http
        .get(server.url(&format!("/operations/{}/events", quick.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 404);
    // Older than the age, but running: kept.
    assert_eq!(server.operation(&slow.id).await.id, slow.id);
    server.stop().await;
}

#[tokio::test]
async fn a_client_may_hold_only_so_many_sockets_and_a_closed_one_frees_its_place() {
    let data = Data::new();
    let mut config = data.config();
    config.limits.sockets_per_client = 2;
    let server = TestServer::start(config).await;
    let first = server.ws().await;
    let _second = server.ws().await;
    let third = Ws::try_connect(&server.ws_url(), None).await;
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
        }
        other => panic!("a third socket was not refused: {:?}", other.map(|_| ())),
    }
    drop(first);
    tokio::time::timeout(PATIENCE, async {
        loop {
            if Ws::try_connect(&server.ws_url(), None).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a closed socket frees its place");
    server.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_start_limit_counts_the_forwarded_client_and_its_ipv6_64() {
    let data = Data::new();
    let mut config = data.config();
    config.limits.starts_per_minute = 2;
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let server = TestServer::start(config).await;
    let start = |client: &'static str| {
        server
            .http
            .post(server.url("/operations"))
            .header("x-forwarded-for", client)
            .json(&json!({"kind": "payment", "params": {"amount": 1, "stepMs": 0}}))
            .send()
    };
    for client in ["203.0.113.1", "203.0.113.1"] {
        assert_eq!(start(client).await.unwrap().status(), 202);
    }
    assert_eq!(start("203.0.113.1").await.unwrap().status(), 429);
    assert_eq!(start("203.0.113.2").await.unwrap().status(), 202);
    // Two addresses of one IPv6 /64 are one client.
    for client in ["2001:db8:0:1::1", "2001:db8:0:1::2"] {
        assert_eq!(start(client).await.unwrap().status(), 202);
    }
    assert_eq!(start("2001:db8:0:1::3").await.unwrap().status(), 429);
    assert_eq!(start("2001:db8:0:2::1").await.unwrap().status(), 202);
    server.stop().await;
}

#[tokio::test]
async fn commits_wait_for_the_disk_unless_normal_is_chosen() {
    let data = Data::new();
    let server = TestServer::start(data.config()).await;
    let store = &server.server.state().store;
    assert_eq!(store.durability().await.unwrap(), Durability::Full);
    server.stop().await;
    let mut config = data.config();
    config.durability = Durability::Normal;
    let server = TestServer::start(config).await;
    let store = &server.server.state().store;
    assert_eq!(store.durability().await.unwrap(), Durability::Normal);
    server.stop().await;
}
