//! Unit tests of topic names, config parsing, describe and the two alter semantics.

use super::*;

/// A `__consumer_offsets` recorded with `cleanup.policy=delete` (created before weir
/// compacted it) is compacted and described as compacted; other topics keep their record.
#[test]
fn the_offsets_topic_is_compacted_whatever_its_record_says() {
    let defaults = TopicDefaults::default();
    let mut recorded = BTreeMap::new();
    recorded.insert("cleanup.policy".to_string(), "delete".to_string());
    recorded.insert("segment.bytes".to_string(), "1048576".to_string());
    let forced = effective_overrides("__consumer_offsets", &recorded);
    let log = log_config(&defaults, &forced).unwrap();
    assert!(log.cleanup_compact && !log.cleanup_delete);
    assert_eq!(log.segment_bytes, 1_048_576, "other overrides are kept");
    let described = describe(&defaults, &forced);
    let policy = described.iter().find(|(n, _, _)| *n == "cleanup.policy");
    assert_eq!(policy.map(|(_, v, _)| v.as_str()), Some("compact"));
    let other = log_config(&defaults, &effective_overrides("orders", &recorded)).unwrap();
    assert!(other.cleanup_delete && !other.cleanup_compact);
}

#[test]
fn names_and_configs_follow_kafka_rules() {
    assert!(validate_topic_name("orders.v1_x-2").is_ok());
    for bad in ["", ".", "..", "a/b", "späti", &"x".repeat(250)] {
        assert!(validate_topic_name(bad).is_err(), "{bad:?}");
    }
    let mut c = BTreeMap::new();
    c.insert("retention.ms".to_string(), "-1".to_string());
    c.insert("segment.bytes".to_string(), "1048576".to_string());
    let log = log_config(&TopicDefaults::default(), &c).unwrap();
    assert_eq!(log.retention_ms, None);
    assert_eq!(log.segment_bytes, 1 << 20);
    c.insert("no.such.config".to_string(), "1".to_string());
    assert!(log_config(&TopicDefaults::default(), &c).is_err());
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn op(name: &str, op: AlterOp, value: Option<&str>) -> (String, AlterOp, Option<String>) {
    (name.to_string(), op, value.map(str::to_string))
}

#[test]
fn incremental_alter_sets_deletes_and_appends_only_to_lists() {
    let d = TopicDefaults::default();
    let current = map(&[("retention.ms", "1000"), ("segment.bytes", "1048576")]);
    let out = alter_incremental(
        &d,
        &current,
        &[
            op("retention.ms", AlterOp::Set, Some("5000")),
            op("segment.bytes", AlterOp::Delete, None),
            op("max.message.bytes", AlterOp::Set, Some("2000")),
        ],
    )
    .unwrap();
    assert_eq!(
        out,
        map(&[("max.message.bytes", "2000"), ("retention.ms", "5000")])
    );
    // Deleting what is not overridden is fine; the other overrides stay.
    let out = alter_incremental(&d, &current, &[op("flush.ms", AlterOp::Delete, None)]);
    assert_eq!(out.unwrap(), current);
    // APPEND / SUBTRACT on a scalar config.
    for o in [AlterOp::Append, AlterOp::Subtract] {
        let err = alter_incremental(&d, &current, &[op("retention.ms", o, Some("1"))]);
        assert!(
            matches!(&err, Err(AlterError::Config(m)) if m.contains("retention.ms")),
            "{err:?}"
        );
    }
    // APPEND on the list cleanup.policy works from the default "delete" and dedups; adding
    // compact gives both; removing delete leaves an empty list, which is refused.
    let out = alter_incremental(
        &d,
        &current,
        &[op("cleanup.policy", AlterOp::Append, Some("delete"))],
    );
    assert_eq!(out.unwrap().get("cleanup.policy").unwrap(), "delete");
    let err = alter_incremental(
        &d,
        &current,
        &[op("cleanup.policy", AlterOp::Append, Some("compact"))],
    );
    assert_eq!(
        err.unwrap().get("cleanup.policy").unwrap(),
        "delete,compact"
    );
    let compact = log_config(&d, &map(&[("cleanup.policy", "delete,compact")])).unwrap();
    assert!(compact.cleanup_compact && compact.cleanup_delete);
    let compact = log_config(&d, &map(&[("cleanup.policy", "compact")])).unwrap();
    assert!(compact.cleanup_compact && !compact.cleanup_delete);
    let err = alter_incremental(
        &d,
        &current,
        &[op("cleanup.policy", AlterOp::Subtract, Some("delete"))],
    );
    assert!(matches!(err, Err(AlterError::Config(_))), "{err:?}");
    // Unknown names, bad values, missing values, a name twice.
    let err = alter_incremental(
        &d,
        &current,
        &[op("retention.msx", AlterOp::Set, Some("1"))],
    );
    assert!(matches!(&err, Err(AlterError::Config(m)) if m.contains("retention.msx")));
    let err = alter_incremental(
        &d,
        &current,
        &[op("segment.bytes", AlterOp::Set, Some("x"))],
    );
    assert!(matches!(&err, Err(AlterError::Config(m)) if m.contains("segment.bytes")));
    let err = alter_incremental(&d, &current, &[op("segment.bytes", AlterOp::Set, None)]);
    assert!(matches!(err, Err(AlterError::Config(_))), "{err:?}");
    let err = alter_incremental(
        &d,
        &current,
        &[
            op("flush.ms", AlterOp::Set, Some("1")),
            op("flush.ms", AlterOp::Delete, None),
        ],
    );
    assert!(matches!(err, Err(AlterError::Request(_))), "{err:?}");
}

#[test]
fn alter_replaces_every_override_and_defaults_show_their_source() {
    let d = TopicDefaults::new(
        LogConfig::default(),
        map(&[("retention.ms", "60000"), ("min.insync.replicas", "2")]),
    )
    .unwrap();
    let out = replace(
        &d,
        &[
            ("segment.bytes".into(), Some("1048576".into())),
            ("flush.ms".into(), None),
        ],
    )
    .unwrap();
    assert_eq!(out, map(&[("segment.bytes", "1048576")]));
    let described: BTreeMap<_, _> = describe(&d, &out)
        .into_iter()
        .map(|(n, v, s)| (n, (v, s)))
        .collect();
    assert_eq!(
        described["segment.bytes"],
        ("1048576".into(), Source::Topic)
    );
    assert_eq!(described["retention.ms"], ("60000".into(), Source::Broker));
    assert_eq!(
        described["min.insync.replicas"],
        ("2".into(), Source::Broker)
    );
    assert_eq!(described["flush.ms"].1, Source::Default);
    assert_eq!(
        described["max.compaction.lag.ms"],
        ("9223372036854775807".into(), Source::Default),
        "Kafka's default, Long.MAX_VALUE"
    );
    assert_eq!(described.len(), TOPIC_CONFIGS.len());
    let lag = log_config(&d, &map(&[("max.compaction.lag.ms", "60000")]));
    assert_eq!(lag.map(|c| c.max_compaction_lag_ms), Ok(60_000));
    let err = replace(&d, &[("compression.type".into(), Some("gzip".into()))]);
    assert!(matches!(&err, Err(AlterError::Config(m)) if m.contains("compression.type")));
    // Broker-level defaults weir cannot honour are refused too.
    for (name, value) in [
        ("cleanup.policy", "compacted"),
        ("min.cleanable.dirty.ratio", "1.5"),
        ("compression.type", "lz4"),
        ("min.insync.replicas", "0"),
        ("retention.bytes", "-5"),
        ("max.compaction.lag.ms", "0"),
    ] {
        let err = TopicDefaults::new(LogConfig::default(), map(&[(name, value)]));
        assert!(
            err.is_err_and(|e| e.to_string().contains(name)),
            "{name}={value}"
        );
    }
    assert_eq!(
        topic_name_of_broker_config("log.roll.ms"),
        Some("segment.ms")
    );
    assert_eq!(topic_name_of_broker_config("log.segment.ms"), None);
}

/// The refusals' wording is what clients and `weir serve` show: the typed errors keep it.
#[test]
fn refusals_name_the_config_and_value_as_before() {
    let cases = [
        (
            "retention.ms",
            "soon",
            r#"retention.ms="soon" is not a non-negative integer"#,
        ),
        (
            "segment.bytes",
            "9",
            "segment.bytes=9 is below Kafka's minimum of 14",
        ),
        (
            "preallocate",
            "yes",
            r#"preallocate="yes" is not true or false"#,
        ),
        (
            "min.insync.replicas",
            "0",
            r#"min.insync.replicas="0" must be at least 1"#,
        ),
        (
            "cleanup.policy",
            "delete,keep",
            r#"cleanup.policy="delete,keep": "keep" is not "delete" or "compact""#,
        ),
        (
            "max.compaction.lag.ms",
            "0",
            r#"max.compaction.lag.ms="0" must be at least 1"#,
        ),
        (
            "min.cleanable.dirty.ratio",
            "2",
            r#"min.cleanable.dirty.ratio="2" is not a number between 0 and 1"#,
        ),
        (
            "compression.type",
            "zstd",
            r#"compression.type="zstd": only "producer" (batches kept as produced) is supported so far"#,
        ),
        (
            "unclean.leader.election.enable",
            "maybe",
            r#"unclean.leader.election.enable="maybe" is not true or false"#,
        ),
        (
            "retention.msx",
            "1",
            r#"unknown topic config "retention.msx""#,
        ),
    ];
    for (name, value, expected) in cases {
        let err = log_config(&TopicDefaults::default(), &map(&[(name, value)])).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
    let names = [
        ("", r#"topic name "" is illegal"#.to_string()),
        ("..", r#"topic name ".." is illegal"#.to_string()),
        (
            "a/b",
            r#"topic name "a/b" contains '/': only ASCII alphanumerics, '.', '_' and '-' are legal"#
                .to_string(),
        ),
    ];
    for (name, expected) in names {
        assert_eq!(validate_topic_name(name).unwrap_err().to_string(), expected);
    }
    let long = "x".repeat(TOPIC_NAME_BYTES_MAX + 1);
    assert_eq!(
        validate_topic_name(&long).unwrap_err(),
        TopicNameError::TooLong
    );
    assert_eq!(
        TopicNameError::TooLong.to_string(),
        "topic name is longer than 249 characters"
    );
}
