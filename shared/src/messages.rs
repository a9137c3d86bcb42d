//! Message payloads, encoded as JSON on the wire.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// Largest quantity one buy may ask for.
pub const MAX_QTY: u32 = 10;

/// The latest time PostgreSQL's `timestamptz` holds exactly in our use (9999-12-31T23:59:59Z),
/// in ms since the Unix epoch: a later `accepted_at_ms` could not be stored.
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// Whether any string (or object key) inside `v` holds a NUL character, which PostgreSQL
/// cannot store in `text` or `jsonb`.
pub fn has_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// A buy accepted by the ingest API, to be applied by an order worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderEvent {
    /// Identifies the request end to end; the order row is keyed by it, so a redelivered event
    /// is applied once.
    pub request_id: Uuid,
    pub user_id: i64,
    pub item_id: i64,
    pub qty: u32,
    /// When the API accepted it, ms since the Unix epoch.
    pub accepted_at_ms: i64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("invalid field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl OrderEvent {
    pub fn validate(&self) -> Result<(), MessageError> {
        if self.user_id <= 0 {
            return Err(MessageError::Invalid {
                field: "user_id",
                reason: "must be positive".into(),
            });
        }
        if self.item_id <= 0 {
            return Err(MessageError::Invalid {
                field: "item_id",
                reason: "must be positive".into(),
            });
        }
        if self.qty == 0 || self.qty > MAX_QTY {
            return Err(MessageError::Invalid {
                field: "qty",
                reason: format!("must be within 1..={MAX_QTY}"),
            });
        }
        if !(0..=MAX_TIMESTAMP_MS).contains(&self.accepted_at_ms) {
            return Err(MessageError::Invalid {
                field: "accepted_at_ms",
                reason: format!("must be within 0..={MAX_TIMESTAMP_MS}"),
            });
        }
        Ok(())
    }

    /// Decodes and validates a message body from the queue.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        let event: OrderEvent =
            serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))?;
        event.validate()?;
        Ok(event)
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising a struct of plain fields to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A request for the inference worker. The reply goes to `reply_topic`/`reply_partition`,
/// keyed by `id`; the caller waits for that id only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferenceRequest {
    pub id: Uuid,
    /// The model asked for; `None` takes whatever the worker serves.
    pub model: Option<String>,
    pub input: serde_json::Value,
    /// Past this instant (ms since the Unix epoch) the request is answered `expired` unrun.
    pub deadline_ms: i64,
    pub reply_topic: String,
    pub reply_partition: i32,
}

impl InferenceRequest {
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        let r: InferenceRequest =
            serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))?;
        if r.reply_topic.is_empty() || r.reply_topic.len() > 249 {
            return Err(MessageError::Invalid {
                field: "reply_topic",
                reason: "must be a topic name (1..=249 characters)".into(),
            });
        }
        if r.reply_partition < 0 {
            return Err(MessageError::Invalid {
                field: "reply_partition",
                reason: "must not be negative".into(),
            });
        }
        if has_nul(&r.input) || r.model.as_deref().is_some_and(|m| m.contains('\0')) {
            return Err(MessageError::Invalid {
                field: "input",
                reason: "contains a NUL character, which cannot be stored".into(),
            });
        }
        Ok(r)
    }

    pub fn encode(&self) -> Vec<u8> {
        // A struct of plain fields and a `Value` always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// How an inference request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InferenceStatus {
    Done,
    Failed,
    Expired,
}

impl InferenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InferenceStatus::Done => "done",
            InferenceStatus::Failed => "failed",
            InferenceStatus::Expired => "expired",
        }
    }
}

/// The worker's answer to one [`InferenceRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceReply {
    pub id: Uuid,
    pub status: InferenceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl InferenceReply {
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> OrderEvent {
        OrderEvent {
            request_id: Uuid::new_v4(),
            user_id: 7,
            item_id: 1,
            qty: 1,
            accepted_at_ms: 1,
        }
    }

    #[test]
    fn round_trip() {
        let e = event();
        assert_eq!(OrderEvent::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn rejects_bad_messages_with_reason() {
        assert!(matches!(
            OrderEvent::decode(b"{not json"),
            Err(MessageError::Malformed(_))
        ));
        let mut e = event();
        e.qty = 0;
        assert_eq!(
            OrderEvent::decode(&e.encode()).unwrap_err(),
            MessageError::Invalid {
                field: "qty",
                reason: format!("must be within 1..={MAX_QTY}")
            }
        );
        let json = r#"{"request_id":"00000000-0000-0000-0000-000000000000","user_id":1,"item_id":1,"qty":1,"accepted_at_ms":0,"extra":1}"#;
        assert!(OrderEvent::decode(json.as_bytes()).is_err());
        // A timestamp PostgreSQL cannot store is refused here, not by the database.
        let mut e = event();
        e.accepted_at_ms = MAX_TIMESTAMP_MS + 1;
        assert!(matches!(
            OrderEvent::decode(&e.encode()),
            Err(MessageError::Invalid {
                field: "accepted_at_ms",
                ..
            })
        ));
    }

    #[test]
    fn inference_messages_round_trip_and_reject_bad_reply_addresses() {
        let r = InferenceRequest {
            id: Uuid::new_v4(),
            model: None,
            input: serde_json::json!({"question": "how many films?"}),
            deadline_ms: 1,
            reply_topic: "inference.replies".into(),
            reply_partition: 2,
        };
        assert_eq!(InferenceRequest::decode(&r.encode()).unwrap(), r);
        let mut bad = r.clone();
        bad.reply_partition = -1;
        assert!(matches!(
            InferenceRequest::decode(&bad.encode()),
            Err(MessageError::Invalid {
                field: "reply_partition",
                ..
            })
        ));
        let mut nul = r.clone();
        nul.input = serde_json::json!({"q": ["ok", "bad\u{0}"]});
        assert!(matches!(
            InferenceRequest::decode(&nul.encode()),
            Err(MessageError::Invalid { field: "input", .. })
        ));
        let reply = InferenceReply {
            id: r.id,
            status: InferenceStatus::Failed,
            output: None,
            error: Some("boom".into()),
        };
        assert_eq!(InferenceReply::decode(&reply.encode()).unwrap(), reply);
        assert_eq!(
            String::from_utf8(reply.encode()).unwrap(),
            format!(r#"{{"id":"{}","status":"failed","error":"boom"}}"#, r.id)
        );
    }
}
