//! Purchase tokens: proof that a buyer loaded the sale. `GET /items/{id}/token` (authenticated,
//! once the sale is open) hands out a short-lived token bound to the user and the item; `/buy`
//! of an item that requires one checks it. Like receipts, it is an HMAC keyed by the API's
//! secret (domain-separated), so every instance verifies every other instance's tokens without
//! sharing state.
//!
//! Format: `<user>.<item>.<expires_ms>.<base64url(HMAC-SHA256)[..16 bytes]>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const MAC_BYTES: usize = 16;

/// Why a token does not let this buy through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Malformed,
    /// Signed for another user or item, or not by this API.
    NotYours,
    Expired,
}

#[derive(Clone)]
pub struct PurchaseTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for PurchaseTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PurchaseTokens(..)")
    }
}

impl PurchaseTokens {
    pub fn new(secret: &[u8]) -> Self {
        PurchaseTokens {
            key: secret.to_vec(),
        }
    }

    fn mac(&self, user: i64, item: i64, expires_ms: i64) -> Hmac<Sha256> {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(b"seckill-purchase-token-v1\n");
        mac.update(format!("{user}.{item}.{expires_ms}").as_bytes());
        mac
    }

    pub fn mint(&self, user: i64, item: i64, expires_ms: i64) -> String {
        let full = self.mac(user, item, expires_ms).finalize().into_bytes();
        format!(
            "{user}.{item}.{expires_ms}.{}",
            URL_SAFE_NO_PAD.encode(&full[..MAC_BYTES])
        )
    }

    /// Checks `token` for `user` buying `item` at `now_ms`.
    pub fn verify(
        &self,
        token: &str,
        user: i64,
        item: i64,
        now_ms: i64,
    ) -> Result<(), TokenProblem> {
        let parts: Vec<&str> = token.split('.').collect();
        let [u, i, exp, mac] = parts[..] else {
            return Err(TokenProblem::Malformed);
        };
        let (Ok(u), Ok(i), Ok(exp)) = (u.parse::<i64>(), i.parse::<i64>(), exp.parse::<i64>())
        else {
            return Err(TokenProblem::Malformed);
        };
        let given = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenProblem::Malformed)?;
        if given.len() != MAC_BYTES {
            return Err(TokenProblem::Malformed);
        }
        // Genuine first (constant time), then whose and until when.
        self.mac(u, i, exp)
            .verify_truncated_left(&given)
            .map_err(|_| TokenProblem::NotYours)?;
        if u != user || i != item {
            return Err(TokenProblem::NotYours);
        }
        if now_ms >= exp {
            return Err(TokenProblem::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_for_one_user_one_item_until_it_expires() {
        let t = PurchaseTokens::new(b"a-secret-of-at-least-32-bytes-long!!");
        let tok = t.mint(7, 3, 1_000);
        assert_eq!(t.verify(&tok, 7, 3, 999), Ok(()));
        assert_eq!(t.verify(&tok, 7, 3, 1_000), Err(TokenProblem::Expired));
        assert_eq!(t.verify(&tok, 8, 3, 0), Err(TokenProblem::NotYours));
        assert_eq!(t.verify(&tok, 7, 4, 0), Err(TokenProblem::NotYours));
        // Changing the expiry breaks the signature.
        let forged = tok.replace(".1000.", ".9999.");
        assert_eq!(t.verify(&forged, 7, 3, 0), Err(TokenProblem::NotYours));
        let other = PurchaseTokens::new(b"another-secret-of-at-least-32-bytes!");
        assert_eq!(other.verify(&tok, 7, 3, 0), Err(TokenProblem::NotYours));
        for bad in ["", "a.b.c.d", "7.3.1000", "7.3.1000.!!", "7.3.1000.AAAA"] {
            assert_eq!(
                t.verify(bad, 7, 3, 0),
                Err(TokenProblem::Malformed),
                "{bad}"
            );
        }
    }
}
