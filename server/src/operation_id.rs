//! The reference server's operation ids: 32 lowercase hex digits, checked
//! wherever one comes in (a path, a `subscribe` frame, a publisher's
//! create request) by the one parser here.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use optrail_core::OperationId;

use crate::error::{Error, shorten};

/// An operation id as the reference server mints them: 32 lowercase hex.
pub fn parse_operation_id(raw: &str) -> Result<OperationId, Error> {
    if raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(OperationId(raw.to_owned()))
    } else {
        Err(Error::InvalidOperationId(shorten(raw, 80)))
    }
}

/// The `{id}` of `/operations/{id}…`, parsed by [`parse_operation_id`]:
/// a malformed one is refused with `invalid_operation_id` before a
/// handler sees it.
#[derive(Debug, Clone)]
pub struct OperationPath(pub OperationId);

impl<S: Send + Sync> FromRequestParts<S> for OperationPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await?;
        parse_operation_id(&raw).map(OperationPath)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_32_lowercase_hex_digits_are_an_id() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(parse_operation_id(id).unwrap().as_str(), id);
        for raw in [
            "",
            "xyz",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcdef0",
            "0123456789abcdef0123456789abcdeé",
        ] {
            let error = parse_operation_id(raw).unwrap_err();
            assert_eq!(error.code(), "invalid_operation_id", "{raw:?}");
        }
    }
}
