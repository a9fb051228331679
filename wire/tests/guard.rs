//! The pre-decode guard (`wire::protocol::guard::check`) against real requests of every
//! supported API and version encoded by the `kafka-protocol` crate, and against lying array
//! lengths: valid requests pass, and whatever the guard accepts the crate decodes without
//! over-allocating or panicking.

mod requests;
use requests::group_body;

use bytes::{Bytes, BytesMut};
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
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use wire::protocol::api_versions::SUPPORTED;
use wire::protocol::guard::check;

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
