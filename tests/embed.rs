//! Embedding: several widgets on one page, and unmount leaving nothing.
#![cfg(target_arch = "wasm32")]

use std::rc::Rc;

use optrail::{Config, IoMode, mount};
use optrail_core::{Command, Input, OperationId, TrackedOperation};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use web_sys::HtmlElement;

wasm_bindgen_test_configure!(run_in_browser);

fn host() -> HtmlElement {
    let document = web_sys::window().unwrap().document().unwrap();
    let host: HtmlElement = document.create_element("div").unwrap().unchecked_into();
    document.body().unwrap().append_child(&host).unwrap();
    host
}

async fn settle() {
    gloo_timers::future::TimeoutFuture::new(30).await;
}

fn recorded(namespace: &str) -> Config {
    Config {
        io: IoMode::Recorded,
        namespace: namespace.into(),
        seed: 1,
        ..Config::default()
    }
}

fn listed(host: &HtmlElement) -> Vec<String> {
    let nodes = host.query_selector_all(".optrail-list-item").unwrap();
    (0..nodes.length())
        .filter_map(|i| {
            nodes
                .item(i)
                .unwrap()
                .unchecked_into::<web_sys::Element>()
                .get_attribute("data-operation-id")
        })
        .collect()
}

#[wasm_bindgen_test]
async fn two_widgets_on_one_page_stay_independent() {
    let (a_host, b_host) = (host(), host());
    let a = mount(a_host.clone(), recorded("e-a"));
    let b = mount(b_host.clone(), recorded("e-b"));
    a.track("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    b.track("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    settle().await;
    assert_eq!(listed(&a_host), ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]);
    assert_eq!(listed(&b_host), ["bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]);
    // Each keeps its own storage.
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let a_saved = storage.get_item("e-a:tracked").unwrap().unwrap();
    assert!(a_saved.contains("aaaa") && !a_saved.contains("bbbb"));
    // Unmounting one leaves the other working.
    a.unmount();
    b.driver().input(Input::Forget(OperationId(
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
    )));
    b.track("cccccccccccccccccccccccccccccccc");
    settle().await;
    assert_eq!(a_host.child_element_count(), 0);
    assert_eq!(listed(&b_host), ["cccccccccccccccccccccccccccccccc"]);
    b.unmount();
}

#[wasm_bindgen_test]
async fn unmount_leaves_no_socket_timer_or_listener_behind() {
    // Real browser I/O against a loopback port where nothing listens: the
    // widget opens a socket, fails, and schedules a reconnect timer.
    let config = Config {
        api_base: "http://127.0.0.1:9".into(),
        namespace: "e-leak".into(),
        seed: 3,
        ..Config::default()
    };
    let widget = mount(host(), config);
    widget.driver().input(Input::Track {
        operation: TrackedOperation::by_id(OperationId("dddddddddddddddddddddddddddddddd".into())),
        epoch: None,
    });
    gloo_timers::future::TimeoutFuture::new(300).await;
    let driver = Rc::downgrade(widget.driver());
    widget.unmount();
    settle().await;
    // The driver owns every socket sender, timer and event listener; it is
    // gone, so they are too (a Timeout or EventListener unregisters on drop).
    assert!(driver.upgrade().is_none(), "the driver outlived its widget");
}

#[wasm_bindgen_test]
async fn js_mount_rejects_bad_options_with_a_clear_message() {
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"view".into(), &"sideways".into()).unwrap();
    let error = optrail::js::mount_js(host(), options.into())
        .err()
        .expect("refused");
    let message = JsValue::from(error)
        .dyn_into::<js_sys::Error>()
        .unwrap()
        .message();
    // The offending value is quoted by hand, not with `{:?}`: the release
    // bundle is built with `-Zfmt-debug=none` (scripts/bundle.sh).
    assert_eq!(
        String::from(message),
        "optrail: option `view` must be \"full\" or \"compact\", not \"sideways\""
    );
}

#[wasm_bindgen_test]
async fn recorded_commands_show_one_socket_for_many_operations() {
    let widget = mount(host(), recorded("e-mux"));
    for id in [
        "11111111111111111111111111111111",
        "22222222222222222222222222222222",
    ] {
        widget.track(id);
    }
    let opens = widget
        .driver()
        .take_recorded()
        .into_iter()
        .filter(|c| matches!(c, Command::OpenSocket(_)))
        .count();
    assert_eq!(opens, 1);
    widget.unmount();
}

#[wasm_bindgen_test]
async fn js_widgets_without_a_namespace_keep_their_own_saved_operations() {
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let before = storage.get_item("optrail:tracked").unwrap();
    let (first, second) = (host(), host());
    first.set_id("payments-panel");
    second.set_id("machines-panel");
    let mut handles = Vec::new();
    for (element, id) in [
        (first, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        (second, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
    ] {
        let Ok(handle) = optrail::js::mount_js(element, js_sys::Object::new().into()) else {
            panic!("mounting with no options is refused");
        };
        handle.track(id);
        handles.push(handle);
    }
    settle().await;
    let saved = |key: &str| storage.get_item(key).unwrap().unwrap_or_default();
    let payments = saved("optrail-embed-payments-panel:tracked");
    let machines = saved("optrail-embed-machines-panel:tracked");
    assert!(
        payments.contains("aaaa") && !payments.contains("bbbb"),
        "{payments}"
    );
    assert!(
        machines.contains("bbbb") && !machines.contains("aaaa"),
        "{machines}"
    );
    assert_eq!(
        storage.get_item("optrail:tracked").unwrap(),
        before,
        "the standalone app's set is not touched"
    );
    for mut handle in handles {
        handle.unmount();
    }
}

#[wasm_bindgen_test]
async fn js_start_rejects_with_an_error_that_carries_a_code() {
    let options = js_sys::Object::new();
    // Nothing listens on the discard port: the POST cannot connect.
    js_sys::Reflect::set(&options, &"apiBase".into(), &"http://127.0.0.1:9".into()).unwrap();
    js_sys::Reflect::set(&options, &"namespace".into(), &"e-start".into()).unwrap();
    let mut widget = optrail::js::mount_js(host(), options.into()).expect("mounted");
    let promise = widget.start("payment".into(), JsValue::UNDEFINED);
    let error = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .expect_err("an unreachable server rejects the start");
    let code = js_sys::Reflect::get(&error, &"code".into()).unwrap();
    assert_eq!(code.as_string().as_deref(), Some("unreachable"));
    let message = String::from(error.dyn_into::<js_sys::Error>().unwrap().message());
    assert!(
        message.starts_with("Couldn't reach the server"),
        "{message}"
    );
    widget.unmount();
}
