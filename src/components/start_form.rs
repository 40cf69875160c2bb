use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use optrail_core::interpretation::parse_number;
use serde_json::{Value, json};

use super::WidgetCtx;

/// Starts a payment or a VM; the server's refusal is shown inline.
#[component]
pub fn StartForm() -> impl IntoView {
    let ctx = expect_context::<WidgetCtx>();
    let kind = RwSignal::new("payment".to_owned());
    let amount = RwSignal::new("12.50".to_owned());
    let description = RwSignal::new("Order #1042".to_owned());
    let name = RwSignal::new("web-01".to_owned());
    let size = RwSignal::new("small".to_owned());
    let step_ms = RwSignal::new("800".to_owned());
    let failure = RwSignal::new("10".to_owned());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let params = move || -> Result<Value, String> {
        let mut params = if kind.get_untracked() == "payment" {
            let amount = parse_number(&amount.get_untracked())
                .ok_or_else(|| "Enter the amount as a number, like 12.50.".to_owned())?;
            json!({ "amount": amount, "currency": "EUR", "description": description.get_untracked() })
        } else {
            json!({ "name": name.get_untracked().trim(), "size": size.get_untracked() })
        };
        if ctx.demo_controls {
            let step: u64 = step_ms
                .get_untracked()
                .trim()
                .parse()
                .map_err(|_| "Enter the step delay in whole milliseconds.".to_owned())?;
            let failure = parse_number(&failure.get_untracked())
                .ok_or_else(|| "Enter the failure chance as a percentage.".to_owned())?;
            params["stepMs"] = json!(step);
            params["failureRate"] = json!(failure / 100.0);
        }
        Ok(params)
    };

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let params = match params() {
            Ok(params) => params,
            Err(message) => {
                error.set(Some(message));
                return;
            }
        };
        error.set(None);
        busy.set(true);
        let kind = kind.get_untracked();
        leptos::task::spawn_local(async move {
            let result = ctx.start(kind, params).await;
            busy.set(false);
            error.set(result.err());
        });
    };

    let text_input =
        move |label: &'static str, signal: RwSignal<String>, input_type: &'static str| {
            view! {
                <label class="optrail-field">
                    <span class="optrail-label">{label}</span>
                    <input
                        class="optrail-input"
                        type=input_type
                        prop:value=move || signal.get()
                        on:input=move |ev| signal.set(event_target_value(&ev))
                    />
                </label>
            }
        };

    view! {
        <form class="optrail-form" on:submit=submit aria-label="Start an operation">
            <label class="optrail-field">
                <span class="optrail-label">"Kind"</span>
                {select_input(kind, "optrail-kind", &[("payment", "Payment"), ("vm", "Virtual machine")])}
            </label>
            <Show
                when=move || kind.get() == "payment"
                fallback=move || view! {
                    {text_input("Name", name, "text")}
                    <label class="optrail-field">
                        <span class="optrail-label">"Size"</span>
                        {select_input(size, "", &[("small", "Small"), ("medium", "Medium"), ("large", "Large")])}
                    </label>
                }
            >
                {text_input("Amount (EUR)", amount, "text")}
                {text_input("Description", description, "text")}
            </Show>
            {ctx.demo_controls.then(|| view! {
                <details class="optrail-advanced">
                    <summary>"Demo settings"</summary>
                    {text_input("Step delay (ms)", step_ms, "number")}
                    {text_input("Failure chance (%)", failure, "number")}
                </details>
            })}
            <button class="optrail-button optrail-start" type="submit" disabled=move || busy.get()>
                {move || if busy.get() { "Starting…" } else { "Start" }}
            </button>
            <p class="optrail-form-error" role="alert">{move || error.get()}</p>
        </form>
    }
}

/// A `<select>` bound to `signal`.
fn select_input(
    signal: RwSignal<String>,
    class: &'static str,
    options: &'static [(&'static str, &'static str)],
) -> impl IntoView {
    view! {
        <select
            class=format!("optrail-input {class}")
            on:change=move |ev| signal.set(event_target_value(&ev))
            prop:value=move || signal.get()
        >
            {options
                .iter()
                .map(|(value, label)| view! { <option value=*value>{*label}</option> })
                .collect::<Vec<_>>()}
        </select>
    }
}
