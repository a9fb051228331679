//! Behaviour of the partition log on real files: appends, watermarks, reads from memory and disk,
//! rolling, retention, timestamps, clean and unclean reopen, corruption handling.

mod common;

use bytes::Bytes;
use common::{batch, durable_within, fill, in_temp_dir, mib_config, small_config, stamped};
use storage::{Clock, LogConfig, LogError, ManualClock, PartitionLog, Watermark};

#[test]
fn appended_batches_read_back_byte_identical_with_assigned_offsets() {
    in_temp_dir(|path| async move {
        let log = PartitionLog::open(&path, mib_config(), Clock::System)
            .await
            .unwrap();
        let first = batch(1, 3, 100, 1_000);
        let second = batch(2, 5, 10, 2_000);
        let a = log.append(first.clone(), 7).unwrap();
        let b = log
            .append_and_wait(second.clone(), 7, Watermark::Durable)
            .await
            .unwrap();
        assert_eq!((a.first_offset, a.last_offset), (0, 2));
        assert_eq!((b.first_offset, b.last_offset, b.records), (3, 7, 5));
        assert_eq!(log.log_end_offset(), 8);
        assert_eq!(log.durable_offset(), 8);

        let read = log.read(0, 1 << 20).await.unwrap();
        let mut expected = stamped(&first, 0, 7);
        expected.extend(stamped(&second, 3, 7));
        assert_eq!(read.to_vec(), expected);
        assert_eq!(read.next_offset(), Some(8));

        // Reading from the middle of a batch returns the whole batch holding it.
        let read = log.read(4, 1 << 20).await.unwrap();
        assert_eq!(read.to_vec(), stamped(&second, 3, 7));
        assert!(
            log.read(8, 1024).await.unwrap().is_empty(),
            "reading at the LEO is empty"
        );
        let err = log.read(9, 1024).await.unwrap_err();
        assert!(matches!(err, LogError::OffsetOutOfRange { .. }), "{err}");
        log.close().await.unwrap();
    });
}

#[test]
fn a_bad_batch_is_refused_and_nothing_of_its_record_set_is_appended() {
    in_temp_dir(|path| async move {
        let config = LogConfig {
            max_message_bytes: 4096,
            ..mib_config()
        };
        let log = PartitionLog::open(&path, config, Clock::System)
            .await
            .unwrap();
        let good = batch(1, 2, 10, 0);
        let mut corrupt = batch(2, 2, 10, 0).to_vec();
        *corrupt.last_mut().unwrap() ^= 0xff;
        let mut set = good.to_vec();
        set.extend(&corrupt);
        let err = log.append(Bytes::from(set), 0).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::Batch(wire::batch::BatchError::CorruptMessage { .. })
            ),
            "{err}"
        );
        let err = log.append(batch(3, 10, 1000, 0), 0).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::Batch(wire::batch::BatchError::MessageTooLarge { .. })
            ),
            "{err}"
        );
        assert_eq!(log.next_offset(), 0, "no offsets were assigned");
        log.append_and_wait(good.clone(), 0, Watermark::Written)
            .await
            .unwrap();
        assert_eq!(
            log.read(0, 1 << 20).await.unwrap().to_vec(),
            stamped(&good, 0, 0)
        );
        log.close().await.unwrap();
    });
}

#[test]
fn segments_roll_on_size_and_time_and_cold_reads_cross_them() {
    in_temp_dir(|path| async move {
        let now = ManualClock::new(1_000_000i64);
        let clock = Clock::Manual(now.clone());
        let config = LogConfig {
            segment_ms: 60_000,
            ..small_config()
        };
        let log = PartitionLog::open(&path, config, clock).await.unwrap();
        let mut expected = Vec::new();
        let mut offset = 0;
        for tag in 0..40u64 {
            let b = batch(tag, 4, 1000, tag as i64 * 10);
            let info = log.append(b.clone(), 1).unwrap();
            assert_eq!(info.first_offset, offset);
            expected.push((offset, stamped(&b, offset, 1)));
            offset = info.last_offset + 1;
        }
        log.wait(offset - 1, Watermark::Written).await.unwrap();
        let by_size = log.segment_count();
        assert!(
            by_size >= 3,
            "40 × ~4 KiB batches in 64 KiB segments: {by_size} segments"
        );
        now.set(now.get() + 61_000);
        let b = batch(99, 1, 10, 0);
        let info = log
            .append_and_wait(b.clone(), 1, Watermark::Written)
            .await
            .unwrap();
        expected.push((info.first_offset, stamped(&b, info.first_offset, 1)));
        assert_eq!(
            log.segment_count(),
            by_size + 1,
            "segment.ms rolled the active segment"
        );

        let mut names: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names[0], "00000000000000000000.index");
        assert!(names.contains(&"00000000000000000000.log".to_string()));
        assert!(names.contains(&"00000000000000000000.timeindex".to_string()));

        // Every batch, read one at a time from disk (the tail cache is off), is byte-identical.
        for (offset, bytes) in &expected {
            let read = log.read(*offset, 1).await.unwrap();
            assert_eq!(&read.to_vec(), bytes, "batch at {offset}");
        }
        // A big read returns whole batches of one segment, starting at the requested one.
        let read = log.read(5, 10_000).await.unwrap();
        assert_eq!(read.batches[0].base_offset, 4);
        assert!(
            read.len() <= 10_000 && read.batches.len() == 2,
            "{} bytes",
            read.len()
        );
        log.close().await.unwrap();
    });
}

#[test]
fn recent_data_is_served_from_the_tail_cache_without_disk_reads() {
    in_temp_dir(|path| async move {
        let config = LogConfig {
            tail_cache_bytes: 1 << 20,
            ..mib_config()
        };
        let log = PartitionLog::open(&path, config, Clock::System)
            .await
            .unwrap();
        let mut expected = Vec::new();
        for tag in 0..20u64 {
            let b = batch(tag, 2, 3000, 0);
            let info = log.append(b.clone(), 0).unwrap();
            expected.extend(stamped(&b, info.first_offset, 0));
        }
        log.wait(39, Watermark::Written).await.unwrap();
        let read = log.read(0, 1 << 20).await.unwrap();
        assert!(
            read.chunks
                .iter()
                .all(|c| matches!(c, storage::LogBytes::Memory { .. })),
            "{:?}",
            read.chunks
        );
        assert_eq!(read.to_vec(), expected);
        log.close().await.unwrap();
    });
}

#[test]
fn tail_caches_of_one_shard_share_a_budget_and_release_it_on_close() {
    in_temp_dir(|path| async move {
        const MIB: usize = 1 << 20;
        storage::tail::set_shard_tail_bytes(12 * MIB);
        let config = LogConfig {
            segment_bytes: 64 << 20,
            preallocate: false,
            tail_cache_bytes: 10 * MIB,
            ..LogConfig::default()
        };
        let a = PartitionLog::open(path.join("a"), config.clone(), Clock::System)
            .await
            .unwrap();
        let b = PartitionLog::open(path.join("b"), config, Clock::System)
            .await
            .unwrap();
        let in_memory = |read: &storage::LogRead| {
            // A read of nothing would be "all in memory" (and "none"): it must return bytes.
            assert!(!read.chunks.is_empty(), "an empty read of a filled log");
            read.chunks
                .iter()
                .all(|c| matches!(c, storage::LogBytes::Memory { .. }))
        };
        // Alone, a partition keeps up to its own limit: 8 MiB back is still in memory.
        fill(&a, 1, 8).await;
        assert!(storage::tail::shard_tail_bytes() >= 7 * MIB);
        assert!(in_memory(&a.read(0, 1 << 20).await.unwrap()));
        // A second busy partition pushes the shard over its budget: each writer then gives back
        // its own oldest bytes, down to the floor, so the shard stays near the budget.
        fill(&b, 2, 12).await;
        fill(&a, 3, 4).await;
        let held = storage::tail::shard_tail_bytes();
        assert!(held <= 14 * MIB, "shard tail caches hold {held} bytes");
        let old = a.read(0, 1 << 20).await.unwrap();
        assert!(
            !in_memory(&old),
            "the oldest bytes were evicted: {:?}",
            old.chunks
        );
        let newest = a.read(a.log_end_offset() - 1, 1 << 20).await.unwrap();
        assert!(in_memory(&newest), "{:?}", newest.chunks);
        a.close().await.unwrap();
        b.close().await.unwrap();
        drop((a, b));
        assert_eq!(
            storage::tail::shard_tail_bytes(),
            0,
            "closed logs release their caches"
        );
        storage::tail::set_shard_tail_bytes(storage::tail::SHARD_TAIL_BYTES_DEFAULT);
    });
}

#[test]
fn retention_deletes_whole_old_segments_and_moves_the_log_start() {
    in_temp_dir(|path| async move {
        let now = ManualClock::new(10_000_000i64);
        let config = LogConfig {
            retention_ms: Some(3_600_000),
            retention_bytes: Some(150 << 10),
            ..small_config()
        };
        let log = PartitionLog::open(&path, config, Clock::Manual(now.clone()))
            .await
            .unwrap();
        let mut last = 0;
        for tag in 0..80u64 {
            // Old timestamps for the first half, current ones after.
            let ts = if tag < 40 { 1_000 } else { now.get() };
            last = log.append(batch(tag, 4, 1000, ts), 0).unwrap().last_offset;
        }
        log.wait(last, Watermark::Written).await.unwrap();
        let size_before = log.size_bytes();
        let outcome = log.apply_retention().unwrap();
        assert!(!outcome.deleted_segments.is_empty());
        assert_eq!(outcome.log_start_offset, log.log_start_offset());
        assert!(log.log_start_offset() > 0);
        assert!(log.size_bytes() < size_before);
        // Everything with old timestamps is gone (time), and the rest fits the byte limit.
        assert!(
            log.log_start_offset() >= 40 * 4 - 64,
            "start {}",
            log.log_start_offset()
        );
        assert!(log.size_bytes() < (150 << 10) + (64 << 10));
        for base in &outcome.deleted_segments {
            assert!(!path.join(format!("{base:020}.log")).exists());
        }
        let err = log.read(0, 1024).await.unwrap_err();
        assert!(matches!(err, LogError::OffsetOutOfRange { .. }), "{err}");
        let start = log.log_start_offset();
        assert_eq!(
            log.read(start, 1).await.unwrap().batches[0].base_offset as u64,
            start
        );
        log.close().await.unwrap();

        let log = PartitionLog::open(&path, small_config(), Clock::System)
            .await
            .unwrap();
        assert_eq!(log.log_start_offset(), start, "the start survives a reopen");
        log.close().await.unwrap();
    });
}

#[test]
fn offsets_are_found_by_timestamp() {
    in_temp_dir(|path| async move {
        let log = PartitionLog::open(&path, small_config(), Clock::System)
            .await
            .unwrap();
        for tag in 0..60u64 {
            // Record i of batch tag has timestamp 10_000 + tag * 100 + i.
            log.append(batch(tag, 4, 800, 10_000 + tag as i64 * 100), 0)
                .unwrap();
        }
        log.wait(239, Watermark::Written).await.unwrap();
        assert_eq!(
            log.offset_for_timestamp(0).await.unwrap(),
            Some((0, 10_000))
        );
        assert_eq!(
            log.offset_for_timestamp(10_000 + 37 * 100 + 2)
                .await
                .unwrap(),
            Some((37 * 4 + 2, 13_702))
        );
        assert_eq!(
            log.offset_for_timestamp(10_000 + 37 * 100 + 50)
                .await
                .unwrap(),
            Some((38 * 4, 13_800))
        );
        assert_eq!(log.offset_for_timestamp(99_999).await.unwrap(), None);
        log.close().await.unwrap();
    });
}

#[test]
fn a_sequential_cold_reader_is_served_by_read_ahead_across_window_boundaries() {
    in_temp_dir(|path| async move {
        let config = LogConfig {
            segment_bytes: 8 << 20,
            tail_cache_bytes: 0,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(&path, config.clone(), Clock::System)
            .await
            .unwrap();
        let mut expected = Vec::new();
        for tag in 0..24u64 {
            // ~300 KB batches: several of them straddle the 1 MiB read-ahead windows.
            let b = batch(tag, 3, 100_000, 0);
            let info = log.append(b.clone(), 0).unwrap();
            expected.push((info.first_offset, stamped(&b, info.first_offset, 0)));
        }
        log.close().await.unwrap();
        let log = PartitionLog::open(&path, config, Clock::System)
            .await
            .unwrap();
        let (mut offset, mut got, mut slices) = (0u64, Vec::new(), 0usize);
        while offset < log.log_end_offset() {
            let read = log.read(offset, 700_000).await.unwrap();
            assert!(read
                .chunks
                .iter()
                .all(|c| matches!(c, storage::LogBytes::Disk(_))));
            slices += read.chunks.len();
            got.extend(read.to_vec());
            offset = read.next_offset().unwrap();
        }
        let want: Vec<u8> = expected.iter().flat_map(|(_, b)| b.clone()).collect();
        assert!(
            got == want,
            "the sequential read returns every batch byte-identical"
        );
        assert!(
            slices > 24 / 2,
            "batches spanning windows come back as several slices: {slices}"
        );
        log.close().await.unwrap();
    });
}

#[test]
fn segment_ms_keeps_counting_across_a_restart() {
    in_temp_dir(|path| async move {
        let config = LogConfig {
            segment_ms: 500,
            ..mib_config()
        };
        let log = PartitionLog::open(&path, config.clone(), Clock::System)
            .await
            .unwrap();
        log.append_and_wait(batch(1, 1, 10, 0), 0, Watermark::Written)
            .await
            .unwrap();
        log.close().await.unwrap();
        glommio::timer::sleep(std::time::Duration::from_millis(600)).await;
        let log = PartitionLog::open(&path, config, Clock::System)
            .await
            .unwrap();
        log.append_and_wait(batch(2, 1, 10, 0), 0, Watermark::Written)
            .await
            .unwrap();
        assert_eq!(
            log.segment_count(),
            2,
            "the segment created before the restart is old enough to roll"
        );
        log.close().await.unwrap();
    });
}

#[test]
fn set_config_changes_rolls_limits_retention_and_flushing_of_an_open_log() {
    in_temp_dir(|path| async move {
        let now = ManualClock::new(10_000_000i64);
        let log = PartitionLog::open(&path, mib_config(), Clock::Manual(now.clone()))
            .await
            .unwrap();
        for tag in 0..4u64 {
            log.append_and_wait(batch(tag, 4, 1000, 1_000), 0, Watermark::Written)
                .await
                .unwrap();
        }
        assert_eq!(log.segment_count(), 1);
        // A smaller segment.bytes: the next append rolls, and so does every one after it.
        log.set_config(LogConfig {
            segment_bytes: 5000,
            ..mib_config()
        });
        assert_eq!(log.config().segment_bytes, 5000);
        for tag in 4..7u64 {
            log.append_and_wait(batch(tag, 4, 1000, 1_000), 0, Watermark::Written)
                .await
                .unwrap();
        }
        assert_eq!(
            log.segment_count(),
            4,
            "rolled at each append after the change"
        );
        // Nothing expires under the opening config's 7 days...
        assert!(log.apply_retention().unwrap().deleted_segments.is_empty());
        // ...but a retention.ms of one hour deletes every sealed segment (timestamps are old).
        log.set_config(LogConfig {
            segment_bytes: 5000,
            retention_ms: Some(3_600_000),
            max_message_bytes: 100,
            ..mib_config()
        });
        let outcome = log.apply_retention().unwrap();
        assert_eq!(outcome.deleted_segments.len(), 3);
        assert_eq!(log.log_start_offset(), 24);
        // max.message.bytes applies to the next append.
        let err = log.append(batch(9, 4, 1000, 1_000), 0).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::Batch(wire::batch::BatchError::MessageTooLarge { .. })
            ),
            "{err}"
        );
        // flush.ms set on a log with unsynced data and no waiter: the flusher re-plans.
        log.set_config(mib_config());
        let last = log
            .append_and_wait(batch(10, 2, 10, 1_000), 0, Watermark::Written)
            .await
            .unwrap()
            .last_offset;
        assert!(!durable_within(&log, last + 1, std::time::Duration::from_millis(100)).await);
        log.set_config(LogConfig {
            flush_ms: Some(0),
            ..mib_config()
        });
        assert!(durable_within(&log, last + 1, std::time::Duration::from_secs(5)).await);
        log.close().await.unwrap();
    });
}

#[test]
fn batch_headers_are_visited_in_order_from_any_offset_across_segments() {
    in_temp_dir(|path| async move {
        let log = PartitionLog::open(&path, small_config(), Clock::System)
            .await
            .unwrap();
        assert_eq!(log.active_segment_base(), 0);
        let mut bases = Vec::new();
        let mut last = 0;
        for tag in 0..40u64 {
            let info = log.append(batch(tag, 4, 1000, tag as i64), 1).unwrap();
            bases.push(info.first_offset as i64);
            last = info.last_offset;
        }
        log.wait(last, Watermark::Written).await.unwrap();
        assert!(log.segment_count() >= 3);
        // Everything below the active segment is sealed, hence durable.
        let active = log.active_segment_base();
        assert!(active > 0 && log.durable_offset() >= active);

        let visit = |log: PartitionLog, from: u64| async move {
            let mut seen = Vec::new();
            let end = log
                .for_each_batch_header(from, 8 << 10, |h| {
                    seen.push((h.base_offset, h.records_count, h.max_timestamp))
                })
                .await
                .unwrap();
            (seen, end)
        };
        let (seen, end) = visit(log.clone(), 0).await;
        assert_eq!(end, last + 1);
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), bases);
        assert!(seen
            .iter()
            .enumerate()
            .all(|(i, s)| s.1 == 4 && s.2 == i as i64 + 3));
        // From the middle of a batch: that batch first; from the end: nothing.
        let (seen, _) = visit(log.clone(), 41).await;
        assert_eq!(seen[0].0, 40);
        assert_eq!(seen.len(), 30);
        let (seen, end) = visit(log.clone(), last + 1).await;
        assert!(seen.is_empty() && end == last + 1);
        log.close().await.unwrap();

        // After a reopen, from disk (the tail cache is off in this config anyway).
        let log = PartitionLog::open(&path, small_config(), Clock::System)
            .await
            .unwrap();
        let (seen, end) = visit(log.clone(), 0).await;
        assert_eq!(end, last + 1);
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), bases);
        log.close().await.unwrap();
    });
}

#[test]
fn appends_past_the_pending_bound_are_refused_whole_until_the_queue_drains() {
    in_temp_dir(|path| async move {
        let config = LogConfig {
            pending_bytes_max: 64 << 10,
            ..small_config()
        };
        let log = PartitionLog::open(&path, config, Clock::System)
            .await
            .unwrap();
        // Appends are synchronous: nothing reaches the flusher until this task awaits.
        let first = batch(1, 3, 10_000, 1_000);
        let len = first.len() as u64;
        let a = log.append(first, 0).unwrap();
        let b = log.append(batch(2, 3, 10_000, 1_000), 0).unwrap();
        assert_eq!(log.pending_bytes(), 2 * len);
        let refused = log.append(batch(3, 3, 10_000, 1_000), 0).unwrap_err();
        match refused {
            LogError::PendingFull {
                pending_bytes,
                record_set_bytes,
                pending_bytes_max,
            } => {
                assert_eq!(pending_bytes, 2 * len);
                assert_eq!(record_set_bytes, len);
                assert_eq!(pending_bytes_max, 64 << 10);
            }
            other => panic!("expected PendingFull, got {other:?}"),
        }
        assert_eq!(log.next_offset(), b.last_offset + 1, "nothing was queued");
        assert_eq!(log.pending_bytes(), 2 * len);

        log.wait(b.last_offset, Watermark::Written).await.unwrap();
        assert_eq!(log.pending_bytes(), 0);
        // An empty queue takes a record set larger than the bound (never refused forever).
        let big = log.append(batch(4, 10, 10_000, 1_000), 0).unwrap();
        assert_eq!(big.first_offset, b.last_offset + 1);
        assert!(log.pending_bytes() > 64 << 10);
        log.wait(big.last_offset, Watermark::Durable).await.unwrap();
        let mut bases = Vec::new();
        log.for_each_batch_header(0, 1 << 20, |h| bases.push(h.base_offset as u64))
            .await
            .unwrap();
        let expected = vec![a.first_offset, b.first_offset, big.first_offset];
        assert_eq!(bases, expected, "the refused record set is not in the log");
        log.close().await.unwrap();
    });
}

#[test]
fn a_waiter_beyond_the_log_end_is_told_the_log_closed() {
    in_temp_dir(|path| async move {
        let log = PartitionLog::open(&path, mib_config(), Clock::System)
            .await
            .unwrap();
        let info = log
            .append_and_wait(batch(1, 2, 10, 1_000), 0, Watermark::Written)
            .await
            .unwrap();
        let (waited, closed) = futures::join!(
            log.wait(info.last_offset + 5, Watermark::Durable),
            log.close()
        );
        closed.unwrap();
        assert!(
            matches!(waited, Err(LogError::Closed)),
            "a waiter the close overtook: {waited:?}"
        );
    });
}
