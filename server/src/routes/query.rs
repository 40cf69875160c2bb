//! The query strings of the API as types: each parameter is checked while
//! the query is decoded, and a bad one is refused with `invalid_query` and
//! a message that names it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use optrail_core::Seq;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use crate::error::{Error, shorten};

/// A query string decoded as `T`. Unlike axum's `Query`, a refusal carries
/// the decoder's message as it is (`limit must be an integer from 1 to …`),
/// as an `invalid_query` error.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(QueryParams)
            .map_err(|e| Error::InvalidQuery(e.to_string()))
    }
}

/// `GET /operations/{id}/events?after=N&limit=M`.
#[derive(Debug, Clone, Deserialize)]
pub struct PageQuery {
    /// Events after this seq (the client's contiguous prefix); 0 for all.
    #[serde(default, deserialize_with = "after")]
    pub after: Seq,
    #[serde(default, deserialize_with = "limit")]
    limit: Option<u64>,
}

impl PageQuery {
    /// Events per page: 100 unless asked, at most `max`.
    pub fn limit(&self, max: u32) -> u32 {
        clamp(self.limit, 100, max)
    }
}

/// `GET /operations?limit=M&before=N&owner=O`.
#[derive(Debug, Clone, Deserialize)]
pub struct ListQuery {
    #[serde(default, deserialize_with = "limit")]
    limit: Option<u64>,
    /// Operations created before this one (its `num`), for the next page.
    #[serde(default, deserialize_with = "before")]
    pub before: Option<i64>,
    /// One owner's operations, for a publisher; a viewer's is ignored.
    pub owner: Option<String>,
}

impl ListQuery {
    /// Operations per page: 20 unless asked, at most `max`.
    pub fn limit(&self, max: u32) -> u32 {
        clamp(self.limit, 20, max)
    }
}

/// `GET /ws?access_token=…`: a browser's WebSocket cannot send headers.
#[derive(Debug, Clone, Deserialize)]
pub struct SocketQuery {
    pub access_token: Option<String>,
}

/// A `limit` as asked (at least 1), clamped to `max`, or `default`.
fn clamp(limit: Option<u64>, default: u32, max: u32) -> u32 {
    limit.map_or(default, |n| n.min(u64::from(max)) as u32)
}

/// Seqs are stored as SQLite integers: i64::MAX is the largest there is.
fn after<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Seq, D::Error> {
    integer(deserializer, "after", 0, i64::MAX as u64).map(Seq)
}

fn before<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    integer(deserializer, "before", 1, i64::MAX as u64).map(|n| Some(n as i64))
}

fn limit<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    integer(deserializer, "limit", 1, u64::MAX).map(Some)
}

/// The parameter `name` as an integer in `min..=max`.
fn integer<'de, D: Deserializer<'de>>(
    deserializer: D,
    name: &str,
    min: u64,
    max: u64,
) -> Result<u64, D::Error> {
    let raw = String::deserialize(deserializer)?;
    raw.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            D::Error::custom(format!(
                "{name} must be an integer from {min} to {max}, not {:?}",
                shorten(&raw, 40)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(query: &str) -> Result<PageQuery, String> {
        serde_urlencoded::from_str(query).map_err(|e| e.to_string())
    }

    #[test]
    fn absent_parameters_take_their_defaults_and_limits_are_clamped() {
        let query = page("").unwrap();
        assert_eq!((query.after, query.limit(1000)), (Seq(0), 100));
        let query = page("after=7&limit=5000&other=x").unwrap();
        assert_eq!((query.after, query.limit(1000)), (Seq(7), 1000));
        let list: ListQuery = serde_urlencoded::from_str("before=3&owner=o").unwrap();
        assert_eq!((list.limit(50), list.before), (20, Some(3)));
        assert_eq!(list.owner.as_deref(), Some("o"));
    }

    #[test]
    fn a_bad_parameter_is_named_with_its_range_and_value() {
        assert_eq!(
            page("after=-1").unwrap_err(),
            "after must be an integer from 0 to 9223372036854775807, not \"-1\""
        );
        assert_eq!(
            page("limit=0").unwrap_err(),
            "limit must be an integer from 1 to 18446744073709551615, not \"0\""
        );
        let long = "9".repeat(60);
        assert!(
            page(&format!("after={long}"))
                .unwrap_err()
                .ends_with("99…\"")
        );
    }
}
