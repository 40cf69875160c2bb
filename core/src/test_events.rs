//! Event builders for unit tests.

use serde_json::Map;

use crate::protocol::{Event, EventId, EventType, Seq};
use crate::timestamp::Timestamp;

/// An event with id `e{seq}`, the given seq and type, at `seq` seconds.
pub fn event(seq: u64, kind: &str) -> Event {
    Event {
        id: EventId(format!("e{seq}")),
        seq: Some(Seq(seq)),
        kind: EventType::from(kind),
        message: format!("step {seq}"),
        happened_at: Timestamp(seq as i64 * 1000),
        sub_ms_ns: 0,
        details: Map::new(),
        status: None,
    }
}
