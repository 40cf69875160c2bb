use leptos::either::Either;
use leptos::prelude::*;
use optrail_core::{OperationId, Problem, Status};

use super::WidgetCtx;
use crate::model::{OperationRow, ago, duration, percent_css, problem_text, status_slug};

/// An operation's status as a colored chip.
#[component]
pub fn StatusChip(row: Memo<Option<OperationRow>>) -> impl IntoView {
    let status = move || row.with(|r| r.as_ref().map(|r| r.status));
    view! {
        <span class="optrail-chip" data-status=move || status().map_or("not-started", status_slug)>
            {move || status().map(Status::label).unwrap_or("Waiting")}
        </span>
    }
}

/// An operation's progress as an accessible bar; indeterminate while no
/// percentage is known.
///
/// This and [`StatusChip`] read the row memo itself rather than a derived
/// `Signal` each: a `Signal<T>` per value type costs the bundle its own code.
#[component]
pub fn ProgressBar(
    row: Memo<Option<OperationRow>>,
    #[prop(optional)] compact: bool,
) -> impl IntoView {
    let progress = move || row.with(|r| r.as_ref().and_then(|r| r.progress));
    let rounded = move || progress().map(|p| p.round() as u32);
    view! {
        <div
            class="optrail-progress"
            class:optrail-progress-compact=compact
            class:optrail-progress-indeterminate=move || progress().is_none()
            role="progressbar"
            aria-label="Progress"
            aria-valuemin="0"
            aria-valuemax="100"
            aria-valuenow=move || rounded().map(|p| p.to_string())
            aria-valuetext=move || rounded().map(|p| format!("{p} %"))
        >
            <div
                class="optrail-progress-fill"
                style:width=move || percent_css(progress().unwrap_or(0.0))
            ></div>
        </div>
    }
}

/// The selected operation while it is tracked, or a hint.
#[component]
pub fn OperationDetail() -> impl IntoView {
    let ctx = expect_context::<WidgetCtx>();
    // A memo, so that the panel is built once per selection rather than on
    // every snapshot, and is gone as soon as its operation is forgotten.
    let shown = Memo::new(move |_| {
        let id = ctx.selected.get()?;
        ctx.tracks(&id).then_some(id)
    });
    move || match shown.get() {
        Some(id) => Either::Left(view! { <OperationPanel id=id /> }),
        None => Either::Right(view! {
            <p class="optrail-detail-empty">
                "Start an operation, or pick one from the list to watch it live."
            </p>
        }),
    }
}

fn absolute_time(ms: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    date.to_locale_time_string("default")
        .as_string()
        .unwrap_or_default()
}

fn iso_time(ms: i64) -> String {
    optrail_core::Timestamp(ms).to_string()
}

#[component]
fn OperationPanel(id: OperationId) -> impl IntoView {
    let ctx = expect_context::<WidgetCtx>();
    let row = ctx.row(id.clone());
    let field =
        move |f: fn(&OperationRow) -> String| row.with(|r| r.as_ref().map(f).unwrap_or_default());
    let status = move || row.with(|r| r.as_ref().map(|r| r.status));
    let events = move || row.with(|r| r.as_ref().map(|r| r.events.clone()).unwrap_or_default());
    let elapsed = move || {
        row.with(|r| {
            let r = r.as_ref()?;
            let start = r.started_at?;
            let end = r.ended_at().unwrap_or_else(|| ctx.ui.now.get());
            Some(duration(end - start))
        })
    };
    let id_text = id.to_string();
    let link = format!("#/operations/{id}");
    let id_attr = id_text.clone();
    view! {
        <article class="optrail-operation" data-operation-id=id_attr data-status=move || {
            status().map(status_slug).unwrap_or_default()
        }>
            <header class="optrail-operation-header">
                <h3 class="optrail-operation-title">{move || field(OperationRow::title)}</h3>
                <StatusChip row=row />
            </header>
            <p class="optrail-operation-id">
                "ID " <code>{id_text}</code>
                <a class="optrail-link" href=link>"link"</a>
            </p>
            <ProgressBar row=row />
            <p class="optrail-operation-meta">
                <span class="optrail-elapsed">{move || elapsed().map(|d| format!("Elapsed {d}")).unwrap_or_default()}</span>
                <span class="optrail-recovery" role="status">
                    {move || row.with(|r| r.as_ref().map(OperationRow::recovery_line).unwrap_or_default())}
                </span>
            </p>
            <Show when=move || row.with(|r| r.as_ref().is_some_and(|r| r.problem.is_some()))>
                <p class="optrail-problem" role="alert">
                    {move || row.with(|r| {
                        r.as_ref()
                            .and_then(|r| r.problem.as_ref())
                            .map(|p| problem_text(p, ctx.ui.now.get()))
                            .unwrap_or_default()
                    })}
                </p>
            </Show>
            <Outcome row=row />
            <ol class="optrail-timeline" aria-label="Events">
                <For each=events key=|event| event.key.clone() let:event>
                    <li class="optrail-event" data-seq=event.seq.map(|s| s.to_string()) data-event-id=event.key.clone()>
                        <span class="optrail-event-type">{event.kind.clone()}</span>
                        <span class="optrail-event-message">{event.message.clone()}</span>
                        <time class="optrail-event-time" datetime=iso_time(event.at) title=iso_time(event.at)>
                            {absolute_time(event.at)}
                            " · "
                            {move || ago(ctx.ui.now.get(), event.at)}
                        </time>
                    </li>
                </For>
            </ol>
        </article>
    }
}

/// The running controls or the terminal summary. One summary view for the
/// three terminal statuses (they differ only in words), one controls view
/// for the rest: each distinct view costs the bundle its own generated code.
#[component]
fn Outcome(row: Memo<Option<OperationRow>>) -> impl IntoView {
    let ctx = expect_context::<WidgetCtx>();
    let retry_error = RwSignal::new(None::<String>);
    move || {
        let r = row.get()?;
        let id = r.id.clone();
        let not_found = r.problem == Some(Problem::NotFound);
        if not_found || !r.status.is_terminal() {
            let requested = r.cancel_requested;
            let cancel_id = id.clone();
            return Some(Either::Left(view! {
                <div class="optrail-controls">
                    {(!not_found).then(|| view! {
                        <button
                            class="optrail-button optrail-cancel"
                            disabled=requested
                            on:click=move |_| ctx.cancel(cancel_id.clone())
                        >
                            {if requested { "Canceling…" } else { "Cancel" }}
                        </button>
                    })}
                    {not_found.then(|| view! { <ForgetButton id=id /> })}
                </div>
            }));
        }
        let took = r
            .started_at
            .zip(r.ended_at())
            .map(|(start, end)| duration(end - start))
            .unwrap_or_default();
        let failed = r.status == Status::Failed;
        let text = match r.status {
            Status::Succeeded => {
                let last = r
                    .events
                    .last()
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
                if took.is_empty() {
                    last
                } else {
                    format!("{last} — took {took}")
                }
            }
            Status::Failed => r
                .failure_reason()
                .unwrap_or_else(|| "No reason was given.".into()),
            _ if took.is_empty() => String::new(),
            _ => format!("Stopped after {took}."),
        };
        let retry = (failed && !r.kind.is_empty()).then(|| (r.kind.clone(), r.params.clone()));
        Some(Either::Right(view! {
            <div class="optrail-outcome" data-outcome=status_slug(r.status)>
                <p class="optrail-outcome-title">{r.status.label()}</p>
                <p class="optrail-outcome-text" class:optrail-failure-reason=failed>{text}</p>
                {retry.map(|(kind, params)| view! {
                    <button
                        class="optrail-button optrail-retry"
                        on:click=move |_| {
                            let (kind, params) = (kind.clone(), params.clone());
                            leptos::task::spawn_local(async move {
                                retry_error.set(ctx.start(kind, params).await.err());
                            });
                        }
                    >
                        "Retry"
                    </button>
                })}
                <ForgetButton id=id />
                {failed.then(|| view! {
                    <p class="optrail-form-error" role="alert">{move || retry_error.get()}</p>
                })}
            </div>
        }))
    }
}

#[component]
fn ForgetButton(id: OperationId) -> impl IntoView {
    let ctx = expect_context::<WidgetCtx>();
    view! {
        <button
            class="optrail-button optrail-button-quiet optrail-forget"
            on:click=move |_| ctx.forget(id.clone())
        >
            "Forget"
        </button>
    }
}
