use leptos::prelude::*;
use optrail_core::ConnectionState;

use super::ViewContext;
use crate::model::connection_text;

/// Live / Reconnecting in N s / Offline.
#[component]
pub fn ConnectionBadge() -> impl IntoView {
    let ctx = expect_context::<ViewContext>();
    let connection = move || ctx.ui.session.with(|s| s.connection);
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
///
/// Each is hidden rather than added and removed with a `<Show>`: an element
/// and an attribute cost the bundle less than a `<Show>` each.
#[component]
pub fn NoticeBanner() -> impl IntoView {
    let ctx = expect_context::<ViewContext>();
    let malformed = move || ctx.ui.session.with(|s| s.malformed_frames);
    let server_error = move || ctx.ui.session.with(|s| s.server_error.clone());
    view! {
        <div class="optrail-notice" role="alert" hidden=move || ctx.ui.notice.with(Option::is_none)>
            <span>{move || ctx.ui.notice.get().unwrap_or_default()}</span>
            <button
                class="optrail-button optrail-button-quiet"
                on:click=move |_| ctx.ui.notice.set(None)
            >
                "Dismiss"
            </button>
        </div>
        <p class="optrail-notice optrail-notice-quiet" role="status" hidden=move || malformed() == 0>
            {move || {
                let n = malformed();
                format!(
                    "Ignored {n} malformed message{} from the server; nothing was lost.",
                    if n == 1 { "" } else { "s" },
                )
            }}
        </p>
        <p class="optrail-notice" role="alert" hidden=move || server_error().is_none()>
            {move || server_error().unwrap_or_default()}
        </p>
    }
}
