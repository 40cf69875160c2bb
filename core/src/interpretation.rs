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
            Value::String(s) => parse_number(s.trim().trim_end_matches('%'))?,
            _ => return None,
        };
        pct.is_finite().then(|| pct.clamp(0.0, 100.0))
    }
}

/// A decimal number a person or a backend wrote as text (`12.50`, ` 42 `,
/// `-1e3`), surrounding whitespace allowed; `None` if it is anything else.
///
/// Read by serde_json's number parser rather than `str::parse::<f64>`: the
/// widget ships serde_json to every browser anyway, and core's float parser
/// with its tables would add about 13 KB (gzipped) for the same answers. It also
/// refuses `NaN`, `inf` and `1_000`, which no percentage or amount is.
pub fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    // `.5` and `5.` are common in typing but not JSON: pad them to `0.5`, `5.0`.
    let (sign, digits) = match text.strip_prefix('-') {
        Some(digits) => ("-", digits),
        None => ("", text),
    };
    let lead = if digits.starts_with('.') { "0" } else { "" };
    let trail = if digits.ends_with('.') { "0" } else { "" };
    let padded;
    let text = if digits == "." {
        return None;
    } else if lead.len() + trail.len() > 0 {
        padded = format!("{sign}{lead}{digits}{trail}");
        padded.as_str()
    } else {
        text
    };
    serde_json::from_str::<f64>(text)
        .ok()
        .filter(|n| n.is_finite())
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
    fn numbers_in_text() {
        for (text, number) in [
            ("12.50", 12.5),
            (" 42 ", 42.0),
            ("-1e3", -1000.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("-.25", -0.25),
            ("0", 0.0),
        ] {
            assert_eq!(parse_number(text), Some(number), "{text:?}");
        }
        for text in [
            "", ".", "-", "NaN", "inf", "1_000", "12,50", "1e999", "0x10", "+5", "5 %",
        ] {
            assert_eq!(parse_number(text), None, "{text:?}");
        }
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
