//! The stack plus optrail-core's `Session`, driven by the thinnest adapter
//! that keeps all of it reachable: every `Input` can arrive (socket frames
//! and history pages from the network, the rest through an exported
//! `poke`), and every `Command` is carried out or handed to the page. No
//! storage, form, views beyond one keyed list, embed API or compat mode:
//! what this weighs over the bare stack is the session itself.

use std::cell::RefCell;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use gloo_net::http::Request;
use gloo_net::websocket::{Message, futures::WebSocket};
use leptos::prelude::*;
use optrail_core::{
    ApiError, Command, EventsPage, HistoryError, Input, Operation, OperationId, Session,
    SessionOptions, SocketId, StartId, StartRequest, Timestamp, TrackedOperation,
};
use wasm_bindgen::prelude::*;

type Lines = RwSignal<Vec<(u64, String)>>;

thread_local! {
    static SESSION: RefCell<Option<(Session, Lines)>> = const { RefCell::new(None) };
    static OUTGOING: RefCell<Option<mpsc::UnboundedSender<String>>> = const { RefCell::new(None) };
}

#[wasm_bindgen]
extern "C" {
    /// Hands the page the session's deadline (kind 0, fired back as
    /// `poke(7, "")`), the tracked ids to persist (kind 3), or a start's
    /// outcome (kind 4: the id, or the error's code).
    #[wasm_bindgen(js_name = setTimer)]
    fn set_timer(kind: u32, id: String, at: f64);
}

fn input(input: Input) {
    let commands = SESSION.with(|cell| {
        let mut cell = cell.borrow_mut();
        let (session, lines) = cell.as_mut().expect("started");
        session.handle(input, Timestamp(js_sys::Date::now() as i64));
        let commands: Vec<Command> = std::iter::from_fn(|| session.poll_command()).collect();
        let shown = session
            .operations()
            .flat_map(|view| {
                view.log
                    .iter()
                    .map(|e| (e.seq.map_or(0, |s| s.0), e.message.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        lines.set(shown);
        if let Some(at) = session.poll_timeout() {
            set_timer(0, String::new(), at.0 as f64);
        }
        commands
    });
    commands.into_iter().for_each(execute);
}

fn execute(command: Command) {
    match command {
        Command::OpenSocket(id) => wasm_bindgen_futures::spawn_local(socket(id)),
        Command::CloseSocket(_) => OUTGOING.with(|o| drop(o.borrow_mut().take())),
        Command::Send(_, frame) => OUTGOING.with(|o| {
            if let Some(o) = &*o.borrow() {
                let _ = o.unbounded_send(frame.to_json());
            }
        }),
        Command::FetchHistory {
            request,
            operation_id,
            after,
            limit,
        } => wasm_bindgen_futures::spawn_local(async move {
            let url = format!(
                "/operations/{}/events?after={}&limit={limit}",
                operation_id.as_str(),
                after.0
            );
            let error = |e: String| Input::HistoryFailed {
                request,
                error: HistoryError::Transient(e),
            };
            input(match Request::get(&url).send().await {
                Ok(r) if r.status() == 404 => Input::HistoryFailed {
                    request,
                    error: HistoryError::NotFound,
                },
                Ok(r) => match r.json::<EventsPage>().await {
                    Ok(page) => Input::HistoryReceived { request, page },
                    Err(e) => error(e.to_string()),
                },
                Err(e) => error(e.to_string()),
            });
        }),
        Command::Cancel(id) => wasm_bindgen_futures::spawn_local(async move {
            let url = format!("/operations/{}", id.as_str());
            input(match Request::delete(&url).send().await {
                Ok(_) => Input::CancelAccepted(id),
                Err(e) => Input::CancelFailed {
                    operation_id: id,
                    message: e.to_string(),
                },
            });
        }),
        Command::StartOperation { start, request } => {
            wasm_bindgen_futures::spawn_local(async move {
                let failed = |code: String| Input::StartFailed {
                    start,
                    error: ApiError {
                        message: code.clone(),
                        code,
                    },
                };
                let post = Request::post("/operations").json(&request);
                input(match post {
                    Ok(post) => match post.send().await {
                        Ok(r) if r.ok() => match r.json::<Operation>().await {
                            Ok(operation) => Input::Started { start, operation },
                            Err(e) => failed(e.to_string()),
                        },
                        Ok(r) => failed(r.status().to_string()),
                        Err(e) => failed(e.to_string()),
                    },
                    Err(e) => failed(e.to_string()),
                });
            });
        }
        Command::StartFinished { outcome, .. } => match outcome {
            Ok(id) => set_timer(4, id.0, 0.0),
            Err(error) => set_timer(4, error.code, 0.0),
        },
        Command::Persist(operations) => {
            let ids: Vec<&str> = operations.iter().map(|o| o.id.as_str()).collect();
            set_timer(3, ids.join(","), 0.0);
        }
    }
}

/// Every input that does not come from the network.
#[wasm_bindgen]
pub fn poke(code: u32, text: String) {
    let id = OperationId(text.clone());
    input(match code {
        0 => Input::Track {
            operation: TrackedOperation::by_id(id),
            epoch: None,
        },
        1 => Input::Restore(vec![TrackedOperation::by_id(id)]),
        2 => Input::Forget(id),
        3 => Input::Cancel(id),
        4 => Input::CancelFailed {
            operation_id: id,
            message: text,
        },
        5 => Input::Online,
        6 => Input::Offline,
        7 => Input::Tick,
        8 => Input::Visible,
        9 => Input::Start {
            start: StartId(js_sys::Date::now() as u64),
            request: StartRequest {
                kind: text,
                params: serde_json::Value::Null,
            },
        },
        _ => Input::Hidden,
    });
}

async fn socket(id: SocketId) {
    let Ok(socket) = WebSocket::open("/ws") else {
        input(Input::SocketClosed(id));
        return;
    };
    let (sender, mut outgoing) = mpsc::unbounded();
    OUTGOING.with(|o| *o.borrow_mut() = Some(sender));
    input(Input::SocketOpened(id));
    let (mut sink, mut stream) = socket.split();
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(text) = outgoing.next().await {
            let _ = sink.send(Message::Text(text)).await;
        }
    });
    while let Some(Ok(Message::Text(text))) = stream.next().await {
        input(Input::FrameReceived(id, text));
    }
    input(Input::SocketClosed(id));
}

#[wasm_bindgen(start)]
pub fn start() {
    let lines: Lines = RwSignal::new(Vec::new());
    let seed = js_sys::Math::random().to_bits();
    SESSION.with(|cell| {
        *cell.borrow_mut() = Some((Session::new(SessionOptions::default(), seed), lines))
    });
    crate::mount_list(lines);
}
