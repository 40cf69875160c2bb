//! The tracked set in localStorage, under a versioned key, so a reload, a
//! second tab or a crash resumes exactly where the server is.

use optrail_core::TrackedOperation;
use serde::{Deserialize, Serialize};

/// Bumped when the stored shape changes incompatibly; older data is reset
/// with a notice rather than misread.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    operations: Vec<TrackedOperation>,
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
pub fn parse(raw: &str) -> Result<Vec<TrackedOperation>, String> {
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
    let stored: Stored = serde_json::from_str(raw)
        .map_err(|_| "Saved operations were damaged and have been reset.".to_owned())?;
    Ok(stored.operations)
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
            Ok(operations) => Loaded {
                operations,
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

/// Writes the tracked set. Returns false when storage refused it.
pub fn save(namespace: &str, operations: &[TrackedOperation]) -> bool {
    let Some(storage) = local_storage() else {
        return false;
    };
    let stored = Stored {
        version: VERSION,
        operations: operations.to_vec(),
    };
    let Ok(json) = serde_json::to_string(&stored) else {
        return false;
    };
    storage.set_item(&key(namespace), &json).is_ok()
}
