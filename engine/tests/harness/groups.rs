//! The classic consumer-group requests a harness test sends, one typed call each (JoinGroup v5
//! with MEMBER_ID_REQUIRED handled, SyncGroup v3, Heartbeat v3, LeaveGroup v3, OffsetCommit v7,
//! OffsetFetch v6, ListGroups v4, DeleteGroups v2, OffsetDelete v0), and the consumer protocol's
//! subscription and assignment bytes.
//!
//! Owns: building these requests and picking out the answer a test asserts. Must not: decide
//! what an answer should be (the tests do).
#![allow(dead_code)]

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, SyncGroupRequest,
};
use kclient::conn::BlockingConn;
use wire::error_code as ec;

use super::{name, text};

pub fn group_id(group: &str) -> GroupId {
    GroupId(text(group))
}

/// The consumer protocol's subscription (v0) to `topics`.
pub fn subscription(topics: &[&str]) -> Bytes {
    let mut b = vec![0, 0];
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(b)
}

/// The consumer protocol's assignment (v0) of `partitions` of `topic`.
pub fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let mut b = vec![0, 0];
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    b.extend_from_slice(topic.as_bytes());
    b.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
    for p in partitions {
        b.extend_from_slice(&p.to_be_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(b)
}

/// JoinGroup v5 of a "consumer" member subscribed to `topics` (30 s session timeout).
pub fn join_once(
    conn: &mut BlockingConn,
    group: &str,
    member_id: &str,
    topics: &[&str],
) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(text(member_id))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(text("range"))
            .with_metadata(subscription(topics))]);
    conn.call_blocking(&req, 5).expect("JoinGroup")
}

/// A new member's join: MEMBER_ID_REQUIRED, then the join with the id it gave, which returns
/// when the rebalance completes. Returns the completed join's answer.
pub fn join(conn: &mut BlockingConn, group: &str, topics: &[&str]) -> JoinGroupResponse {
    let first = join_once(conn, group, "", topics);
    assert_eq!(first.error_code, ec::MEMBER_ID_REQUIRED, "{first:?}");
    assert!(!first.member_id.is_empty());
    join_once(conn, group, &first.member_id, topics)
}

/// SyncGroup v3 with `assignments` (member id → assignment bytes; only the leader sends any);
/// returns the error code and this member's assignment.
pub fn sync(
    conn: &mut BlockingConn,
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: &[(&str, Bytes)],
) -> (i16, Bytes) {
    let req = SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(text(member_id))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(text(m))
                        .with_assignment(a.clone())
                })
                .collect(),
        );
    let resp = conn.call_blocking(&req, 3).expect("SyncGroup");
    (resp.error_code, resp.assignment)
}

/// One member joins `group` alone and, as its leader, assigns itself every partition of
/// `topic`; returns (member id, generation).
pub fn join_alone(
    conn: &mut BlockingConn,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> (String, i32) {
    let joined = join(conn, group, &[topic]);
    assert_eq!(joined.error_code, ec::NONE, "{joined:?}");
    assert_eq!(joined.leader, joined.member_id, "a lone member leads");
    let id = joined.member_id.to_string();
    let mine = assignment(topic, partitions);
    let (code, got) = sync(
        conn,
        group,
        joined.generation_id,
        &id,
        &[(&id, mine.clone())],
    );
    assert_eq!((code, got), (ec::NONE, mine));
    (id, joined.generation_id)
}

/// Heartbeat v3 → error code.
pub fn heartbeat(conn: &mut BlockingConn, group: &str, generation: i32, member_id: &str) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(text(member_id));
    conn.call_blocking(&req, 3).expect("Heartbeat").error_code
}

/// LeaveGroup v3 of one member → (top-level code, the member's code).
pub fn leave(conn: &mut BlockingConn, group: &str, member_id: &str) -> (i16, i16) {
    let req = LeaveGroupRequest::default()
        .with_group_id(group_id(group))
        .with_members(vec![
            MemberIdentity::default().with_member_id(text(member_id))
        ]);
    let resp = conn.call_blocking(&req, 3).expect("LeaveGroup");
    let member = resp.members.first().map_or(-1, |m| m.error_code);
    (resp.error_code, member)
}

/// OffsetCommit v7 of `offsets` (partition, offset) of `topic`; one code per partition.
/// Generation -1 and member "" commit as a standalone consumer.
pub fn commit(
    conn: &mut BlockingConn,
    group: &str,
    generation: i32,
    member_id: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> Vec<i16> {
    let req = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(text(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name(topic))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(p, o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                            .with_committed_metadata(Some(text("")))
                    })
                    .collect(),
            )]);
    let resp = conn.call_blocking(&req, 7).expect("OffsetCommit");
    resp.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// OffsetFetch v6 of `partitions` of `topic`: the committed offset of each (-1: none).
pub fn committed(
    conn: &mut BlockingConn,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Vec<i64> {
    let req = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(name(topic))
            .with_partition_indexes(partitions.to_vec())]));
    let resp = conn.call_blocking(&req, 6).expect("OffsetFetch");
    assert_eq!(resp.error_code, ec::NONE, "{resp:?}");
    let parts = &resp.topics[0].partitions;
    for p in parts {
        assert_eq!(p.error_code, ec::NONE, "{p:?}");
    }
    parts.iter().map(|p| p.committed_offset).collect()
}

/// ListGroups v4 (no filter): (group, state), sorted.
pub fn list_groups(conn: &mut BlockingConn) -> Vec<(String, String)> {
    let resp = conn
        .call_blocking(&ListGroupsRequest::default(), 4)
        .expect("ListGroups");
    assert_eq!(resp.error_code, ec::NONE);
    let mut out: Vec<(String, String)> = resp
        .groups
        .iter()
        .map(|g| (g.group_id.to_string(), g.group_state.to_string()))
        .collect();
    out.sort();
    out
}

/// DeleteGroups v2: (group, code) in request order.
pub fn delete_groups(conn: &mut BlockingConn, groups: &[&str]) -> Vec<(String, i16)> {
    let req = DeleteGroupsRequest::default()
        .with_groups_names(groups.iter().map(|g| group_id(g)).collect());
    let resp = conn.call_blocking(&req, 2).expect("DeleteGroups");
    resp.results
        .iter()
        .map(|r| (r.group_id.to_string(), r.error_code))
        .collect()
}

/// OffsetDelete v0 of `partitions` of `topic`.
pub fn offset_delete(
    conn: &mut BlockingConn,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> OffsetDeleteResponse {
    let req = OffsetDeleteRequest::default()
        .with_group_id(group_id(group))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
                    .collect(),
            )]);
    conn.call_blocking(&req, 0).expect("OffsetDelete")
}

/// The per-partition codes of an OffsetDelete answer, in order.
pub fn partition_codes(resp: &OffsetDeleteResponse) -> Vec<i16> {
    resp.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}
