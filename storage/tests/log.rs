//! Behaviour of the partition log on real files: appends, watermarks, reads from memory and disk,
//! rolling, retention, timestamps, clean and unclean reopen, corruption handling.

mod common;

use bytes::Bytes;
use common::{batch, in_temp_dir, stamped};
use storage::{Clock, LogConfig, LogError, ManualClock, PartitionLog, Watermark};

/// Segments of 1 MiB, so preallocation stays small.
fn mib_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        ..LogConfig::default()
    }
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        index_interval_bytes: 1024,
        tail_cache_bytes: 0,
        write_bytes_max: 16 << 10,
        ..mib_config()
    }
}

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
        assert!(matches!(err, LogError::CorruptMessage { .. }), "{err}");
        let err = log.append(batch(3, 10, 1000, 0), 0).unwrap_err();
        assert!(matches!(err, LogError::MessageTooLarge { .. }), "{err}");
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

/// Appends about `mib` MiB (batches of 2 × 30 KB records) and waits until written.
async fn fill(log: &PartitionLog, tag: u64, mib: usize) -> u64 {
    let mut last = 0;
    for i in 0..(mib * (1 << 20) / 60_000) as u64 {
        last = log
            .append(batch(tag * 10_000 + i, 2, 30_000, 0), 0)
            .unwrap()
            .last_offset;
    }
    log.wait(last, Watermark::Written).await.unwrap();
    last
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
fn a_clean_close_and_reopen_keeps_everything_and_appends_continue() {
    in_temp_dir(|path| async move {
        let mut expected = Vec::new();
        for round in 0..3u64 {
            let log = PartitionLog::open(&path, small_config(), Clock::System)
                .await
                .unwrap();
            assert_eq!(log.next_offset(), round * 30);
            for tag in 0..10u64 {
                let b = batch(round * 100 + tag, 3, 1500, 0);
                let info = log.append(b.clone(), round as i32).unwrap();
                expected.extend(stamped(&b, info.first_offset, round as i32));
            }
            log.close().await.unwrap();
            assert!(path.join(".clean_shutdown").exists());
        }
        let log = PartitionLog::open(&path, small_config(), Clock::System)
            .await
            .unwrap();
        assert!(
            !path.join(".clean_shutdown").exists(),
            "the marker is consumed on open"
        );
        let mut got = Vec::new();
        let mut offset = 0;
        while offset < log.log_end_offset() {
            let read = log.read(offset, 1 << 20).await.unwrap();
            got.extend(read.to_vec());
            offset = read.next_offset().unwrap();
        }
        assert_eq!(got, expected);
        log.close().await.unwrap();
    });
}

#[test]
fn a_torn_tail_is_truncated_and_earlier_data_survives() {
    in_temp_dir(|path| async move {
        let log = PartitionLog::open(&path, mib_config(), Clock::System)
            .await
            .unwrap();
        let mut expected = Vec::new();
        for tag in 0..5u64 {
            let b = batch(tag, 2, 500, 0);
            let info = log
                .append_and_wait(b.clone(), 0, Watermark::Durable)
                .await
                .unwrap();
            expected.push(stamped(&b, info.first_offset, 0));
        }
        // Simulate a crash: no close, so no clean-shutdown marker; then flip bytes in the last batch.
        drop(log);
        let segment = path.join("00000000000000000000.log");
        let mut bytes = std::fs::read(&segment).unwrap();
        let tail_start: usize = expected[..4].iter().map(Vec::len).sum();
        bytes[tail_start + 100] ^= 0x55;
        std::fs::write(&segment, &bytes).unwrap();

        let log = PartitionLog::open(&path, mib_config(), Clock::System)
            .await
            .unwrap();
        assert_eq!(log.log_end_offset(), 8, "the corrupt last batch is cut off");
        assert_eq!(
            log.read(0, 1 << 20).await.unwrap().to_vec(),
            expected[..4].concat()
        );
        assert_eq!(
            std::fs::metadata(&segment).unwrap().len(),
            mib_config().segment_bytes
        );
        let b = batch(9, 2, 10, 0);
        let info = log
            .append_and_wait(b.clone(), 0, Watermark::Durable)
            .await
            .unwrap();
        assert_eq!(info.first_offset, 8);
        assert_eq!(
            log.read(8, 1 << 20).await.unwrap().to_vec(),
            stamped(&b, 8, 0)
        );
        log.close().await.unwrap();
    });
}

#[test]
fn corruption_inside_a_sealed_segment_is_reported_not_skipped() {
    in_temp_dir(|path| async move {
        let log = PartitionLog::open(&path, small_config(), Clock::System)
            .await
            .unwrap();
        for tag in 0..40u64 {
            log.append(batch(tag, 4, 1000, 0), 0).unwrap();
        }
        log.close().await.unwrap();
        let first = path.join("00000000000000000000.log");
        let mut bytes = std::fs::read(&first).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&first, &bytes).unwrap();

        // Reads that cross the damage report it, with the segment and position.
        let log = PartitionLog::open(&path, small_config(), Clock::System)
            .await
            .unwrap();
        let mut offset = 0;
        let err = loop {
            match log.read(offset, 1 << 20).await {
                Ok(read) => offset = read.next_offset().expect("data before the damage"),
                Err(e) => break e,
            }
        };
        match &err {
            LogError::CorruptSegment {
                path: p, position, ..
            } => {
                assert_eq!(p, &first);
                assert!(*position <= middle as u64);
            }
            other => panic!("expected CorruptSegment, got {other}"),
        }
        log.close().await.unwrap();

        // Without its index, opening must rebuild it by scanning, and refuses the damaged segment.
        std::fs::remove_file(path.join("00000000000000000000.index")).unwrap();
        let err = PartitionLog::open(&path, small_config(), Clock::System)
            .await
            .err()
            .expect("open must fail");
        assert!(matches!(err, LogError::CorruptSegment { .. }), "{err}");
    });
}

#[test]
fn a_missing_or_damaged_index_is_rebuilt() {
    in_temp_dir(|path| async move {
        let log = PartitionLog::open(&path, small_config(), Clock::System)
            .await
            .unwrap();
        for tag in 0..40u64 {
            log.append(batch(tag, 4, 1000, tag as i64 * 10), 0).unwrap();
        }
        log.close().await.unwrap();
        let index = path.join("00000000000000000000.index");
        let good = std::fs::read(&index).unwrap();
        std::fs::write(&index, &good[..good.len() - 3]).unwrap();
        std::fs::remove_file(path.join("00000000000000000000.timeindex")).unwrap();

        let log = PartitionLog::open(&path, small_config(), Clock::System)
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(&index).unwrap(),
            good,
            "the rebuilt index equals the original"
        );
        assert_eq!(log.read(17, 1).await.unwrap().batches[0].base_offset, 16);
        assert_eq!(log.offset_for_timestamp(33).await.unwrap(), Some((15, 33)));
        assert_eq!(log.offset_for_timestamp(35).await.unwrap(), Some((16, 40)));
        log.close().await.unwrap();
    });
}

async fn durable_within(log: &PartitionLog, offset: u64, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if log.durable_offset() >= offset {
            return true;
        }
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
    false
}

#[test]
fn flush_messages_and_flush_ms_sync_without_a_waiter() {
    in_temp_dir(|path| async move {
        let config = LogConfig {
            flush_messages: Some(5),
            ..mib_config()
        };
        let log = PartitionLog::open(path.join("by-count"), config, Clock::System)
            .await
            .unwrap();
        log.append_and_wait(batch(1, 2, 10, 0), 0, Watermark::Written)
            .await
            .unwrap();
        assert!(
            !durable_within(&log, 2, std::time::Duration::from_millis(100)).await,
            "2 of 5 messages: no sync"
        );
        log.append_and_wait(batch(2, 3, 10, 0), 0, Watermark::Written)
            .await
            .unwrap();
        assert!(
            durable_within(&log, 5, std::time::Duration::from_secs(5)).await,
            "5 messages: synced"
        );
        log.close().await.unwrap();

        let config = LogConfig {
            flush_ms: Some(50),
            ..mib_config()
        };
        let log = PartitionLog::open(path.join("by-time"), config, Clock::System)
            .await
            .unwrap();
        log.append_and_wait(batch(1, 2, 10, 0), 0, Watermark::Written)
            .await
            .unwrap();
        assert_eq!(log.durable_offset(), 0);
        assert!(
            durable_within(&log, 2, std::time::Duration::from_secs(5)).await,
            "synced after flush.ms"
        );
        log.close().await.unwrap();
    });
}

#[test]
fn a_clean_reopen_trusts_the_index_and_an_unclean_one_scans() {
    in_temp_dir(|path| async move {
        let config = LogConfig {
            index_interval_bytes: 1024,
            ..mib_config()
        };
        let log = PartitionLog::open(&path, config.clone(), Clock::System)
            .await
            .unwrap();
        for tag in 0..20u64 {
            log.append(batch(tag, 2, 500, 0), 0).unwrap();
        }
        log.close().await.unwrap();
        // Damage a batch early in the active segment, before the last index point.
        let segment = path.join("00000000000000000000.log");
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[3000] ^= 0xff;
        std::fs::write(&segment, &bytes).unwrap();

        // Clean: the marker says the file is whole; only the part after the last index point is
        // checked, so the log keeps its full length.
        let log = PartitionLog::open(&path, config.clone(), Clock::System)
            .await
            .unwrap();
        assert_eq!(log.log_end_offset(), 40);
        log.close().await.unwrap();

        // Unclean: the whole active segment is scanned and cut at the damage.
        std::fs::remove_file(path.join(".clean_shutdown")).unwrap();
        let log = PartitionLog::open(&path, config, Clock::System)
            .await
            .unwrap();
        assert!(
            log.log_end_offset() < 40 && log.log_end_offset() > 0,
            "cut at {}",
            log.log_end_offset()
        );
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
        assert!(matches!(err, LogError::MessageTooLarge { .. }), "{err}");
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
