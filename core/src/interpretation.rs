//! What a backend's events mean: which types end an operation (and with
//! which status), and where the progress percentage is. Configurable because
//! embedding teams bring their own backends and vocabularies.

use serde_json::Value;

use crate::protocol::{Event, EventType, Status};

/// How to read meaning out of events.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpretation {
    /// Event types that end an operation, with the status each means.
    pub terminal: Vec<(EventType, Status)>,
    /// Dotted path to the progress percentage, rooted at the event
    /// (`details.percentage`). A number or numeric string; clamped to 0–100.
    pub progress_path: String,
}

impl Default for Interpretation {
    /// The reference server's vocabulary (see PROTOCOL.md).
    fn default() -> Self {
        let terminal = [
            ("PaymentSucceeded", Status::Succeeded),
            ("PaymentFailed", Status::Failed),
            ("VmProvisioned", Status::Succeeded),
            ("VmProvisioningFailed", Status::Failed),
            ("OperationCanceled", Status::Canceled),
        ];
        Self {
            terminal: terminal
                .into_iter()
                .map(|(kind, status)| (EventType::from(kind), status))
                .collect(),
            progress_path: "details.percentage".to_owned(),
        }
    }
}

impl Interpretation {
    /// The status `kind` ends an operation with, if it is terminal.
    pub fn terminal_status(&self, kind: &EventType) -> Option<Status> {
        self.terminal
            .iter()
            .find(|(terminal, _)| terminal == kind)
            .map(|(_, status)| *status)
    }

    /// The progress percentage `event` reports, if any.
    pub fn progress_of(&self, event: &Event) -> Option<f64> {
        let mut parts = self.progress_path.split('.');
        if parts.next() != Some("details") {
            return None;
        }
        let first = event.details.get(parts.next()?)?;
        let value = parts.try_fold(first, |value, part| value.get(part))?;
        let pct = match value {
            Value::Number(n) => n.as_f64()?,
            Value::String(s) => s.trim().trim_end_matches('%').trim().parse().ok()?,
            _ => return None,
        };
        pct.is_finite().then(|| pct.clamp(0.0, 100.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_events::event;
    use serde_json::json;

    #[test]
    fn progress_reads_numbers_and_numeric_strings_and_clamps() {
        let rules = Interpretation::default();
        let mut e = event(1, "ProgressUpdated");
        e.details.insert("percentage".into(), json!(140));
        assert_eq!(rules.progress_of(&e), Some(100.0));
        e.details.insert("percentage".into(), json!(" 42 %"));
        assert_eq!(rules.progress_of(&e), Some(42.0));
        e.details.insert("percentage".into(), json!({"x": 1}));
        assert_eq!(rules.progress_of(&e), None);
    }

    #[test]
    fn nested_progress_paths_are_followed() {
        let rules = Interpretation {
            progress_path: "details.progress.pct".into(),
            ..Interpretation::default()
        };
        let mut e = event(1, "Step");
        e.details.insert("progress".into(), json!({"pct": 7.5}));
        assert_eq!(rules.progress_of(&e), Some(7.5));
    }
}
