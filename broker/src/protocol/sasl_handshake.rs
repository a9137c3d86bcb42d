//! SaslHandshake (v1 only): the client names a mechanism; the answer lists the enabled ones and
//! says whether the named one is among them (else UNSUPPORTED_SASL_MECHANISM, 33). The exchange
//! itself then runs in SaslAuthenticate requests.
//!
//! Why not v0: after a v0 handshake the client sends raw, unframed SASL tokens (no Kafka request
//! header), a second framing the connection would have to switch to. Every client we test
//! (librdkafka 2.0.2 in kcat, 2.12.1 in rdkafka, 2.16.0 in confluent-kafka, and kafka-python
//! 3.0.12) uses v1 plus SaslAuthenticate when the broker advertises it, so only v1 is served and
//! a v0 request closes the connection. The range advertised is still 0-1: librdkafka before 2.11
//! (kcat's 2.0.2) turns SASL handshakes on only if the range contains v0, a point check, like
//! Produce v0 (docs/kafka-compat.md).
//!
//! Handled by the connection (`server/connection.rs`), which owns the exchange state; this file
//! only turns the request into the answer and the chosen mechanism.

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::error::NONE;
use crate::auth::{Mechanism, SaslConfig};

/// The answer, and the mechanism to run if it is enabled.
pub(crate) fn handle(
    sasl: &SaslConfig,
    req: &SaslHandshakeRequest,
) -> (SaslHandshakeResponse, Option<Mechanism>) {
    let mut resp = SaslHandshakeResponse::default();
    resp.mechanisms = sasl
        .mechanisms
        .iter()
        .map(|m| StrBytes::from_static_str(m.name()))
        .collect();
    let chosen = req
        .mechanism
        .as_str()
        .parse::<Mechanism>()
        .ok()
        .filter(|m| sasl.mechanisms.contains(m));
    resp.error_code = match chosen {
        Some(_) => NONE,
        None => ResponseError::UnsupportedSaslMechanism.code(),
    };
    (resp, chosen)
}

/// The answer to a handshake on a connection that already has one (re-authentication,
/// KIP-368, is not supported: sessions never expire).
pub(crate) fn illegal_state(sasl: &SaslConfig) -> SaslHandshakeResponse {
    let mut resp = SaslHandshakeResponse::default();
    resp.error_code = ResponseError::IllegalSaslState.code();
    resp.mechanisms = sasl
        .mechanisms
        .iter()
        .map(|m| StrBytes::from_static_str(m.name()))
        .collect();
    resp
}
