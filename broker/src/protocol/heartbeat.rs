//! Heartbeat and LeaveGroup (v0-2 one member, v3+ a list with per-member errors).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, LeaveGroupRequest, LeaveGroupResponse,
};

use crate::server::Broker;

pub(crate) fn heartbeat(
    broker: &Broker,
    _version: i16,
    req: HeartbeatRequest,
) -> HeartbeatResponse {
    let mut resp = HeartbeatResponse::default();
    resp.error_code = broker.groups.heartbeat(
        req.group_id.0.as_str(),
        req.generation_id,
        req.member_id.as_str(),
    );
    resp
}

pub(crate) fn leave(broker: &Broker, version: i16, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let mut resp = LeaveGroupResponse::default();
    let group = req.group_id.0.as_str();
    if version < 3 {
        let codes = broker.groups.leave(group, &[req.member_id.to_string()]);
        resp.error_code = codes.first().copied().unwrap_or_default();
        return resp;
    }
    let ids: Vec<String> = req
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    let codes = broker.groups.leave(group, &ids);
    resp.members = req
        .members
        .into_iter()
        .zip(codes)
        .map(|(m, code)| {
            let mut r = MemberResponse::default();
            r.member_id = m.member_id;
            r.group_instance_id = m.group_instance_id;
            r.error_code = code;
            r
        })
        .collect();
    resp
}
