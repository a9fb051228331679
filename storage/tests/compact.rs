//! Log compaction on real files: latest value per key kept with its offset, gaps read across,
//! tombstones removed after delete.retention.ms, segments merged, min.compaction.lag.ms and the
//! dirty ratio honoured, producers' last batches kept, and every crash point of a swap recovered.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use common::{compact_config, in_temp_dir};
use storage::{Clock, LogConfig, ManualClock, PartitionLog, Watermark};
use wire::batch::{
    encode_batch, record_views, records_in, scan_batch, BatchHeader, Record, Scanned, HEADER_LEN,
};
use wire::codec::{self, Codec};

/// Opens the log at `path` (test set-up: any error fails the test).
async fn open_log(path: &Path, config: LogConfig, clock: Clock) -> PartitionLog {
    PartitionLog::open(path, config, clock).await.unwrap()
}

fn keyed(key: &str, value: Option<&str>, timestamp: i64) -> Bytes {
    Bytes::from(encode_batch(&[Record {
        timestamp,
        key: Some(key.as_bytes().to_vec()),
        value: value.map(|v| v.as_bytes().to_vec()),
        headers: Vec::new(),
    }]))
}

/// Every record of the log as (offset, key, value), read through `PartitionLog::read` from the
/// log start; also checks offsets only grow and each read returns whole batches.
async fn records(log: &PartitionLog) -> Vec<(u64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 16).await.unwrap();
        assert!(!read.is_empty(), "a read below the log end returns a batch");
        let bytes = read.to_vec();
        let mut at = 0;
        for header in &read.batches {
            let len = header.total_len().unwrap();
            assert!(header.last_offset() as u64 >= offset);
            for r in record_views(&bytes[at..at + len]).unwrap() {
                let o = header.base_offset as u64 + r.offset_delta as u64;
                if o < offset {
                    continue;
                }
                out.push((
                    o,
                    String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                    r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                ));
            }
            at += len;
            offset = header.last_offset() as u64 + 1;
        }
        assert_eq!(at, bytes.len());
    }
    assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "offsets grow");
    out
}

/// Appends `rounds` values for each of `keys` keys, one record per batch; returns the offset of
/// each key's latest value.
async fn fill(log: &PartitionLog, keys: usize, rounds: usize, ts: i64) -> BTreeMap<String, u64> {
    fill_keys(log, "key", keys, rounds, ts).await
}

async fn fill_keys(
    log: &PartitionLog,
    prefix: &str,
    keys: usize,
    rounds: usize,
    ts: i64,
) -> BTreeMap<String, u64> {
    let mut latest = BTreeMap::new();
    for round in 0..rounds {
        for k in 0..keys {
            let key = format!("{prefix}-{k:03}");
            let value = format!("{key}-v{round}-{}", "x".repeat(40));
            let info = log.append(keyed(&key, Some(&value), ts), 0).unwrap();
            latest.insert(key, info.first_offset);
        }
    }
    log.wait(log.next_offset() - 1, Watermark::Durable)
        .await
        .unwrap();
    latest
}

#[test]
fn compaction_keeps_the_latest_value_of_each_key_at_its_offset() {
    in_temp_dir(|path| async move {
        let log = open_log(&path, compact_config(), Clock::System).await;
        let latest = fill(&log, 20, 30, 1_000).await;
        // A last write to roll once more, so every key's latest value is in a sealed segment.
        let tail_key = log
            .append(keyed("tail", Some(&"t".repeat(4000)), 1_000), 0)
            .unwrap();
        log.append(keyed("tail2", Some("end"), 1_000), 0).unwrap();
        log.wait(log.next_offset() - 1, Watermark::Durable)
            .await
            .unwrap();
        let (segments, bytes, end) = (log.segment_count(), log.size_bytes(), log.log_end_offset());
        assert!(segments > 10, "{segments} segments");
        let before = records(&log).await;
        assert_eq!(before.len(), 602);

        let outcome = log.compact().await.unwrap().expect("a pass ran");
        assert_eq!(outcome.records_removed, 580);
        assert!(log.segment_count() < segments / 2, "segments were merged");
        assert!(
            log.size_bytes() < bytes / 5,
            "{} of {bytes}",
            log.size_bytes()
        );
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, end));

        let check = |after: Vec<(u64, String, Option<String>)>| {
            let mut expected: Vec<(u64, String, Option<String>)> = before
                .iter()
                .filter(|(o, k, _)| latest.get(k).is_none_or(|l| l == o))
                .cloned()
                .collect();
            expected.sort();
            assert_eq!(
                after, expected,
                "the latest value of each key, at its offset"
            );
        };
        check(records(&log).await);
        // Reading at an offset that was compacted away returns the next batch that remains.
        let gap = latest["key-000"] - 1;
        let read = log.read(gap, 1).await.unwrap();
        assert!(read.batches[0].base_offset as u64 > gap);
        let read = log.read(0, 1 << 20).await.unwrap();
        assert_eq!(read.batches[0].base_offset as u64, latest["key-000"]);
        assert!(tail_key.first_offset > latest["key-019"]);

        // Nothing more to do, and the compacted log reopens (clean and index-checked) the same.
        assert_eq!(log.compact().await.unwrap(), None);
        log.close().await.unwrap();
        let log = open_log(&path, compact_config(), Clock::System).await;
        assert_eq!(log.log_end_offset(), end);
        check(records(&log).await);
        // Appends go on after the compacted part with the next offsets.
        let info = log.append(keyed("key-000", Some("new"), 2_000), 0).unwrap();
        assert_eq!(info.first_offset, end);
        log.close().await.unwrap();
        // A reopen that must rebuild the indexes (deleted) finds the same gaps.
        for entry in std::fs::read_dir(&path).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "index") {
                std::fs::remove_file(p).unwrap();
            }
        }
        let log = open_log(&path, compact_config(), Clock::System).await;
        assert_eq!(log.log_end_offset(), end + 1);
        log.close().await.unwrap();
    });
}

#[test]
fn tombstones_go_after_delete_retention_ms_and_the_active_segment_is_never_cleaned() {
    in_temp_dir(|path| async move {
        let now = ManualClock::new(1_000_000i64);
        let config = LogConfig {
            delete_retention_ms: 60_000,
            ..compact_config()
        };
        let log = open_log(&path, config, Clock::Manual(now.clone())).await;
        fill(&log, 5, 20, now.get()).await;
        let tombstone = log.append(keyed("key-002", None, now.get()), 0).unwrap();
        // Roll past it.
        fill_keys(&log, "other", 3, 20, now.get()).await;
        let active_base = log.active_segment_base();
        let value = |recs: &[(u64, String, Option<String>)], key: &str| {
            recs.iter()
                .filter(|(_, k, _)| k == key)
                .map(|(o, _, v)| (*o, v.clone()))
                .collect::<Vec<_>>()
        };
        log.compact().await.unwrap().expect("a pass ran");
        let recs = records(&log).await;
        assert_eq!(
            value(&recs, "key-002"),
            vec![(tombstone.first_offset, None)],
            "the tombstone stays while younger than delete.retention.ms"
        );
        // Everything in the active segment is untouched: all its records are still there.
        let in_active = recs.iter().filter(|(o, _, _)| *o >= active_base).count() as u64;
        assert_eq!(in_active, log.log_end_offset() - active_base);

        // No dirty data and no tombstone due: no pass.
        now.set(now.get() + 59_000);
        assert_eq!(log.compact().await.unwrap(), None);
        now.set(now.get() + 2_000);
        let outcome = log
            .compact()
            .await
            .unwrap()
            .expect("the tombstone came due");
        assert_eq!(outcome.records_removed, 1);
        let recs = records(&log).await;
        assert!(value(&recs, "key-002").is_empty(), "tombstone removed");
        assert_eq!(value(&recs, "key-004").len(), 1);
        log.close().await.unwrap();
    });
}

#[test]
fn min_compaction_lag_and_the_dirty_ratio_hold_compaction_back() {
    in_temp_dir(|path| async move {
        let now = ManualClock::new(5_000_000i64);
        let config = LogConfig {
            min_compaction_lag_ms: 10_000,
            min_cleanable_dirty_ratio_ppm: 500_000,
            ..compact_config()
        };
        let log = open_log(&path, config.clone(), Clock::Manual(now.clone())).await;
        fill(&log, 200, 2, now.get()).await;
        assert_eq!(log.compact().await.unwrap(), None, "younger than the lag");
        now.set(now.get() + 10_000);
        let first = log.compact().await.unwrap().expect("old enough now");
        // All but the keys whose newest value is still in the active segment.
        assert!(first.records_removed > 150, "{first:?}");
        // One more sealed segment of new data: well under half the cleanable log.
        fill_keys(&log, "new", 60, 1, now.get()).await;
        now.set(now.get() + 20_000);
        let dirty_small = log.compact().await.unwrap();
        assert_eq!(
            dirty_small, None,
            "dirty share under min.cleanable.dirty.ratio"
        );
        log.set_config(LogConfig {
            min_cleanable_dirty_ratio_ppm: 10_000,
            ..config
        });
        assert!(log.compact().await.unwrap().is_some());
        log.close().await.unwrap();
    });
}

#[test]
fn max_compaction_lag_cleans_old_dirty_data_whatever_the_ratio_and_rolls() {
    in_temp_dir(|path| async move {
        let now = ManualClock::new(50_000_000i64);
        let config = LogConfig {
            min_cleanable_dirty_ratio_ppm: 900_000,
            max_compaction_lag_ms: 100_000,
            segment_ms: 10_000_000,
            ..compact_config()
        };
        let log = open_log(&path, config, Clock::Manual(now.clone())).await;
        fill(&log, 20, 20, now.get()).await;
        log.compact()
            .await
            .unwrap()
            .expect("all dirty: a pass runs");
        // A little new data, sealed: far under the 0.9 ratio.
        fill_keys(&log, "late", 40, 2, now.get()).await;
        assert_eq!(log.compact().await.unwrap(), None, "under the ratio");
        now.set(now.get() + 99_000);
        assert_eq!(
            log.compact().await.unwrap(),
            None,
            "not yet max.compaction.lag.ms old"
        );
        now.set(now.get() + 2_000);
        let outcome = log
            .compact()
            .await
            .unwrap()
            .expect("older than max.compaction.lag.ms: cleaned whatever the ratio");
        assert!(outcome.records_removed >= 40, "{outcome:?}");
        // The active segment rolls once it is max.compaction.lag.ms old (segment.ms is far off).
        let active = log.active_segment_base();
        now.set(now.get() + 100_001);
        log.append(keyed("roll", Some("r"), now.get()), 0).unwrap();
        log.wait(log.next_offset() - 1, Watermark::Durable)
            .await
            .unwrap();
        assert!(
            log.active_segment_base() > active,
            "rolled at max.compaction.lag.ms"
        );
        log.close().await.unwrap();
    });
}

#[test]
fn an_unreadable_compressed_batch_is_kept_whole_and_then_tombstones_stay() {
    in_temp_dir(|path| async move {
        let now = ManualClock::new(20_000_000i64);
        let compact = LogConfig {
            delete_retention_ms: 1_000,
            ..compact_config()
        };
        // Written while the topic was not compacted (appends to a compacted log refuse it): a
        // zstd batch whose records expand past the cleaner's bound, and one whose compressed
        // bytes are damaged. Both pass the CRC.
        let log = open_log(
            &path,
            LogConfig {
                cleanup_compact: false,
                ..compact.clone()
            },
            Clock::Manual(now.clone()),
        )
        .await;
        let record = Record {
            timestamp: now.get(),
            key: Some(b"key-000".to_vec()),
            value: Some(b"hidden".to_vec()),
            headers: Vec::new(),
        };
        let mut bomb = compressed(Codec::Zstd, std::slice::from_ref(&record), None).to_vec();
        let zeros = vec![0u8; storage::compact::DECOMPRESSED_BATCH_MAX + 1];
        bomb.truncate(HEADER_LEN);
        codec::compress_into(Codec::Zstd, None, &zeros, &mut bomb).unwrap();
        let len = (bomb.len() - 12) as i32;
        bomb[8..12].copy_from_slice(&len.to_be_bytes());
        wire::batch::reseal(&mut bomb);
        assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
        let bomb_at = log.append(Bytes::from(bomb), 0).unwrap().first_offset;
        let mut damaged = compressed(Codec::Lz4, std::slice::from_ref(&record), None).to_vec();
        let end = damaged.len();
        damaged[HEADER_LEN + 7..end].fill(0x11);
        wire::batch::reseal(&mut damaged);
        let damaged_at = log.append(Bytes::from(damaged), 0).unwrap().first_offset;
        log.set_config(compact);
        fill(&log, 5, 10, now.get()).await;
        let tombstone = log.append(keyed("key-001", None, now.get()), 0).unwrap();
        fill_keys(&log, "other", 3, 20, now.get()).await;

        now.set(now.get() + 5_000);
        log.compact().await.unwrap().expect("a pass ran");
        let read = |at: u64| {
            let log = log.clone();
            async move { log.read(at, 1 << 16).await.unwrap().batches[0].base_offset as u64 }
        };
        assert_eq!(read(bomb_at).await, bomb_at, "the bomb is kept whole");
        assert_eq!(
            read(damaged_at).await,
            damaged_at,
            "the damaged batch is kept whole"
        );
        // The tombstone is past delete.retention.ms but stays: the unreadable batches could
        // hide an older value of its key.
        assert_eq!(read(tombstone.first_offset).await, tombstone.first_offset);
        log.close().await.unwrap();
    });
}

#[test]
fn a_producers_last_batch_is_kept_whole() {
    in_temp_dir(|path| async move {
        let log = open_log(&path, compact_config(), Clock::System).await;
        // An idempotent producer's batches: key "p" twice per batch.
        let producer_batch = |seq: i32| {
            let mut b = encode_batch(&[
                Record {
                    timestamp: 1,
                    key: Some(b"p".to_vec()),
                    value: Some(format!("p{seq}").into_bytes()),
                    headers: Vec::new(),
                },
                Record {
                    timestamp: 1,
                    key: Some(b"p".to_vec()),
                    value: Some(format!("p{seq}b").into_bytes()),
                    headers: Vec::new(),
                },
            ]);
            b[43..51].copy_from_slice(&77i64.to_be_bytes()); // producer id
            b[51..53].copy_from_slice(&0i16.to_be_bytes()); // epoch
            b[53..57].copy_from_slice(&seq.to_be_bytes()); // base sequence
            wire::batch::reseal(&mut b);
            Bytes::from(b)
        };
        log.append(producer_batch(0), 0).unwrap();
        let last = log.append(producer_batch(2), 0).unwrap();
        fill(&log, 5, 40, 1).await;
        log.compact().await.unwrap().expect("a pass ran");
        let read = log.read(0, 1 << 20).await.unwrap();
        let first: &BatchHeader = &read.batches[0];
        assert_eq!(first.base_offset as u64, last.first_offset);
        assert_eq!(
            (first.producer_id, first.base_sequence, first.records_count),
            (77, 2, 2),
            "the producer's last batch, whole, is the first thing left"
        );
        log.close().await.unwrap();
    });
}

/// A batch of `records` compressed with `codec`, optionally an idempotent producer's
/// (producer id, base sequence; epoch 0).
fn compressed(codec: Codec, records: &[Record], producer: Option<(i64, i32)>) -> Bytes {
    let plain = encode_batch(records);
    let mut b = plain[..HEADER_LEN].to_vec();
    codec::compress_into(codec, None, &plain[HEADER_LEN..], &mut b).unwrap();
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[21..23].copy_from_slice(&codec.id().to_be_bytes()); // attributes
    if let Some((id, seq)) = producer {
        b[43..51].copy_from_slice(&id.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
    }
    wire::batch::reseal(&mut b);
    Bytes::from(b)
}

type Decoded = (Vec<(u64, String, Option<String>)>, Vec<BatchHeader>);

/// Every record of the log as (offset, key, value), decompressing compressed batches, and every
/// batch's header; each batch's CRC is checked and its records must match its count.
async fn decoded(log: &PartitionLog) -> Decoded {
    let (mut out, mut headers) = (Vec::new(), Vec::new());
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 16).await.unwrap();
        assert!(!read.is_empty());
        let bytes = read.to_vec();
        let mut at = 0;
        for header in &read.batches {
            let len = header.total_len().unwrap();
            let batch = &bytes[at..at + len];
            assert!(
                matches!(scan_batch(batch, None), Scanned::Batch(_, l) if l == len),
                "batch at {} is whole with a valid CRC",
                header.base_offset
            );
            let codec = Codec::from_id(header.compression()).unwrap();
            let plain = codec::decompress(codec, &batch[HEADER_LEN..], 1 << 20).unwrap();
            let recs = records_in(&plain, header.records_count).expect("records decode");
            for r in recs {
                let o = header.base_offset as u64 + r.offset_delta as u64;
                assert!(o <= header.last_offset() as u64);
                if o >= offset {
                    out.push((
                        o,
                        String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                        r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                    ));
                }
            }
            if header.base_offset as u64 >= offset {
                headers.push(*header);
            }
            at += len;
            offset = header.last_offset() as u64 + 1;
        }
    }
    assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "offsets grow");
    (out, headers)
}

#[test]
fn compressed_batches_are_filtered_and_recompressed_with_their_codec() {
    for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
        in_temp_dir(move |path| async move {
            let now = ManualClock::new(10_000_000i64);
            let config = LogConfig {
                delete_retention_ms: 60_000,
                ..compact_config()
            };
            let log = open_log(&path, config, Clock::Manual(now.clone())).await;
            let ts = now.get() - 1_000;
            // Round r: one batch over keys k-0..k-4 (rounds < 30) or k-0..k-2 (later); record i
            // is stamped ts + 4 - i, so the kept tail of a batch is not its newest record. The
            // last round writes a tombstone for k-1. Values vary so segments roll.
            let mut latest: BTreeMap<String, (u64, Option<String>)> = BTreeMap::new();
            let mut partial = None;
            let producer = |seq: i32| {
                let recs: Vec<Record> = (0..2)
                    .map(|i| Record {
                        timestamp: ts,
                        key: Some(b"p".to_vec()),
                        value: Some(format!("p{seq}-{i}").into_bytes()),
                        headers: Vec::new(),
                    })
                    .collect();
                compressed(codec, &recs, Some((55, seq)))
            };
            log.append(producer(0), 0).unwrap();
            let producer_last = log.append(producer(2), 0).unwrap().first_offset;
            for round in 0..40u64 {
                let keys = if round < 30 { 5 } else { 3 };
                let recs: Vec<Record> = (0..keys)
                    .map(|i| Record {
                        timestamp: ts + 4 - i as i64,
                        key: Some(format!("k-{i}").into_bytes()),
                        value: (round != 39 || i != 1).then(|| {
                            format!("k-{i}-v{round}-{:x}", round * 7919 + i * 104_729)
                                .repeat(4)
                                .into_bytes()
                        }),
                        headers: Vec::new(),
                    })
                    .collect();
                let info = log.append(compressed(codec, &recs, None), 0).unwrap();
                for (i, r) in recs.iter().enumerate() {
                    let value = r.value.clone().map(|v| String::from_utf8(v).unwrap());
                    latest.insert(format!("k-{i}"), (info.first_offset + i as u64, value));
                }
                if round == 29 {
                    partial = Some(info.first_offset);
                }
            }
            // Roll past the compressed data.
            let first_other = log.next_offset();
            let others = fill_keys(&log, "other", 3, 40, ts).await;
            let segments = log.segment_count();
            assert!(segments > 4, "{codec}: {segments} segments");

            log.compact().await.unwrap().expect("a pass ran");
            let (recs, headers) = decoded(&log).await;
            let mut expected: Vec<(u64, String, Option<String>)> = latest
                .iter()
                .map(|(k, (o, v))| (*o, k.clone(), v.clone()))
                .collect();
            expected
                .extend((0..2).map(|i| (producer_last + i, "p".into(), Some(format!("p2-{i}")))));
            for (k, o) in &others {
                assert!(
                    recs.iter().any(|r| &r.1 == k && r.0 == *o),
                    "{codec}: {k} at {o}"
                );
            }
            let compressed_recs: Vec<_> = recs
                .iter()
                .filter(|r| !r.1.starts_with("other"))
                .cloned()
                .collect();
            expected.sort();
            assert_eq!(
                compressed_recs, expected,
                "{codec}: latest per key at its offset"
            );
            assert!(
                recs.iter().any(|r| r.1 == "k-1" && r.2.is_none()),
                "young tombstone kept"
            );
            // Every surviving batch of compressed data kept its codec; the producer's last batch
            // is whole; the round-29 batch keeps k-3 and k-4 with its offsets, lastOffsetDelta
            // and a max timestamp over what it kept.
            let kept: Vec<&BatchHeader> = headers
                .iter()
                .filter(|h| (h.base_offset as u64) < first_other)
                .collect();
            for h in &kept {
                assert_eq!(
                    h.compression(),
                    codec.id(),
                    "{codec}: batch {}",
                    h.base_offset
                );
            }
            let last = headers
                .iter()
                .find(|h| h.base_offset as u64 == producer_last)
                .unwrap();
            assert_eq!(
                (last.producer_id, last.base_sequence, last.records_count),
                (55, 2, 2)
            );
            assert!(
                !headers
                    .iter()
                    .any(|h| h.producer_id == 55 && h.base_sequence == 0),
                "{codec}: the producer's superseded batch is gone"
            );
            let partial = partial.unwrap();
            let h = headers
                .iter()
                .find(|h| h.base_offset as u64 == partial)
                .unwrap();
            assert_eq!(
                (
                    h.records_count,
                    h.last_offset_delta,
                    h.max_timestamp,
                    h.base_timestamp
                ),
                (2, 4, ts + 1, ts + 4),
                "{codec}: the rebuilt round-29 batch"
            );
            // Batches whose records are all gone disappear: left are the producer's last, round
            // 29's and round 39's.
            assert_eq!(kept.len(), 3, "{codec}: {kept:?}");

            // Past delete.retention.ms the tombstone goes; the rest stays.
            now.set(now.get() + 61_000);
            let outcome = log
                .compact()
                .await
                .unwrap()
                .expect("the tombstone came due");
            assert_eq!(outcome.records_removed, 1, "{codec}");
            let (after, _) = decoded(&log).await;
            assert!(
                !after.iter().any(|r| r.1 == "k-1"),
                "{codec}: tombstone removed"
            );
            let before_minus: Vec<_> = recs.into_iter().filter(|r| r.1 != "k-1").collect();
            assert_eq!(after, before_minus, "{codec}");
            log.close().await.unwrap();
        });
    }
}

#[test]
fn the_cleaner_checkpoint_survives_a_restart() {
    in_temp_dir(|path| async move {
        let config = LogConfig {
            min_cleanable_dirty_ratio_ppm: 500_000,
            ..compact_config()
        };
        let log = open_log(&path, config.clone(), Clock::System).await;
        // An idempotent producer's last batch, whose record a plain write after the restart
        // supersedes: then only the "last batch of a producer" rule keeps it.
        let mut b = encode_batch(&[Record {
            timestamp: 1_000,
            key: Some(b"p".to_vec()),
            value: Some(b"from-producer".to_vec()),
            headers: Vec::new(),
        }]);
        b[43..51].copy_from_slice(&91i64.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&5i32.to_be_bytes());
        wire::batch::reseal(&mut b);
        let producer_last = log.append(Bytes::from(b), 0).unwrap().first_offset;
        fill(&log, 20, 30, 1_000).await;
        let first = log
            .compact()
            .await
            .unwrap()
            .expect("all dirty: a pass runs");
        assert!(first.records_removed > 500, "{first:?}");
        assert!(path.join(storage::compact::CHECKPOINT_FILE).exists());
        let has_producer_batch = |log: PartitionLog| async move {
            let read = log.read(producer_last, 1 << 16).await.unwrap();
            read.batches
                .first()
                .is_some_and(|h| h.base_offset as u64 == producer_last && h.producer_id == 91)
        };
        assert!(has_producer_batch(log.clone()).await);
        log.close().await.unwrap();

        // Reopened: the cleaned part is not dirty again, so no pass.
        let log = open_log(&path, config.clone(), Clock::System).await;
        assert_eq!(
            log.compact().await.unwrap(),
            None,
            "nothing dirty after a restart"
        );
        // New dirty data past the ratio: a pass runs, from where the last one ended, and the
        // producer's last batch is still kept.
        log.append(keyed("p", Some("plain"), 1_000), 0).unwrap();
        fill_keys(&log, "new", 40, 4, 1_000).await;
        let second = log
            .compact()
            .await
            .unwrap()
            .expect("new data past the ratio");
        assert!(
            second.cleaned_to > first.cleaned_to,
            "{second:?} after {first:?}"
        );
        assert!(
            has_producer_batch(log.clone()).await,
            "producer state survived"
        );
        log.close().await.unwrap();

        // Without the checkpoint the whole log counts as dirty once (what the file saves).
        std::fs::remove_file(path.join(storage::compact::CHECKPOINT_FILE)).unwrap();
        let log = open_log(&path, config, Clock::System).await;
        assert!(log.compact().await.unwrap().is_some());
        log.close().await.unwrap();
    });
}

#[test]
fn a_compacted_log_refuses_records_without_a_key() {
    in_temp_dir(|path| async move {
        let log = open_log(&path, compact_config(), Clock::System).await;
        let keyless = Bytes::from(encode_batch(&[
            Record {
                timestamp: 1,
                key: Some(b"k".to_vec()),
                value: Some(b"v".to_vec()),
                headers: Vec::new(),
            },
            Record {
                timestamp: 1,
                key: None,
                value: Some(b"v".to_vec()),
                headers: Vec::new(),
            },
        ]));
        let err = log.append(keyless.clone(), 0).unwrap_err();
        assert!(
            matches!(
                err,
                storage::LogError::Batch(wire::batch::BatchError::InvalidRecord { .. })
            ),
            "{err}"
        );
        assert_eq!(log.next_offset(), 0, "nothing of it appended");
        // Inside a compressed batch too (it is decompressed to check).
        let records = [
            Record {
                timestamp: 1,
                key: Some(b"k".to_vec()),
                value: Some(b"v".to_vec()),
                headers: Vec::new(),
            },
            Record {
                timestamp: 1,
                key: None,
                value: Some(b"v".to_vec()),
                headers: Vec::new(),
            },
        ];
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let err = log
                .append(compressed(codec, &records, None), 0)
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    storage::LogError::Batch(wire::batch::BatchError::InvalidRecord { .. })
                ),
                "{codec}: {err}"
            );
            assert!(log
                .append(compressed(codec, &records[..1], None), 0)
                .is_ok());
        }
        // Compressed bytes that do not decompress: CORRUPT_MESSAGE.
        let mut bad = compressed(Codec::Lz4, &records[..1], None).to_vec();
        let end = bad.len();
        bad[HEADER_LEN..end].fill(0x11);
        wire::batch::reseal(&mut bad);
        let err = log.append(Bytes::from(bad), 0).unwrap_err();
        assert!(
            matches!(
                err,
                storage::LogError::Batch(wire::batch::BatchError::CorruptMessage { .. })
            ),
            "{err}"
        );
        assert_eq!(log.next_offset(), 4, "only the keyed batches");
        log.close().await.unwrap();
        // A log that is not compacted takes it.
        let plain = LogConfig {
            cleanup_compact: false,
            cleanup_delete: true,
            ..compact_config()
        };
        let log = open_log(&path, plain, Clock::System).await;
        assert_eq!(log.append(keyless, 0).unwrap().records, 2);
        log.close().await.unwrap();
    });
}

/// Copies the regular files of `from` into a fresh directory `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every crash point of a swap, rebuilt from the files before and after one pass: the log that
/// opens is the old one before the commit marker and the compacted one after it, never a mix.
#[test]
fn a_swap_interrupted_at_any_step_recovers_to_the_old_or_the_new_log() {
    let root = tempfile::tempdir().unwrap();
    let before = root.path().join("before");
    let after = root.path().join("after");
    let (expect_before, expect_after, end) = common::run({
        let (before, after) = (before.clone(), after.clone());
        move || async move {
            let log = open_log(&after, compact_config(), Clock::System).await;
            fill(&log, 8, 25, 1).await;
            log.close().await.unwrap();
            copy_dir(&after, &before);
            let log = open_log(&after, compact_config(), Clock::System).await;
            let old = records(&log).await;
            let outcome = log.compact().await.unwrap().unwrap();
            assert_eq!(outcome.segments_after, 1, "one merged group");
            let new = records(&log).await;
            assert!(new.len() < old.len());
            let end = log.log_end_offset();
            log.close().await.unwrap();
            (old, new, end)
        }
    });
    let b1 = "00000000000000000000";
    let old_segments: Vec<String> = names(&before)
        .into_iter()
        .filter(|n| n.ends_with(".log") && !n.starts_with(b1))
        .collect();
    let active = old_segments.last().unwrap().clone();
    let merged: Vec<String> = old_segments[..old_segments.len() - 1].to_vec();
    let swap_end = active.trim_end_matches(".log").parse::<u64>().unwrap();
    // (description, files to set up in a copy of `before`, expect the compacted log)
    type Setup<'a> = Box<dyn Fn(&Path) + 'a>;
    let cleaned = |dir: &Path, ext: &str| {
        std::fs::copy(
            after.join(format!("{b1}.{ext}")),
            dir.join(format!("{b1}.{ext}.cleaned")),
        )
        .unwrap();
    };
    let marker =
        |dir: &Path| std::fs::write(dir.join(format!("{b1}.swap")), swap_end.to_string()).unwrap();
    let cases: Vec<(&str, Setup<'_>, bool)> = vec![
        (
            "a partial .cleaned log",
            Box::new(move |d: &Path| {
                std::fs::write(d.join(format!("{b1}.log.cleaned")), b"partial").unwrap();
            }),
            false,
        ),
        (
            "all .cleaned files, no marker",
            Box::new(move |d: &Path| {
                for ext in ["log", "index", "timeindex"] {
                    cleaned(d, ext);
                }
            }),
            false,
        ),
        (
            "marker written",
            Box::new(move |d: &Path| {
                for ext in ["log", "index", "timeindex"] {
                    cleaned(d, ext);
                }
                marker(d);
            }),
            true,
        ),
        (
            "old segments half deleted",
            Box::new({
                let merged = merged.clone();
                move |d: &Path| {
                    for ext in ["log", "index", "timeindex"] {
                        cleaned(d, ext);
                    }
                    marker(d);
                    for name in &merged[..merged.len() / 2] {
                        std::fs::remove_file(d.join(name)).unwrap();
                    }
                }
            }),
            true,
        ),
        (
            "index renamed, log not yet",
            Box::new({
                let merged = merged.clone();
                move |d: &Path| {
                    for ext in ["log", "index", "timeindex"] {
                        cleaned(d, ext);
                    }
                    marker(d);
                    for name in &merged {
                        std::fs::remove_file(d.join(name)).unwrap();
                    }
                    std::fs::rename(
                        d.join(format!("{b1}.index.cleaned")),
                        d.join(format!("{b1}.index")),
                    )
                    .unwrap();
                }
            }),
            true,
        ),
        (
            "renamed, marker left",
            Box::new({
                let merged = merged.clone();
                move |d: &Path| {
                    for ext in ["log", "index", "timeindex"] {
                        cleaned(d, ext);
                    }
                    marker(d);
                    for name in &merged {
                        std::fs::remove_file(d.join(name)).unwrap();
                    }
                    for ext in ["index", "timeindex", "log"] {
                        std::fs::rename(
                            d.join(format!("{b1}.{ext}.cleaned")),
                            d.join(format!("{b1}.{ext}")),
                        )
                        .unwrap();
                    }
                }
            }),
            true,
        ),
    ];
    assert!(!merged.is_empty());
    for (i, (what, setup, compacted)) in cases.into_iter().enumerate() {
        let dir = root.path().join(format!("case{i}"));
        copy_dir(&before, &dir);
        setup(&dir);
        let expected = if compacted {
            expect_after.clone()
        } else {
            expect_before.clone()
        };
        let got = common::run({
            let dir = dir.clone();
            move || async move {
                let log = open_log(&dir, compact_config(), Clock::System).await;
                let got = (records(&log).await, log.log_end_offset());
                log.close().await.unwrap();
                got
            }
        });
        assert_eq!(got, (expected, end), "{what}");
        let left = names(&dir);
        assert!(
            !left
                .iter()
                .any(|n| n.ends_with(".cleaned") || n.ends_with(".swap")),
            "{what}: leftovers {left:?}"
        );
    }
}
