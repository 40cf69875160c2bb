//! Who is asking, and what they may see.
//!
//! Two kinds of callers reach the server. A **publisher** is the host's own
//! backend: it presents the API key the server was started with and may
//! create operations for any owner, append to them and read them all. A
//! **viewer** is a person's browser: it presents a token the host's backend
//! minted (see [`crate::token`]) naming one owner and what it may do, and it
//! sees that owner's operations only. Anonymous callers exist only in demo
//! mode, where they are viewers of the [`DEMO_OWNER`].
//!
//! Both credentials travel as `Authorization: Bearer …`; a browser's
//! WebSocket cannot set headers, so `/ws` also reads `?access_token=`.

use std::fmt;
use std::time::SystemTime;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::Error;
use crate::token::TokenVerifier;

/// Whose operations these are: the `sub` of a viewer's token, the `owner`
/// a publisher names. Opaque to the server (a user id, a tenant id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(String);

/// The owner of the demo's operations and of anonymous viewers.
pub const DEMO_OWNER: &str = "demo";

/// Owners are ids, not prose: this keeps them out of the way of logs and
/// SQL indexes.
const MAX_OWNER_CHARS: usize = 128;

impl Owner {
    pub fn parse(raw: &str) -> Result<Owner, String> {
        let chars = raw.chars().count();
        if chars == 0 || chars > MAX_OWNER_CHARS || raw.chars().any(char::is_control) {
            return Err(format!(
                "an owner is 1 to {MAX_OWNER_CHARS} characters without control characters"
            ));
        }
        Ok(Owner(raw.to_owned()))
    }

    pub fn demo() -> Owner {
        Owner(DEMO_OWNER.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a viewer may do, from its token's `scope` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// List, read, fetch events, subscribe.
    Read,
    /// `DELETE /operations/{id}`.
    Cancel,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Cancel => "cancel",
        }
    }
}

/// A set of [`Scope`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes {
    pub read: bool,
    pub cancel: bool,
}

impl Scopes {
    pub const ALL: Scopes = Scopes {
        read: true,
        cancel: true,
    };

    /// OAuth's convention: scope names separated by spaces; unknown names
    /// are ignored so that a host may mint tokens for other services too.
    pub fn parse(claim: &str) -> Scopes {
        claim
            .split_ascii_whitespace()
            .fold(Scopes::default(), |scopes, name| match name {
                "read" => Scopes {
                    read: true,
                    ..scopes
                },
                "cancel" => Scopes {
                    cancel: true,
                    ..scopes
                },
                _ => scopes,
            })
    }

    pub fn has(self, scope: Scope) -> bool {
        match scope {
            Scope::Read => self.read,
            Scope::Cancel => self.cancel,
        }
    }

    /// The claim that [`Scopes::parse`] reads back.
    pub fn claim(self) -> String {
        [Scope::Read, Scope::Cancel]
            .into_iter()
            .filter(|s| self.has(*s))
            .map(Scope::name)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A person's browser, acting for one owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub owner: Owner,
    pub scopes: Scopes,
    /// When its token stops being valid; `None` for demo-mode anonymity.
    pub expires_at: Option<SystemTime>,
}

/// An authenticated request's caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Publisher,
    Viewer(Viewer),
}

/// Which operations a caller may see: what the store filters by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// A publisher, or the server itself.
    All,
    Owner(Owner),
}

impl Audience {
    /// The owner to filter by, if any.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Audience::All => None,
            Audience::Owner(owner) => Some(owner.as_str()),
        }
    }
}

impl Caller {
    /// The operations this caller may act on with `scope`. A viewer without
    /// the scope is refused before any lookup, so the refusal cannot tell
    /// whether an operation exists.
    pub fn audience(&self, scope: Scope) -> Result<Audience, Error> {
        match self {
            Caller::Publisher => Ok(Audience::All),
            Caller::Viewer(viewer) if viewer.scopes.has(scope) => {
                Ok(Audience::Owner(viewer.owner.clone()))
            }
            Caller::Viewer(_) => Err(Error::Forbidden(format!(
                "the access token does not grant the \"{}\" scope",
                scope.name()
            ))),
        }
    }

    pub fn expires_at(&self) -> Option<SystemTime> {
        match self {
            Caller::Publisher => None,
            Caller::Viewer(viewer) => viewer.expires_at,
        }
    }
}

/// The publisher API key, kept only as its SHA-256 digest: comparing
/// digests in constant time leaks neither the key's bytes nor its length,
/// and the key itself never sits in memory that a `Debug` could print.
#[derive(Clone)]
pub struct PublisherKey {
    digest: [u8; 32],
}

/// Shorter keys are guessable; the server refuses to start with one.
pub const MIN_PUBLISHER_KEY_CHARS: usize = 16;

impl PublisherKey {
    pub fn new(key: &str) -> Result<PublisherKey, String> {
        if key.chars().count() < MIN_PUBLISHER_KEY_CHARS {
            return Err(format!(
                "the publisher key must be at least {MIN_PUBLISHER_KEY_CHARS} characters"
            ));
        }
        Ok(PublisherKey {
            digest: Sha256::digest(key.as_bytes()).into(),
        })
    }

    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.ct_eq(&presented).into()
    }
}

impl fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublisherKey(redacted)")
    }
}

/// Who may do what on this server.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Anonymous callers are viewers of [`DEMO_OWNER`] with every scope,
    /// and anyone may start simulated operations. Never on an exposed server.
    pub demo: bool,
    /// Publishers present this key; `None`: no publisher can connect.
    pub publisher_key: Option<PublisherKey>,
    /// Verifies viewers' tokens; `None`: no viewer can authenticate.
    pub tokens: Option<TokenVerifier>,
}

impl Access {
    /// The caller behind a bearer credential (or none). Tokens are checked
    /// against the system clock.
    ///
    /// A demo server that verifies no tokens treats any credential other
    /// than the publisher key as none: the demo pages' widgets send
    /// placeholder tokens, and anonymity grants them nothing more.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Caller, Error> {
        let anonymous = || {
            if self.demo {
                Ok(Caller::Viewer(Viewer {
                    owner: Owner::demo(),
                    scopes: Scopes::ALL,
                    expires_at: None,
                }))
            } else {
                Err(Error::Unauthorized(
                    "this server needs an access token: send Authorization: Bearer TOKEN".into(),
                ))
            }
        };
        let Some(credential) = bearer.filter(|c| !c.is_empty()) else {
            return anonymous();
        };
        if self
            .publisher_key
            .as_ref()
            .is_some_and(|key| key.matches(credential))
        {
            return Ok(Caller::Publisher);
        }
        match &self.tokens {
            Some(tokens) => tokens.verify(credential).map(Caller::Viewer),
            None if self.demo => anonymous(),
            None => Err(Error::Unauthorized(
                "the access token is not valid here (this server verifies no viewer tokens)".into(),
            )),
        }
    }
}

/// The `Bearer` credential of an `Authorization` header, if any.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Error::Unauthorized("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, credential)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Some(credential.trim()))
        }
        _ => Err(Error::Unauthorized(
            "the Authorization header must be \"Bearer TOKEN\"".into(),
        )),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Error> {
        app.config.access.authenticate(bearer(&parts.headers)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_ignore_unknown_names() {
        let scopes = Scopes::parse("openid read  billing");
        assert!(scopes.read && !scopes.cancel);
        assert_eq!(Scopes::parse(&Scopes::ALL.claim()), Scopes::ALL);
    }

    #[test]
    fn the_publisher_key_matches_only_itself_and_never_prints() {
        let key = PublisherKey::new("correct horse battery staple").unwrap();
        assert!(key.matches("correct horse battery staple"));
        assert!(!key.matches("correct horse battery stapl"));
        assert!(!key.matches(""));
        assert!(!format!("{key:?}").contains("horse"));
        assert!(PublisherKey::new("short").is_err());
    }

    #[test]
    fn anonymous_callers_are_demo_viewers_only_in_demo_mode() {
        let closed = Access::default();
        assert!(matches!(
            closed.authenticate(None),
            Err(Error::Unauthorized(_))
        ));
        let demo = Access {
            demo: true,
            ..Access::default()
        };
        let Ok(Caller::Viewer(viewer)) = demo.authenticate(None) else {
            panic!("an anonymous demo viewer");
        };
        assert_eq!(viewer.owner.as_str(), DEMO_OWNER);
        // Placeholder tokens of demo pages are ignored where no token can
        // be verified, and checked where one can.
        assert_eq!(
            demo.authenticate(Some("demo-token")).ok(),
            demo.authenticate(None).ok()
        );
        let verifying = Access {
            tokens: Some(TokenVerifier::new(&[7; 32]).unwrap()),
            ..demo
        };
        assert!(verifying.authenticate(Some("demo-token")).is_err());
    }
}
