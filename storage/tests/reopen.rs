//! The partition log across a close and a reopen: clean shutdown, torn tails, corruption inside
//! sealed segments, damaged indexes, syncs without a waiter (flush.messages, flush.ms), and how a
//! clean reopen trusts the index where an unclean one scans.

mod common;

use common::{batch, durable_within, in_temp_dir, mib_config, small_config, stamped};
use storage::{Clock, LogConfig, LogError, PartitionLog, Watermark};
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
        // The file ends at the last valid batch; the next write reserves space again.
        let valid_bytes = expected[..4].concat().len() as u64;
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), valid_bytes);
        let b = batch(9, 2, 10, 0);
        let info = log
            .append_and_wait(b.clone(), 0, Watermark::Durable)
            .await
            .unwrap();
        assert_eq!(info.first_offset, 8);
        assert!(std::fs::metadata(&segment).unwrap().len() > valid_bytes);
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
