//! A pre-decode check of control-plane requests: walks the request layout and refuses any array
//! whose length exceeds the bytes left in the frame, before the `kafka-protocol` decoder sees it.
//!
//! Why: that crate (0.18) allocates `Vec::with_capacity(n)` from the wire length `n` before
//! decoding any element, so a 21-byte Metadata request claiming 2^31 topics made the allocator
//! abort the whole broker. Every array element takes at least one byte, so a length larger than
//! what is left is malformed. Owns the layouts of the control-plane requests weir answers (the
//! versions in `api_versions::SUPPORTED`); must be extended with every API or version added there
//! (the tests check every supported version against the crate's own encoder).
//! Must not: accept what the decoder would refuse for another reason (it only adds refusals).

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use super::wire::Reader;
use super::ProtocolError;

type Result<T> = std::result::Result<T, ProtocolError>;

struct Walk {
    r: Reader,
    flexible: bool,
}

impl Walk {
    fn string(&mut self) -> Result<()> {
        self.r.string(self.flexible).map(drop)
    }
    fn skip(&mut self, n: usize) -> Result<()> {
        self.r.bytes(n).map(drop)
    }
    fn bytes(&mut self) -> Result<()> {
        self.r.nullable_bytes(self.flexible).map(drop)
    }
    fn tags(&mut self) -> Result<()> {
        if self.flexible {
            self.r.skip_tagged_fields()?;
        }
        Ok(())
    }
    fn array(&mut self, mut each: impl FnMut(&mut Walk) -> Result<()>) -> Result<()> {
        let n = self.r.array_len(self.flexible)?;
        for _ in 0..n {
            each(self)?;
        }
        Ok(())
    }
}

/// Checks the body of `api_key` v`version`; APIs without arrays or not decoded by the crate pass.
pub fn check(api_key: ApiKey, version: i16, body: &Bytes) -> Result<()> {
    let v = version;
    let flexible = match api_key {
        ApiKey::Metadata => v >= 9,
        ApiKey::Fetch => v >= 12,
        ApiKey::ListOffsets => v >= 6,
        ApiKey::CreateTopics => v >= 5,
        ApiKey::DeleteTopics => v >= 4,
        ApiKey::DescribeConfigs => v >= 4,
        ApiKey::CreatePartitions => v >= 2,
        ApiKey::AlterConfigs => v >= 2,
        ApiKey::IncrementalAlterConfigs => v >= 1,
        ApiKey::FindCoordinator => v >= 3,
        ApiKey::JoinGroup => v >= 6,
        ApiKey::SyncGroup => v >= 4,
        ApiKey::LeaveGroup => v >= 4,
        ApiKey::OffsetCommit => v >= 8,
        ApiKey::OffsetFetch => v >= 6,
        ApiKey::ListGroups => v >= 3,
        ApiKey::DescribeGroups => v >= 5,
        ApiKey::DeleteGroups => v >= 2,
        ApiKey::OffsetDelete => false,
        _ => return Ok(()),
    };
    let mut w = Walk {
        r: Reader::new(body.clone()),
        flexible,
    };
    match api_key {
        ApiKey::Metadata => w.array(|w| {
            if v >= 10 {
                w.skip(16)?;
            }
            w.string()?;
            w.tags()
        }),
        ApiKey::Fetch => {
            w.skip(4 + 4 + 4 + 4 + 1)?; // replica_id, max_wait_ms, min_bytes, max_bytes, isolation
            if v >= 7 {
                w.skip(8)?; // session id and epoch
            }
            w.array(|w| {
                w.string()?;
                w.array(|w| {
                    w.skip(4)?;
                    if v >= 9 {
                        w.skip(4)?;
                    }
                    w.skip(8)?;
                    if v >= 12 {
                        w.skip(4)?;
                    }
                    if v >= 5 {
                        w.skip(8)?;
                    }
                    w.skip(4)?;
                    w.tags()
                })?;
                w.tags()
            })?;
            if v >= 7 {
                w.array(|w| {
                    w.string()?;
                    w.array(|w| w.skip(4))?;
                    w.tags()
                })?;
            }
            Ok(())
        }
        ApiKey::ListOffsets => {
            w.skip(4)?;
            if v >= 2 {
                w.skip(1)?;
            }
            w.array(|w| {
                w.string()?;
                w.array(|w| {
                    w.skip(4)?;
                    if v >= 4 {
                        w.skip(4)?;
                    }
                    w.skip(8)?;
                    w.tags()
                })?;
                w.tags()
            })
        }
        ApiKey::CreateTopics => w.array(|w| {
            w.string()?;
            w.skip(4 + 2)?;
            w.array(|w| {
                w.skip(4)?;
                w.array(|w| w.skip(4))?;
                w.tags()
            })?;
            w.array(|w| {
                w.string()?;
                w.string()?;
                w.tags()
            })?;
            w.tags()
        }),
        ApiKey::DeleteTopics => w.array(|w| w.string()),
        ApiKey::CreatePartitions => w.array(|w| {
            w.string()?;
            w.skip(4)?;
            w.array(|w| {
                w.array(|w| w.skip(4))?;
                w.tags()
            })?;
            w.tags()
        }),
        ApiKey::DescribeConfigs => w.array(|w| {
            w.skip(1)?;
            w.string()?;
            w.array(|w| w.string())?;
            w.tags()
        }),
        ApiKey::AlterConfigs | ApiKey::IncrementalAlterConfigs => w.array(|w| {
            w.skip(1)?; // resource type
            w.string()?;
            w.array(|w| {
                w.string()?;
                if api_key == ApiKey::IncrementalAlterConfigs {
                    w.skip(1)?; // operation
                }
                w.string()?;
                w.tags()
            })?;
            w.tags()
        }),
        // v0-3 have no array.
        ApiKey::FindCoordinator if v >= 4 => {
            w.skip(1)?; // key type
            w.array(|w| w.string())
        }
        ApiKey::JoinGroup => {
            w.string()?; // group
            w.skip(4)?; // session timeout
            if v >= 1 {
                w.skip(4)?; // rebalance timeout
            }
            w.string()?; // member id
            if v >= 5 {
                w.string()?; // group instance id
            }
            w.string()?; // protocol type
            w.array(|w| {
                w.string()?;
                w.bytes()?;
                w.tags()
            })
        }
        ApiKey::SyncGroup => {
            w.string()?;
            w.skip(4)?;
            w.string()?;
            if v >= 3 {
                w.string()?;
            }
            if v >= 5 {
                w.string()?; // protocol type
                w.string()?; // protocol name
            }
            w.array(|w| {
                w.string()?;
                w.bytes()?;
                w.tags()
            })
        }
        // v0-2 have no array.
        ApiKey::LeaveGroup if v >= 3 => {
            w.string()?;
            w.array(|w| {
                w.string()?;
                w.string()?;
                if v >= 5 {
                    w.string()?;
                }
                w.tags()
            })
        }
        ApiKey::OffsetCommit => {
            w.string()?;
            w.skip(4)?; // generation
            w.string()?; // member id
            if v >= 7 {
                w.string()?; // group instance id
            }
            if v <= 4 {
                w.skip(8)?; // retention time
            }
            w.array(|w| {
                w.string()?;
                w.array(|w| {
                    w.skip(4 + 8)?;
                    if v >= 6 {
                        w.skip(4)?;
                    }
                    w.string()?; // metadata
                    w.tags()
                })?;
                w.tags()
            })
        }
        ApiKey::OffsetFetch if v >= 8 => w.array(|w| {
            w.string()?;
            w.array(|w| {
                w.string()?;
                w.array(|w| w.skip(4))?;
                w.tags()
            })?;
            w.tags()
        }),
        ApiKey::OffsetFetch => {
            w.string()?;
            w.array(|w| {
                w.string()?;
                w.array(|w| w.skip(4))?;
                w.tags()
            })
        }
        // v0-3 have no array.
        ApiKey::ListGroups if v >= 4 => w.array(|w| w.string()),
        ApiKey::DescribeGroups => w.array(|w| w.string()),
        ApiKey::DeleteGroups => w.array(|w| w.string()),
        ApiKey::OffsetDelete => {
            w.string()?;
            w.array(|w| {
                w.string()?;
                w.array(|w| w.skip(4))
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api_versions::SUPPORTED;
    use bytes::BytesMut;
    use kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsAssignment, CreatePartitionsTopic,
    };
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
    };
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.into()))
    }

    /// A request of every checked API with two elements in every array, encoded by the crate.
    fn sample(key: ApiKey, v: i16) -> Option<Bytes> {
        let mut out = BytesMut::new();
        let s = |x: &str| StrBytes::from_string(x.into());
        let r = match key {
            ApiKey::Metadata => MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(name("a"))),
                    MetadataRequestTopic::default().with_name(Some(name("bb"))),
                ]))
                .encode(&mut out, v),
            ApiKey::Fetch => {
                let p = FetchPartition::default()
                    .with_partition(1)
                    .with_fetch_offset(5);
                let t = FetchTopic::default()
                    .with_topic(name("t"))
                    .with_partitions(vec![p.clone(), p]);
                let mut req = FetchRequest::default().with_topics(vec![t.clone(), t]);
                if v >= 7 {
                    let f = ForgottenTopic::default()
                        .with_topic(name("f"))
                        .with_partitions(vec![1, 2]);
                    req = req.with_forgotten_topics_data(vec![f.clone(), f]);
                }
                if v >= 11 {
                    req = req.with_rack_id(s("rack"));
                }
                req.encode(&mut out, v)
            }
            ApiKey::ListOffsets => {
                let p = ListOffsetsPartition::default().with_timestamp(-1);
                let t = ListOffsetsTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![p.clone(), p]);
                ListOffsetsRequest::default()
                    .with_topics(vec![t.clone(), t])
                    .encode(&mut out, v)
            }
            ApiKey::CreateTopics => {
                let a = CreatableReplicaAssignment::default()
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2)]);
                let c = CreatableTopicConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("1")));
                let t = CreatableTopic::default()
                    .with_name(name("t"))
                    .with_assignments(vec![a.clone(), a])
                    .with_configs(vec![c.clone(), c]);
                CreateTopicsRequest::default()
                    .with_topics(vec![t.clone(), t])
                    .encode(&mut out, v)
            }
            ApiKey::DeleteTopics => DeleteTopicsRequest::default()
                .with_topic_names(vec![name("a"), name("b")])
                .encode(&mut out, v),
            ApiKey::DescribeConfigs => {
                let res = DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configuration_keys(Some(vec![s("a"), s("b")]));
                DescribeConfigsRequest::default()
                    .with_resources(vec![res.clone(), res])
                    .encode(&mut out, v)
            }
            ApiKey::CreatePartitions => {
                let a = CreatePartitionsAssignment::default()
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2)]);
                let t = CreatePartitionsTopic::default()
                    .with_name(name("t"))
                    .with_count(4)
                    .with_assignments(Some(vec![a.clone(), a]));
                CreatePartitionsRequest::default()
                    .with_topics(vec![t.clone(), t])
                    .encode(&mut out, v)
            }
            ApiKey::AlterConfigs => {
                use kafka_protocol::messages::alter_configs_request::{
                    AlterConfigsResource, AlterableConfig,
                };
                let c = AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("1")));
                let res = AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configs(vec![c.clone(), c]);
                AlterConfigsRequest::default()
                    .with_resources(vec![res.clone(), res])
                    .encode(&mut out, v)
            }
            ApiKey::IncrementalAlterConfigs => {
                use kafka_protocol::messages::incremental_alter_configs_request::{
                    AlterConfigsResource, AlterableConfig,
                };
                let c = AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(s("1")));
                let res = AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configs(vec![c.clone(), c]);
                IncrementalAlterConfigsRequest::default()
                    .with_resources(vec![res.clone(), res])
                    .encode(&mut out, v)
            }
            _ => return group_body(key, v).map(BytesMut::freeze),
        };
        r.unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
        Some(out.freeze())
    }

    /// A group-API request body with two elements in every array (None for other APIs).
    fn group_body(key: ApiKey, v: i16) -> Option<BytesMut> {
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

    /// Runs the crate's decoder (what the broker does after the check).
    fn decode(key: ApiKey, v: i16, body: Bytes) {
        use kafka_protocol::protocol::Decodable;
        let mut b = body;
        let _ = match key {
            ApiKey::Metadata => MetadataRequest::decode(&mut b, v).map(drop),
            ApiKey::Fetch => FetchRequest::decode(&mut b, v).map(drop),
            ApiKey::ListOffsets => ListOffsetsRequest::decode(&mut b, v).map(drop),
            ApiKey::CreateTopics => CreateTopicsRequest::decode(&mut b, v).map(drop),
            ApiKey::DeleteTopics => DeleteTopicsRequest::decode(&mut b, v).map(drop),
            ApiKey::DescribeConfigs => DescribeConfigsRequest::decode(&mut b, v).map(drop),
            ApiKey::CreatePartitions => CreatePartitionsRequest::decode(&mut b, v).map(drop),
            ApiKey::AlterConfigs => AlterConfigsRequest::decode(&mut b, v).map(drop),
            ApiKey::IncrementalAlterConfigs => {
                IncrementalAlterConfigsRequest::decode(&mut b, v).map(drop)
            }
            ApiKey::FindCoordinator => FindCoordinatorRequest::decode(&mut b, v).map(drop),
            ApiKey::JoinGroup => JoinGroupRequest::decode(&mut b, v).map(drop),
            ApiKey::SyncGroup => SyncGroupRequest::decode(&mut b, v).map(drop),
            ApiKey::Heartbeat => HeartbeatRequest::decode(&mut b, v).map(drop),
            ApiKey::LeaveGroup => LeaveGroupRequest::decode(&mut b, v).map(drop),
            ApiKey::OffsetCommit => OffsetCommitRequest::decode(&mut b, v).map(drop),
            ApiKey::OffsetFetch => OffsetFetchRequest::decode(&mut b, v).map(drop),
            ApiKey::ListGroups => ListGroupsRequest::decode(&mut b, v).map(drop),
            ApiKey::DescribeGroups => DescribeGroupsRequest::decode(&mut b, v).map(drop),
            ApiKey::DeleteGroups => DeleteGroupsRequest::decode(&mut b, v).map(drop),
            ApiKey::OffsetDelete => OffsetDeleteRequest::decode(&mut b, v).map(drop),
            _ => Ok(()),
        };
    }

    #[test]
    fn valid_requests_of_every_supported_version_pass_and_lying_lengths_are_refused() {
        let mut checked = 0;
        for (key, min, max) in SUPPORTED {
            for v in *min..=*max {
                let Some(body) = sample(*key, v) else {
                    continue;
                };
                check(*key, v, &body).unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
                checked += 1;
                // Replace each 4-byte window (classic lengths) or byte (compact lengths) with a
                // huge value: the check never panics, and whatever it accepts the crate's
                // decoder can take without a huge allocation (it gets bounded input).
                for at in 0..body.len() {
                    let mut bad = body.to_vec();
                    let huge: &[u8] = if at + 4 <= bad.len() {
                        &[0x7f, 0xff, 0xff, 0xff]
                    } else {
                        &[0xff]
                    };
                    let end = (at + huge.len()).min(bad.len());
                    bad[at..end].copy_from_slice(&huge[..end - at]);
                    let bad = Bytes::from(bad);
                    if check(*key, v, &bad).is_ok() {
                        decode(*key, v, bad);
                    }
                }
            }
        }
        assert!(checked >= 30, "only {checked} versions checked");
        // The request that aborted the broker: Metadata v1 claiming 2^31 - 1 topics.
        let bad = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 1, b'a']);
        assert!(check(ApiKey::Metadata, 1, &bad).is_err());
    }
}
