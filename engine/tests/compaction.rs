//! Log compaction through the in-process broker (the semantics of
//! `cli/tests/compaction.rs`'s kcat test, whose real client stays as the conformance layer): a
//! `cleanup.policy=compact` topic of 8 KiB segments, keyed records in batches of ten, tombstones
//! for some keys and filler so every key's last write is sealed; the broker compacts on its
//! retention-check interval and a Fetch from offset 0 returns exactly each live key's last value
//! at the offset it was written; tombstones stay until the broker's (manual) clock passes
//! delete.retention.ms (0) after them, then deleted keys are gone with them; fewer segment files; the same after a restart, and the next write lands at the old log end.
//!
//! Must not: test a client's reading across offset gaps (kcat does that in the cli test).

mod harness;

use std::time::Duration;

use harness::{batch, create_topic, eventually, produce, read_all, record, Fetched, Harness};
use wire::batch::Record;
use wire::error_code as ec;

const KEYS: usize = 50;
const ROUNDS: usize = 20;
const DELETED: usize = 10;
const FILLER: usize = 300;
/// Records per produced batch (a batch is never split, so 8 KiB segments roll).
const BATCH: usize = 10;

/// Every record in produce order: ROUNDS values of each key, tombstones for the first DELETED
/// keys, then FILLER unique keys. Offsets are positions in this list.
fn input(at: i64) -> Vec<Record> {
    let mut out = Vec::new();
    for round in 0..ROUNDS {
        for k in 0..KEYS {
            let value = format!("v{round}-{k}-{}", "x".repeat(30));
            out.push(record(&format!("k{k}"), Some(&value), at));
        }
    }
    for k in 0..DELETED {
        out.push(record(&format!("k{k}"), None, at));
    }
    for f in 0..FILLER {
        let value = format!("filler-{f}-{}", "y".repeat(40));
        out.push(record(&format!("f{f}"), Some(&value), at));
    }
    out
}

/// What a compacted read returns: each live key's last value at its offset, then (while the
/// broker's clock has not passed delete.retention.ms after them) the tombstones, then the filler.
fn expected(with_tombstones: bool) -> Vec<Fetched> {
    let fetched = |offset: usize, key: String, value: String| Fetched {
        offset: offset as i64,
        key: Some(key),
        value: Some(value),
    };
    let last_round = (ROUNDS - 1) * KEYS;
    let mut out: Vec<Fetched> = (DELETED..KEYS)
        .map(|k| {
            let value = format!("v{}-{k}-{}", ROUNDS - 1, "x".repeat(30));
            fetched(last_round + k, format!("k{k}"), value)
        })
        .collect();
    if with_tombstones {
        out.extend((0..DELETED).map(|k| Fetched {
            offset: (ROUNDS * KEYS + k) as i64,
            key: Some(format!("k{k}")),
            value: None,
        }));
    }
    let filler_start = ROUNDS * KEYS + DELETED;
    out.extend((0..FILLER).map(|f| {
        let value = format!("filler-{f}-{}", "y".repeat(40));
        fetched(filler_start + f, format!("f{f}"), value)
    }));
    out
}

fn segment_files(h: &Harness, topic: &str) -> usize {
    let dir = h.data_dir().join("logs").join(format!("{topic}-0"));
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_compacted_topic_keeps_the_latest_value_per_key_at_its_offset() {
    let mut h = Harness::start();
    let mut c = h.conn();
    let topic = "compacted";
    let configs = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "8192"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "0"),
    ];
    assert_eq!(create_topic(&mut c, topic, 1, &configs), ec::NONE);
    let records = input(h.clock.get());
    let total = records.len() as i64;
    let mut produced_bytes = 0;
    for (i, chunk) in records.chunks(BATCH).enumerate() {
        let one = batch(chunk);
        produced_bytes += one.len();
        let answer = produce(&mut c, topic, 0, -1, one);
        assert_eq!(answer.error_code, ec::NONE);
        assert_eq!(answer.base_offset, (i * BATCH) as i64);
    }
    let limit = Duration::from_secs(30);
    // The clock stands still: tombstones are kept (their delete.retention.ms, 0, has not passed).
    let kept = expected(true);
    let got = eventually("compaction leaves one value per key", limit, || {
        let got = read_all(&mut c, topic, 0, 0);
        (got.len() == kept.len()).then_some(got)
    });
    assert_eq!(got, kept);
    h.clock.advance(1);
    let expected = expected(false);
    let got = eventually("the tombstones go", limit, || {
        let got = read_all(&mut c, topic, 0, 0);
        (got.len() == expected.len()).then_some(got)
    });
    assert_eq!(got, expected);
    // Fewer segment files than the uncompacted log fills (8 KiB each), so cleaned segments were
    // merged — how many exactly depends on how the passes fell between the produces (compaction
    // may run while they go on); the merge rule itself is tested in storage/tests/compact.rs.
    // (Eventually: a swap may still be renaming files when the reads already see the result.)
    let uncompacted_files = produced_bytes / 8192;
    assert!(uncompacted_files >= 6, "{produced_bytes} bytes produced");
    eventually(
        "fewer segment files than the uncompacted log",
        limit,
        || (segment_files(&h, topic) < uncompacted_files).then_some(()),
    );

    h.restart();
    let mut c = h.conn();
    assert_eq!(read_all(&mut c, topic, 0, 0), expected);
    let next = produce(
        &mut c,
        topic,
        0,
        -1,
        batch(&[record("k20", Some("after"), 0)]),
    );
    assert_eq!((next.error_code, next.base_offset), (ec::NONE, total));
    let mut all = read_all(&mut c, topic, 0, 0);
    let last = all.pop().expect("the new record");
    assert_eq!((last.offset, last.value.as_deref()), (total, Some("after")));
    assert_eq!(all, expected);
}
