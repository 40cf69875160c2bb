use leptos::prelude::*;
use optrail_core::OperationId;

use super::ViewContext;
use super::connection::{ConnectionBadge, NoticeBanner};
use super::operation_detail::OperationDetail;
use super::operation_list::OperationList;
use super::start_form::StartForm;
use crate::config::ViewMode;

const ROUTE: &str = "#/operations/";

/// The id a `#/operations/{id}` hash names.
fn routed_id() -> Option<OperationId> {
    let hash = web_sys::window()?.location().hash().ok()?;
    let id = hash.strip_prefix(ROUTE)?.trim();
    (!id.is_empty() && id.len() <= 128).then(|| OperationId(id.to_owned()))
}

fn set_hash(id: Option<&OperationId>) {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return;
    };
    let wanted = id.map(|id| format!("{ROUTE}{id}")).unwrap_or_default();
    if location.hash().unwrap_or_default() != wanted {
        let _ = location.set_hash(&wanted);
    }
}

/// The whole widget.
#[component]
pub fn App(ctx: ViewContext) -> impl IntoView {
    provide_context(ctx);
    if ctx.hash_routing {
        // Deep links: the hash names the operation; an unknown one is tracked.
        let follow = move || {
            let id = routed_id();
            if let Some(id) = &id {
                ctx.track(id.clone());
            }
            ctx.selected.set(id);
        };
        follow();
        let listener = window_event_listener(leptos::ev::hashchange, move |_| follow());
        on_cleanup(move || listener.remove());
        Effect::new(move |_| set_hash(ctx.selected.get().as_ref()));
    }
    // Forgotten here or in another tab: stop showing it.
    Effect::new(move |_| {
        let selected = ctx.selected.get();
        let gone = selected.as_ref().is_some_and(|id| !ctx.tracks(id));
        if gone {
            ctx.selected.set(None);
        }
    });
    let compact = ctx.view == ViewMode::Compact;
    view! {
        <section class="optrail" class:optrail-compact=compact aria-label=ctx.label>
            <header class="optrail-header">
                <h2 class="optrail-title">{ctx.label}</h2>
                <ConnectionBadge />
            </header>
            <NoticeBanner />
            {ctx.start_form.then(|| view! { <StartForm /> })}
            <div class="optrail-body">
                <OperationList />
                <OperationDetail />
            </div>
        </section>
    }
}
