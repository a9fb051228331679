//! Requests of the consumer-group APIs, encoded by the `kafka-protocol` crate with two elements
//! in every array: shared by the guard test and the decoder corpus.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

/// A group-API request body with two elements in every array (None for other APIs).
pub fn group_body(key: ApiKey, v: i16) -> Option<BytesMut> {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    let st = |x: &str| StrBytes::from_string(x.into());
    let group = GroupId(st("orders-app"));
    let instance = if v >= 5 { Some(st("host-1")) } else { None };
    let mut out = BytesMut::new();
    let r = match key {
        ApiKey::FindCoordinator => {
            let mut req = FindCoordinatorRequest::default();
            if v >= 4 {
                req = req.with_coordinator_keys(vec![st("orders-app"), st("clicks-app")]);
            } else {
                req = req.with_key(st("orders-app"));
            }
            req.encode(&mut out, v)
        }
        ApiKey::JoinGroup => {
            let p = |n: &str| {
                JoinGroupRequestProtocol::default()
                    .with_name(st(n))
                    .with_metadata(Bytes::from_static(
                        b"\0\x01\0\0\0\x01\0\x06orders\xff\xff\xff\xff",
                    ))
            };
            JoinGroupRequest::default()
                .with_group_id(group)
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(if v >= 1 { 30_000 } else { -1 })
                .with_member_id(st("m-1"))
                .with_group_instance_id(instance)
                .with_protocol_type(st("consumer"))
                .with_protocols(vec![p("range"), p("roundrobin")])
                .encode(&mut out, v)
        }
        ApiKey::SyncGroup => {
            let a = |m: &str| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(st(m))
                    .with_assignment(Bytes::from_static(b"\0\x01\0\0\0\0\0\0\0\0"))
            };
            let mut req = SyncGroupRequest::default()
                .with_group_id(group)
                .with_generation_id(3)
                .with_member_id(st("m-1"))
                .with_assignments(vec![a("m-1"), a("m-2")]);
            if v >= 3 {
                req = req.with_group_instance_id(Some(st("host-1")));
            }
            if v >= 5 {
                req = req
                    .with_protocol_type(Some(st("consumer")))
                    .with_protocol_name(Some(st("range")));
            }
            req.encode(&mut out, v)
        }
        ApiKey::Heartbeat => {
            let mut req = HeartbeatRequest::default()
                .with_group_id(group)
                .with_generation_id(3)
                .with_member_id(st("m-1"));
            if v >= 3 {
                req = req.with_group_instance_id(Some(st("host-1")));
            }
            req.encode(&mut out, v)
        }
        ApiKey::LeaveGroup => {
            let mut req = LeaveGroupRequest::default().with_group_id(group);
            if v >= 3 {
                req = req.with_members(vec![
                    MemberIdentity::default().with_member_id(st("m-1")),
                    MemberIdentity::default()
                        .with_member_id(st("m-2"))
                        .with_group_instance_id(Some(st("host-2"))),
                ]);
            } else {
                req = req.with_member_id(st("m-1"));
            }
            req.encode(&mut out, v)
        }
        ApiKey::OffsetCommit => {
            let p = |i: i32| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(i)
                    .with_committed_offset(42 + i64::from(i))
                    .with_committed_metadata(Some(st("meta")))
            };
            let t = |n: &str| {
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(st(n)))
                    .with_partitions(vec![p(0), p(1)])
            };
            let mut req = OffsetCommitRequest::default()
                .with_group_id(group)
                .with_generation_id_or_member_epoch(3)
                .with_member_id(st("m-1"))
                .with_topics(vec![t("orders"), t("clicks")]);
            if v >= 7 {
                req = req.with_group_instance_id(Some(st("host-1")));
            }
            req.encode(&mut out, v)
        }
        ApiKey::OffsetFetch => {
            let mut req = OffsetFetchRequest::default();
            if v >= 8 {
                let t = |n: &str| {
                    OffsetFetchRequestTopics::default()
                        .with_name(TopicName(st(n)))
                        .with_partition_indexes(vec![0, 1])
                };
                let g = |n: &str, topics| {
                    OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(st(n)))
                        .with_topics(topics)
                };
                req = req.with_groups(vec![
                    g("orders-app", Some(vec![t("orders"), t("clicks")])),
                    g("clicks-app", None),
                ]);
            } else {
                let t = |n: &str| {
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(st(n)))
                        .with_partition_indexes(vec![0, 1])
                };
                req = req
                    .with_group_id(group)
                    .with_topics(Some(vec![t("orders"), t("clicks")]));
            }
            if v >= 7 {
                req = req.with_require_stable(true);
            }
            req.encode(&mut out, v)
        }
        ApiKey::ListGroups => {
            let mut req = ListGroupsRequest::default();
            if v >= 4 {
                req = req.with_states_filter(vec![st("Stable"), st("Empty")]);
            }
            req.encode(&mut out, v)
        }
        ApiKey::DescribeGroups => DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(st("orders-app")), GroupId(st("clicks-app"))])
            .with_include_authorized_operations(v >= 3)
            .encode(&mut out, v),
        ApiKey::DeleteGroups => DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(st("orders-app")), GroupId(st("clicks-app"))])
            .encode(&mut out, v),
        ApiKey::OffsetDelete => {
            let t = |n: &str| {
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(st(n)))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(0),
                        OffsetDeleteRequestPartition::default().with_partition_index(1),
                    ])
            };
            OffsetDeleteRequest::default()
                .with_group_id(GroupId(st("orders-app")))
                .with_topics(vec![t("orders"), t("clicks")])
                .encode(&mut out, v)
        }
        _ => return None,
    };
    r.unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
    Some(out)
}
