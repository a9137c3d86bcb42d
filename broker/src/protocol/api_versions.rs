//! ApiVersions: the table of APIs and versions this broker serves ([`super::APIS`]). Clients use
//! `min(client max, our max)` per API, so the table decides what we must parse: it lists only
//! what is implemented (see docs/kafka-compat.md).

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::{spec, RequestContext, APIS};
use crate::state::Broker;

pub(crate) fn handle(
    _broker: &Broker,
    ctx: &RequestContext,
    _version: i16,
    _req: ApiVersionsRequest,
) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    // The SASL APIs only on a SASL listener: librdkafka starts a handshake when it sees them.
    let sasl_on = ctx.listener.protocol.sasl();
    r.api_keys = APIS
        .iter()
        .filter(|a| sasl_on || !a.sasl)
        .map(|a| {
            let mut v = ApiVersion::default();
            v.api_key = a.key as i16;
            v.min_version = a.min;
            v.max_version = a.max;
            v
        })
        .collect();
    r
}

/// The answer to an ApiVersions request at a version we do not know: a v0 body with
/// UNSUPPORTED_VERSION and our ApiVersions range, so the client retries at a version we speak.
pub(crate) fn unsupported_version_response() -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = ResponseError::UnsupportedVersion.code();
    let mut v = ApiVersion::default();
    v.api_key = ApiKey::ApiVersions as i16;
    if let Some(a) = spec(ApiKey::ApiVersions) {
        v.min_version = a.min;
        v.max_version = a.max;
    }
    r.api_keys = vec![v];
    r
}
