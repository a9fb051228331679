//! The request decoder's fuzz corpus, replayed on stable: every committed file in
//! `fuzz/corpus/request_decoder/` (seeds and the inputs of fixed crashes) and a few thousand
//! deterministic mutations of the seeds go through `wire::inspect::inspect_request`, the same
//! pure path the broker runs on a request frame and the fuzz target drives. A panic fails the test.
//!
//! The seeds are real requests of every supported API and version, encoded by the
//! `kafka-protocol` crate (Produce with real record batches). Regenerate them after adding an API
//! or version:
//!
//! ```text
//! cargo test -p weir-wire --test decoder_corpus -- --ignored write_seeds
//! ```

mod requests;
use requests::group_body;

use std::path::PathBuf;
use std::time::{Duration, Instant};

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
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use wire::batch::{self, Record};
use wire::inspect::inspect_request;
use wire::protocol::api_versions::SUPPORTED;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/request_decoder")
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.into())
}

fn name(x: &str) -> TopicName {
    TopicName(s(x))
}

/// Byte offsets in a v2 batch header (Kafka's layout; `wire::batch` keeps its own private).
const PRODUCER_ID_AT: usize = 43;
const BASE_SEQUENCE_AT: usize = 53;

/// An uncompressed batch of `n` records, as a producer sends it.
fn plain_batch(n: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![b'v'; 8]),
            headers: vec![("h".into(), Some(b"x".to_vec()))],
        })
        .collect();
    batch::encode_batch(&records)
}

/// An idempotent producer's batch (producer id 7, epoch 0, base sequence 0).
fn idempotent_batch() -> Vec<u8> {
    let mut b = plain_batch(2);
    b[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&7i64.to_be_bytes());
    b[PRODUCER_ID_AT + 8..PRODUCER_ID_AT + 10].copy_from_slice(&0i16.to_be_bytes());
    b[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&0i32.to_be_bytes());
    batch::reseal(&mut b);
    b
}

fn produce_body(records: Vec<Option<Bytes>>) -> ProduceRequest {
    let partitions = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            PartitionProduceData::default()
                .with_index(i as i32)
                .with_records(r)
        })
        .collect();
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("orders"))
            .with_partition_data(partitions)])
}

/// The request header of a frame for `key` v`v`, to append the body to.
fn header(key: ApiKey, v: i16) -> BytesMut {
    let mut out = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(v)
        .with_correlation_id(42)
        .with_client_id(Some(s("weir-seed")))
        .encode(&mut out, key.request_header_version(v))
        .unwrap_or_else(|e| panic!("header {key:?} v{v}: {e}"));
    out
}

/// A frame (header + body, no size prefix) for `key` v`v` with `body` encoded by the crate.
fn frame<T: Encodable>(key: ApiKey, v: i16, body: &T) -> Bytes {
    let mut out = header(key, v);
    body.encode(&mut out, v)
        .unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
    out.freeze()
}

/// One real request of `key` v`v`.
fn seed(key: ApiKey, v: i16) -> Bytes {
    match key {
        ApiKey::Produce => {
            let mut set = plain_batch(3);
            set.extend(plain_batch(1));
            let body = produce_body(vec![
                Some(Bytes::from(set)),
                Some(Bytes::from(idempotent_batch())),
                None,
            ]);
            if v >= 3 {
                return frame(key, v, &body);
            }
            // The crate follows Kafka 4, which dropped v0–2: their body is v3's without the
            // leading transactional_id (a null string).
            let mut out = header(key, v);
            let mut v3 = BytesMut::new();
            body.encode(&mut v3, 3)
                .unwrap_or_else(|e| panic!("{key:?} v3: {e}"));
            out.extend_from_slice(&v3[2..]);
            out.freeze()
        }
        ApiKey::Fetch => {
            let p = FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(5)
                .with_partition_max_bytes(1 << 20);
            let t = FetchTopic::default()
                .with_topic(name("orders"))
                .with_partitions(vec![p.clone(), p.with_partition(1)]);
            let mut req = FetchRequest::default()
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(50 << 20)
                .with_topics(vec![t]);
            if v >= 7 {
                req = req.with_forgotten_topics_data(vec![ForgottenTopic::default()
                    .with_topic(name("old"))
                    .with_partitions(vec![3])]);
            }
            if v >= 11 {
                req = req.with_rack_id(s("rack-a"));
            }
            frame(key, v, &req)
        }
        ApiKey::ListOffsets => {
            let ps = [-1i64, -2, 1_700_000_000_000]
                .iter()
                .enumerate()
                .map(|(i, ts)| {
                    ListOffsetsPartition::default()
                        .with_partition_index(i as i32)
                        .with_timestamp(*ts)
                })
                .collect();
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(name("orders"))
                    .with_partitions(ps)]);
            frame(key, v, &req)
        }
        ApiKey::Metadata => {
            let req = MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("orders"))),
                MetadataRequestTopic::default().with_name(Some(name("clicks"))),
            ]));
            frame(key, v, &req)
        }
        ApiKey::ApiVersions => {
            let mut req = ApiVersionsRequest::default();
            if v >= 3 {
                req = req
                    .with_client_software_name(s("weir-seed"))
                    .with_client_software_version(s("1.0"));
            }
            frame(key, v, &req)
        }
        ApiKey::CreateTopics => {
            let t = CreatableTopic::default()
                .with_name(name("orders"))
                .with_num_partitions(3)
                .with_replication_factor(1)
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("60000")))]);
            let manual = CreatableTopic::default()
                .with_name(name("manual"))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![BrokerId(1)])]);
            let req = CreateTopicsRequest::default()
                .with_topics(vec![t, manual])
                .with_timeout_ms(30_000);
            frame(key, v, &req)
        }
        ApiKey::InitProducerId => frame(
            key,
            v,
            &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
        ),
        ApiKey::DeleteTopics => {
            let req = DeleteTopicsRequest::default()
                .with_topic_names(vec![name("orders"), name("clicks")])
                .with_timeout_ms(30_000);
            frame(key, v, &req)
        }
        ApiKey::DescribeConfigs => {
            let req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("orders"))
                    .with_configuration_keys(Some(vec![s("retention.ms")])),
                DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("1"))
                    .with_configuration_keys(None),
            ]);
            frame(key, v, &req)
        }
        ApiKey::AlterConfigs => {
            use kafka_protocol::messages::alter_configs_request::{
                AlterConfigsResource, AlterableConfig,
            };
            let req = AlterConfigsRequest::default()
                .with_resources(vec![AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("orders"))
                    .with_configs(vec![
                        AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("3600000"))),
                        AlterableConfig::default()
                            .with_name(s("segment.bytes"))
                            .with_value(None),
                    ])])
                .with_validate_only(true);
            frame(key, v, &req)
        }
        ApiKey::IncrementalAlterConfigs => {
            use kafka_protocol::messages::incremental_alter_configs_request::{
                AlterConfigsResource, AlterableConfig,
            };
            let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("orders"))
                    .with_configs(vec![
                        AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_config_operation(0)
                            .with_value(Some(s("60000"))),
                        AlterableConfig::default()
                            .with_name(s("cleanup.policy"))
                            .with_config_operation(2)
                            .with_value(Some(s("delete"))),
                    ]),
            ]);
            frame(key, v, &req)
        }
        ApiKey::DescribeCluster => frame(key, v, &DescribeClusterRequest::default()),
        ApiKey::CreatePartitions => {
            let req = CreatePartitionsRequest::default()
                .with_topics(vec![
                    CreatePartitionsTopic::default()
                        .with_name(name("orders"))
                        .with_count(6)
                        .with_assignments(None),
                    CreatePartitionsTopic::default()
                        .with_name(name("clicks"))
                        .with_count(2)
                        .with_assignments(Some(vec![CreatePartitionsAssignment::default()
                            .with_broker_ids(vec![BrokerId(1)])])),
                ])
                .with_timeout_ms(30_000);
            frame(key, v, &req)
        }
        other => match group_body(other, v) {
            Some(body) => {
                let mut out = header(key, v);
                out.extend_from_slice(&body);
                out.freeze()
            }
            None => panic!("no seed for {other:?}: add one with the API"),
        },
    }
}

/// Every seed: (file name, frame). One per supported API and version.
fn seeds() -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    for (key, min, max) in SUPPORTED {
        for v in *min..=*max {
            let api = format!("{key:?}").to_lowercase();
            out.push((format!("{api}-v{v}"), seed(*key, v)));
        }
    }
    out
}

#[test]
fn every_seed_is_a_request_the_broker_accepts() {
    for (file, frame) in seeds() {
        let inspected = inspect_request(frame).unwrap_or_else(|e| panic!("{file}: {e}"));
        for r in &inspected.record_sets {
            assert!(r.is_ok(), "{file}: a seed's record set is refused: {r:?}");
        }
    }
}

#[test]
fn committed_corpus_runs_through_the_decoder() {
    let dir = corpus_dir();
    let mut files = 0;
    let mut accepted = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let bytes = std::fs::read(&path).expect("corpus file");
        files += 1;
        if inspect_request(Bytes::from(bytes)).is_ok() {
            accepted += 1;
        }
    }
    // Every seed is committed (regenerate with `write_seeds` after adding an API or version).
    for (file, frame) in seeds() {
        let committed = std::fs::read(dir.join(&file))
            .unwrap_or_else(|e| panic!("{file}: {e}: run the write_seeds test"));
        assert_eq!(
            committed, frame,
            "{file} is stale: run the write_seeds test"
        );
    }
    assert!(accepted >= seeds().len(), "{accepted} of {files} accepted");
}

/// xorshift64*: deterministic, so a failure here reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that hit the edges of lengths and counts.
const INTERESTING: &[&[u8]] = &[
    &[0x00],
    &[0xff],
    &[0x7f],
    &[0x80],
    &[0x01],
    &[0xff, 0xff],
    &[0x7f, 0xff],
    &[0x80, 0x00],
    &[0x7f, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0xff],
    &[0x80, 0x00, 0x00, 0x00],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x80, 0x80, 0x80, 0x80, 0x80],
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(7) {
            0 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                for (i, x) in v.iter().enumerate() {
                    if let Some(slot) = b.get_mut(at + i) {
                        *slot = *x;
                    }
                }
            }
            2 => b.truncate(at),
            3 => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                b.splice(at..at, v.iter().copied());
            }
            4 => {
                let end = (at + rng.below(16)).min(b.len());
                b.drain(at..end);
            }
            5 => {
                let end = (at + rng.below(32)).min(b.len());
                let copy = b[at..end].to_vec();
                let to = rng.below(b.len() + 1);
                b.splice(to..to, copy);
            }
            _ => {
                let i = at.min(b.len().saturating_sub(1));
                if let Some(slot) = b.get_mut(i) {
                    *slot = rng.next() as u8;
                }
            }
        }
    }
    b
}

/// A Produce v`v` frame whose record set is a mutated batch with its CRC recomputed, so the
/// mutation reaches the record walker instead of stopping at the checksum.
fn resealed_produce(rng: &mut Rng, v: i16) -> Bytes {
    let batch = plain_batch(1 + rng.below(3));
    let mut set = mutate(rng, &batch);
    if set.len() >= batch::HEADER_LEN {
        batch::reseal(&mut set);
    }
    frame(
        ApiKey::Produce,
        v,
        &produce_body(vec![Some(Bytes::from(set))]),
    )
}

#[test]
fn mutations_of_the_seeds_never_panic() {
    const ROUNDS: usize = 20_000;
    const BUDGET: Duration = Duration::from_secs(20);
    let seeds = seeds();
    let mut rng = Rng(0x005e_ed0f_fa11_u64);
    let started = Instant::now();
    let mut accepted = 0;
    for round in 0..ROUNDS {
        let input = if round % 4 == 3 {
            let v = 3 + rng.below(7) as i16;
            resealed_produce(&mut rng, v)
        } else {
            let (_, seed) = &seeds[rng.below(seeds.len())];
            Bytes::from(mutate(&mut rng, seed))
        };
        if inspect_request(input).is_ok() {
            accepted += 1;
        }
        assert!(
            started.elapsed() < BUDGET,
            "{round} mutations took over {BUDGET:?}: a decoder is too slow"
        );
    }
    // Some mutations must still decode, or the test only exercises the first length check.
    assert!(
        accepted > ROUNDS / 20,
        "only {accepted} of {ROUNDS} decoded"
    );
}

/// Writes the seeds into `fuzz/corpus/request_decoder/` (run by hand, see the module header).
#[test]
#[ignore = "writes the committed seed corpus; run by hand after adding an API or version"]
fn write_seeds() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (file, frame) in seeds() {
        std::fs::write(dir.join(file), &frame).expect("seed file");
    }
}
