//! Metadata: brokers (this one), the cluster id, the controller, and topics with their
//! partitions; unknown topics are auto-created when both the broker and the request allow it.
//!
//! Owns the Metadata answer. Must not report a topic whose logs are not open yet (topics become
//! visible only through `create_topic`, which opens them first, or from the coordinator).

use super::dispatch::{ready, Call, Dispatched};
use std::collections::BTreeMap;
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::store::TopicMeta;
use super::topic_config::validate_topic_name;
use super::topics::CreateError;
use super::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Fields a version lacks must stay at their defaults (the encoder refuses them otherwise).
fn describe(topic: &TopicMeta, version: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_is_internal(version >= 1 && super::topic_config::is_internal(&topic.name))
        .with_topic_id(if version >= 10 {
            topic.uuid()
        } else {
            uuid::Uuid::nil()
        })
        .with_partitions(
            topic
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    MetadataResponsePartition::default()
                        .with_partition_index(i as i32)
                        .with_leader_id(BrokerId(p.leader))
                        .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                        .with_replica_nodes(vec![BrokerId(p.leader)])
                        .with_isr_nodes(vec![BrokerId(p.leader)])
                })
                .collect(),
        )
}

fn failed(name: &str, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(name)))
        .with_error_code(code)
}

/// This broker as Metadata lists it.
struct Me<'a> {
    node_id: i32,
    host: &'a str,
    port: u16,
    rack: Option<&'a str>,
}

/// The response (fields a version lacks stay at their defaults: rack from v1).
fn build(
    version: i16,
    me: Me<'_>,
    cluster_id: &str,
    topics: Vec<MetadataResponseTopic>,
) -> MetadataResponse {
    let node = BrokerId(me.node_id);
    let rack = me
        .rack
        .filter(|_| version >= 1)
        .map(|r| StrBytes::from_string(r.to_string()));
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(node)
            .with_host(StrBytes::from_string(me.host.to_string()))
            .with_port(i32::from(me.port))
            .with_rack(rack)])
        .with_cluster_id((version >= 2).then(|| StrBytes::from_string(cluster_id.to_string())))
        .with_controller_id(if version >= 1 { node } else { BrokerId(-1) })
        .with_topics(topics)
}

fn dispatch(
    b: Rc<Broker>,
    h: RequestHeader,
    body: MetadataRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        // v0: an empty list means every topic; v1+: null means every topic.
        let wanted: Option<Vec<String>> = match body.topics {
            None => None,
            Some(list) if list.is_empty() && h.api_version == 0 => None,
            Some(list) => Some(
                list.into_iter()
                    .filter_map(|t| t.name.map(|n| n.0.to_string()))
                    .collect(),
            ),
        };
        let auto_create =
            b.cfg.auto_create_topics && (h.api_version < 4 || body.allow_auto_topic_creation);
        let mut topics = Vec::new();
        match wanted {
            None => match b.all_topics().await {
                Ok(all) => topics.extend(all.iter().map(|t| describe(t, h.api_version))),
                Err(e) => tracing::warn!("Metadata: listing topics: {e}"),
            },
            Some(names) => {
                for name in names {
                    if validate_topic_name(&name).is_err() {
                        topics.push(failed(&name, ec::INVALID_TOPIC_EXCEPTION));
                        continue;
                    }
                    match b.topic(&name).await {
                        Ok(Some(t)) => topics.push(describe(&t, h.api_version)),
                        Ok(None) if auto_create => {
                            let partitions = b.cfg.num_partitions;
                            match b
                                .create_topic(&name, partitions, -1, BTreeMap::new(), false)
                                .await
                            {
                                Ok(t) => topics.push(describe(&t, h.api_version)),
                                // Created meanwhile by another request: describe that one.
                                Err(CreateError(ec::TOPIC_ALREADY_EXISTS, _)) => {
                                    match b.topic(&name).await {
                                        Ok(Some(t)) => topics.push(describe(&t, h.api_version)),
                                        _ => topics.push(failed(&name, ec::LEADER_NOT_AVAILABLE)),
                                    }
                                }
                                Err(CreateError(code, message)) => {
                                    tracing::warn!(topic = %name, "auto-create failed: {message}");
                                    topics.push(failed(&name, code));
                                }
                            }
                        }
                        Ok(None) => topics.push(failed(&name, ec::UNKNOWN_TOPIC_OR_PARTITION)),
                        Err(e) => {
                            tracing::warn!(topic = %name, "Metadata: {e}");
                            topics.push(failed(&name, ec::LEADER_NOT_AVAILABLE));
                        }
                    }
                }
            }
        }
        let me = Me {
            node_id: b.cfg.node_id,
            host: &b.cfg.advertised_host,
            port: b.cfg.advertised_port,
            rack: b.cfg.rack.as_deref(),
        };
        let response = build(h.api_version, me, &b.cluster_id, topics);
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<MetadataRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: MetadataRequest) -> Dispatched {
        ready(dispatch(self.broker, self.header, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::store::PartitionMeta;
    use kafka_protocol::messages::ApiKey;
    use kafka_protocol::protocol::Decodable;
    use wire::protocol::header::RequestHeader;

    #[test]
    fn every_supported_version_encodes_and_decodes() {
        let topic = TopicMeta {
            name: "t".into(),
            topic_id: uuid::Uuid::new_v4().hyphenated().to_string(),
            partitions: vec![
                PartitionMeta {
                    leader: 1,
                    shard: 0
                };
                3
            ],
            configs: Default::default(),
        };
        let (min, max) = wire::protocol::api_versions::supported(ApiKey::Metadata).unwrap();
        for v in min..=max {
            let h = RequestHeader {
                api_key: ApiKey::Metadata,
                api_version: v,
                correlation_id: 1,
                client_id: None,
            };
            let topics = vec![
                describe(&topic, v),
                failed("x", ec::UNKNOWN_TOPIC_OR_PARTITION),
            ];
            let me = Me {
                node_id: 1,
                host: "h",
                port: 9092,
                rack: Some("us-east-1a"),
            };
            let frame = encode_response::<_, bytes::Bytes>(&h, &build(v, me, "cid", topics))
                .unwrap_or_else(|e| panic!("v{v}: {e}"))
                .to_vec();
            let at = if ApiKey::Metadata.response_header_version(v) >= 1 {
                9
            } else {
                8
            };
            let mut body = bytes::Bytes::copy_from_slice(&frame[at..]);
            let r = MetadataResponse::decode(&mut body, v).unwrap();
            assert_eq!(r.topics[0].partitions.len(), 3);
            assert_eq!(r.brokers[0].port, 9092);
            let rack = r.brokers[0].rack.as_ref().map(|s| s.to_string());
            let expected = (v >= 1).then(|| "us-east-1a".to_string());
            assert_eq!(rack, expected, "v{v}: rack from v1");
        }
    }
}
