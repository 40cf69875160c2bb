//! Mounting the widget into a page: the standalone app, a host's element
//! from Rust, or (see `js.rs`) from JavaScript.

use std::any::Any;
use std::rc::Rc;

use leptos::prelude::*;
use optrail_core::OperationId;
use wasm_bindgen::prelude::*;

use crate::components::{App, WidgetCtx};
use crate::config::Config;
use crate::driver::{Driver, Ui};

/// A mounted widget. Dropping it (or [`Widget::unmount`]) removes its DOM
/// and leaves no listener, timer or socket behind.
pub struct Widget {
    driver: Rc<Driver>,
    view: Option<Box<dyn Any>>,
    owner: Option<Owner>,
}

impl Widget {
    pub fn driver(&self) -> &Rc<Driver> {
        &self.driver
    }

    /// Follows an operation by id.
    pub fn track(&self, id: &str) {
        self.driver.track(OperationId(id.to_owned()));
    }

    pub fn unmount(self) {}
}

impl Drop for Widget {
    fn drop(&mut self) {
        self.view.take();
        self.driver.shutdown();
        self.owner.take();
    }
}

/// Mounts a widget into `element` (appended as its last child).
pub fn mount(element: web_sys::HtmlElement, config: Config) -> Widget {
    let owner = Owner::new();
    let (driver, view) = owner.with(|| {
        let driver = Driver::launch(config, Ui::new());
        let ctx = WidgetCtx::new(&driver);
        let handle = leptos::mount::mount_to(element, move || view! { <App ctx=ctx /> });
        (driver, Box::new(handle) as Box<dyn Any>)
    });
    Widget {
        driver,
        view: Some(view),
        owner: Some(owner),
    }
}

/// Runs when the wasm loads: mounts the standalone app where the page asks
/// for it (`<div data-optrail-app>`); host pages mount explicitly instead.
#[wasm_bindgen(start)]
pub fn on_load() {
    crate::js::register_custom_element();
    let Some(element) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector("[data-optrail-app]").ok().flatten())
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    else {
        return;
    };
    // The standalone app lives as long as the page.
    std::mem::forget(mount(element, Config::app()));
}
