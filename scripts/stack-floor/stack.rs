//! The bare stack: a keyed list fed by one JSON GET and one WebSocket.

use futures::{SinkExt, StreamExt};
use gloo_net::http::Request;
use gloo_net::websocket::{Message, futures::WebSocket};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
pub fn start() {
    let lines = RwSignal::new(Vec::<(u64, String)>::new());
    let push = move |value: serde_json::Value| {
        let seq = value["seq"].as_u64().unwrap_or(0);
        lines.update(|list| list.push((seq, value["message"].to_string())));
    };
    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(response) = Request::get("/events?after=0").send().await
            && let Ok(page) = response.json::<Vec<serde_json::Value>>().await
        {
            page.into_iter().for_each(push);
        }
        let Ok(socket) = WebSocket::open("ws://127.0.0.1/ws") else {
            return;
        };
        let (mut sink, mut stream) = socket.split();
        let subscribe = serde_json::json!({"type": "subscribe", "after": 0});
        let _ = sink.send(Message::Text(subscribe.to_string())).await;
        while let Some(Ok(Message::Text(text))) = stream.next().await {
            if let Ok(value) = serde_json::from_str(&text) {
                push(value);
            }
        }
    });
    crate::mount_list(lines);
}
