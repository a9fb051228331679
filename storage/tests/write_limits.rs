//! The flusher's write limits come from the log's config: `in_flight_writes_max` bounds the bytes
//! it has in the kernel at once, `write_group_bytes_max` the size of a group (`weir serve` sets
//! both from an io-properties file). The appends are queued before the flusher first runs, so
//! what it submits is decided by the limits alone, not by timing.

mod common;

use common::{batch, in_temp_dir, mib_config, stamped};
use storage::{Clock, LogConfig, PartitionLog, Watermark, WriteStats};

const WRITE_BYTES: usize = 4096;
const BATCHES: u64 = 64;

/// Appends `BATCHES` batches of about 1 KiB at once, waits until all are written, checks they
/// read back, and returns the flusher's stats and the bytes appended.
fn write_with(
    in_flight_writes_max: usize,
    write_group_bytes_max: Option<usize>,
) -> (WriteStats, u64) {
    let (tx, rx) = std::sync::mpsc::channel();
    in_temp_dir(move |path| async move {
        let config = LogConfig {
            write_bytes_max: WRITE_BYTES,
            in_flight_writes_max,
            write_group_bytes_max,
            tail_cache_bytes: 0,
            ..mib_config()
        };
        let log = PartitionLog::open(&path, config, Clock::System)
            .await
            .unwrap();
        let mut expected = Vec::new();
        let mut appended = 0u64;
        let mut last = 0;
        for tag in 0..BATCHES {
            let b = batch(tag, 1, 900, 0);
            let info = log.append(b.clone(), 0).unwrap();
            expected.extend(stamped(&b, info.first_offset, 0));
            appended += b.len() as u64;
            last = info.last_offset;
        }
        log.wait(last, Watermark::Written).await.unwrap();
        assert_eq!(log.read(0, 1 << 20).await.unwrap().to_vec(), expected);
        tx.send((log.write_stats(), appended)).unwrap();
        log.close().await.unwrap();
    });
    rx.recv().expect("the test body ran")
}

#[test]
fn the_in_flight_limit_bounds_the_bytes_in_the_kernel_and_the_group_size_bounds_each_group() {
    let group = 8192;
    let (tight, appended) = write_with(2, Some(group));
    let cap = 2 * WRITE_BYTES as u64;
    // A group is submitted while less than the cap is in flight: at most cap - 1 + one group.
    assert!(
        tight.in_flight_bytes_peak < cap + group as u64,
        "{tight:?}: more than {cap} bytes of writes plus a group in flight"
    );
    assert!(
        tight.in_flight_bytes_peak >= cap,
        "{tight:?}: the flusher stopped short of the cap with everything queued"
    );
    assert!(tight.group_bytes_peak <= group as u64, "{tight:?}");
    assert!(
        tight.groups >= appended / group as u64,
        "{tight:?}: {appended} bytes in groups of at most {group}"
    );

    // A generous limit lets everything queued go at once: the cap above is what held it back.
    let (loose, _) = write_with(64, Some(group));
    assert_eq!(loose.in_flight_bytes_peak, appended, "{loose:?}");
    assert!(loose.in_flight_bytes_peak >= cap + group as u64);
}

#[test]
fn without_a_configured_group_size_a_group_is_four_writes() {
    let (default, _) = write_with(64, None);
    let four_writes = 4 * WRITE_BYTES as u64;
    assert!(default.group_bytes_peak <= four_writes, "{default:?}");
    assert!(
        default.group_bytes_peak > four_writes - 1024,
        "{default:?}: groups fill up to four writes when enough is queued"
    );
    let (big, _) = write_with(64, Some(32 << 10));
    assert!(
        big.group_bytes_peak > four_writes,
        "{big:?}: a configured 32 KiB group is larger than four 4 KiB writes"
    );
}

#[test]
fn out_of_range_limits_are_clamped_not_trusted() {
    let config = LogConfig {
        in_flight_writes_max: 0,
        write_group_bytes_max: Some(1),
        ..LogConfig::default()
    };
    assert_eq!(config.in_flight_bytes_max(), config.write_bytes_max as u64);
    assert_eq!(config.write_group_bytes(), 4096);
    let config = LogConfig {
        in_flight_writes_max: usize::MAX,
        write_group_bytes_max: Some(usize::MAX),
        ..LogConfig::default()
    };
    assert_eq!(
        config.in_flight_bytes_max(),
        256 * config.write_bytes_max as u64
    );
    assert_eq!(config.write_group_bytes(), 64 << 20);
}
