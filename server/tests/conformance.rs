//! The reference server passes its own conformance command.

mod common;

use common::{Data, passes_conformance};

#[tokio::test]
async fn the_reference_server_passes_every_conformance_check() {
    passes_conformance(Data::new().config()).await;
}
