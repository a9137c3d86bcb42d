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

/// Where the reply to an inference request goes, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    pub topic: String,
    /// `None`: the producer's partitioner picks (keyed by the request's UUID).
    pub partition: Option<i32>,
    /// Echoed as the reply's `kafka_correlationId` header, byte for byte (the convention of
    /// Spring Kafka's request/reply template, which other clients follow too).
    pub correlation_id: Option<Vec<u8>>,
}

/// A request for the inference worker, however it came: from our API (the envelope, with the
/// instance's reply address) or from any Kafka client (the caller's own JSON with a `uuid`,
/// reply address in the headers).
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceRequest {
    pub id: Uuid,
    /// The model asked for; `None` takes whatever the worker serves.
    pub model: Option<String>,
    pub input: serde_json::Value,
    /// Past this instant (ms since the Unix epoch) the request is answered `expired` unrun.
    pub deadline_ms: i64,
    pub reply_to: Option<ReplyTo>,
}

/// The API's envelope on the request topic.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    id: Uuid,
    model: Option<String>,
    input: serde_json::Value,
    deadline_ms: i64,
    reply_topic: String,
    reply_partition: i32,
}

/// Headers a Kafka client may put on a request (Spring Kafka's request/reply names).
pub const REPLY_TOPIC_HEADER: &str = "kafka_replyTopic";
pub const REPLY_PARTITION_HEADER: &str = "kafka_replyPartition";
pub const CORRELATION_ID_HEADER: &str = "kafka_correlationId";

/// Longest model name accepted.
pub const MAX_MODEL_NAME: usize = 100;

impl InferenceRequest {
    /// The API's envelope (`{"id", "model", "input", "deadline_ms", "reply_topic",
    /// "reply_partition"}`), or a caller's own message: a JSON object with a `uuid`, whose other
    /// fields are the model's input (`{"uuid": "...", "nature": "...", "database": "cinema"}`).
    /// `headers` are the message's (name, value) headers; `default_deadline_ms` is the deadline
    /// of a caller's message (it names none).
    pub fn decode(
        bytes: &[u8],
        headers: &[(&str, &[u8])],
        default_deadline_ms: i64,
    ) -> Result<Self, MessageError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))?;
        let r = if value.get("reply_topic").is_some() && value.get("id").is_some() {
            let e: Envelope = serde_json::from_value(value)
                .map_err(|e| MessageError::Malformed(e.to_string()))?;
            if e.reply_topic.is_empty() || e.reply_topic.len() > 249 {
                return Err(MessageError::Invalid {
                    field: "reply_topic",
                    reason: "must be a topic name (1..=249 characters)".into(),
                });
            }
            if e.reply_partition < 0 {
                return Err(MessageError::Invalid {
                    field: "reply_partition",
                    reason: "must not be negative".into(),
                });
            }
            InferenceRequest {
                id: e.id,
                model: e.model,
                input: e.input,
                deadline_ms: e.deadline_ms,
                reply_to: Some(ReplyTo {
                    topic: e.reply_topic,
                    partition: Some(e.reply_partition),
                    correlation_id: None,
                }),
            }
        } else {
            let (id, input) = split_uuid(value)?;
            InferenceRequest {
                id,
                model: None,
                input,
                deadline_ms: default_deadline_ms,
                reply_to: reply_to_from_headers(headers)?,
            }
        };
        r.validate()?;
        Ok(r)
    }

    fn validate(&self) -> Result<(), MessageError> {
        if has_nul(&self.input) || self.model.as_deref().is_some_and(|m| m.contains('\0')) {
            return Err(MessageError::Invalid {
                field: "input",
                reason: "contains a NUL character, which cannot be stored".into(),
            });
        }
        if self
            .model
            .as_deref()
            .is_some_and(|m| m.is_empty() || m.len() > MAX_MODEL_NAME)
        {
            return Err(MessageError::Invalid {
                field: "model",
                reason: format!("must be 1..={MAX_MODEL_NAME} characters"),
            });
        }
        if !(0..=MAX_TIMESTAMP_MS).contains(&self.deadline_ms) {
            return Err(MessageError::Invalid {
                field: "deadline_ms",
                reason: format!("must be within 0..={MAX_TIMESTAMP_MS}"),
            });
        }
        Ok(())
    }

    /// The API's envelope (it always has a reply address).
    pub fn encode(&self) -> Vec<u8> {
        let (topic, partition) = self
            .reply_to
            .as_ref()
            .map(|r| (r.topic.clone(), r.partition.unwrap_or(0)))
            .unwrap_or_default();
        let e = Envelope {
            id: self.id,
            model: self.model.clone(),
            input: self.input.clone(),
            deadline_ms: self.deadline_ms,
            reply_topic: topic,
            reply_partition: partition,
        };
        // A struct of plain fields and a `Value` always serialises.
        serde_json::to_vec(&e).unwrap_or_default()
    }
}

/// A caller's message: (its `uuid`, the other fields as the model's input).
pub fn split_uuid(value: serde_json::Value) -> Result<(Uuid, serde_json::Value), MessageError> {
    let serde_json::Value::Object(mut fields) = value else {
        return Err(MessageError::Malformed(
            "a request is a JSON object with a \"uuid\"".into(),
        ));
    };
    let id = match fields.remove("uuid") {
        Some(serde_json::Value::String(s)) => {
            Uuid::parse_str(&s).map_err(|_| MessageError::Invalid {
                field: "uuid",
                reason: format!("{s:?} is not a UUID"),
            })?
        }
        Some(_) => {
            return Err(MessageError::Invalid {
                field: "uuid",
                reason: "must be a UUID string".into(),
            })
        }
        None => {
            return Err(MessageError::Invalid {
                field: "uuid",
                reason: "is required".into(),
            })
        }
    };
    if fields.is_empty() {
        return Err(MessageError::Invalid {
            field: "input",
            reason: "the request has no fields besides its uuid".into(),
        });
    }
    Ok((id, serde_json::Value::Object(fields)))
}

fn reply_to_from_headers(headers: &[(&str, &[u8])]) -> Result<Option<ReplyTo>, MessageError> {
    let find = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let Some(topic) = find(REPLY_TOPIC_HEADER) else {
        return Ok(None);
    };
    let topic = std::str::from_utf8(topic)
        .ok()
        .filter(|t| !t.is_empty() && t.len() <= 249)
        .ok_or_else(|| MessageError::Invalid {
            field: REPLY_TOPIC_HEADER,
            reason: "must be a topic name (1..=249 UTF-8 characters)".into(),
        })?;
    // Spring sends the partition as a 4-byte big-endian int; a decimal string is accepted too.
    let partition = match find(REPLY_PARTITION_HEADER) {
        None => None,
        Some(b) if b.len() == 4 => Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        Some(b) => Some(
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| MessageError::Invalid {
                    field: REPLY_PARTITION_HEADER,
                    reason: "must be a 4-byte big-endian int or a decimal number".into(),
                })?,
        ),
    };
    if partition.is_some_and(|p| p < 0) {
        return Err(MessageError::Invalid {
            field: REPLY_PARTITION_HEADER,
            reason: "must not be negative".into(),
        });
    }
    Ok(Some(ReplyTo {
        topic: topic.to_string(),
        partition,
        correlation_id: find(CORRELATION_ID_HEADER).map(<[u8]>::to_vec),
    }))
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

/// The worker's answer to one [`InferenceRequest`], keyed by its UUID (`{"uuid", "status",
/// "output"?, "error"?}`): the same for our API and for any Kafka client that asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceReply {
    #[serde(rename = "uuid", alias = "id")]
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
            reply_to: Some(ReplyTo {
                topic: "inference.replies".into(),
                partition: Some(2),
                correlation_id: None,
            }),
        };
        assert_eq!(InferenceRequest::decode(&r.encode(), &[], 0).unwrap(), r);
        let bad = r.encode();
        let bad = String::from_utf8(bad)
            .unwrap()
            .replace("\"reply_partition\":2", "\"reply_partition\":-1");
        assert!(matches!(
            InferenceRequest::decode(bad.as_bytes(), &[], 0),
            Err(MessageError::Invalid {
                field: "reply_partition",
                ..
            })
        ));
        let mut nul = r.clone();
        nul.input = serde_json::json!({"q": ["ok", "bad\u{0}"]});
        assert!(matches!(
            InferenceRequest::decode(&nul.encode(), &[], 0),
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
            format!(r#"{{"uuid":"{}","status":"failed","error":"boom"}}"#, r.id)
        );
        // Replies in the older shape ("id") still decode.
        let old = format!(r#"{{"id":"{}","status":"done","output":1}}"#, r.id);
        assert_eq!(InferenceReply::decode(old.as_bytes()).unwrap().id, r.id);
    }

    #[test]
    fn a_callers_own_message_is_a_request_with_its_uuid_and_reply_headers() {
        let id = "28eedc88-7bc0-42dd-8c13-91a6e2bc7754";
        let msg = format!(
            r#"{{"uuid":"{id}","nature":"Can you tell me how much this is?","database":"cinema"}}"#
        );
        let headers: [(&str, &[u8]); 3] = [
            (REPLY_TOPIC_HEADER, b"backend.replies"),
            (REPLY_PARTITION_HEADER, &3i32.to_be_bytes()),
            (CORRELATION_ID_HEADER, b"\x01\x02corr"),
        ];
        let r = InferenceRequest::decode(msg.as_bytes(), &headers, 77).unwrap();
        assert_eq!(r.id.to_string(), id);
        assert_eq!(
            r.input,
            serde_json::json!({"nature": "Can you tell me how much this is?", "database": "cinema"})
        );
        assert_eq!(r.deadline_ms, 77);
        assert_eq!(
            r.reply_to,
            Some(ReplyTo {
                topic: "backend.replies".into(),
                partition: Some(3),
                correlation_id: Some(b"\x01\x02corr".to_vec()),
            })
        );
        // Without reply headers the result is only stored.
        let r = InferenceRequest::decode(msg.as_bytes(), &[], 77).unwrap();
        assert_eq!(r.reply_to, None);
        // Malformed ones say why.
        for (bad, field) in [
            (r#"{"nature":"x"}"#.to_string(), "uuid"),
            (r#"{"uuid":"nope","nature":"x"}"#.to_string(), "uuid"),
            (format!(r#"{{"uuid":"{id}"}}"#), "input"),
        ] {
            match InferenceRequest::decode(bad.as_bytes(), &[], 77) {
                Err(MessageError::Invalid { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(matches!(
            InferenceRequest::decode(b"[1,2]", &[], 77),
            Err(MessageError::Malformed(_))
        ));
        let partition_text: [(&str, &[u8]); 2] =
            [(REPLY_TOPIC_HEADER, b"t"), (REPLY_PARTITION_HEADER, b"12")];
        assert_eq!(
            InferenceRequest::decode(msg.as_bytes(), &partition_text, 77)
                .unwrap()
                .reply_to
                .unwrap()
                .partition,
            Some(12)
        );
    }
}
