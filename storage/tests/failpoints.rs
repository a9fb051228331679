//! Injected storage faults (the `failpoints` feature, enabled for these tests by the crate's
//! dev-dependency on itself): a failed data write, fdatasync, seal or compaction swap must take
//! the partition offline or leave the old state, never acknowledge what is not written, and a
//! reopen must find the acknowledged data — the old segments or the compacted ones, never a mix.
//! A full disk (the reservation ahead of the writes refused with ENOSPC) is the exception: the log
//! stays online, refuses appends while it lasts and resumes by itself.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::{batch, compact_config, in_temp_dir, stamped};
use futures::future::join_all;
use storage::failpoint::{self, fail_after, fail_next, fail_next_matching, fail_next_os, hits};
use storage::{Clock, LogConfig, LogError, PartitionLog, Watermark};
use wire::batch::{encode_batch, record_views, Record};

fn write_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 1024,
        write_bytes_max: 16 << 10,
        tail_cache_bytes: 0,
        ..LogConfig::default()
    }
}

async fn open(path: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(path, config, Clock::System)
        .await
        .unwrap()
}

/// Every byte of the log from its start to its end, read through `PartitionLog::read`.
async fn all_bytes(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20).await.unwrap();
        out.extend(read.to_vec());
        offset = read.next_offset().unwrap();
    }
    out
}

/// What the log must hold after `appended` (record sets appended from offset 0, in order, each
/// stamped with its base offset and leader epoch 0): their stored bytes, concatenated.
fn stored(appended: &[(u64, Bytes)]) -> Vec<u8> {
    appended
        .iter()
        .flat_map(|(base, records)| stamped(records, *base, 0))
        .collect()
}

fn assert_offline(result: Result<impl std::fmt::Debug, LogError>, what: &str) {
    match result {
        Err(LogError::Offline(reason)) => {
            assert!(reason.contains("injected failure"), "{what}: {reason}")
        }
        other => panic!("{what}: expected Offline, got {other:?}"),
    }
}

/// (a) A failed data write: the partition goes offline, every waiter fails, nothing after it is
/// acknowledged or published, appends are refused, and a reopen holds exactly the acknowledged
/// prefix (the failed write's first page never reached the file).
#[test]
fn a_failed_data_write_takes_the_log_offline_and_a_reopen_keeps_the_acknowledged_prefix() {
    in_temp_dir(|path| async move {
        let log = open(&path, write_config()).await;
        let mut appended = Vec::new();
        for tag in 0..5 {
            let records = batch(tag, 4, 3_000, 1_000);
            let info = log
                .append_and_wait(records.clone(), 0, Watermark::Durable)
                .await
                .unwrap();
            appended.push((info.first_offset, records));
        }
        let acked_end = log.log_end_offset();
        assert_eq!(log.durable_offset(), acked_end);
        let writes_before = hits(failpoint::LOG_WRITE);

        fail_next(failpoint::LOG_WRITE, 1);
        let a = log.append(batch(10, 4, 3_000, 2_000), 0).unwrap();
        let b = log.append(batch(11, 4, 3_000, 2_000), 0).unwrap();
        let waits = join_all([
            log.wait(a.last_offset, Watermark::Written),
            log.wait(b.last_offset, Watermark::Written),
            log.wait(b.last_offset, Watermark::Durable),
        ])
        .await;
        for (i, result) in waits.into_iter().enumerate() {
            assert_offline(result, &format!("waiter {i}"));
        }
        assert!(hits(failpoint::LOG_WRITE) > writes_before);
        assert_eq!(log.log_end_offset(), acked_end, "nothing more is published");
        assert_eq!(log.durable_offset(), acked_end);
        assert_offline(log.append(batch(12, 1, 10, 3_000), 0), "an append");
        assert_offline(
            log.wait(b.last_offset, Watermark::Written).await,
            "a later waiter",
        );
        // What was acknowledged is still readable from the offline log.
        assert_eq!(all_bytes(&log).await, stored(&appended));
        assert_offline(log.close().await, "close");
        drop(log);

        let log = open(&path, write_config()).await;
        assert_eq!(log.log_end_offset(), acked_end);
        assert_eq!(all_bytes(&log).await, stored(&appended));
        let next = log
            .append_and_wait(batch(13, 2, 100, 4_000), 0, Watermark::Durable)
            .await
            .unwrap();
        assert_eq!(
            next.first_offset, acked_end,
            "appends go on after the prefix"
        );
        log.close().await.unwrap();
    });
}

/// ENOSPC, the errno a full disk gives.
const ENOSPC: i32 = 28;

/// The disk fills (the next segment's reservation is refused with ENOSPC three times, ~0.6 s):
/// the log does not go offline. Appends are refused with `DiskFull` while it lasts, what was
/// accepted before waits unacknowledged (never lost, never failed), acknowledged data stays
/// readable; once the reservation succeeds everything queued is written and acknowledged, and
/// appends are taken again — no reopen needed.
#[test]
fn a_full_disk_refuses_appends_keeps_reads_and_resumes_by_itself() {
    in_temp_dir(|path| async move {
        let config = LogConfig {
            segment_bytes: 64 << 10,
            ..write_config()
        };
        let log = open(&path, config.clone()).await;
        let mut appended = Vec::new();
        for tag in 0..4 {
            let records = batch(tag, 4, 3_000, 1_000);
            let info = log
                .append_and_wait(records.clone(), 0, Watermark::Durable)
                .await
                .unwrap();
            appended.push((info.first_offset, records));
        }
        let acked = stored(&appended);
        let reservations_before = hits(failpoint::SEGMENT_RESERVE);

        fail_next_os(failpoint::SEGMENT_RESERVE, 3, ENOSPC);
        // Append until the flusher, needing a new segment's space, finds the disk full.
        let mut queued = Vec::new();
        let refused = loop {
            assert!(queued.len() < 200, "no append was refused");
            let records = batch(100 + queued.len() as u64, 4, 3_000, 2_000);
            match log.append(records.clone(), 0) {
                Ok(info) => queued.push((info, records)),
                Err(e) => break e,
            }
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        };
        assert!(matches!(refused, LogError::DiskFull { .. }), "{refused:?}");
        assert!(!queued.is_empty());
        assert!(hits(failpoint::SEGMENT_RESERVE) > reservations_before);
        // Reads of acknowledged data go on; the log is online.
        assert_eq!(&all_bytes(&log).await[..acked.len()], &acked[..]);
        // The queued appends are acknowledged once the disk has room again (the failpoint's
        // three refusals spent), then new appends are taken.
        let last = queued.last().map(|(info, _)| info.last_offset).unwrap();
        log.wait(last, Watermark::Durable).await.unwrap();
        let next = log
            .append_and_wait(batch(999, 2, 100, 3_000), 0, Watermark::Durable)
            .await
            .unwrap();
        assert_eq!(next.first_offset, last + 1);
        for (info, records) in &queued {
            appended.push((info.first_offset, records.clone()));
        }
        appended.push((next.first_offset, batch(999, 2, 100, 3_000)));
        assert_eq!(all_bytes(&log).await, stored(&appended));
        log.close().await.unwrap();
        let log = open(&path, config).await;
        assert_eq!(all_bytes(&log).await, stored(&appended));
        log.close().await.unwrap();
    });
}

/// A write failing after others of its group went through: whatever a reopen finds is a prefix
/// of what was appended, byte for byte, and at least what was acknowledged.
#[test]
fn a_write_failing_inside_a_group_leaves_a_prefix_of_the_appends_and_all_acknowledged_data() {
    in_temp_dir(|path| async move {
        let log = open(&path, write_config()).await;
        let mut appended = Vec::new();
        let first = batch(0, 4, 3_000, 1_000);
        let info = log
            .append_and_wait(first.clone(), 0, Watermark::Written)
            .await
            .unwrap();
        appended.push((info.first_offset, first));
        let acked_end = log.log_end_offset();
        // One group of ~60 KiB: four 16 KiB buffers; the second one fails.
        fail_after(failpoint::LOG_WRITE, 1, 1);
        let mut last = 0;
        for tag in 1..6 {
            let records = batch(tag, 4, 3_000, 1_000);
            let info = log.append(records.clone(), 0).unwrap();
            appended.push((info.first_offset, records));
            last = info.last_offset;
        }
        assert_offline(
            log.wait(last, Watermark::Written).await,
            "the group's waiter",
        );
        assert_eq!(log.log_end_offset(), acked_end);
        drop(log);

        let log = open(&path, write_config()).await;
        let recovered = all_bytes(&log).await;
        let everything = stored(&appended);
        assert!(log.log_end_offset() >= acked_end);
        assert!(recovered.len() >= stored(&appended[..1]).len());
        assert_eq!(
            recovered[..],
            everything[..recovered.len()],
            "the recovered log is a prefix of the appends"
        );
        log.close().await.unwrap();
    });
}

/// A failed fdatasync of the active segment: durable waiters fail, the durable watermark stays,
/// and the written data is found again by a reopen.
#[test]
fn a_failed_sync_fails_durable_waiters_and_the_written_data_survives_a_reopen() {
    in_temp_dir(|path| async move {
        let log = open(&path, write_config()).await;
        let records = batch(1, 4, 1_000, 1_000);
        let info = log
            .append_and_wait(records.clone(), 0, Watermark::Durable)
            .await
            .unwrap();
        let durable = log.durable_offset();
        fail_next(failpoint::LOG_SYNC, 1);
        let second = batch(2, 4, 1_000, 1_000);
        let more = log
            .append_and_wait(second.clone(), 0, Watermark::Written)
            .await
            .unwrap();
        assert_offline(
            log.wait(more.last_offset, Watermark::Durable).await,
            "durable waiter",
        );
        assert_eq!(log.durable_offset(), durable);
        assert_offline(log.append(batch(3, 1, 10, 1_000), 0), "an append");
        drop(log);
        let log = open(&path, write_config()).await;
        let appended = [(info.first_offset, records), (more.first_offset, second)];
        assert_eq!(all_bytes(&log).await, stored(&appended));
        log.close().await.unwrap();
    });
}

/// (b) A failure at each step of a seal (the fdatasyncs, the index files' write, sync, rename and
/// directory sync): the roll does not happen, the log goes offline with the record set that
/// needed the roll unacknowledged, and a reopen finds every acknowledged record in one segment.
#[test]
fn a_failed_seal_takes_the_log_offline_and_a_reopen_recovers_the_segment() {
    let points = [
        failpoint::SEGMENT_SEAL_SYNC,
        failpoint::SEGMENT_SEAL_TRUNCATE_SYNC,
        failpoint::DURABLE_WRITE,
        failpoint::DURABLE_SYNC,
        failpoint::DURABLE_RENAME,
        failpoint::DIR_SYNC,
    ];
    for point in points {
        in_temp_dir(move |path| async move {
            let config = LogConfig {
                segment_bytes: 64 << 10,
                ..write_config()
            };
            let log = open(&path, config.clone()).await;
            let mut appended = Vec::new();
            for tag in 0..4 {
                let records = batch(tag, 5, 3_000, 1_000);
                let info = log
                    .append_and_wait(records.clone(), 0, Watermark::Written)
                    .await
                    .unwrap();
                appended.push((info.first_offset, records));
            }
            assert_eq!(log.segment_count(), 1);
            let acked_end = log.log_end_offset();
            let hits_before = hits(point);
            fail_next(point, 1);
            // 60 KiB + 15 KiB > segment.bytes: this record set starts the next segment.
            let rolled = log
                .append_and_wait(batch(9, 5, 3_000, 1_000), 0, Watermark::Written)
                .await;
            assert_offline(rolled, point);
            assert_eq!(
                hits(point),
                hits_before + 1,
                "{point} failed at its first hit"
            );
            assert_eq!(log.log_end_offset(), acked_end, "{point}");
            drop(log);

            let log = open(&path, config).await;
            assert_eq!(log.segment_count(), 1, "{point}: no second segment");
            assert_eq!(log.log_end_offset(), acked_end, "{point}");
            assert_eq!(all_bytes(&log).await, stored(&appended), "{point}");
            // And it rolls fine now.
            let next = log
                .append_and_wait(batch(9, 5, 3_000, 1_000), 0, Watermark::Durable)
                .await
                .unwrap();
            assert_eq!(next.first_offset, acked_end);
            assert_eq!(log.segment_count(), 2);
            log.close().await.unwrap();
        });
    }
}

/// A seal failing at close: close reports the log offline, and the unclean reopen that follows
/// finds everything that was written.
#[test]
fn a_failed_seal_at_close_is_reported_and_the_reopen_finds_all_data() {
    in_temp_dir(|path| async move {
        let log = open(&path, write_config()).await;
        let records = batch(1, 3, 2_000, 1_000);
        let info = log
            .append_and_wait(records.clone(), 0, Watermark::Written)
            .await
            .unwrap();
        fail_next(failpoint::SEGMENT_SEAL_SYNC, 1);
        assert_offline(log.close().await, "close");
        drop(log);
        assert!(!path.join(".clean_shutdown").exists());
        let log = open(&path, write_config()).await;
        assert_eq!(
            all_bytes(&log).await,
            stored(&[(info.first_offset, records)])
        );
        log.close().await.unwrap();
    });
}

// ---- compaction ----

/// Eight keys, 25 values each, one record per batch, durable: one pass merges one group.
async fn fill(log: &PartitionLog) {
    for round in 0..25 {
        for k in 0..8 {
            let key = format!("key-{k:03}");
            let value = format!("{key}-v{round}-{}", "x".repeat(40));
            let records = Bytes::from(encode_batch(&[Record {
                timestamp: 1,
                key: Some(key.into_bytes()),
                value: Some(value.into_bytes()),
                headers: Vec::new(),
            }]));
            log.append(records, 0).unwrap();
        }
    }
    log.wait(log.next_offset() - 1, Watermark::Durable)
        .await
        .unwrap();
}

/// Every record as (offset, key, value).
async fn records(log: &PartitionLog) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 16).await.unwrap();
        let bytes = read.to_vec();
        let mut at = 0;
        for header in &read.batches {
            let len = header.total_len().unwrap();
            for r in record_views(&bytes[at..at + len]).unwrap() {
                let o = header.base_offset as u64 + r.offset_delta as u64;
                out.push((o, r.key.unwrap().to_vec(), r.value.unwrap().to_vec()));
            }
            at += len;
            offset = header.last_offset() as u64 + 1;
        }
    }
    out
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".tmp"))
        .collect()
}

fn log_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    names
}

/// The log before and after one uninterrupted pass: (records, segment files) of each.
type Twin = (
    (Vec<(u64, Vec<u8>, Vec<u8>)>, Vec<String>),
    (Vec<(u64, Vec<u8>, Vec<u8>)>, Vec<String>),
);

async fn twin(path: &Path) -> Twin {
    let log = open(path, compact_config()).await;
    fill(&log).await;
    let old = (records(&log).await, log_files(path));
    let outcome = log.compact().await.unwrap().expect("a pass ran");
    assert_eq!(outcome.segments_after, 1, "one merged group");
    let new = (records(&log).await, log_files(path));
    assert!(new.0.len() < old.0.len());
    log.close().await.unwrap();
    (old, new)
}

/// (c) A compaction swap failing before its commit point (writing or syncing the `.cleaned`
/// files): the pass fails, the log stays online with its old segments, a reopen removes the
/// `.cleaned` leftovers, and the next pass succeeds.
#[test]
fn a_compaction_failing_before_its_commit_point_keeps_the_old_segments_online() {
    let cases: [(&str, Option<&str>); 4] = [
        (failpoint::COMPACT_WRITE, None),
        (failpoint::COMPACT_SYNC, None),
        (failpoint::DURABLE_RENAME, Some(".index.cleaned")),
        (failpoint::DIR_SYNC, None),
    ];
    for (point, path_contains) in cases {
        in_temp_dir(move |root| async move {
            let (old, new) = twin(&root.join("twin")).await;
            let path = root.join("log");
            let log = open(&path, compact_config()).await;
            fill(&log).await;
            match path_contains {
                Some(needle) => fail_next_matching(point, needle, 1),
                None => fail_next(point, 1),
            }
            let failed = log.compact().await;
            assert!(
                matches!(failed, Err(LogError::Io { .. })),
                "{point}: {failed:?}"
            );
            assert!(hits(point) > 0, "{point} reached");
            assert_eq!(records(&log).await, old.0, "{point}: old records in memory");
            // Still online: a clean close (it reports an offline log).
            log.close().await.unwrap();

            let log = open(&path, compact_config()).await;
            assert_eq!(leftovers(&path), Vec::<String>::new(), "{point}");
            assert_eq!(log_files(&path), old.1, "{point}: the old segments");
            assert_eq!(records(&log).await, old.0, "{point}");
            log.compact().await.unwrap().expect("the next pass runs");
            assert_eq!(records(&log).await, new.0, "{point}: then compacts");
            log.close().await.unwrap();
        });
    }
}

/// (c) A compaction swap failing at its commit marker or after it (renames, directory sync): the
/// log goes offline (memory and files may disagree), and a reopen finds either the old segments
/// (marker not renamed) or the compacted ones (marker there), never a mix, with every key's
/// latest value.
#[test]
fn a_compaction_swap_failing_at_or_after_its_commit_point_reopens_old_or_new_never_a_mix() {
    // (point, path filter, skip, expect the compacted log after reopen)
    let cases: [(&str, Option<&str>, u32, bool); 5] = [
        (failpoint::DURABLE_SYNC, Some(".swap"), 0, false),
        (failpoint::DURABLE_RENAME, Some(".swap"), 0, false),
        // The marker's directory sync: the two index files' come first.
        (failpoint::DIR_SYNC, None, 2, true),
        (failpoint::COMPACT_SWAP_RENAME, None, 0, true),
        (failpoint::COMPACT_SWAP_RENAME, None, 2, true),
    ];
    for (point, path_contains, skip, expect_new) in cases {
        in_temp_dir(move |root| async move {
            let (old, new) = twin(&root.join("twin")).await;
            let path = root.join("log");
            let log = open(&path, compact_config()).await;
            fill(&log).await;
            let acked = log.log_end_offset();
            match (path_contains, skip) {
                (Some(needle), 0) => fail_next_matching(point, needle, 1),
                (None, skip) => fail_after(point, skip, 1),
                _ => unreachable!("no case filters and skips"),
            }
            let failed = log.compact().await;
            assert!(
                matches!(failed, Err(LogError::Io { .. })),
                "{point}: {failed:?}"
            );
            assert_offline(log.append(batch(1, 1, 10, 1), 0), point);
            drop(log);

            let log = open(&path, compact_config()).await;
            assert_eq!(leftovers(&path), Vec::<String>::new(), "{point}");
            assert_eq!(log.log_end_offset(), acked, "{point}");
            let (records_now, files_now) = (records(&log).await, log_files(&path));
            let expected = if expect_new { &new } else { &old };
            assert_eq!(
                files_now, expected.1,
                "{point} (skip {skip}): segment files"
            );
            assert_eq!(records_now, expected.0, "{point} (skip {skip}): records");
            log.close().await.unwrap();
        });
    }
}

/// Every failpoint in the table is on a path a log's life takes (open, appends, syncs, rolls,
/// compaction, close, reopen), so the table and the code agree.
#[test]
fn every_named_failpoint_is_reached() {
    in_temp_dir(|path| async move {
        let log = open(&path, compact_config()).await;
        fill(&log).await;
        log.compact().await.unwrap().expect("a pass ran");
        log.close().await.unwrap();
        let log = open(&path, compact_config()).await;
        log.close().await.unwrap();
        for (point, place) in failpoint::POINTS {
            assert!(hits(point) > 0, "{point} ({place}) never reached");
        }
    });
}
