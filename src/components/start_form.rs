use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use optrail_core::interpretation::parse_number;
use serde_json::{Value, json};
use wasm_bindgen::JsCast;
use web_sys::{FormData, HtmlFormElement};

use super::ViewContext;

/// Starts a payment or a VM; the server's refusal is shown inline.
///
/// The inputs are plain HTML fields read once, on submit, rather than each
/// bound to a signal: nothing else on the page reacts to them while typing,
/// and a signal, a value binding and an input handler per field made this
/// optional form about 14 KB of the gzipped bundle (about 6 KB now).
#[component]
pub fn StartForm() -> impl IntoView {
    let ctx = expect_context::<ViewContext>();
    let payment = RwSignal::new(true);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let fields = ev
            .target()
            .and_then(|target| target.dyn_into::<HtmlFormElement>().ok())
            .and_then(|form| FormData::new_with_form(&form).ok());
        let Some(fields) = fields else {
            return;
        };
        let (kind, params) = match read(&fields, ctx.demo_controls) {
            Ok(start) => start,
            Err(message) => {
                error.set(Some(message));
                return;
            }
        };
        error.set(None);
        busy.set(true);
        ctx.start(kind, params, move |result| {
            busy.set(false);
            error.set(result.err());
        });
    };

    view! {
        <form class="optrail-form" on:submit=submit aria-label="Start an operation">
            <label class="optrail-field">
                <span class="optrail-label">"Kind"</span>
                <select
                    class="optrail-input optrail-kind"
                    name="kind"
                    on:change=move |ev| payment.set(event_target_value(&ev) == "payment")
                >
                    <option value="payment">"Payment"</option>
                    <option value="vm">"Virtual machine"</option>
                </select>
            </label>
            // Both kinds' fields stay in the page, the other kind's hidden, so
            // switching back and forth keeps what was typed.
            <label class="optrail-field" hidden=move || !payment.get()>
                <span class="optrail-label">"Amount (EUR)"</span>
                <input class="optrail-input" type="text" name="amount" value="12.50" />
            </label>
            <label class="optrail-field" hidden=move || !payment.get()>
                <span class="optrail-label">"Description"</span>
                <input class="optrail-input" type="text" name="description" value="Order #1042" />
            </label>
            <label class="optrail-field" hidden=move || payment.get()>
                <span class="optrail-label">"Name"</span>
                <input class="optrail-input" type="text" name="name" value="web-01" />
            </label>
            <label class="optrail-field" hidden=move || payment.get()>
                <span class="optrail-label">"Size"</span>
                <select class="optrail-input" name="size">
                    <option value="small">"Small"</option>
                    <option value="medium">"Medium"</option>
                    <option value="large">"Large"</option>
                </select>
            </label>
            {ctx.demo_controls.then(|| view! {
                <details class="optrail-advanced">
                    <summary>"Demo settings"</summary>
                    <label class="optrail-field">
                        <span class="optrail-label">"Step delay (ms)"</span>
                        <input class="optrail-input" type="number" name="stepMs" value="800" />
                    </label>
                    <label class="optrail-field">
                        <span class="optrail-label">"Failure chance (%)"</span>
                        <input class="optrail-input" type="number" name="failure" value="10" />
                    </label>
                </details>
            })}
            <button class="optrail-button optrail-start" type="submit" disabled=move || busy.get()>
                {move || if busy.get() { "Starting…" } else { "Start" }}
            </button>
            <p class="optrail-form-error" role="alert">{move || error.get()}</p>
        </form>
    }
}

/// The kind and start parameters the form holds, or a sentence saying
/// which field to fix.
fn read(fields: &FormData, demo_controls: bool) -> Result<(String, Value), String> {
    let field = |name: &str| fields.get(name).as_string().unwrap_or_default();
    let kind = field("kind");
    let mut params = if kind == "payment" {
        let amount = parse_number(&field("amount"))
            .ok_or_else(|| "Enter the amount as a number, like 12.50.".to_owned())?;
        json!({ "amount": amount, "currency": "EUR", "description": field("description") })
    } else {
        json!({ "name": field("name").trim(), "size": field("size") })
    };
    if demo_controls {
        let step: u64 = field("stepMs")
            .trim()
            .parse()
            .map_err(|_| "Enter the step delay in whole milliseconds.".to_owned())?;
        let failure = parse_number(&field("failure"))
            .ok_or_else(|| "Enter the failure chance as a percentage.".to_owned())?;
        params["stepMs"] = json!(step);
        params["failureRate"] = json!(failure / 100.0);
    }
    Ok((kind, params))
}
