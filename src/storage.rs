//! The tracked set in localStorage, under a versioned key, so a reload, a
//! second tab or a crash resumes exactly where the server is.
//!
//! Several tabs (or widgets sharing a namespace) may write the same key.
//! A write therefore merges with what is stored instead of replacing it,
//! and what a tab forgot travels with the set (a bounded list of
//! tombstones), so that a merge neither loses another tab's operation nor
//! brings back one that was forgotten.

use optrail_core::shared_set::SharedSet;
use optrail_core::{OperationId, TrackedOperation};
use serde::{Deserialize, Serialize};

/// Bumped when the stored shape changes incompatibly; older data is reset
/// with a notice rather than misread.
pub const VERSION: u32 = 1;

/// What is stored under the key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    version: u32,
    /// The tracked set, newest first.
    pub operations: Vec<TrackedOperation>,
    /// Ids forgotten recently, by any tab.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forgotten: Vec<OperationId>,
}

impl Stored {
    /// `ours` merged with this stored set (see `optrail_core::shared_set`).
    pub fn merged(&self, ours: &[TrackedOperation], forgotten: &[OperationId]) -> Stored {
        let theirs = SharedSet {
            operations: self.operations.clone(),
            forgotten: self.forgotten.clone(),
        };
        let merged = theirs.merged(ours, forgotten);
        Stored {
            version: VERSION,
            operations: merged.operations,
            forgotten: merged.forgotten,
        }
    }
}

/// The localStorage key for a namespace.
pub fn key(namespace: &str) -> String {
    format!("{namespace}:tracked")
}

/// What loading found.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub operations: Vec<TrackedOperation>,
    /// Set when stored data was unreadable and has been reset.
    pub notice: Option<String>,
}

/// Parses a stored value. `Err` carries a sentence for the notice.
pub fn parse(raw: &str) -> Result<Stored, String> {
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|_| "Saved operations were unreadable and have been reset.".to_owned())?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(VERSION)) {
        return Err(
            "Saved operations came from another version of optrail and have been reset.".into(),
        );
    }
    // Read from the text again, not from `value`: decoding from a parsed
    // tree would put a second decoder for the stored shape into the bundle
    // (nothing else in the widget decodes from a tree), for a string of a
    // few hundred bytes.
    serde_json::from_str(raw)
        .map_err(|_| "Saved operations were damaged and have been reset.".to_owned())
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Reads the tracked set; corrupt or foreign data is reset, never fatal.
pub fn load(namespace: &str) -> Loaded {
    let Some(storage) = local_storage() else {
        return Loaded {
            operations: Vec::new(),
            notice: Some(
                "This browser does not let optrail remember your operations between visits.".into(),
            ),
        };
    };
    let key = key(namespace);
    match storage.get_item(&key).ok().flatten() {
        None => Loaded {
            operations: Vec::new(),
            notice: None,
        },
        Some(raw) => match parse(&raw) {
            Ok(stored) => Loaded {
                operations: stored.operations,
                notice: None,
            },
            Err(notice) => {
                let _ = storage.remove_item(&key);
                Loaded {
                    operations: Vec::new(),
                    notice: Some(notice),
                }
            }
        },
    }
}

/// Writes a tab's tracked set, merged with what another tab may have
/// stored meanwhile (see the module doc). `None` when storage refused it;
/// else the set as stored, which may hold operations this tab has not
/// heard of yet.
pub fn save(
    namespace: &str,
    operations: &[TrackedOperation],
    forgotten: &[OperationId],
) -> Option<Vec<TrackedOperation>> {
    let storage = local_storage()?;
    let key = key(namespace);
    let stored = storage
        .get_item(&key)
        .ok()
        .flatten()
        .and_then(|raw| parse(&raw).ok())
        .unwrap_or_default();
    let merged = stored.merged(operations, forgotten);
    let json = serde_json::to_string(&merged).ok()?;
    storage.set_item(&key, &json).ok()?;
    Some(merged.operations)
}

/// Writes a set exactly as given (after a merge with another tab's).
pub fn write(namespace: &str, stored: &Stored) -> bool {
    let (Some(storage), Ok(json)) = (local_storage(), serde_json::to_string(stored)) else {
        return false;
    };
    storage.set_item(&key(namespace), &json).is_ok()
}
