//! The tracked set as several tabs (or widgets sharing a namespace) keep
//! it in one place: each write merges with what another wrote meanwhile,
//! and forgotten ids travel with the set as tombstones, so that a merge
//! neither loses another tab's operation nor brings back a forgotten one.
//! Pure, so the rule is tested natively; the widget only stores the result.

use crate::protocol::OperationId;
use crate::session::TrackedOperation;

/// Forgotten ids kept with the set: enough to outlive any race between
/// tabs, few enough to stay small.
pub const TOMBSTONES: usize = 100;

/// A tracked set and its tombstones, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SharedSet {
    /// The tracked set, newest first.
    pub operations: Vec<TrackedOperation>,
    /// Ids forgotten recently, by any tab.
    pub forgotten: Vec<OperationId>,
}

impl SharedSet {
    /// `ours` (a tab's own set, which wins and comes first) merged with
    /// this stored set: every operation of either, except those either
    /// side forgot (`forgotten` being ours). An id tracked again is no
    /// longer a tombstone.
    pub fn merged(&self, ours: &[TrackedOperation], forgotten: &[OperationId]) -> SharedSet {
        let gone = |id: &OperationId| forgotten.contains(id) || self.forgotten.contains(id);
        let mut operations = ours.to_vec();
        for theirs in &self.operations {
            if !gone(&theirs.id) && !operations.iter().any(|o| o.id == theirs.id) {
                operations.push(theirs.clone());
            }
        }
        let mut tombstones: Vec<OperationId> = forgotten.to_vec();
        for id in &self.forgotten {
            if !tombstones.contains(id) {
                tombstones.push(id.clone());
            }
        }
        tombstones.retain(|id| !operations.iter().any(|o| &o.id == id));
        tombstones.truncate(TOMBSTONES);
        SharedSet {
            operations,
            forgotten: tombstones,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(ids: &[&str]) -> Vec<TrackedOperation> {
        ids.iter()
            .map(|id| TrackedOperation::by_id(OperationId::from(*id)))
            .collect()
    }

    fn ids(set: &SharedSet) -> Vec<&str> {
        set.operations.iter().map(|o| o.id.as_str()).collect()
    }

    #[test]
    fn a_write_keeps_what_another_tab_stored_meanwhile() {
        let theirs = SharedSet {
            operations: ops(&["b"]),
            forgotten: Vec::new(),
        };
        assert_eq!(ids(&theirs.merged(&ops(&["a"]), &[])), ["a", "b"]);
    }

    #[test]
    fn what_either_side_forgot_stays_forgotten() {
        let theirs = SharedSet {
            operations: ops(&["b", "c"]),
            forgotten: vec![OperationId::from("d")],
        };
        let merged = theirs.merged(&ops(&["a"]), &[OperationId::from("c")]);
        assert_eq!(ids(&merged), ["a", "b"]);
        assert_eq!(
            merged.forgotten,
            [OperationId::from("c"), OperationId::from("d")]
        );
        // A tombstone of theirs does not drop ours: tracked again here.
        let merged = theirs.merged(&ops(&["d"]), &[]);
        assert_eq!(ids(&merged), ["d", "b", "c"]);
        assert!(merged.forgotten.is_empty());
    }

    #[test]
    fn tombstones_are_bounded() {
        let forgotten: Vec<OperationId> = (0..TOMBSTONES + 20)
            .map(|n| OperationId(format!("f{n}")))
            .collect();
        let merged = SharedSet::default().merged(&[], &forgotten);
        assert_eq!(merged.forgotten.len(), TOMBSTONES);
        assert_eq!(merged.forgotten[0], forgotten[0], "the newest are kept");
    }
}
