//! The smallest app on the stack issue 5 mandates, and nothing else: Leptos
//! CSR mounting a keyed list, one gloo-net JSON GET, one gloo-net WebSocket
//! that sends a frame and reads a stream, serde_json values. It never runs;
//! it exists to be weighed (scripts/stack-floor.sh), so that the widget's
//! bundle can be split into "the stack" and "our features".
//!
//! With the `core` feature it weighs the next layer instead
//! (`with_core.rs`): the same stack plus optrail-core's session, driven by
//! the thinnest adapter.

#[cfg(not(feature = "core"))]
mod stack;
#[cfg(feature = "core")]
mod with_core;

use leptos::prelude::*;

/// The one view both floors mount: a keyed list of `(seq, message)`.
fn mount_list(lines: RwSignal<Vec<(u64, String)>>) {
    leptos::mount::mount_to_body(move || {
        view! {
            <ul>
                <For each=move || lines.get() key=|(seq, _)| *seq let:((_, message))>
                    <li>{message}</li>
                </For>
            </ul>
        }
    });
}
