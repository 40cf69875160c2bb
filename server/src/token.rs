//! Viewer tokens: HS256 JSON Web Tokens that the host's backend mints with
//! a secret it shares with this server, so a viewer's browser can prove
//! whose operations it may see without the server knowing any user.
//!
//! Claims: `sub` (the owner) and `exp` (Unix seconds), required; `scope`
//! (`"read"`, `"read cancel"`); `nbf` when present; others are ignored.
//! Expiry is enforced to the second, without leeway, on every request and
//! on open sockets.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::auth::{Owner, Scopes, Viewer};
use crate::error::Error;

/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: String,
    exp: u64,
}

/// Checks viewer tokens; holds the shared secret as a key only.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn new(secret: &[u8]) -> Result<TokenVerifier, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the token secret must be at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        // A token minted for later (`nbf`) is not valid yet.
        validation.validate_nbf = true;
        // The audience is the host's business; the shared secret already
        // says the token was minted for this server.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(TokenVerifier {
            key: DecodingKey::from_secret(secret),
            validation,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Viewer, Error> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => Error::TokenExpired,
                kind => {
                    Error::Unauthorized(format!("the access token is not valid: {}", reason(kind)))
                }
            },
        )?;
        let claims = data.claims;
        // RFC 7519 §4.1.4: not accepted "on or after" exp; the library
        // still accepts the very second of exp, and a socket closes at it.
        let expires_at = UNIX_EPOCH + Duration::from_secs(claims.exp);
        if SystemTime::now() >= expires_at {
            return Err(Error::TokenExpired);
        }
        let owner = Owner::parse(&claims.sub)
            .map_err(|e| Error::Unauthorized(format!("the access token's sub is unusable: {e}")))?;
        Ok(Viewer {
            owner,
            scopes: Scopes::parse(&claims.scope),
            expires_at: Some(expires_at),
        })
    }
}

/// Words for a rejected token, never echoing the token itself.
fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature => "its signature does not match",
        ErrorKind::InvalidAlgorithm => "it must be signed with HS256",
        ErrorKind::MissingRequiredClaim(_) => "it needs sub and exp claims",
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "it is not a JWT",
        _ => "it was refused",
    }
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenVerifier(HS256, secret redacted)")
    }
}

/// Mints a viewer token as a host's backend would: for tests, the README's
/// examples and hosts written in Rust.
pub fn mint(secret: &[u8], owner: &str, scopes: Scopes, expires_at: SystemTime) -> String {
    let claims = Claims {
        sub: owner.to_owned(),
        scope: scopes.claim(),
        exp: expires_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 claims always encode")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_minted_token_names_its_owner_and_scopes() {
        let verifier = TokenVerifier::new(SECRET).unwrap();
        let exp = SystemTime::now() + Duration::from_secs(60);
        let token = mint(
            SECRET,
            "alice",
            Scopes {
                read: true,
                cancel: false,
            },
            exp,
        );
        let viewer = verifier.verify(&token).unwrap();
        assert_eq!(viewer.owner.as_str(), "alice");
        assert!(viewer.scopes.read && !viewer.scopes.cancel);
    }

    #[test]
    fn expired_forged_and_garbage_tokens_are_refused() {
        let verifier = TokenVerifier::new(SECRET).unwrap();
        let past = SystemTime::now() - Duration::from_secs(2);
        let expired = mint(SECRET, "alice", Scopes::ALL, past);
        assert!(matches!(
            verifier.verify(&expired),
            Err(Error::TokenExpired)
        ));
        let future = SystemTime::now() + Duration::from_secs(60);
        let forged = mint(
            b"another secret, 32 bytes or more!",
            "alice",
            Scopes::ALL,
            future,
        );
        assert!(matches!(
            verifier.verify(&forged),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            verifier.verify("x.y.z"),
            Err(Error::Unauthorized(_))
        ));
        assert!(TokenVerifier::new(b"short").is_err());
    }
}
