//! Components render what the driver publishes and emit intents; they
//! decide nothing.

mod app;
mod connection;
mod operation_detail;
mod operation_list;
mod start_form;
mod timeline;

use std::rc::{Rc, Weak};

use leptos::prelude::*;
use optrail_core::{ApiError, EventLog, Input, OperationId};
use serde_json::Value;

use crate::config::ViewMode;
use crate::driver::{Driver, OperationHandle, Ui};

pub use app::App;

/// What the components need: the state to render and a way to the driver
/// for intents. `Copy`, so every closure can take it.
#[derive(Clone, Copy)]
pub struct ViewContext {
    pub ui: Ui,
    driver: StoredValue<Weak<Driver>, LocalStorage>,
    /// The operation shown in detail.
    pub selected: RwSignal<Option<OperationId>>,
    pub view: ViewMode,
    /// The widget's title and landmark name, leaked once per mounted
    /// widget so that the context stays `Copy` without a stored value.
    pub label: &'static str,
    pub start_form: bool,
    pub demo_controls: bool,
    pub hash_routing: bool,
}

impl ViewContext {
    pub fn new(driver: &Rc<Driver>) -> Self {
        let config = driver.config();
        Self {
            ui: driver.ui(),
            driver: StoredValue::new_local(Rc::downgrade(driver)),
            selected: RwSignal::new(None),
            view: config.view,
            label: Box::leak(config.label().into_boxed_str()),
            start_form: config.start_form,
            demo_controls: config.demo_controls,
            hash_routing: config.hash_routing,
        }
    }

    fn driver(&self) -> Option<Rc<Driver>> {
        self.driver.try_get_value().and_then(|weak| weak.upgrade())
    }

    fn input(&self, input: Input) {
        if let Some(driver) = self.driver() {
            driver.input(input);
        }
    }

    /// The reactive state of a tracked operation (reactive: `None` once it
    /// is forgotten).
    pub fn handle(&self, id: &OperationId) -> Option<OperationHandle> {
        self.ui
            .operations
            .with(|handles| handles.iter().find(|h| &h.id == id).cloned())
    }

    /// Whether the operation is tracked (reactive).
    pub fn tracks(&self, id: &OperationId) -> bool {
        self.ui
            .operations
            .with(|handles| handles.iter().any(|h| &h.id == id))
    }

    /// Lends an operation's log to `read`, if it is tracked.
    pub fn with_log(&self, id: &OperationId, read: &mut dyn FnMut(&EventLog)) {
        if let Some(driver) = self.driver() {
            driver.with_log(id, read);
        }
    }

    pub fn select(&self, id: Option<OperationId>) {
        self.selected.set(id);
    }

    /// Starts an operation and shows it; `done` gets `Err` with a
    /// sentence for the form.
    pub fn start(
        self,
        kind: String,
        params: Value,
        done: impl FnOnce(Result<(), String>) + 'static,
    ) {
        let Some(driver) = self.driver() else {
            return done(Err("The widget was closed.".to_owned()));
        };
        let shown = move |outcome: Result<OperationId, ApiError>| {
            done(
                outcome
                    .map(|id| self.select(Some(id)))
                    .map_err(|e| e.message),
            )
        };
        driver.start_operation(&kind, params, Box::new(shown));
    }

    pub fn cancel(&self, id: OperationId) {
        self.input(Input::Cancel(id));
    }

    /// Stops following an operation; the app deselects it once it is gone.
    pub fn forget(&self, id: OperationId) {
        self.input(Input::Forget(id));
    }

    /// Follows an operation known only by id (a deep link).
    pub fn track(&self, id: OperationId) {
        if let Some(driver) = self.driver() {
            driver.track(id);
        }
    }
}
