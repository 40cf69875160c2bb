use leptos::prelude::*;

use super::ViewContext;
use super::operation_detail::{ProgressBar, StatusChip};
use crate::driver::OperationHandle;
use crate::model::ago;

/// Every tracked operation, newest first. The list re-renders only when
/// operations come and go; each item follows its own operation's summary.
#[component]
pub fn OperationList() -> impl IntoView {
    let ctx = expect_context::<ViewContext>();
    view! {
        // Named like the widget: the role tells the two landmarks apart, the
        // name tells this widget's from another's on the same page.
        <nav class="optrail-list" aria-label=ctx.label>
            // The hint is hidden rather than swapped for the list: one
            // element and an attribute cost the bundle less than a <Show>.
            <p class="optrail-empty" hidden=move || ctx.ui.operations.with(|ops| !ops.is_empty())>
                "No operations yet."
            </p>
            <ul class="optrail-list-items">
                <For each=move || ctx.ui.operations.get() key=|handle| handle.id.clone() let:handle>
                    <OperationListItem handle=handle />
                </For>
            </ul>
        </nav>
    }
}

#[component]
fn OperationListItem(handle: OperationHandle) -> impl IntoView {
    let ctx = expect_context::<ViewContext>();
    let summary = handle.summary;
    let id = handle.id;
    let selected = {
        let id = id.clone();
        move || ctx.selected.with(|s| s.as_ref() == Some(&id))
    };
    view! {
        <li class="optrail-list-item" data-operation-id=id.to_string()>
            <button
                class="optrail-list-button"
                class:optrail-selected=selected.clone()
                aria-current=move || selected().then_some("true")
                on:click={
                    let id = id.clone();
                    move |_| ctx.select(Some(id.clone()))
                }
            >
                <span class="optrail-list-title">{move || summary.with(|s| s.title())}</span>
                <StatusChip summary=summary />
                <ProgressBar summary=summary compact=true />
                <span class="optrail-list-age">
                    {move || {
                        summary
                            .with(|s| s.started_at)
                            .map(|at| ago(ctx.ui.now.get(), at))
                            .unwrap_or_default()
                    }}
                </span>
            </button>
        </li>
    }
}
