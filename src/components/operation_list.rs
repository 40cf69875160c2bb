use leptos::prelude::*;

use super::WidgetCtx;
use super::operation_view::{ProgressBar, StatusChip};
use crate::model::ago;

/// Every tracked operation, newest first.
#[component]
pub fn OperationList() -> impl IntoView {
    let ctx = expect_context::<WidgetCtx>();
    let ids = move || {
        ctx.ui.snapshot.with(|s| {
            s.operations
                .iter()
                .map(|op| op.id.clone())
                .collect::<Vec<_>>()
        })
    };
    view! {
        <nav class="optrail-list" aria-label="Tracked operations">
            // The hint is hidden rather than swapped for the list: one
            // element and an attribute cost the bundle less than a <Show>.
            <p class="optrail-empty" hidden=move || ctx.ui.snapshot.with(|s| !s.operations.is_empty())>
                "No operations yet."
            </p>
            <ul class="optrail-list-items">
                <For each=ids key=|id| id.clone() let:id>
                    <OperationListItem id=id />
                </For>
            </ul>
        </nav>
    }
}

#[component]
fn OperationListItem(id: optrail_core::OperationId) -> impl IntoView {
    let ctx = expect_context::<WidgetCtx>();
    let row = ctx.row(id.clone());
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
                <span class="optrail-list-title">
                    {move || row.with(|r| r.as_ref().map(|r| r.title()).unwrap_or_default())}
                </span>
                <StatusChip row=row />
                <ProgressBar row=row compact=true />
                <span class="optrail-list-age">
                    {move || {
                        row.with(|r| r.as_ref().and_then(|r| r.started_at))
                            .map(|at| ago(ctx.ui.now.get(), at))
                            .unwrap_or_default()
                    }}
                </span>
            </button>
        </li>
    }
}
