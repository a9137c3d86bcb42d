//! Receipts: what lets any API instance, before or after a restart, tell a client that the buy
//! it got a 202 for is queued, without writing anything to the database on the hot path.
//!
//! A receipt is an HMAC of the request id and what the API knew when it answered (acked: queued;
//! or outcome unknown), keyed by the API's secret, which every instance shares. The 202's
//! `status_url` carries it; `GET /orders/{id}?receipt=...` verifies it when the database has no
//! decision yet. A receipt cannot be made for an id the API did not answer for, and a receipt
//! for "unknown" never reads as "queued".

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// Bytes of the MAC kept in a receipt (128 bits).
const MAC_BYTES: usize = 16;

/// What the API knew about a request when it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    /// The broker acknowledged the buy: it is in the queue.
    Queued,
    /// The API could not learn whether the buy reached the queue.
    Unknown,
}

impl ReceiptKind {
    fn tag(self) -> &'static str {
        match self {
            ReceiptKind::Queued => "q",
            ReceiptKind::Unknown => "u",
        }
    }
}

#[derive(Clone)]
pub struct Receipts {
    key: Vec<u8>,
}

impl std::fmt::Debug for Receipts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receipts(..)")
    }
}

impl Receipts {
    pub fn new(secret: &[u8]) -> Self {
        Receipts {
            key: secret.to_vec(),
        }
    }

    /// The MAC over `id` and `kind`, ready to finalize or verify.
    fn keyed(&self, kind: ReceiptKind, id: Uuid) -> Hmac<Sha256> {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        // Domain-separated from the bearer tokens signed with the same secret.
        mac.update(b"seckill-receipt-v1\n");
        mac.update(kind.tag().as_bytes());
        mac.update(id.as_bytes());
        mac
    }

    pub fn sign(&self, kind: ReceiptKind, id: Uuid) -> String {
        let full = self.keyed(kind, id).finalize().into_bytes();
        format!(
            "{}.{}",
            kind.tag(),
            URL_SAFE_NO_PAD.encode(&full[..MAC_BYTES])
        )
    }

    /// What a receipt for `id` says, if it is genuine.
    pub fn verify(&self, id: Uuid, receipt: &str) -> Option<ReceiptKind> {
        let (tag, mac) = receipt.split_once('.')?;
        let kind = [ReceiptKind::Queued, ReceiptKind::Unknown]
            .into_iter()
            .find(|k| k.tag() == tag)?;
        let given = URL_SAFE_NO_PAD.decode(mac).ok()?;
        // A shorter tag would be easier to guess: only the full length counts.
        if given.len() != MAC_BYTES {
            return None;
        }
        // Constant-time comparison.
        self.keyed(kind, id)
            .verify_truncated_left(&given)
            .ok()
            .map(|()| kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_verify_only_for_their_id_kind_and_secret() {
        let r = Receipts::new(b"a-secret-of-at-least-32-bytes-long!!");
        let id = Uuid::new_v4();
        let queued = r.sign(ReceiptKind::Queued, id);
        let unknown = r.sign(ReceiptKind::Unknown, id);
        assert_eq!(r.verify(id, &queued), Some(ReceiptKind::Queued));
        assert_eq!(r.verify(id, &unknown), Some(ReceiptKind::Unknown));
        assert_eq!(r.verify(Uuid::new_v4(), &queued), None, "another id");
        // An "unknown" receipt relabelled as "queued" does not verify.
        let forged = format!("q{}", &unknown[1..]);
        assert_eq!(r.verify(id, &forged), None);
        let other = Receipts::new(b"another-secret-of-at-least-32-bytes!");
        assert_eq!(other.verify(id, &queued), None, "another secret");
        for bad in ["", "q", "q.", "x.AAAA", "q.!!!", &queued[..10]] {
            assert_eq!(r.verify(id, bad), None, "{bad:?}");
        }
    }

    /// The state holding it is logged with `{:?}`: the key must never show.
    #[test]
    fn the_key_never_reaches_a_log() {
        let r = Receipts::new(b"a-secret-of-at-least-32-bytes-long!!");
        let shown = format!("{r:?}");
        assert_eq!(shown, "Receipts(..)");
        assert!(!shown.contains("secret"));
    }
}
