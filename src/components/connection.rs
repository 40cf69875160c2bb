use leptos::prelude::*;
use optrail_core::ConnectionState;

use super::WidgetCtx;
use crate::model::connection_text;

/// Live / Reconnecting in N s / Offline.
#[component]
pub fn ConnectionBadge() -> impl IntoView {
    let ctx = expect_context::<WidgetCtx>();
    let connection = move || ctx.ui.snapshot.with(|s| s.connection);
    let state = move || match connection() {
        ConnectionState::Idle => "idle",
        ConnectionState::Connecting => "connecting",
        ConnectionState::Live => "live",
        ConnectionState::Reconnecting { .. } => "reconnecting",
        ConnectionState::Offline => "offline",
    };
    view! {
        <p class="optrail-connection" data-state=state role="status" aria-live="polite">
            <span class="optrail-connection-dot" aria-hidden="true"></span>
            <span class="optrail-connection-text">
                {move || connection_text(connection(), ctx.ui.now.get())}
            </span>
        </p>
    }
}

/// Widget-wide notices: storage resets, ignored malformed frames, server errors.
#[component]
pub fn NoticeBanner() -> impl IntoView {
    let ctx = expect_context::<WidgetCtx>();
    let malformed = move || ctx.ui.snapshot.with(|s| s.malformed_frames);
    let server_error = move || ctx.ui.snapshot.with(|s| s.server_error.clone());
    view! {
        <Show when=move || ctx.ui.notice.with(Option::is_some)>
            <div class="optrail-notice" role="alert">
                <span>{move || ctx.ui.notice.get().unwrap_or_default()}</span>
                <button
                    class="optrail-button optrail-button-quiet"
                    on:click=move |_| ctx.ui.notice.set(None)
                >
                    "Dismiss"
                </button>
            </div>
        </Show>
        <Show when=move || { malformed() > 0 }>
            <p class="optrail-notice optrail-notice-quiet" role="status">
                {move || {
                    let n = malformed();
                    format!(
                        "Ignored {n} malformed message{} from the server; nothing was lost.",
                        if n == 1 { "" } else { "s" },
                    )
                }}
            </p>
        </Show>
        <Show when=move || server_error().is_some()>
            <p class="optrail-notice" role="alert">{move || server_error().unwrap_or_default()}</p>
        </Show>
    }
}
