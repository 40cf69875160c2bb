//! Property tests: whatever order events arrive in, and however often, the
//! [`EventLog`] holds exactly what a plain sorted-map model holds.
//!
//! The model is deliberately naive — a `BTreeMap` keyed by the order key plus
//! a set of seen ids — so that it is obviously right; the log is the fast
//! thing under test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use optrail_core::log::MAX_AHEAD;
use optrail_core::{
    Event, EventId, EventLog, EventType, Insert, Interpretation, LogOrder, Rejection, Seq, Status,
    Timestamp,
};
use proptest::prelude::*;
use serde_json::{Map, json};

/// Event types the generator draws from: plain ones, a progress report and
/// every terminal type of the default vocabulary.
const KINDS: &[&str] = &[
    "ProcessingStarted",
    "ProgressUpdated",
    "ProgressUpdated",
    "SomethingNew",
    "PaymentSucceeded",
    "PaymentFailed",
    "OperationCanceled",
];

fn terminal_status(kind: &str) -> Option<Status> {
    match kind {
        "PaymentSucceeded" | "VmProvisioned" => Some(Status::Succeeded),
        "PaymentFailed" | "VmProvisioningFailed" => Some(Status::Failed),
        "OperationCanceled" => Some(Status::Canceled),
        _ => None,
    }
}

fn percentage(event: &Event) -> Option<f64> {
    event.details.get("percentage").and_then(|v| v.as_f64())
}

/// One arriving event. Ids usually follow the seq (`e{seq}`), so a repeat of
/// a seq is a true duplicate; sometimes the id is borrowed from another seq
/// (a duplicate by id only) or the seq is missing or zero.
fn arb_event(max_seq: u64) -> impl Strategy<Value = Event> {
    (
        0..=max_seq,
        prop_oneof![8 => Just(None), 1 => (1..=max_seq).prop_map(Some)],
        0..KINDS.len(),
        prop_oneof![2 => Just(None), 1 => (0u32..=100).prop_map(Some)],
        0i64..6,
        prop::bool::weighted(0.05),
    )
        .prop_map(move |(seq, id_from, kind, pct, at, no_seq)| {
            let mut details = Map::new();
            if let Some(pct) = pct {
                details.insert("percentage".into(), json!(pct));
            }
            Event {
                id: EventId(format!("e{}", id_from.unwrap_or(seq))),
                seq: (!no_seq).then_some(Seq(seq)),
                kind: EventType::from(KINDS[kind]),
                message: format!("step {seq}"),
                happened_at: Timestamp(at * 1000),
                sub_ms_ns: 0,
                details,
                status: None,
            }
        })
}

/// The naive model: a sorted map plus a set of ids, and every derived fact
/// computed from scratch.
struct Model {
    order: LogOrder,
    by_seq: BTreeMap<u64, Event>,
    by_time: BTreeMap<(Timestamp, EventId), Event>,
    ids: BTreeSet<EventId>,
    duplicates: u64,
}

impl Model {
    fn new(order: LogOrder) -> Self {
        Self {
            order,
            by_seq: BTreeMap::new(),
            by_time: BTreeMap::new(),
            ids: BTreeSet::new(),
            duplicates: 0,
        }
    }

    fn insert(&mut self, event: Event) -> Insert {
        match self.order {
            LogOrder::BySeq => {
                let seq = match event.seq {
                    None => return Insert::Rejected(Rejection::MissingSeq),
                    Some(Seq(0)) => return Insert::Rejected(Rejection::ZeroSeq),
                    Some(Seq(s)) => s,
                };
                if seq - 1 > self.contiguous() + MAX_AHEAD {
                    return Insert::Rejected(Rejection::TooFarAhead);
                }
                if self.by_seq.contains_key(&seq) || self.ids.contains(&event.id) {
                    self.duplicates += 1;
                    return Insert::Duplicate;
                }
                self.ids.insert(event.id.clone());
                self.by_seq.insert(seq, event);
            }
            LogOrder::ByTime => {
                if self.ids.contains(&event.id) {
                    self.duplicates += 1;
                    return Insert::Duplicate;
                }
                self.ids.insert(event.id.clone());
                self.by_time
                    .insert((event.happened_at, event.id.clone()), event);
            }
        }
        Insert::Added
    }

    fn events(&self) -> Vec<&Event> {
        match self.order {
            LogOrder::BySeq => self.by_seq.values().collect(),
            LogOrder::ByTime => self.by_time.values().collect(),
        }
    }

    fn contiguous(&self) -> u64 {
        let mut k = 0;
        while self.by_seq.contains_key(&(k + 1)) {
            k += 1;
        }
        k
    }

    fn max_seq(&self) -> u64 {
        self.by_seq.keys().next_back().copied().unwrap_or(0)
    }

    fn gaps(&self) -> Vec<(Seq, Seq)> {
        let mut gaps = Vec::new();
        let mut start = None;
        for seq in 1..=self.max_seq() {
            match (self.by_seq.contains_key(&seq), start) {
                (false, None) => start = Some(seq),
                (true, Some(s)) => {
                    gaps.push((Seq(s), Seq(seq - 1)));
                    start = None;
                }
                _ => {}
            }
        }
        gaps
    }

    /// The first terminal event *in order*, whatever order they arrived in.
    fn terminal(&self) -> Option<(Option<Seq>, Status)> {
        self.events()
            .into_iter()
            .find_map(|e| terminal_status(e.kind.as_str()).map(|s| (e.seq, s)))
    }

    fn status(&self) -> Status {
        match self.terminal() {
            Some((_, status)) => status,
            None if self.events().is_empty() => Status::NotStarted,
            None => Status::Running,
        }
    }

    /// The last progress report in order; 100 once succeeded.
    fn progress(&self) -> Option<f64> {
        if self.status() == Status::Succeeded {
            return Some(100.0);
        }
        self.events().into_iter().rev().find_map(percentage)
    }

    fn is_complete(&self) -> bool {
        match (self.order, self.terminal()) {
            (_, None) => false,
            (LogOrder::ByTime, Some(_)) => true,
            (LogOrder::BySeq, Some((seq, _))) => self.contiguous() >= seq.expect("has seq").0,
        }
    }
}

fn check_against_model(order: LogOrder, inserts: Vec<Event>) -> Result<(), TestCaseError> {
    let mut log = EventLog::new(order, Arc::new(Interpretation::default()));
    let mut model = Model::new(order);
    for event in inserts {
        let expected = model.insert(event.clone());
        prop_assert_eq!(log.insert(event), expected);
    }
    let held: Vec<&Event> = log.iter().collect();
    prop_assert_eq!(&held, &model.events());
    prop_assert_eq!(log.len(), held.len());
    prop_assert_eq!(log.is_empty(), held.is_empty());
    prop_assert_eq!(log.duplicates(), model.duplicates);
    prop_assert_eq!(log.first(), model.events().first().copied());
    prop_assert_eq!(log.last(), model.events().last().copied());
    prop_assert_eq!(log.status(), model.status());
    prop_assert_eq!(log.terminal_status(), model.terminal().map(|(_, s)| s));
    prop_assert_eq!(log.progress(), model.progress());
    prop_assert_eq!(log.is_complete(), model.is_complete());
    if order == LogOrder::BySeq {
        prop_assert_eq!(log.contiguous(), Seq(model.contiguous()));
        prop_assert_eq!(log.max_seq(), Seq(model.max_seq()));
        prop_assert_eq!(log.gaps(), model.gaps());
        prop_assert_eq!(log.first_gap(), model.gaps().first().copied());
        prop_assert_eq!(
            log.terminal_seq(),
            model.terminal().and_then(|(seq, _)| seq)
        );
    } else {
        prop_assert_eq!(log.contiguous(), Seq::ZERO);
        prop_assert!(log.gaps().is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn by_seq_log_matches_the_model_for_any_arrival_order(
        inserts in prop::collection::vec(arb_event(40), 0..120)
    ) {
        check_against_model(LogOrder::BySeq, inserts)?;
    }

    #[test]
    fn by_time_log_matches_the_model_for_any_arrival_order(
        inserts in prop::collection::vec(arb_event(40), 0..120)
    ) {
        check_against_model(LogOrder::ByTime, inserts)?;
    }

    /// The same events delivered in two different orders, each possibly
    /// twice, give the same list and the same facts: what a person sees does
    /// not depend on which path (push or history) won the race.
    #[test]
    fn arrival_order_does_not_change_what_is_shown(
        seqs in prop::collection::vec(1u64..30, 1..40),
        kinds in prop::collection::vec(0..KINDS.len(), 40),
        shuffle_seed in any::<u64>(),
        order in prop_oneof![Just(LogOrder::BySeq), Just(LogOrder::ByTime)],
    ) {
        let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
        let events: Vec<Event> = distinct
            .iter()
            .enumerate()
            .map(|(i, &seq)| {
                let mut details = Map::new();
                details.insert("percentage".into(), json!(seq));
                Event {
                    id: EventId(format!("e{seq}")),
                    seq: Some(Seq(seq)),
                    kind: EventType::from(KINDS[kinds[i % kinds.len()]]),
                    message: String::new(),
                    happened_at: Timestamp(seq as i64 * 10),
                    sub_ms_ns: 0,
                    details,
                    status: None,
                }
            })
            .collect();
        let mut arrivals: Vec<Event> = events.iter().chain(events.iter()).cloned().collect();
        let mut rng = optrail_core::Rng::new(shuffle_seed);
        for i in (1..arrivals.len()).rev() {
            arrivals.swap(i, rng.below_or_eq(i as u64) as usize);
        }
        let interpretation = Arc::new(Interpretation::default());
        let mut sorted = EventLog::new(order, interpretation.clone());
        let mut shuffled = EventLog::new(order, interpretation);
        for e in events.iter().cloned() {
            sorted.insert(e);
        }
        for e in arrivals {
            shuffled.insert(e);
        }
        prop_assert_eq!(sorted.iter().collect::<Vec<_>>(), shuffled.iter().collect::<Vec<_>>());
        prop_assert_eq!(shuffled.duplicates(), events.len() as u64);
        prop_assert_eq!(sorted.status(), shuffled.status());
        prop_assert_eq!(sorted.progress(), shuffled.progress());
        prop_assert_eq!(sorted.is_complete(), shuffled.is_complete());
        prop_assert_eq!(sorted.contiguous(), shuffled.contiguous());
        prop_assert_eq!(sorted.gaps(), shuffled.gaps());
    }

    /// A seq far beyond the contiguous prefix is refused, never allocated.
    #[test]
    fn seqs_too_far_ahead_are_rejected(ahead in (MAX_AHEAD + 2)..u64::MAX) {
        let mut log = EventLog::new(LogOrder::BySeq, Arc::new(Interpretation::default()));
        let event = Event {
            id: EventId("x".into()),
            seq: Some(Seq(ahead)),
            kind: EventType::from("X"),
            message: String::new(),
            happened_at: Timestamp(0),
            sub_ms_ns: 0,
            details: Map::new(),
            status: None,
        };
        prop_assert_eq!(log.insert(event), Insert::Rejected(Rejection::TooFarAhead));
        prop_assert!(log.is_empty());
        prop_assert_eq!(log.gaps(), Vec::new());
    }
}
