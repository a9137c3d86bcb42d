//! The answers `POST /buy` documents (README's "every answer is true" table), told apart from
//! anything else. The chaos command holds every answer it gets to this list: an answer that is
//! not on it, or that names another request than the one the client's key names, is a broken
//! promise, not noise to count.

use uuid::Uuid;

/// One documented answer to a buy sent with an Idempotency-Key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuyAnswer {
    /// 202: queued durably.
    Accepted,
    /// 503 `not_accepted`: certainly nothing was queued.
    NotAccepted,
    /// 503 `outcome_unknown`: it may be queued; retry with the same key.
    OutcomeUnknown,
    /// 410 `sold_out`.
    SoldOut,
    /// 410 `claimed`: every unit is claimed by queued buys; some may come back.
    Claimed,
    /// 409 `duplicate`: the buyer's other buy of the item (`first`) was admitted first.
    Duplicate { first: Uuid },
    /// 429 `rate_limited`.
    RateLimited,
    /// No answer: the connection broke or timed out after the buy was sent (an API instance
    /// killed): it may have been queued.
    Cut,
    /// The connection was refused (an instance down): the buy was never sent.
    Unreachable,
}

impl BuyAnswer {
    /// Whether the buy may be in the queue after this answer.
    pub fn may_be_queued(self) -> bool {
        matches!(
            self,
            BuyAnswer::Accepted | BuyAnswer::OutcomeUnknown | BuyAnswer::Cut
        )
    }

    /// A definite answer: the client has no reason to send this request again.
    pub fn is_definite(self) -> bool {
        matches!(
            self,
            BuyAnswer::Accepted | BuyAnswer::SoldOut | BuyAnswer::Duplicate { .. }
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            BuyAnswer::Accepted => "202",
            BuyAnswer::NotAccepted => "503 not_accepted",
            BuyAnswer::OutcomeUnknown => "503 outcome_unknown",
            BuyAnswer::SoldOut => "410 sold_out",
            BuyAnswer::Claimed => "410 claimed",
            BuyAnswer::Duplicate { .. } => "409 duplicate",
            BuyAnswer::RateLimited => "429",
            BuyAnswer::Cut => "cut",
            BuyAnswer::Unreachable => "refused connection",
        }
    }
}

/// Reads one answer to a buy that carried `key`, whose request id is `id`. `Err` says what is
/// wrong with it: an undocumented status or error code, a malformed body, or another request
/// named than the key's own.
pub fn classify(status: u16, body: &[u8], id: Uuid, key: &str) -> Result<BuyAnswer, String> {
    let shown = || {
        let text = String::from_utf8_lossy(body);
        format!("{status} {}", text.chars().take(300).collect::<String>())
    };
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| format!("a body that is not JSON: {}", shown()))?;
    let text = |field: &str| json[field].as_str();
    let uuid = |field: &str| text(field).and_then(|s| s.parse::<Uuid>().ok());
    // Every documented answer names the key's own request (a keyed buy, see routes/buy.rs).
    let own = |what: &str| -> Result<(), String> {
        match uuid("request_id") {
            Some(named) if named == id => Ok(()),
            Some(named) => Err(format!(
                "{what} names request {named}, but the key names {id}: {}",
                shown()
            )),
            None => Err(format!("{what} without its request_id: {}", shown())),
        }
    };
    let answer = match (status, text("error")) {
        (202, _) => {
            own("a 202")?;
            let url_ok = text("status_url").is_some_and(|u| u.contains(&id.to_string()));
            if text("idempotency_key") != Some(key) || text("receipt").is_none() || !url_ok {
                return Err(format!(
                    "a 202 without the key, a receipt or a status URL: {}",
                    shown()
                ));
            }
            BuyAnswer::Accepted
        }
        (503, Some("not_accepted")) => {
            own("a 503 not_accepted")?;
            BuyAnswer::NotAccepted
        }
        (503, Some("outcome_unknown")) => {
            own("a 503 outcome_unknown")?;
            if text("status_url").is_none() {
                return Err(format!(
                    "a 503 outcome_unknown without a status URL: {}",
                    shown()
                ));
            }
            BuyAnswer::OutcomeUnknown
        }
        (410, Some("sold_out")) => {
            own("a 410 sold_out")?;
            BuyAnswer::SoldOut
        }
        (410, Some("claimed")) => {
            own("a 410 claimed")?;
            BuyAnswer::Claimed
        }
        (409, Some("duplicate")) => {
            own("a 409 duplicate")?;
            match uuid("duplicate_of") {
                Some(first) => BuyAnswer::Duplicate { first },
                None => return Err(format!("a 409 duplicate without duplicate_of: {}", shown())),
            }
        }
        (429, Some("rate_limited")) => BuyAnswer::RateLimited,
        _ => return Err(format!("an undocumented answer: {}", shown())),
    };
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn documented_answers_are_read_and_everything_else_is_refused() {
        let id = Uuid::from_u128(1);
        let other = Uuid::from_u128(2);
        let accepted = body(
            json!({"request_id": id, "idempotency_key": "k", "receipt": "r",
            "status_url": format!("/orders/{id}?receipt=r")}),
        );
        assert_eq!(classify(202, &accepted, id, "k"), Ok(BuyAnswer::Accepted));
        // Another key, another request: a 202 for someone else's buy.
        assert!(classify(202, &accepted, other, "k").is_err());
        assert!(classify(202, &accepted, id, "other-key").is_err());
        let unknown =
            body(json!({"error": "outcome_unknown", "request_id": id, "status_url": "/orders/x"}));
        assert_eq!(
            classify(503, &unknown, id, "k"),
            Ok(BuyAnswer::OutcomeUnknown)
        );
        let duplicate =
            body(json!({"error": "duplicate", "request_id": id, "duplicate_of": other}));
        assert_eq!(
            classify(409, &duplicate, id, "k"),
            Ok(BuyAnswer::Duplicate { first: other })
        );
        // The replay finding: a 409 naming the other buy as if it were this key's.
        let wrong = body(json!({"error": "duplicate", "request_id": other, "duplicate_of": other}));
        assert!(classify(409, &wrong, id, "k").is_err());
        let internal = body(json!({"error": "internal", "detail": "internal error"}));
        assert!(classify(500, &internal, id, "k").is_err());
        assert!(classify(503, b"<html>bad gateway</html>", id, "k").is_err());
        assert!(classify(410, &body(json!({"error": "gone"})), id, "k").is_err());
    }

    #[test]
    fn only_answers_that_leave_the_queue_possible_allow_an_order() {
        assert!(BuyAnswer::Accepted.may_be_queued());
        assert!(BuyAnswer::OutcomeUnknown.may_be_queued());
        assert!(BuyAnswer::Cut.may_be_queued());
        for refused in [
            BuyAnswer::NotAccepted,
            BuyAnswer::SoldOut,
            BuyAnswer::Claimed,
            BuyAnswer::Duplicate { first: Uuid::nil() },
            BuyAnswer::RateLimited,
            BuyAnswer::Unreachable,
        ] {
            assert!(!refused.may_be_queued(), "{refused:?}");
        }
    }
}
