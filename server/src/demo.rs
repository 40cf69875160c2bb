//! The demo operations' scripts: what a simulated `payment` or `vm` run
//! emits, step by step ([`crate::runner`] plays them; demo mode lets a
//! viewer start them). A run is a pure function of its params and a seed — the failure
//! point, the worker and the reason all derive from the seed — so after a
//! restart the runner recomputes step `head` exactly as it would have
//! before: nothing is lost or emitted twice.

use optrail_core::{Rng, Status};
use serde_json::{Map, Value, json};

use crate::error::Error;

/// What an operation was started with, validated, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub timing: Timing,
    pub spec: Spec,
}

/// Parameters every kind takes, for demos (slow) and tests (fast).
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Pause between two events.
    pub step_ms: u64,
    /// Chance that the run ends failed.
    pub failure_rate: f64,
    /// Force a failure.
    pub fail: bool,
    /// Number of `ProgressUpdated` events.
    pub steps: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    Payment {
        amount: f64,
        currency: String,
        description: Option<String>,
    },
    Vm {
        name: String,
        size: VmSize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmSize {
    Small,
    Medium,
    Large,
}

impl VmSize {
    fn name(self) -> &'static str {
        match self {
            VmSize::Small => "small",
            VmSize::Medium => "medium",
            VmSize::Large => "large",
        }
    }

    /// vCPUs, memory GiB, disk GiB.
    fn shape(self) -> (u32, u32, u32) {
        match self {
            VmSize::Small => (1, 2, 32),
            VmSize::Medium => (2, 8, 64),
            VmSize::Large => (8, 32, 256),
        }
    }
}

pub const MAX_DESCRIPTION_CHARS: usize = 200;
pub const MAX_VM_NAME_CHARS: usize = 63;
const MAX_AMOUNT: f64 = 1e12;

impl Params {
    /// Validates `params` for `kind`. Unknown fields are ignored; a field of
    /// the wrong type or out of range is an `invalid_params` naming it.
    pub fn parse(kind: &str, params: &Value) -> Result<Params, Error> {
        if !matches!(kind, "payment" | "vm") {
            return Err(Error::UnknownKind(kind.chars().take(40).collect()));
        }
        let empty = Map::new();
        let map = match params {
            Value::Null => &empty,
            Value::Object(map) => map,
            _ => return Err(invalid("params must be a JSON object")),
        };
        let spec = match kind {
            "payment" => Spec::Payment {
                amount: match map.get("amount") {
                    Some(v) => v
                        .as_f64()
                        .filter(|a| a.is_finite() && *a > 0.0 && *a <= MAX_AMOUNT)
                        .ok_or_else(|| {
                            invalid("amount must be a number greater than 0 and at most 1e12")
                        })?,
                    None => return Err(invalid("amount is required for a payment")),
                },
                currency: match optional_str(map, "currency")? {
                    None => "EUR".to_owned(),
                    Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => {
                        c.to_owned()
                    }
                    Some(_) => {
                        return Err(invalid(
                            "currency must be a three-letter code in capitals, such as \"EUR\"",
                        ));
                    }
                },
                description: match optional_str(map, "description")? {
                    Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => {
                        return Err(invalid(&format!(
                            "description must be at most {MAX_DESCRIPTION_CHARS} characters"
                        )));
                    }
                    d => d.map(str::to_owned),
                },
            },
            "vm" => Spec::Vm {
                name: match optional_str(map, "name")? {
                    Some(n) if (1..=MAX_VM_NAME_CHARS).contains(&n.chars().count()) => n.to_owned(),
                    Some(_) => {
                        return Err(invalid(&format!(
                            "name must be 1 to {MAX_VM_NAME_CHARS} characters"
                        )));
                    }
                    None => return Err(invalid("name is required for a vm")),
                },
                size: match optional_str(map, "size")? {
                    None | Some("small") => VmSize::Small,
                    Some("medium") => VmSize::Medium,
                    Some("large") => VmSize::Large,
                    Some(_) => {
                        return Err(invalid("size must be \"small\", \"medium\" or \"large\""));
                    }
                },
            },
            other => return Err(Error::UnknownKind(other.to_owned())),
        };
        let timing = Timing {
            step_ms: optional_integer(map, "stepMs", 0, 60_000)?.unwrap_or(800),
            failure_rate: match map.get("failureRate") {
                None | Some(Value::Null) => 0.1,
                Some(v) => v
                    .as_f64()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| invalid("failureRate must be a number from 0 to 1"))?,
            },
            fail: match map.get("fail") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(invalid("fail must be true or false")),
            },
            steps: optional_integer(map, "steps", 1, 100_000)?.unwrap_or(6),
        };
        Ok(Params { timing, spec })
    }

    pub fn kind(&self) -> &'static str {
        match self.spec {
            Spec::Payment { .. } => "payment",
            Spec::Vm { .. } => "vm",
        }
    }

    /// The normalized params, as stored and returned in `Operation.params`.
    pub fn to_json(&self) -> Value {
        let mut map = match &self.spec {
            Spec::Payment {
                amount,
                currency,
                description,
            } => {
                let mut map = Map::new();
                map.insert("amount".into(), json!(amount));
                map.insert("currency".into(), json!(currency));
                if let Some(d) = description {
                    map.insert("description".into(), json!(d));
                }
                map
            }
            Spec::Vm { name, size } => {
                let mut map = Map::new();
                map.insert("name".into(), json!(name));
                map.insert("size".into(), json!(size.name()));
                map
            }
        };
        map.insert("stepMs".into(), json!(self.timing.step_ms));
        map.insert("failureRate".into(), json!(self.timing.failure_rate));
        map.insert("fail".into(), json!(self.timing.fail));
        map.insert("steps".into(), json!(self.timing.steps));
        Value::Object(map)
    }
}

fn invalid(message: &str) -> Error {
    Error::InvalidParams(message.to_owned())
}

fn optional_str<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Error> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(&format!("{key} must be a string"))),
    }
}

fn optional_integer(
    map: &Map<String, Value>,
    key: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, Error> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|n| (min..=max).contains(n))
            .map(Some)
            .ok_or_else(|| invalid(&format!("{key} must be an integer from {min} to {max}"))),
    }
}

/// One event of a run, before it has an id, a time and a seq.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: &'static str,
    pub message: String,
    /// The operation's status once this event is committed.
    pub status: Status,
    /// `details`: always `workerId`; `percentage` and `reason` when they apply.
    pub details: Map<String, Value>,
}

const PAYMENT_FAILURES: &[&str] = &[
    "Card declined by the issuer",
    "Insufficient funds",
    "The issuer did not answer in time",
    "Suspected fraud: the card is blocked",
];

const VM_FAILURES: &[&str] = &[
    "Quota exceeded for this size in the region",
    "The disk image is unavailable",
    "The VM did not boot within 5 minutes",
    "No capacity left in the availability zone",
];

/// The whole run of one operation, decided up front from params and seed.
#[derive(Debug, Clone)]
pub struct Script {
    params: Params,
    worker_id: String,
    /// Fails instead of emitting the event at `3 + fail_at` (the first of
    /// the middle events is index 3), if set.
    fail_at: Option<u64>,
    reason: &'static str,
}

/// Events before the progress updates: the same three for every run.
const PREFIX: u64 = 3;

impl Script {
    pub fn new(params: Params, seed: u64) -> Script {
        let mut rng = Rng::new(seed);
        let worker_id = format!("worker-{:02}", rng.below_or_eq(15) + 1);
        let rate = params.timing.failure_rate;
        let fails = params.timing.fail || (rate > 0.0 && rng.chance(rate));
        let middle = Self::middle_len(&params);
        let fail_at = rng.below_or_eq(middle);
        let reasons = match params.spec {
            Spec::Payment { .. } => PAYMENT_FAILURES,
            Spec::Vm { .. } => VM_FAILURES,
        };
        let reason = reasons[(rng.next_u64() % reasons.len() as u64) as usize];
        Script {
            params,
            worker_id,
            fail_at: fails.then_some(fail_at),
            reason,
        }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Progress updates, plus `Booting` for a VM.
    fn middle_len(params: &Params) -> u64 {
        match params.spec {
            Spec::Payment { .. } => params.timing.steps,
            Spec::Vm { .. } => params.timing.steps + 1,
        }
    }

    /// How many events the run emits, the terminal one included.
    pub fn events(&self) -> u64 {
        match self.fail_at {
            Some(at) => PREFIX + at + 1,
            None => PREFIX + Self::middle_len(&self.params) + 1,
        }
    }

    /// The event at `step` (0-based: the event that gets seq `step + 1`),
    /// or `None` past the end.
    pub fn step(&self, step: u64) -> Option<Step> {
        if step >= self.events() {
            return None;
        }
        let steps = self.params.timing.steps;
        let mut details = Map::new();
        details.insert("workerId".into(), json!(self.worker_id));
        let (kind, message, status) = if step >= PREFIX && self.fail_at == Some(step - PREFIX) {
            details.insert("reason".into(), json!(self.reason));
            let (kind, message) = self.failure();
            (kind, message, Status::Failed)
        } else if step < PREFIX {
            let (kind, message) = self.opening(step);
            (kind, message, Status::Running)
        } else if step - PREFIX < steps {
            let done = step - PREFIX + 1;
            let percentage = (done as f64 * 100.0 / steps as f64).round();
            details.insert("percentage".into(), json!(percentage));
            (
                "ProgressUpdated",
                self.progress(percentage),
                Status::Running,
            )
        } else if step + 1 < self.events() {
            // Only a VM has a middle event after the progress: booting.
            (
                "Booting",
                format!("Booting {}", self.label()),
                Status::Running,
            )
        } else {
            details.insert("percentage".into(), json!(100.0));
            let (kind, message) = self.success();
            (kind, message, Status::Succeeded)
        };
        Some(Step {
            kind,
            message,
            status,
            details,
        })
    }

    /// The event a cancel appends.
    pub fn canceled(&self) -> Step {
        let mut details = Map::new();
        details.insert("workerId".into(), json!(self.worker_id));
        let label = self.label();
        Step {
            kind: "OperationCanceled",
            message: format!("{} canceled", capitalize(&label)),
            status: Status::Canceled,
            details,
        }
    }

    /// How the messages name the operation, quoting what the user typed.
    fn label(&self) -> String {
        match &self.params.spec {
            Spec::Payment {
                description: Some(d),
                ..
            } => format!("payment \"{d}\""),
            Spec::Payment { .. } => "the payment".to_owned(),
            Spec::Vm { name, .. } => format!("VM \"{name}\""),
        }
    }

    fn money(&self) -> String {
        match &self.params.spec {
            Spec::Payment {
                amount, currency, ..
            } => format!("{amount:.2} {currency}"),
            Spec::Vm { .. } => String::new(),
        }
    }

    fn opening(&self, step: u64) -> (&'static str, String) {
        let label = self.label();
        match (&self.params.spec, step) {
            (Spec::Payment { .. }, 0) => (
                "ProcessingStarted",
                format!("Processing {label} of {}", self.money()),
            ),
            (Spec::Payment { .. }, 1) => (
                "FraudCheckStarted",
                format!("Fraud check started for {label}"),
            ),
            (Spec::Payment { .. }, _) => (
                "FraudCheckPassed",
                format!("Fraud check passed for {label}"),
            ),
            (Spec::Vm { size, .. }, 0) => (
                "ValidationStarted",
                format!("Validating {label} ({})", size.name()),
            ),
            (Spec::Vm { size, .. }, 1) => {
                let (cpus, memory, _) = size.shape();
                (
                    "ResourcesAllocated",
                    format!("Allocated {cpus} vCPU and {memory} GiB of memory for {label}"),
                )
            }
            (Spec::Vm { size, .. }, _) => {
                let (_, _, disk) = size.shape();
                (
                    "DiskProvisioning",
                    format!("Provisioning a {disk} GiB disk for {label}"),
                )
            }
        }
    }

    fn progress(&self, percentage: f64) -> String {
        match self.params.spec {
            Spec::Payment { .. } => format!("Settling {}: {percentage}%", self.label()),
            Spec::Vm { .. } => format!("Provisioning {}: {percentage}%", self.label()),
        }
    }

    fn success(&self) -> (&'static str, String) {
        let label = capitalize(&self.label());
        match self.params.spec {
            Spec::Payment { .. } => (
                "PaymentSucceeded",
                format!("{label} of {} succeeded", self.money()),
            ),
            Spec::Vm { .. } => ("VmProvisioned", format!("{label} is running")),
        }
    }

    fn failure(&self) -> (&'static str, String) {
        let label = capitalize(&self.label());
        match self.params.spec {
            Spec::Payment { .. } => (
                "PaymentFailed",
                format!("{label} of {} failed: {}", self.money(), self.reason),
            ),
            Spec::Vm { .. } => (
                "VmProvisioningFailed",
                format!("{label} could not be provisioned: {}", self.reason),
            ),
        }
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(extra: Value) -> Params {
        let mut params = json!({"amount": 12.5, "description": "Coffee <b>beans</b>"});
        if let (Value::Object(p), Value::Object(e)) = (&mut params, extra) {
            p.extend(e);
        }
        Params::parse("payment", &params).unwrap()
    }

    fn kinds(script: &Script) -> Vec<&'static str> {
        (0..script.events())
            .map(|s| script.step(s).unwrap().kind)
            .collect()
    }

    #[test]
    fn a_successful_payment_runs_the_documented_stages() {
        let script = Script::new(payment(json!({"steps": 2, "failureRate": 0})), 7);
        assert_eq!(
            kinds(&script),
            [
                "ProcessingStarted",
                "FraudCheckStarted",
                "FraudCheckPassed",
                "ProgressUpdated",
                "ProgressUpdated",
                "PaymentSucceeded"
            ]
        );
        let first = script.step(0).unwrap();
        assert_eq!(
            first.message,
            "Processing payment \"Coffee <b>beans</b>\" of 12.50 EUR"
        );
        assert_eq!(script.step(4).unwrap().details["percentage"], json!(100.0));
        assert_eq!(script.step(5).unwrap().status, Status::Succeeded);
        assert!(script.step(6).is_none());
        assert!((0..6).all(|s| script.step(s).unwrap().details.contains_key("workerId")));
    }

    #[test]
    fn a_forced_failure_ends_with_a_reason_and_nothing_after() {
        for seed in 0..50 {
            let script = Script::new(payment(json!({"fail": true, "steps": 3})), seed);
            let last = script.step(script.events() - 1).unwrap();
            assert_eq!(last.kind, "PaymentFailed");
            assert_eq!(last.status, Status::Failed);
            assert!(last.details["reason"].is_string());
            assert!(
                (0..script.events() - 1).all(|s| script.step(s).unwrap().status == Status::Running)
            );
        }
    }

    #[test]
    fn a_vm_boots_after_its_progress_and_quotes_its_name() {
        let params = Params::parse(
            "vm",
            &json!({"name": "web-1", "steps": 1, "failureRate": 0}),
        )
        .unwrap();
        let script = Script::new(params, 1);
        assert_eq!(
            kinds(&script),
            [
                "ValidationStarted",
                "ResourcesAllocated",
                "DiskProvisioning",
                "ProgressUpdated",
                "Booting",
                "VmProvisioned"
            ]
        );
        assert_eq!(script.step(5).unwrap().message, "VM \"web-1\" is running");
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let a = Script::new(payment(json!({"failureRate": 0.5})), 99);
        let b = Script::new(payment(json!({"failureRate": 0.5})), 99);
        assert_eq!(a.events(), b.events());
        assert!((0..a.events()).all(|s| a.step(s) == b.step(s)));
    }

    #[test]
    fn params_out_of_range_name_the_field() {
        let cases = [
            ("payment", json!({}), "amount"),
            ("payment", json!({"amount": -1}), "amount"),
            ("payment", json!({"amount": "12"}), "amount"),
            (
                "payment",
                json!({"amount": 1, "description": "x".repeat(201)}),
                "description",
            ),
            (
                "payment",
                json!({"amount": 1, "currency": "euro"}),
                "currency",
            ),
            ("payment", json!({"amount": 1, "stepMs": 60001}), "stepMs"),
            ("payment", json!({"amount": 1, "stepMs": 1.5}), "stepMs"),
            (
                "payment",
                json!({"amount": 1, "failureRate": 2}),
                "failureRate",
            ),
            ("payment", json!({"amount": 1, "steps": 0}), "steps"),
            ("payment", json!({"amount": 1, "fail": "yes"}), "fail"),
            ("payment", json!([1]), "params"),
            ("vm", json!({"name": ""}), "name"),
            ("vm", json!({"name": "a".repeat(64)}), "name"),
            ("vm", json!({"name": "a", "size": "huge"}), "size"),
        ];
        for (kind, params, field) in cases {
            match Params::parse(kind, &params) {
                Err(Error::InvalidParams(message)) => {
                    assert!(message.contains(field), "{message} should name {field}")
                }
                other => panic!("{params} gave {other:?}"),
            }
        }
        assert!(matches!(
            Params::parse("teleport", &json!({})),
            Err(Error::UnknownKind(_))
        ));
    }
}
