//! The ordered, deduplicated event log of one operation.
//!
//! Events arrive from two sources in any order — live pushes and history
//! pages — and may arrive twice. The log is the one place that turns them
//! into the list a person sees: ordered, each event once, with the facts the
//! session needs to decide what to fetch (the contiguous prefix, the gaps)
//! and what to show (progress, terminal status).

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::id_set::IdSet;
use crate::interpretation::Interpretation;
use crate::protocol::{Event, EventId, Seq, Status};
use crate::timestamp::Timestamp;

/// How a log orders its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogOrder {
    /// By the server's gap-free `seq`: the normal mode.
    #[default]
    BySeq,
    /// By `(happenedAt, id)`, deduped by id: for backends that speak the
    /// seed's format and give no `seq`. Gaps cannot be detected in this mode.
    ByTime,
}

/// What became of an inserted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// New: inserted in order.
    Added,
    /// Same seq or same id as an event already held: dropped and counted.
    Duplicate,
    /// Refused, and why: the event is not kept.
    Rejected(Rejection),
}

/// Why an event was refused. Refusals are the sender's fault and are
/// reported, never panicked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the event has no seq")]
    /// An event without seq in a log ordered by seq.
    MissingSeq,
    #[error("seq 0 is not a valid event number")]
    /// Seq 0: seqs start at 1.
    ZeroSeq,
    #[error("seq is implausibly far ahead of the events held")]
    /// A seq so far beyond the contiguous prefix that holding it would cost unbounded memory.
    TooFarAhead,
}

/// How far past the contiguous prefix a seq may be before it is refused.
/// Bounds the slot table (4 bytes a slot) against a hostile or corrupt seq.
pub const MAX_AHEAD: u64 = 1 << 22;

/// The ordered, deduplicated events of one operation. Inserting costs O(1)
/// amortized by seq (O(log n) in [`LogOrder::ByTime`]), whatever the order.
#[derive(Debug, Clone)]
pub struct EventLog {
    order: LogOrder,
    interpretation: Arc<Interpretation>,
    /// Arrival order; the order indexes below point into it.
    events: Chunks,
    /// `slots[s - 1]` is `index + 1` of the event with seq `s`, 0 if missing.
    slots: Vec<u32>,
    /// Bit `s - 1` is set when seq `s` is held: the same facts as `slots`
    /// in a thirty-second of the memory, so the duplicate check of a
    /// random seq stays in cache (128 KB for a million events).
    held: Vec<u64>,
    by_time: BTreeMap<(Timestamp, u32, EventId), u32>,
    /// The ids held, by a 32-bit hash and the index of the event holding
    /// each: no cloned strings, and a new id is usually known new without
    /// touching a big table.
    ids: IdSet,
    /// Every seq in `1..=contiguous` is held.
    contiguous: u64,
    max_seq: u64,
    duplicates: u64,
    /// The newest progress report, keyed by its position so a late old
    /// report does not overwrite a newer one.
    progress: Option<(OrderKey, f64)>,
    terminal: Option<(OrderKey, Status)>,
    /// Changes whenever the events held change (an insert or a clear), so a
    /// renderer can tell an untouched log from a changed one in O(1).
    generation: u64,
}

/// An event id's 32-bit hash for the [`IdSet`]: both halves of Fx's hash
/// folded together. Fx hashes in `usize` words, so on wasm32 (the widget)
/// its high half is always zero; taking only that half once gave every id
/// the same hash there, and each insert scanned every id held (a history of
/// 100 000 events took over 30 s to load instead of under one).
fn id_hash(id: &EventId) -> u32 {
    let hash = FxBuildHasher.hash_one(id);
    (hash ^ (hash >> 32)) as u32
}

/// Events in arrival order, in fixed-size chunks: growing never moves the
/// events already held (a million events are ~150 MB to copy).
#[derive(Debug, Clone, Default)]
struct Chunks {
    chunks: Vec<Vec<Event>>,
    len: usize,
}

const CHUNK: usize = 256;

impl Chunks {
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, event: Event) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut().expect("a chunk").push(event);
        self.len += 1;
    }

    fn get(&self, index: u32) -> &Event {
        let index = index as usize;
        &self.chunks[index / CHUNK][index % CHUNK]
    }
}

/// An event's position in the log's order, comparable across both modes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum OrderKey {
    Seq(u64),
    Time(Timestamp, u32, EventId),
}

impl EventLog {
    /// An empty log kept in `order`, reading event types with `interpretation`.
    pub fn new(order: LogOrder, interpretation: Arc<Interpretation>) -> Self {
        Self {
            order,
            interpretation,
            events: Chunks::default(),
            slots: Vec::new(),
            held: Vec::new(),
            by_time: BTreeMap::new(),
            ids: IdSet::default(),
            contiguous: 0,
            max_seq: 0,
            duplicates: 0,
            progress: None,
            terminal: None,
            generation: 0,
        }
    }

    /// How the log orders its events.
    pub fn order(&self) -> LogOrder {
        self.order
    }

    /// Adds `event` where it belongs, unless it is held already.
    pub fn insert(&mut self, event: Event) -> Insert {
        let key = match self.order {
            LogOrder::BySeq => match self.check_seq(&event) {
                Ok(seq) => OrderKey::Seq(seq),
                Err(insert) => return insert,
            },
            LogOrder::ByTime => {
                OrderKey::Time(event.happened_at, event.sub_ms_ns, event.id.clone())
            }
        };
        let index = u32::try_from(self.events.len()).expect("fewer than 2^32 events");
        if !self.claim_id(&event.id, index) {
            self.duplicates += 1;
            return Insert::Duplicate;
        }
        self.note_meaning(&key, &event);
        match key {
            OrderKey::Seq(seq) => self.place_by_seq(seq, index),
            OrderKey::Time(at, sub_ms, id) => {
                self.by_time.insert((at, sub_ms, id), index);
            }
        }
        self.events.push(event);
        self.generation += 1;
        Insert::Added
    }

    /// Records `id` as held by the event about to be stored at `index`;
    /// false if an event with that id is held already.
    fn claim_id(&mut self, id: &EventId, index: u32) -> bool {
        let hash = id_hash(id);
        let events = &self.events;
        self.ids.claim(hash, index, |at| events.get(at).id == *id)
    }

    /// Validates a seq-ordered event's seq and reports a duplicate by seq.
    fn check_seq(&mut self, event: &Event) -> Result<u64, Insert> {
        let seq = match event.seq {
            None => return Err(Insert::Rejected(Rejection::MissingSeq)),
            Some(Seq(0)) => return Err(Insert::Rejected(Rejection::ZeroSeq)),
            Some(Seq(s)) => s,
        };
        if seq - 1 > self.contiguous + MAX_AHEAD {
            return Err(Insert::Rejected(Rejection::TooFarAhead));
        }
        let held = self.holds_seq(seq);
        if seq <= self.contiguous || held {
            self.duplicates += 1;
            return Err(Insert::Duplicate);
        }
        Ok(seq)
    }

    fn holds_seq(&self, seq: u64) -> bool {
        let at = (seq - 1) as usize;
        self.held
            .get(at / 64)
            .is_some_and(|&word| word & (1 << (at % 64)) != 0)
    }

    fn place_by_seq(&mut self, seq: u64, index: u32) {
        let at = (seq - 1) as usize;
        if self.slots.len() <= at {
            self.slots.resize(at + 1, 0);
            self.held.resize(at / 64 + 1, 0);
        }
        self.slots[at] = index + 1;
        self.held[at / 64] |= 1 << (at % 64);
        self.max_seq = self.max_seq.max(seq);
        while self.holds_seq(self.contiguous + 1) {
            self.contiguous += 1;
        }
    }

    /// Keeps the newest progress report and the first terminal event in
    /// order. The cheap position test comes first: out of order, most
    /// events cannot change either.
    fn note_meaning(&mut self, key: &OrderKey, event: &Event) {
        if self.progress.as_ref().is_none_or(|(k, _)| k < key)
            && let Some(pct) = self.interpretation.progress_of(event)
        {
            self.progress = Some((key.clone(), pct));
        }
        // The first terminal event *in order* counts, whichever arrived
        // first, so the status never depends on which path won a race.
        if self.terminal.as_ref().is_none_or(|(k, _)| key < k)
            && let Some(status) = event
                .status
                .filter(|s| s.is_terminal())
                .or_else(|| self.interpretation.terminal_status(&event.kind))
        {
            self.terminal = Some((key.clone(), status));
        }
    }

    /// Forgets everything: the stream was rebuilt under a new epoch and its
    /// seqs no longer line up with what was held.
    pub fn clear(&mut self) {
        let generation = self.generation + 1;
        *self = Self::new(self.order, self.interpretation.clone());
        self.generation = generation;
    }

    /// Changes whenever the events held change; equal generations of one
    /// log mean the same events.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many rows a timeline of this log has: in seq order one per seq up
    /// to the highest held (a missing seq is a row still loading), in time
    /// order one per event.
    pub fn rows(&self) -> usize {
        match self.order {
            LogOrder::BySeq => self.max_seq as usize,
            LogOrder::ByTime => self.by_time.len(),
        }
    }

    /// The event in row `row` (0-based, see [`EventLog::rows`]); `None` for
    /// a seq not held yet or a row past the end. O(1) in seq order; in time
    /// order it walks from the nearer end, so rows near the tail (where a
    /// live timeline is) stay cheap.
    pub fn row(&self, row: usize) -> Option<&Event> {
        match self.order {
            LogOrder::BySeq => match self.slots.get(row) {
                Some(&slot) if slot != 0 => Some(self.events.get(slot - 1)),
                _ => None,
            },
            LogOrder::ByTime => {
                let len = self.by_time.len();
                if row >= len {
                    None
                } else if row < len / 2 {
                    self.by_time.values().nth(row)
                } else {
                    self.by_time.values().nth_back(len - 1 - row)
                }
                .map(|&index| self.events.get(index))
            }
        }
    }

    /// Events held in rows `0..rows()`: fewer than the rows while earlier
    /// seqs are still loading.
    pub fn held(&self) -> usize {
        self.events.len()
    }

    /// The events in order, each once.
    pub fn iter(&self) -> Box<dyn Iterator<Item = &Event> + '_> {
        match self.order {
            LogOrder::BySeq => Box::new(
                self.slots
                    .iter()
                    .filter(|&&slot| slot != 0)
                    .map(|&slot| self.events.get(slot - 1)),
            ),
            LogOrder::ByTime => {
                Box::new(self.by_time.values().map(|&index| self.events.get(index)))
            }
        }
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Events dropped because they were held already.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The highest `k` such that every seq in `1..=k` is held.
    pub fn contiguous(&self) -> Seq {
        Seq(self.contiguous)
    }

    /// The highest seq held, `Seq(0)` when empty.
    pub fn max_seq(&self) -> Seq {
        Seq(self.max_seq)
    }

    /// The missing seq ranges (inclusive) below the highest seq held.
    pub fn gaps(&self) -> Vec<(Seq, Seq)> {
        let mut gaps = Vec::new();
        let mut start = None;
        for seq in self.contiguous + 1..=self.max_seq {
            match (self.holds_seq(seq), start) {
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

    /// The first missing range: `(contiguous + 1, next held - 1)`.
    pub fn first_gap(&self) -> Option<(Seq, Seq)> {
        if self.max_seq <= self.contiguous {
            return None;
        }
        let next_held = self
            .next_held(self.contiguous + 1)
            .expect("max_seq is held");
        Some((Seq(self.contiguous + 1), Seq(next_held - 1)))
    }

    /// The last missing range below the highest seq held: where a history
    /// loaded newest page first goes on backwards from.
    pub fn last_gap(&self) -> Option<(Seq, Seq)> {
        if self.max_seq <= self.contiguous {
            return None;
        }
        let end = self
            .prev_missing(self.max_seq - 1)
            .expect("a seq above contiguous is missing");
        let start = self.prev_held(end).map_or(self.contiguous + 1, |s| s + 1);
        Some((Seq(start), Seq(end)))
    }

    /// The lowest held seq `>= from` (up to `max_seq`), a word of the
    /// bitset at a time: a history loaded newest page first leaves a gap of
    /// up to [`MAX_AHEAD`] seqs that this must cross on every live event.
    fn next_held(&self, from: u64) -> Option<u64> {
        let mut at = (from - 1) as usize;
        let end = self.max_seq as usize;
        while at < end {
            let word = self.held[at / 64] >> (at % 64);
            if word != 0 {
                let found = at + word.trailing_zeros() as usize;
                return (found < end).then_some(found as u64 + 1);
            }
            at = (at / 64 + 1) * 64;
        }
        None
    }

    /// The highest held seq `<= to` above the contiguous prefix.
    fn prev_held(&self, to: u64) -> Option<u64> {
        self.prev_matching(to, |word| word)
    }

    /// The highest missing seq `<= to` above the contiguous prefix.
    fn prev_missing(&self, to: u64) -> Option<u64> {
        self.prev_matching(to, |word| !word)
    }

    /// The highest seq in `contiguous + 1 ..= to` whose bit, seen through
    /// `view`, is set; scanned down a word at a time.
    fn prev_matching(&self, to: u64, view: impl Fn(u64) -> u64) -> Option<u64> {
        let floor = self.contiguous as usize; // 0-based index of contiguous + 1
        let mut at = to as usize; // one past the 0-based index of `to`
        while at > floor {
            let top = at - 1;
            let word = self.held[top / 64];
            // Keep the bits at or below `top` in this word.
            let mask = if top % 64 == 63 {
                !0
            } else {
                (1u64 << (top % 64 + 1)) - 1
            };
            let bits = view(word) & mask;
            if bits != 0 {
                let found = (top / 64) * 64 + 63 - bits.leading_zeros() as usize;
                return (found >= floor).then_some(found as u64 + 1);
            }
            at = (top / 64) * 64;
        }
        None
    }

    /// The latest progress report in percent (0–100); 100 once succeeded.
    pub fn progress(&self) -> Option<f64> {
        match self.terminal_status() {
            Some(Status::Succeeded) => Some(100.0),
            _ => self.progress.as_ref().map(|(_, pct)| *pct),
        }
    }

    /// The status a terminal event declared, if one arrived.
    pub fn terminal_status(&self) -> Option<Status> {
        self.terminal.as_ref().map(|(_, status)| *status)
    }

    /// The seq of the terminal event, if one arrived (seq order only).
    pub fn terminal_seq(&self) -> Option<Seq> {
        match self.terminal {
            Some((OrderKey::Seq(seq), _)) => Some(Seq(seq)),
            _ => None,
        }
    }

    /// True when a terminal event arrived and nothing before it is missing:
    /// the stream is finished and needs no subscription.
    pub fn is_complete(&self) -> bool {
        match &self.terminal {
            Some((OrderKey::Seq(seq), _)) => self.contiguous >= *seq,
            Some((OrderKey::Time(..), _)) => true,
            None => false,
        }
    }

    /// The status the events imply: the terminal one, else running once
    /// anything happened.
    pub fn status(&self) -> Status {
        match self.terminal_status() {
            Some(status) => status,
            None if self.is_empty() => Status::NotStarted,
            None => Status::Running,
        }
    }

    /// The last event in order (the current step).
    pub fn last(&self) -> Option<&Event> {
        match self.order {
            LogOrder::BySeq if self.max_seq > 0 => {
                let slot = self.slots[(self.max_seq - 1) as usize];
                Some(self.events.get(slot - 1))
            }
            LogOrder::BySeq => None,
            LogOrder::ByTime => self
                .by_time
                .values()
                .next_back()
                .map(|&index| self.events.get(index)),
        }
    }

    /// The first event in order.
    pub fn first(&self) -> Option<&Event> {
        self.iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_events::event;

    fn log() -> EventLog {
        EventLog::new(LogOrder::BySeq, Arc::new(Interpretation::default()))
    }

    #[test]
    fn out_of_order_inserts_come_out_in_seq_order_with_gaps_known() {
        let mut log = log();
        for seq in [5, 1, 3, 2] {
            assert_eq!(log.insert(event(seq, "ProgressUpdated")), Insert::Added);
        }
        let seqs: Vec<_> = log.iter().map(|e| e.seq.unwrap().0).collect();
        assert_eq!(seqs, [1, 2, 3, 5]);
        assert_eq!(log.contiguous(), Seq(3));
        assert_eq!(log.gaps(), [(Seq(4), Seq(4))]);
        assert_eq!(log.first_gap(), Some((Seq(4), Seq(4))));
        assert_eq!(log.insert(event(4, "ProgressUpdated")), Insert::Added);
        assert_eq!(log.contiguous(), Seq(5));
        assert!(log.gaps().is_empty());
    }

    #[test]
    fn id_hashes_of_server_shaped_ids_are_spread() {
        // The reference server's ids: 16 random hex digits. (The wasm32
        // case itself is measured by `make bench-live`.)
        let distinct: std::collections::HashSet<u32> = (0..1_000)
            .map(|i| id_hash(&EventId(format!("{i:016x}"))))
            .collect();
        assert!(distinct.len() > 990, "{} distinct hashes", distinct.len());
    }

    #[test]
    fn gaps_are_found_across_words_from_both_ends() {
        let mut log = log();
        // Newest page first: 1..=3 and 200..=300 held, 4..=199 missing.
        for seq in (1..=3).chain(200..=300) {
            log.insert(event(seq, "ProgressUpdated"));
        }
        log.insert(event(500, "ProgressUpdated"));
        assert_eq!(log.first_gap(), Some((Seq(4), Seq(199))));
        assert_eq!(log.last_gap(), Some((Seq(301), Seq(499))));
        assert_eq!(log.gaps(), [(Seq(4), Seq(199)), (Seq(301), Seq(499))]);
        for seq in 301..=499 {
            log.insert(event(seq, "ProgressUpdated"));
        }
        assert_eq!(log.last_gap(), Some((Seq(4), Seq(199))));
        log.insert(event(64, "ProgressUpdated"));
        assert_eq!(log.last_gap(), Some((Seq(65), Seq(199))));
        assert_eq!(log.first_gap(), Some((Seq(4), Seq(63))));
        for seq in (4..=63).chain(65..=199) {
            log.insert(event(seq, "ProgressUpdated"));
        }
        assert_eq!((log.first_gap(), log.last_gap()), (None, None));
        assert_eq!(log.contiguous(), Seq(500));
    }

    #[test]
    fn rows_are_seqs_with_missing_ones_empty_and_the_generation_moves() {
        let mut log = log();
        assert_eq!((log.rows(), log.generation()), (0, 0));
        log.insert(event(3, "ProgressUpdated"));
        log.insert(event(1, "ProcessingStarted"));
        assert_eq!(log.rows(), 3);
        assert_eq!(log.held(), 2);
        assert_eq!(log.row(0).and_then(|e| e.seq), Some(Seq(1)));
        assert!(log.row(1).is_none());
        assert_eq!(log.row(2).and_then(|e| e.seq), Some(Seq(3)));
        assert!(log.row(3).is_none());
        let before = log.generation();
        log.insert(event(1, "ProcessingStarted"));
        assert_eq!(log.generation(), before, "a duplicate changes nothing");
        log.clear();
        assert!(log.generation() > before);
        assert_eq!(log.rows(), 0);
    }

    #[test]
    fn duplicates_by_seq_or_by_id_are_dropped_and_counted() {
        let mut log = log();
        log.insert(event(1, "ProcessingStarted"));
        assert_eq!(log.insert(event(1, "ProcessingStarted")), Insert::Duplicate);
        let mut same_id = event(2, "ProgressUpdated");
        same_id.id = EventId("e1".into());
        assert_eq!(log.insert(same_id), Insert::Duplicate);
        assert_eq!(log.duplicates(), 2);
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn terminal_is_complete_only_without_gaps_before_it() {
        let mut log = log();
        log.insert(event(1, "ProcessingStarted"));
        log.insert(event(3, "PaymentSucceeded"));
        assert_eq!(log.status(), Status::Succeeded);
        assert!(!log.is_complete());
        log.insert(event(2, "ProgressUpdated"));
        assert!(log.is_complete());
        assert_eq!(log.progress(), Some(100.0));
    }

    #[test]
    fn an_event_carrying_a_terminal_status_ends_any_kind_without_configuration() {
        let mut log = log();
        log.insert(event(1, "DeployStarted"));
        let mut done = event(2, "DeployRolledBack");
        assert_eq!(log.status(), Status::Running);
        done.status = Some(Status::Failed);
        log.insert(done);
        assert_eq!(log.status(), Status::Failed);
        assert!(log.is_complete());
    }

    #[test]
    fn first_terminal_in_order_wins_whatever_arrives_first() {
        let mut log = log();
        log.insert(event(3, "PaymentFailed"));
        log.insert(event(1, "ProcessingStarted"));
        log.insert(event(2, "PaymentSucceeded"));
        assert_eq!(log.status(), Status::Succeeded);
        assert_eq!(log.terminal_seq(), Some(Seq(2)));
        assert!(log.is_complete());
    }

    #[test]
    fn hostile_seqs_are_rejected_not_allocated() {
        let mut log = log();
        let mut e = event(1, "X");
        e.seq = Some(Seq(u64::MAX));
        assert_eq!(log.insert(e), Insert::Rejected(Rejection::TooFarAhead));
        let mut e = event(1, "X");
        e.seq = Some(Seq(0));
        assert_eq!(log.insert(e), Insert::Rejected(Rejection::ZeroSeq));
        let mut e = event(1, "X");
        e.seq = None;
        assert_eq!(log.insert(e), Insert::Rejected(Rejection::MissingSeq));
        assert!(log.is_empty());
    }

    #[test]
    fn compat_mode_orders_by_time_then_id_and_dedupes_by_id() {
        let mut log = EventLog::new(LogOrder::ByTime, Arc::new(Interpretation::default()));
        let mut a = event(1, "ProcessingStarted");
        a.seq = None;
        a.happened_at = Timestamp(2_000);
        let mut b = event(2, "ProgressUpdated");
        b.seq = None;
        b.happened_at = Timestamp(1_000);
        log.insert(a.clone());
        log.insert(b);
        assert_eq!(log.insert(a), Insert::Duplicate);
        let ids: Vec<_> = log.iter().map(|e| e.id.0.clone()).collect();
        assert_eq!(ids, ["e2", "e1"]);
        let rows: Vec<_> = (0..log.rows())
            .map(|r| log.row(r).unwrap().id.0.clone())
            .collect();
        assert_eq!(rows, ids);
    }
}
