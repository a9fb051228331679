//! Topic configs through the in-process broker (moved from the Python script of
//! `cli/tests/broker_config.rs`): DescribeConfigs values and sources, IncrementalAlterConfigs
//! SET/DELETE/APPEND and its refusals (INVALID_CONFIG naming the config), validate_only,
//! AlterConfigs replacing every override, unknown topics and broker resources, a new
//! max.message.bytes live on both shards, overrides kept across a restart, and time-based
//! retention applied when the broker's (manual) clock passes retention.ms.
//!
//! Must not: test client compatibility (the real admin clients stay in the cli tests).

mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use harness::{batch, create_topic, eventually, list_offset, produce, record, text, Harness};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use kclient::conn::BlockingConn;
use wire::error_code as ec;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
/// DescribeConfigs config_source values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;

/// DescribeConfigs v4 of a topic: name → (value, source).
fn describe(conn: &mut BlockingConn, topic: &str) -> BTreeMap<String, (String, i8)> {
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(text(topic))
            .with_configuration_keys(None)]);
    let resp = conn.call_blocking(&req, 4).expect("DescribeConfigs");
    assert_eq!(resp.results.len(), 1);
    let r = &resp.results[0];
    assert_eq!(r.error_code, ec::NONE, "{r:?}");
    r.configs
        .iter()
        .map(|c| {
            let value = c.value.as_ref().map_or("", |v| v.as_str()).to_string();
            (c.name.to_string(), (value, c.config_source))
        })
        .collect()
}

/// IncrementalAlterConfigs v1 of one resource: (error code, error message).
fn incremental(
    conn: &mut BlockingConn,
    resource_type: i8,
    resource: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    let configs = ops
        .iter()
        .map(|(name, op, value)| {
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(text(name))
                .with_config_operation(*op)
                .with_value(value.map(text))
        })
        .collect();
    let req = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(text(resource))
                .with_configs(configs),
        ]);
    let resp = conn
        .call_blocking(&req, 1)
        .expect("IncrementalAlterConfigs");
    let r = &resp.responses[0];
    let message = r.error_message.as_ref().map_or("", |m| m.as_str());
    (r.error_code, message.to_string())
}

/// AlterConfigs v2 of a topic with `configs` (the whole new set of overrides).
fn alter(conn: &mut BlockingConn, topic: &str, configs: &[(&str, &str)]) -> (i16, String) {
    let req = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(text(topic))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        alter_configs_request::AlterableConfig::default()
                            .with_name(text(k))
                            .with_value(Some(text(v)))
                    })
                    .collect(),
            ),
    ]);
    let resp = conn.call_blocking(&req, 2).expect("AlterConfigs");
    let r = &resp.responses[0];
    let message = r.error_message.as_ref().map_or("", |m| m.as_str());
    (r.error_code, message.to_string())
}

fn entry(value: &str, source: i8) -> (String, i8) {
    (value.to_string(), source)
}

#[test]
fn incremental_alter_sets_and_deletes_overrides_and_describe_shows_their_source() {
    let h = Harness::start();
    let mut c = h.conn();
    assert_eq!(
        create_topic(&mut c, "alt", 2, &[("segment.bytes", "1048576")]),
        ec::NONE
    );
    let d = describe(&mut c, "alt");
    assert_eq!(d["retention.ms"], entry("604800000", DEFAULT_CONFIG));
    assert_eq!(d["segment.bytes"], entry("1048576", DYNAMIC_TOPIC_CONFIG));
    let ops = [
        ("retention.ms", SET, Some("1234")),
        ("segment.bytes", DELETE, None),
        ("max.message.bytes", SET, Some("2000000")),
    ];
    assert_eq!(incremental(&mut c, TOPIC, "alt", &ops, false).0, ec::NONE);
    let d = describe(&mut c, "alt");
    assert_eq!(d["retention.ms"], entry("1234", DYNAMIC_TOPIC_CONFIG));
    assert_eq!(
        d["max.message.bytes"],
        entry("2000000", DYNAMIC_TOPIC_CONFIG)
    );
    assert_eq!(d["segment.bytes"], entry("1073741824", DEFAULT_CONFIG));
    // validate_only answers NONE and changes nothing.
    let ops = [("retention.ms", SET, Some("999"))];
    assert_eq!(incremental(&mut c, TOPIC, "alt", &ops, true).0, ec::NONE);
    assert_eq!(
        describe(&mut c, "alt")["retention.ms"],
        entry("1234", DYNAMIC_TOPIC_CONFIG)
    );
    // APPEND to the list config cleanup.policy of what it holds already is accepted.
    let ops = [("cleanup.policy", APPEND, Some("delete"))];
    assert_eq!(incremental(&mut c, TOPIC, "alt", &ops, false).0, ec::NONE);
    assert_eq!(
        describe(&mut c, "alt")["cleanup.policy"],
        entry("delete", DYNAMIC_TOPIC_CONFIG)
    );
}

#[test]
fn refused_configs_are_invalid_config_naming_them_and_change_nothing() {
    let h = Harness::start();
    let mut c = h.conn();
    assert_eq!(create_topic(&mut c, "alt", 1, &[]), ec::NONE);
    let ops = [("retention.ms", SET, Some("1234"))];
    assert_eq!(incremental(&mut c, TOPIC, "alt", &ops, false).0, ec::NONE);
    let refusals: [(&str, i8, &str, &[&str]); 6] = [
        ("retention.ms", APPEND, "5", &["retention.ms"]),
        ("retention.msx", SET, "5", &["retention.msx"]),
        ("segment.bytes", SET, "big", &["segment.bytes", "big"]),
        ("cleanup.policy", APPEND, "compacted", &["cleanup.policy"]),
        (
            "min.cleanable.dirty.ratio",
            SET,
            "2",
            &["min.cleanable.dirty.ratio"],
        ),
        ("compression.type", SET, "gzip", &["compression.type"]),
    ];
    for (name, op, value, words) in refusals {
        for validate_only in [false, true] {
            let (code, message) = incremental(
                &mut c,
                TOPIC,
                "alt",
                &[(name, op, Some(value))],
                validate_only,
            );
            assert_eq!(code, ec::INVALID_CONFIG, "{name} {op} {value}: {message}");
            for w in words {
                assert!(message.contains(w), "{name}: {message:?} lacks {w}");
            }
        }
    }
    let d = describe(&mut c, "alt");
    assert_eq!(d["retention.ms"], entry("1234", DYNAMIC_TOPIC_CONFIG));
    assert_eq!(d["cleanup.policy"], entry("delete", DEFAULT_CONFIG));
    // An unknown topic, and a broker resource (no dynamic broker configs).
    let ops = [("retention.ms", SET, Some("5"))];
    let (code, _) = incremental(&mut c, TOPIC, "nope", &ops, false);
    assert_eq!(code, ec::UNKNOWN_TOPIC_OR_PARTITION);
    let ops = [("log.retention.ms", SET, Some("5"))];
    let (code, _) = incremental(&mut c, BROKER, "1", &ops, false);
    assert_eq!(code, ec::INVALID_REQUEST);
}

#[test]
fn alter_configs_replaces_every_override_and_refuses_unknown_names() {
    let h = Harness::start();
    let mut c = h.conn();
    assert_eq!(
        create_topic(&mut c, "alt", 1, &[("retention.ms", "1234")]),
        ec::NONE
    );
    assert_eq!(
        alter(&mut c, "alt", &[("segment.bytes", "2097152")]).0,
        ec::NONE
    );
    let d = describe(&mut c, "alt");
    assert_eq!(d["segment.bytes"], entry("2097152", DYNAMIC_TOPIC_CONFIG));
    assert_eq!(d["retention.ms"], entry("604800000", DEFAULT_CONFIG));
    let (code, message) = alter(&mut c, "alt", &[("no.such", "1")]);
    assert_eq!(code, ec::INVALID_CONFIG);
    assert!(message.contains("no.such"), "{message}");
    assert_eq!(
        describe(&mut c, "alt")["segment.bytes"],
        entry("2097152", DYNAMIC_TOPIC_CONFIG)
    );
}

#[test]
fn a_raised_max_message_bytes_is_live_on_both_shards_and_overrides_survive_a_restart() {
    let mut h = Harness::start();
    let mut c = h.conn();
    assert_eq!(create_topic(&mut c, "alt", 2, &[]), ec::NONE);
    let big = "y".repeat(1_500_000);
    let at = harness::START_MS;
    for partition in [0, 1] {
        let answer = produce(
            &mut c,
            "alt",
            partition,
            1,
            batch(&[record("k", Some(&big), at)]),
        );
        assert_eq!(answer.error_code, ec::MESSAGE_TOO_LARGE, "{answer:?}");
    }
    let ops = [
        ("max.message.bytes", SET, Some("2000000")),
        ("retention.ms", SET, Some("4321")),
    ];
    assert_eq!(incremental(&mut c, TOPIC, "alt", &ops, false).0, ec::NONE);
    for partition in [0, 1] {
        let answer = produce(
            &mut c,
            "alt",
            partition,
            1,
            batch(&[record("k", Some(&big), at)]),
        );
        assert_eq!(answer.error_code, ec::NONE, "partition {partition}");
        assert_eq!(answer.base_offset, 0);
    }
    h.restart();
    let mut c = h.conn();
    let d = describe(&mut c, "alt");
    assert_eq!(d["retention.ms"], entry("4321", DYNAMIC_TOPIC_CONFIG));
    assert_eq!(
        d["max.message.bytes"],
        entry("2000000", DYNAMIC_TOPIC_CONFIG)
    );
    assert_eq!(list_offset(&mut c, "alt", 1, -1).offset, 1);
}

/// Records stamped with the broker's clock, in small segments: retention checks (every 100 ms)
/// delete nothing while the clock stands still, and delete the sealed segments once the clock
/// passes retention.ms beyond their newest record. With a broker reading the system clock
/// instead, the records (stamped in 2023) would be deleted before the clock moved.
#[test]
fn time_retention_follows_the_brokers_clock() {
    let h = Harness::start();
    let mut c = h.conn();
    let configs = [("segment.bytes", "16384"), ("retention.ms", "60000")];
    assert_eq!(create_topic(&mut c, "ret", 1, &configs), ec::NONE);
    let value = "x".repeat(2000);
    for i in 0..40 {
        let key = format!("k{i}");
        let answer = produce(
            &mut c,
            "ret",
            0,
            1,
            batch(&[record(&key, Some(&value), h.clock.get())]),
        );
        assert_eq!((answer.error_code, answer.base_offset), (ec::NONE, i));
    }
    std::thread::sleep(Duration::from_millis(500)); // five retention checks
    assert_eq!(list_offset(&mut c, "ret", 0, -2).offset, 0);
    h.clock.advance(59_000);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(list_offset(&mut c, "ret", 0, -2).offset, 0);
    h.clock.advance(2_000);
    let start = eventually("the log start moves", Duration::from_secs(10), || {
        let start = list_offset(&mut c, "ret", 0, -2).offset;
        (start > 0).then_some(start)
    });
    assert!(start <= 40, "{start}");
    assert_eq!(list_offset(&mut c, "ret", 0, -1).offset, 40);
}
