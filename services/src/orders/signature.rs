//! The API's signature on the buy events it enqueues, which the order workers check: a buy of an
//! item that requires a purchase token is applied only with it, so such an item is bought only
//! through the API (which checked the token), whoever else can write to the queue. Issue 34
//! found a broker account with no business in the sale producing buys straight to `seckill`
//! that the worker confirmed; ACLs keep such accounts off the topic on this broker, and this
//! keeps the worker from trusting the topic on any cluster.
//!
//! The signature is an HMAC-SHA256 (128 bits kept) of every field of the event, keyed by the
//! `order_events` key in the `event_keys` table (made by its migration), carried in the
//! message's [`HEADER`] so the event's JSON is unchanged: producers that know nothing of it (the
//! seed course's) still feed items that need no token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shared::messages::OrderEvent;
use sqlx::PgPool;

/// The Kafka header that carries the signature.
pub const HEADER: &str = "seckill-signature";

/// Bytes of the MAC kept.
const MAC_BYTES: usize = 16;

/// Signs and verifies buy events with the shared key.
#[derive(Clone)]
pub struct EventSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for EventSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSigner(..)")
    }
}

impl EventSigner {
    /// The key the migrations made.
    pub async fn load(pool: &PgPool) -> Result<EventSigner, sqlx::Error> {
        let key: Vec<u8> =
            sqlx::query_scalar("SELECT key FROM event_keys WHERE name = 'order_events'")
                .fetch_one(pool)
                .await?;
        Ok(EventSigner { key })
    }

    fn mac(&self, e: &OrderEvent) -> Hmac<Sha256> {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(b"seckill-order-event-v1\n");
        mac.update(e.request_id.as_bytes());
        mac.update(&e.user_id.to_be_bytes());
        mac.update(&e.item_id.to_be_bytes());
        mac.update(&e.qty.to_be_bytes());
        mac.update(&e.accepted_at_ms.to_be_bytes());
        mac
    }

    pub fn sign(&self, e: &OrderEvent) -> String {
        URL_SAFE_NO_PAD.encode(&self.mac(e).finalize().into_bytes()[..MAC_BYTES])
    }

    /// Whether `signature` is this key's for exactly `e` (compared in constant time).
    pub fn verify(&self, e: &OrderEvent, signature: &[u8]) -> bool {
        let Ok(mac) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        mac.len() == MAC_BYTES && self.mac(e).verify_truncated_left(&mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_every_field() {
        let s = EventSigner { key: vec![7; 32] };
        let e = OrderEvent {
            request_id: uuid::Uuid::new_v4(),
            user_id: 1,
            item_id: 2,
            qty: 1,
            accepted_at_ms: 5,
        };
        let sig = s.sign(&e);
        assert!(s.verify(&e, sig.as_bytes()));
        for changed in [
            OrderEvent {
                user_id: 9,
                ..e.clone()
            },
            OrderEvent {
                item_id: 9,
                ..e.clone()
            },
            OrderEvent {
                qty: 9,
                ..e.clone()
            },
            OrderEvent {
                accepted_at_ms: 9,
                ..e.clone()
            },
        ] {
            assert!(!s.verify(&changed, sig.as_bytes()));
        }
        assert!(!s.verify(&e, b"not-base64!"));
        assert!(!EventSigner { key: vec![8; 32] }.verify(&e, sig.as_bytes()));
    }
}
