//! The JavaScript face of the widget: `mount(element, options)` returning a
//! handle, and the `<optrail-operations>` custom element for pages that
//! write no code at all.

use std::rc::Rc;

use js_sys::{Function, Reflect};
use optrail_core::{EventType, Status};
use wasm_bindgen::prelude::*;

use crate::config::{Config, ViewMode};
use crate::embed::{Widget, mount as mount_widget};

/// A mounted widget, for JavaScript. Only [`WidgetHandle::unmount`] removes
/// it: a host that drops the handle (or lets the garbage collector take it)
/// keeps its widget, which [`MOUNTED`] holds.
#[wasm_bindgen]
pub struct WidgetHandle {
    widget: Option<Rc<Widget>>,
}

thread_local! {
    /// Every widget mounted from JavaScript and not yet unmounted.
    static MOUNTED: std::cell::RefCell<Vec<Rc<Widget>>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[wasm_bindgen]
impl WidgetHandle {
    /// Follows an operation by id.
    pub fn track(&self, operation_id: &str) {
        if let Some(widget) = &self.widget {
            widget.track(operation_id);
        }
    }

    /// Starts an operation; resolves to its id. Rejects with an `Error`
    /// whose `message` is a sentence for the person and whose `code` is
    /// the server's (`invalid_params`, …) or the widget's own
    /// (`unreachable`, `timeout`, `bad_response`), so a host can tell why.
    pub fn start(&self, kind: String, params: JsValue) -> js_sys::Promise {
        let Some(widget) = &self.widget else {
            return js_sys::Promise::reject(&JsError::new("optrail: unmounted").into());
        };
        let params = match to_json(&params) {
            Ok(params) => params,
            Err(error) => return js_sys::Promise::reject(&error),
        };
        let driver = Rc::clone(widget.driver());
        js_sys::Promise::new(&mut |resolve, reject| {
            let settle =
                move |outcome: Result<optrail_core::OperationId, optrail_core::ApiError>| {
                    let _ = match outcome {
                        Ok(id) => resolve.call1(&JsValue::NULL, &JsValue::from_str(id.as_str())),
                        Err(failure) => {
                            let error = js_sys::Error::new(&failure.message);
                            let _ = Reflect::set(&error, &"code".into(), &failure.code.into());
                            reject.call1(&JsValue::NULL, &error)
                        }
                    };
                };
            driver.start_operation(&kind, params.clone(), Box::new(settle));
        })
    }

    /// Removes the widget; no listener, timer or socket stays behind.
    pub fn unmount(&mut self) {
        if let Some(widget) = self.widget.take() {
            MOUNTED.with(|mounted| mounted.borrow_mut().retain(|w| !Rc::ptr_eq(w, &widget)));
        }
    }
}

fn to_json(value: &JsValue) -> Result<serde_json::Value, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    let text = js_sys::JSON::stringify(value)?
        .as_string()
        .unwrap_or_default();
    serde_json::from_str(&text)
        .map_err(|_| JsError::new("optrail: params must be plain JSON data").into())
}

fn get(options: &JsValue, key: &str) -> Option<JsValue> {
    let value = Reflect::get(options, &JsValue::from_str(key)).ok()?;
    (!value.is_undefined() && !value.is_null()).then_some(value)
}

fn string(options: &JsValue, key: &str) -> Result<Option<String>, JsError> {
    match get(options, key) {
        None => Ok(None),
        Some(value) => value
            .as_string()
            .map(Some)
            .ok_or_else(|| JsError::new(&format!("optrail: option `{key}` must be a string"))),
    }
}

/// A positive number of milliseconds.
fn millis(options: &JsValue, key: &str) -> Result<Option<u64>, JsError> {
    match get(options, key) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .filter(|ms| ms.is_finite() && *ms >= 1.0)
            .map(|ms| Some(ms as u64))
            .ok_or_else(|| {
                JsError::new(&format!(
                    "optrail: option `{key}` must be a positive number of milliseconds"
                ))
            }),
    }
}

fn flag(options: &JsValue, key: &str) -> Option<bool> {
    get(options, key).map(|v| v.is_truthy())
}

fn status(name: &str) -> Result<Status, JsError> {
    name.parse::<Status>()
        .ok()
        .filter(|status| status.is_terminal())
        .ok_or_else(|| {
            JsError::new(&format!(
                "optrail: terminal status \"{name}\" must be \"Succeeded\", \"Failed\" or \"Canceled\""
            ))
        })
}

/// Reads the options object (see README: "Embedding") into a [`Config`].
pub fn config_from(options: &JsValue) -> Result<Config, JsError> {
    let api_base = string(options, "apiBase")?.unwrap_or_default();
    let mut config = if flag(options, "compat") == Some(true) {
        Config::compat(&api_base)
    } else {
        // No namespace yet: without the option, `mount_js` derives one
        // from the element, so that embedded widgets never share the
        // standalone app's saved operations, or each other's.
        Config {
            api_base,
            ..Config::default()
        }
    };
    if let Some(urls) = get(options, "urls") {
        let slots = [
            ("start", &mut config.urls.start),
            ("events", &mut config.urls.events),
            ("cancel", &mut config.urls.cancel),
            ("websocket", &mut config.urls.websocket),
        ];
        for (key, slot) in slots {
            if let Some(template) = string(&urls, key)? {
                *slot = template;
            }
        }
    }
    if let Some(terminal) = get(options, "terminal") {
        let mut rules = Vec::new();
        for key in js_sys::Object::keys(&terminal.clone().into()).iter() {
            let kind = key.as_string().unwrap_or_default();
            let name = string(&terminal, &kind)?.unwrap_or_default();
            rules.push((EventType(kind), status(&name)?));
        }
        config.session.interpretation.terminal = rules;
    }
    if let Some(path) = string(options, "progressPath")? {
        config.session.interpretation.progress_path = path;
    }
    if let Some(ms) = millis(options, "requestTimeoutMs")? {
        config.session.request_timeout_ms = ms;
    }
    if let Some(ms) = millis(options, "connectTimeoutMs")? {
        config.session.connect_timeout_ms = ms;
    }
    if let Some(label) = string(options, "label")? {
        config.label = label;
    }
    if let Some(namespace) = string(options, "namespace")? {
        config.namespace = namespace;
    }
    config.view = match string(options, "view")?.as_deref() {
        None | Some("full") => ViewMode::Full,
        Some("compact") => ViewMode::Compact,
        Some(other) => {
            return Err(JsError::new(&format!(
                "optrail: option `view` must be \"full\" or \"compact\", not \"{other}\""
            )));
        }
    };
    config.start_form = flag(options, "startForm").unwrap_or(false);
    config.demo_controls = flag(options, "demoControls").unwrap_or(false);
    config.hash_routing = flag(options, "hashRouting").unwrap_or(false);
    if let Some(getter) = get(options, "token") {
        let getter: Function = getter
            .dyn_into()
            .map_err(|_| JsError::new("optrail: option `token` must be a function"))?;
        config.auth_token = Some(Rc::new(move || {
            getter
                .call0(&JsValue::NULL)
                .ok()
                .and_then(|v| v.as_string())
        }));
    }
    Ok(config)
}

/// The storage namespace of a widget mounted without one: named after its
/// element's id, else after its tag (`optrail-operations` for the custom
/// element), never the standalone app's `optrail`. A second widget that
/// would get the same name gets `-2` (then `-3`, …): in mount order, which
/// a page repeats on every load, so each keeps its own set across reloads.
fn default_namespace(element: &web_sys::HtmlElement) -> String {
    let id = element.id();
    let name = if id.is_empty() {
        element.local_name()
    } else {
        id
    };
    let base = format!("optrail-embed-{name}");
    let mut namespace = base.clone();
    let mut n = 1;
    while namespace_taken(&namespace) {
        n += 1;
        namespace = format!("{base}-{n}");
    }
    namespace
}

/// Whether a mounted widget already saves under `namespace`.
fn namespace_taken(namespace: &str) -> bool {
    MOUNTED.with(|mounted| {
        mounted
            .borrow()
            .iter()
            .any(|w| w.driver().config().namespace == namespace)
    })
}

/// Mounts a widget into `element`. See README: "Embedding".
#[wasm_bindgen(js_name = mount)]
pub fn mount_js(element: web_sys::HtmlElement, options: JsValue) -> Result<WidgetHandle, JsError> {
    let mut config = config_from(&options)?;
    // An explicit namespace is the host's choice: widgets given the same
    // one follow one set (and merge what they save).
    if config.namespace.is_empty() {
        config.namespace = default_namespace(&element);
    }
    let widget = Rc::new(mount_widget(element, config));
    MOUNTED.with(|mounted| mounted.borrow_mut().push(Rc::clone(&widget)));
    Ok(WidgetHandle {
        widget: Some(widget),
    })
}

#[wasm_bindgen(inline_js = r#"
export function define_element(mount) {
  if (customElements.get('optrail-operations')) return;
  class OptrailOperations extends HTMLElement {
    connectedCallback() {
      if (this._optrail) return;
      const attr = (name) => this.getAttribute(name) ?? undefined;
      try {
        this._optrail = mount(this, {
          apiBase: attr('api-base') ?? '',
          namespace: attr('namespace'),
          label: attr('label'),
          view: attr('view'),
          compat: this.hasAttribute('compat'),
          startForm: this.hasAttribute('start-form'),
        });
      } catch (error) {
        this.textContent = String(error.message ?? error);
        return;
      }
      for (const id of (attr('track') ?? '').split(/[\s,]+/).filter(Boolean)) {
        this._optrail.track(id);
      }
    }
    disconnectedCallback() {
      if (this._optrail) { this._optrail.unmount(); this._optrail = undefined; }
    }
  }
  customElements.define('optrail-operations', OptrailOperations);
}
"#)]
extern "C" {
    fn define_element(mount: &Function);
}

/// Registers `<optrail-operations>`; called once when the wasm loads.
pub fn register_custom_element() {
    let mount =
        Closure::<dyn Fn(web_sys::HtmlElement, JsValue) -> Result<WidgetHandle, JsValue>>::new(
            |element, options| mount_js(element, options).map_err(JsValue::from),
        );
    define_element(mount.as_ref().unchecked_ref());
    // Lives as long as the page: the element may be created at any time.
    mount.forget();
}
