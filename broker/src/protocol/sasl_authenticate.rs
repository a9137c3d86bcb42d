//! SaslAuthenticate (v0-2): carries one message of the SASL exchange the handshake chose, and
//! the broker's reply. A failed step answers SASL_AUTHENTICATION_FAILED (58) with a message, and
//! the connection closes after sending it, as Kafka does.
//!
//! Handled by the connection (`server/connection.rs`), which owns the [`Exchange`].

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::auth::{AuthError, Exchange, Principal, SaslConfig, Step};

/// What the step means for the connection.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The exchange goes on.
    Continue,
    /// The connection is now this principal's.
    Authenticated(Principal),
    /// Send the answer, then close.
    Failed(AuthError),
}

pub(crate) fn handle(
    sasl: &SaslConfig,
    exchange: &mut Exchange,
    req: &SaslAuthenticateRequest,
) -> (SaslAuthenticateResponse, Outcome) {
    let mut resp = SaslAuthenticateResponse::default();
    // Sessions do not expire (no re-authentication, KIP-368): 0 tells v1+ clients so.
    resp.session_lifetime_ms = 0;
    let outcome = match exchange.step(&sasl.users, &req.auth_bytes) {
        Ok(Step::Continue(reply)) => {
            resp.auth_bytes = Bytes::from(reply);
            Outcome::Continue
        }
        Ok(Step::Done(principal, reply)) => {
            resp.auth_bytes = Bytes::from(reply);
            Outcome::Authenticated(principal)
        }
        Err(e) => {
            resp.error_code = ResponseError::SaslAuthenticationFailed.code();
            resp.error_message = Some(StrBytes::from_string(e.to_string()));
            Outcome::Failed(e)
        }
    };
    (resp, outcome)
}

/// The answer to SaslAuthenticate without a handshake first (or after it is over).
pub(crate) fn illegal_state(message: &str) -> SaslAuthenticateResponse {
    let mut resp = SaslAuthenticateResponse::default();
    resp.error_code = ResponseError::IllegalSaslState.code();
    resp.error_message = Some(StrBytes::from_string(message.to_string()));
    resp
}
