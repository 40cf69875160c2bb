//! The reference server passes its own conformance command.

mod common;

use common::{Data, TestServer};
use optrail_server::auth::{Access, PublisherKey};
use optrail_server::conformance::{self, Target};
use optrail_server::token::TokenVerifier;

const KEY: &str = "conformance-publisher-key-0123456789";
const SECRET: &str = "conformance-token-secret-0123456789abcdef";

#[tokio::test]
async fn the_reference_server_passes_every_conformance_check() {
    let data = Data::new();
    let mut config = data.config();
    config.access = Access {
        demo: false,
        publisher_key: Some(PublisherKey::new(KEY).unwrap()),
        tokens: Some(TokenVerifier::new(SECRET.as_bytes()).unwrap()),
    };
    let server = TestServer::start(config).await;
    let target = Target {
        base: server.server.url(),
        publisher_key: KEY.into(),
        token_secret: Some(SECRET.into()),
    };
    let outcomes = conformance::run(&target, |outcome| println!("{outcome}")).await;
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| !matches!(o.verdict, Some(Ok(()))))
        .map(ToString::to_string)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.stop().await;
}
