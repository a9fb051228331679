//! The admin queries against a scripted broker on loopback, through both I/O drivers: the
//! blocking one (`kclient::blocking`, what `weir group` uses) and glommio sockets wrapped in
//! `kclient::conn::Conn`. Both must send byte-identical requests (one codec path) and read the
//! same answers; broker errors, a non-existent group, a wrong correlation id and a refused
//! connection must come back as typed errors.
//!
//! The broker is plain std threads decoding requests with `kafka_protocol`'s broker side, so it
//! shares nothing with the client's encoding but the protocol definition.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ConsumerProtocolAssignment,
    CreateTopicsRequest, CreateTopicsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, ListGroupsRequest,
    ListGroupsResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetFetchRequest, OffsetFetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kclient::admin::{self, AdminError};
use kclient::blocking;
use kclient::conn::{Conn, WireError};
use wire::error_code::{INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS};

/// A scripted broker: what it answers is fixed below; it records every request frame with its
/// correlation id zeroed, so requests from different connections compare byte for byte.
struct FakeBroker {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl FakeBroker {
    fn start() -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || serve(stream, addr, &seen));
            }
        });
        FakeBroker { addr, requests }
    }

    fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    fn take_requests(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.requests.lock().expect("lock"))
    }
}

/// Answers requests on one connection until it closes.
fn serve(mut stream: TcpStream, me: SocketAddr, seen: &Mutex<Vec<Vec<u8>>>) {
    loop {
        let mut size = [0u8; 4];
        if stream.read_exact(&mut size).is_err() {
            return;
        }
        let mut frame = vec![0u8; u32::from_be_bytes(size) as usize];
        stream.read_exact(&mut frame).expect("request body");
        let mut recorded = frame.clone();
        recorded[4..8].copy_from_slice(&[0; 4]);
        seen.lock().expect("lock").push(recorded);
        let mut buf = Bytes::from(frame);
        let api = ApiKey::try_from(buf.clone().get_i16()).expect("known api");
        let version = {
            let mut b = buf.clone();
            b.advance(2);
            b.get_i16()
        };
        let header = RequestHeader::decode(&mut buf, api.request_header_version(version))
            .expect("request header");
        let answer = match api {
            ApiKey::ApiVersions => respond::<ApiVersionsRequest>(&header, buf, |_| {
                ApiVersionsResponse::default().with_api_keys(
                    [ApiKey::ApiVersions, ApiKey::Metadata, ApiKey::CreateTopics]
                        .iter()
                        .map(|k| ApiVersion::default().with_api_key(*k as i16))
                        .collect(),
                )
            }),
            ApiKey::CreateTopics => respond::<CreateTopicsRequest>(&header, buf, |r| {
                let topics = r.topics.into_iter().map(|t| {
                    let result = CreatableTopicResult::default().with_name(t.name.clone());
                    match t.name.0.as_str() {
                        "exists" => result.with_error_code(TOPIC_ALREADY_EXISTS),
                        "bad name" => result
                            .with_error_code(INVALID_TOPIC_EXCEPTION)
                            .with_error_message(Some(StrBytes::from_static_str("space"))),
                        _ => result.with_num_partitions(t.num_partitions),
                    }
                });
                CreateTopicsResponse::default().with_topics(topics.collect())
            }),
            ApiKey::Metadata => respond::<MetadataRequest>(&header, buf, |r| {
                let topics = r.topics.unwrap_or_default().into_iter().filter_map(|t| {
                    let name = t.name?;
                    let partitions = match name.0.as_str() {
                        "three" => 3,
                        _ => return None,
                    };
                    Some(
                        MetadataResponseTopic::default()
                            .with_name(Some(name))
                            .with_partitions(
                                (0..partitions)
                                    .map(|p| {
                                        MetadataResponsePartition::default().with_partition_index(p)
                                    })
                                    .collect(),
                            ),
                    )
                });
                MetadataResponse::default().with_topics(topics.collect())
            }),
            ApiKey::ListGroups => respond::<ListGroupsRequest>(&header, buf, |_| {
                ListGroupsResponse::default().with_groups(vec![ListedGroup::default()
                    .with_group_id(group_id("g1"))
                    .with_group_state(StrBytes::from_static_str("Stable"))
                    .with_protocol_type(StrBytes::from_static_str("consumer"))])
            }),
            ApiKey::FindCoordinator => respond::<FindCoordinatorRequest>(&header, buf, |_| {
                FindCoordinatorResponse::default()
                    .with_host(StrBytes::from_string(me.ip().to_string()))
                    .with_port(i32::from(me.port()))
            }),
            ApiKey::DescribeGroups => respond::<DescribeGroupsRequest>(&header, buf, |r| {
                let groups = r.groups.into_iter().map(|g| {
                    let described = DescribedGroup::default().with_group_id(g.clone());
                    if g.0.as_str() != "g1" {
                        return described.with_group_state(StrBytes::from_static_str("Dead"));
                    }
                    described
                        .with_group_state(StrBytes::from_static_str("Stable"))
                        .with_protocol_type(StrBytes::from_static_str("consumer"))
                        .with_protocol_data(StrBytes::from_static_str("range"))
                        .with_members(vec![DescribedGroupMember::default()
                            .with_member_id(StrBytes::from_static_str("m1"))
                            .with_client_id(StrBytes::from_static_str("c1"))
                            .with_client_host(StrBytes::from_static_str("/127.0.0.1"))
                            .with_member_assignment(assignment(&[0, 1]))])
                });
                DescribeGroupsResponse::default().with_groups(groups.collect())
            }),
            ApiKey::OffsetFetch => respond::<OffsetFetchRequest>(&header, buf, |_| {
                OffsetFetchResponse::default().with_topics(vec![OffsetFetchResponseTopic::default(
                )
                .with_name(topic_name("t0"))
                .with_partitions(vec![
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5),
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(2)
                        .with_committed_offset(7),
                ])])
            }),
            ApiKey::ListOffsets => respond::<ListOffsetsRequest>(&header, buf, |r| {
                let topics = r.topics.into_iter().map(|t| {
                    ListOffsetsTopicResponse::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partitions
                                .into_iter()
                                .map(|p| {
                                    ListOffsetsPartitionResponse::default()
                                        .with_partition_index(p.partition_index)
                                        .with_offset(10 + i64::from(p.partition_index))
                                })
                                .collect(),
                        )
                });
                ListOffsetsResponse::default().with_topics(topics.collect())
            }),
            other => panic!("the fake broker does not answer {other:?}"),
        };
        // A client calling itself "liar" gets an answer to another request.
        let answer = if header.client_id.as_deref() == Some("liar") {
            let mut a = answer;
            a[7] ^= 1;
            a
        } else {
            answer
        };
        if stream.write_all(&answer).is_err() {
            return;
        }
    }
}

/// Decodes a `R` request, answers it with `f` and frames the response.
fn respond<R: Request>(
    header: &RequestHeader,
    mut body: Bytes,
    f: impl FnOnce(R) -> R::Response,
) -> Vec<u8> {
    let version = header.request_api_version;
    let request = R::decode(&mut body, version).expect("request body");
    let mut out = BytesMut::new();
    out.put_u32(0);
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut out, R::Response::header_version(version))
        .expect("response header");
    f(request).encode(&mut out, version).expect("response");
    let size = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.to_vec()
}

fn group_id(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A consumer-protocol assignment (v1) of partitions of t0.
fn assignment(partitions: &[i32]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(1);
    ConsumerProtocolAssignment::default()
        .with_assigned_partitions(vec![TopicPartition::default()
            .with_topic(topic_name("t0"))
            .with_partitions(partitions.to_vec())])
        .encode(&mut out, 1)
        .expect("assignment");
    out.freeze()
}

/// What the run-up to a benchmark asks, on one driver: (supports CreateTopics, partitions of
/// "three", partitions of "missing", the groups).
type Answers = (bool, Option<u32>, Option<u32>, Vec<admin::Listed>);

fn ask_blocking(bootstrap: &str) -> Answers {
    let names = ["new".to_string(), "exists".to_string()];
    blocking::create_topics(bootstrap, &names, 4).expect("create");
    (
        blocking::supports(bootstrap, ApiKey::CreateTopics).expect("supports"),
        blocking::topic_partitions(bootstrap, "three").expect("three"),
        blocking::topic_partitions(bootstrap, "missing").expect("missing"),
        blocking::list_groups(bootstrap).expect("groups"),
    )
}

fn ask_glommio(addr: SocketAddr) -> Answers {
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let stream = glommio::net::TcpStream::connect(addr)
                .await
                .expect("connect");
            let mut conn = Conn::new(stream, blocking::CLIENT_ID);
            let names = ["new".to_string(), "exists".to_string()];
            admin::create_topics(&mut conn, &names, 4, blocking::TIMEOUT)
                .await
                .expect("create");
            (
                admin::supports(&mut conn, ApiKey::CreateTopics)
                    .await
                    .expect("supports"),
                admin::topic_partitions(&mut conn, "three")
                    .await
                    .expect("three"),
                admin::topic_partitions(&mut conn, "missing")
                    .await
                    .expect("missing"),
                admin::list_groups(&mut conn).await.expect("groups"),
            )
        })
        .expect("executor")
        .join()
        .expect("join")
}

#[test]
fn both_drivers_send_the_same_bytes_and_read_the_same_answers() {
    let broker = FakeBroker::start();
    let blocking_answers = ask_blocking(&broker.bootstrap());
    let blocking_requests = broker.take_requests();
    let glommio_answers = ask_glommio(broker.addr);
    let glommio_requests = broker.take_requests();

    let expected: Answers = (
        true,
        Some(3),
        None,
        vec![("g1".into(), "Stable".into(), "consumer".into())],
    );
    assert_eq!(blocking_answers, expected);
    assert_eq!(glommio_answers, expected);
    assert_eq!(blocking_requests.len(), 5, "{blocking_requests:?}");
    assert_eq!(blocking_requests, glommio_requests);
}

#[test]
fn a_group_is_described_from_its_coordinator_and_the_log_ends() {
    let broker = FakeBroker::start();
    let d = blocking::describe_group(&broker.bootstrap(), "g1").expect("describe");
    assert_eq!((d.state.as_str(), d.protocol.as_str()), ("Stable", "range"));
    assert_eq!(d.members.len(), 1);
    assert_eq!(
        d.members[0].assigned,
        vec![("t0".to_string(), 0), ("t0".to_string(), 1)]
    );
    // t0-0: committed and assigned; t0-1: assigned, nothing committed; t0-2: committed only.
    let rows: Vec<_> = d
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition,
                p.committed,
                p.log_end,
                p.lag(),
                p.member.clone(),
            )
        })
        .collect();
    let m1 = Some("m1".to_string());
    assert_eq!(
        rows,
        vec![
            (0, Some(5), Some(10), Some(5), m1.clone()),
            (1, None, Some(11), None, m1),
            (2, Some(7), Some(12), Some(5), None),
        ]
    );

    match blocking::describe_group(&broker.bootstrap(), "gone") {
        Err(AdminError::NoSuchGroup(g)) => assert_eq!(g, "gone"),
        other => panic!("a dead group described as {other:?}"),
    }
}

#[test]
fn broker_errors_wrong_answers_and_refused_connections_are_typed() {
    let broker = FakeBroker::start();
    let err = blocking::create_topics(&broker.bootstrap(), &["bad name".to_string()], 1)
        .expect_err("a refused topic");
    match &err {
        AdminError::Refused { code, message, .. } => {
            assert_eq!(*code, INVALID_TOPIC_EXCEPTION);
            assert_eq!(message.as_deref(), Some("space"));
        }
        other => panic!("refused topic as {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("CreateTopics bad name") && text.contains("InvalidTopicException"),
        "{text}"
    );

    let mut liar =
        kclient::conn::BlockingConn::connect(&broker.bootstrap(), blocking::TIMEOUT, "liar")
            .expect("connect");
    match liar.call_blocking(&ApiVersionsRequest::default(), 0) {
        Err(WireError::Protocol(what)) => assert!(what.contains("response"), "{what}"),
        other => panic!("a mismatched correlation id read as {other:?}"),
    }

    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr").to_string();
    drop(closed);
    match blocking::list_groups(&addr) {
        Err(AdminError::Wire(WireError::Io { .. })) => {}
        other => panic!("a refused connection read as {other:?}"),
    }
}
