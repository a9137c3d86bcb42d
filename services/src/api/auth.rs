//! Who is buying. In a real shop the user comes from a bearer token: an HS256 JWT whose `sub`
//! is the user id, signed with the API's secret, not expired. A load-test mode that trusts a
//! `user_id` in the body exists for benchmarks only; it must be switched on explicitly and the
//! API warns about it at start.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::error::ApiError;

const CLOCK_SKEW_SECS: u64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a decimal string (JWT `sub` is a string).
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Signs tokens (the loadtest tool and tests mint them) and verifies them (the API).
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A token for `user_id` valid for `ttl_secs` from now (negative: already expired).
    pub fn mint(&self, user_id: i64, ttl_secs: i64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let exp = (now + ttl_secs).max(0) as u64;
        let claims = Claims {
            sub: user_id.to_string(),
            exp,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default()
    }

    /// The user id of a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Option<i64> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Tolerate a little clock skew between the token issuer and this API, not a minute.
        validation.leeway = CLOCK_SKEW_SECS;
        // A token that is not valid yet (`nbf` in the future, where the issuer set one) is
        // refused like an expired one; jsonwebtoken checks `nbf` only when told to.
        validation.validate_nbf = true;
        let data = decode::<Claims>(token, &self.decoding, &validation).ok()?;
        data.claims.sub.parse().ok().filter(|id: &i64| *id > 0)
    }
}

/// The user of a request with a valid bearer token (or none, where load-test mode allows it).
#[derive(Debug, Clone, Copy)]
pub struct MaybeUser(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser
where
    std::sync::Arc<super::AppState>: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app: std::sync::Arc<super::AppState> = axum::extract::FromRef::from_ref(state);
        let header = parts.headers.get(axum::http::header::AUTHORIZATION);
        let Some(value) = header else {
            return Ok(MaybeUser(None));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        app.keys
            .verify(token.trim())
            .map(|u| MaybeUser(Some(u)))
            .ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_the_secret_and_before_expiry() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        assert_eq!(keys.verify(&keys.mint(7, 60)), Some(7));
        assert_eq!(keys.verify(&keys.mint(7, -60)), None, "expired");
        let other = TokenKeys::new(b"another-secret-another-secret!!!");
        assert_eq!(keys.verify(&other.mint(7, 60)), None, "wrong secret");
        assert_eq!(
            keys.verify(&keys.mint(-3, 60)),
            None,
            "user ids are positive"
        );
        assert_eq!(keys.verify("garbage"), None);
    }

    /// An issuer's token with `nbf` ("not before") in the future is not valid yet.
    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let keys = TokenKeys::new(secret);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let with_nbf = |nbf: u64| {
            encode(
                &Header::new(Algorithm::HS256),
                &serde_json::json!({"sub": "7", "exp": now + 600, "nbf": nbf}),
                &EncodingKey::from_secret(secret),
            )
            .unwrap()
        };
        assert_eq!(keys.verify(&with_nbf(now + 300)), None, "not valid yet");
        assert_eq!(
            keys.verify(&with_nbf(now - 60)),
            Some(7),
            "valid since a minute"
        );
        assert_eq!(
            keys.verify(&with_nbf(now + CLOCK_SKEW_SECS - 1)),
            Some(7),
            "within the clock skew"
        );
    }
}
