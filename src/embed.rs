//! Mounting the widget into a host's element from Rust; `js.rs` builds the
//! JavaScript face on top, and `lib.rs` mounts the standalone app.

use std::any::Any;
use std::rc::Rc;

use leptos::prelude::*;
use optrail_core::OperationId;

use crate::components::{App, ViewContext};
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
        let ctx = ViewContext::new(&driver);
        let handle = leptos::mount::mount_to(element, move || view! { <App ctx=ctx /> });
        (driver, Box::new(handle) as Box<dyn Any>)
    });
    Widget {
        driver,
        view: Some(view),
        owner: Some(owner),
    }
}
