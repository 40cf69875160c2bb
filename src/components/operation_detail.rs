use leptos::either::Either;
use leptos::prelude::*;
use optrail_core::{OperationId, Problem, Status};

use super::ViewContext;
use super::timeline::Timeline;
use crate::driver::OperationHandle;
use crate::model::{OperationSummary, duration, percent_css, problem_text};

/// An operation's status as a colored chip.
#[component]
pub fn StatusChip(summary: RwSignal<OperationSummary>) -> impl IntoView {
    let status = move || summary.with(|s| s.status);
    view! {
        <span class="optrail-chip" data-status=move || status().slug()>
            {move || status().label()}
        </span>
    }
}

/// An operation's progress as an accessible bar; indeterminate while no
/// percentage is known.
///
/// This and [`StatusChip`] read the summary signal itself rather than a
/// derived `Signal` each: a `Signal<T>` per value type costs the bundle its
/// own code.
#[component]
pub fn ProgressBar(
    summary: RwSignal<OperationSummary>,
    #[prop(optional)] compact: bool,
) -> impl IntoView {
    let progress = move || summary.with(|s| s.progress);
    let rounded = move || progress().map(|p| p.round() as u32);
    view! {
        <div
            class="optrail-progress"
            // Nothing to show progress of for an operation the server does
            // not know.
            hidden=move || summary.with(|s| s.problem == Some(Problem::NotFound))
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
    let ctx = expect_context::<ViewContext>();
    // A memo, so that the panel is built once per selection rather than on
    // every change, and is gone as soon as its operation is forgotten.
    let shown = Memo::new(move |_| {
        let id = ctx.selected.get()?;
        ctx.tracks(&id).then_some(id)
    });
    move || match shown.get().and_then(|id| ctx.handle(&id)) {
        Some(handle) => Either::Left(view! { <OperationPanel handle=handle /> }),
        None => Either::Right(view! {
            <p class="optrail-detail-empty">
                "Start an operation, or pick one from the list to watch it live."
            </p>
        }),
    }
}

#[component]
fn OperationPanel(handle: OperationHandle) -> impl IntoView {
    let ctx = expect_context::<ViewContext>();
    let summary = handle.summary;
    let id = handle.id.clone();
    let elapsed = move || {
        summary.with(|s| {
            let start = s.started_at?;
            let end = s.ended_at().unwrap_or_else(|| ctx.ui.now.get());
            Some(duration(end - start))
        })
    };
    let problem = move || {
        summary.with(|s| {
            s.problem
                .as_ref()
                .map(|p| problem_text(p, ctx.ui.now.get()))
        })
    };
    let id_text = id.to_string();
    let link = format!("#/operations/{id}");
    let id_attr = id_text.clone();
    view! {
        <article class="optrail-operation" data-operation-id=id_attr data-status=move || summary.with(|s| s.status.slug())>
            <header class="optrail-operation-header">
                <h3 class="optrail-operation-title">{move || summary.with(OperationSummary::title)}</h3>
                <StatusChip summary=summary />
            </header>
            <p class="optrail-operation-id">
                "ID " <code>{id_text}</code>
                <a class="optrail-link" href=link>"link"</a>
            </p>
            <ProgressBar summary=summary />
            <p class="optrail-operation-meta">
                <span class="optrail-elapsed">{move || elapsed().map(|d| format!("Elapsed {d}")).unwrap_or_default()}</span>
                <span class="optrail-recovery">{move || summary.with(OperationSummary::recovery_line)}</span>
            </p>
            <p class="optrail-problem" role="alert" hidden=move || summary.with(|s| s.problem.is_none())>
                {problem}
            </p>
            <Outcome summary=summary />
            <Timeline handle=handle />
        </article>
    }
}

/// The running controls or the terminal summary. One summary view for the
/// three terminal statuses (they differ only in words), one controls view
/// for the rest: each distinct view costs the bundle its own generated code.
#[component]
fn Outcome(summary: RwSignal<OperationSummary>) -> impl IntoView {
    let ctx = expect_context::<ViewContext>();
    let retry_error = RwSignal::new(None::<String>);
    // The view is rebuilt only when the operation settles (ends, or turns
    // out unknown), not on every event; what changes before or after is
    // reactive inside it. (A memo of the id, a type the bundle has anyway.)
    let settled = Memo::new(move |_| {
        summary.with(|s| {
            (s.status.is_terminal() || s.problem == Some(Problem::NotFound)).then(|| s.id.clone())
        })
    });
    move || {
        // Read, not only tracked: a memo never read never computes, and so
        // never learns of the summary it depends on.
        settled.with(|_| ());
        let r = summary.get_untracked();
        let id = r.id.clone();
        let not_found = r.problem == Some(Problem::NotFound);
        if not_found || !r.status.is_terminal() {
            let requested = move || summary.with(|s| s.cancel_requested);
            let cancel_id = id.clone();
            return Either::Left(view! {
                <div class="optrail-controls">
                    {(!not_found).then(|| view! {
                        <button
                            class="optrail-button optrail-cancel"
                            disabled=requested
                            on:click=move |_| ctx.cancel(cancel_id.clone())
                        >
                            {move || if requested() { "Canceling…" } else { "Cancel" }}
                        </button>
                    })}
                    // Any operation can be let go of, running or not: forgetting
                    // stops following it here, it does not cancel it.
                    <ForgetButton id=id />
                </div>
            });
        }
        let failed = r.status == Status::Failed;
        let retry = (failed && !r.kind.is_empty()).then(|| (r.kind.clone(), r.params.clone()));
        Either::Right(view! {
            <div class="optrail-outcome" data-outcome=r.status.slug()>
                <p class="optrail-outcome-title">{r.status.label()}</p>
                <p class="optrail-outcome-text" class:optrail-failure-reason=failed>
                    {move || summary.with(outcome_text)}
                </p>
                {retry.map(|(kind, params)| view! {
                    <button
                        class="optrail-button optrail-retry"
                        on:click=move |_| {
                            let (kind, params) = (kind.clone(), params.clone());
                            ctx.start(kind, params, move |result| retry_error.set(result.err()));
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
        })
    }
}

/// What a finished operation's outcome says: the last message and how long
/// it took, the failure's reason, or how long it ran before it was stopped.
fn outcome_text(r: &OperationSummary) -> String {
    let took = r
        .started_at
        .zip(r.ended_at())
        .map(|(start, end)| duration(end - start))
        .unwrap_or_default();
    match r.status {
        Status::Succeeded => {
            let last = r.last_message.clone().unwrap_or_default();
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
    }
}

#[component]
fn ForgetButton(id: OperationId) -> impl IntoView {
    let ctx = expect_context::<ViewContext>();
    view! {
        <button
            class="optrail-button optrail-button-quiet optrail-forget"
            on:click=move |_| ctx.forget(id.clone())
        >
            "Forget"
        </button>
    }
}
