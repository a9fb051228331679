//! Model-based property test: random appends, reads, waits, rolls (by size and time), retention
//! and reopens (clean, and through the recovery path) against an in-memory model of the log.

mod common;

use common::{batch, in_temp_dir, stamped};
use proptest::prelude::*;
use storage::{Clock, LogConfig, LogError, ManualClock, PartitionLog, Watermark};

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        value_len: usize,
    },
    /// Many appends before waiting once, so several write groups are in flight together.
    Burst {
        batches: usize,
        value_len: usize,
    },
    Read {
        at: f64,
        max_bytes: usize,
    },
    WaitDurable,
    AdvanceClock {
        ms: i64,
    },
    Retention,
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..20, 0usize..2000).prop_map(|(records, value_len)| Op::Append { records, value_len }),
        4 => (0.0f64..1.0, 1usize..40_000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        2 => (2usize..40, 0usize..3000).prop_map(|(batches, value_len)| Op::Burst { batches, value_len }),
        1 => Just(Op::WaitDurable),
        1 => (0i64..40_000).prop_map(|ms| Op::AdvanceClock { ms }),
        1 => Just(Op::Retention),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

/// The model: every batch the log holds, in offset order, as the log must return it.
struct ModelBatch {
    base: u64,
    next: u64,
    bytes: Vec<u8>,
}

fn config(tail_cache_bytes: usize) -> LogConfig {
    LogConfig {
        segment_bytes: 48 << 10,
        segment_ms: 60_000,
        retention_ms: Some(120_000),
        retention_bytes: Some(200 << 10),
        index_interval_bytes: 2048,
        write_bytes_max: 8 << 10,
        tail_cache_bytes,
        ..LogConfig::default()
    }
}

fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    let first_difference = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first_difference.is_none(),
        "{what}: got {} bytes, want {}, first difference at {first_difference:?}",
        got.len(),
        want.len()
    );
}

async fn check_read(log: &PartitionLog, model: &[ModelBatch], at: f64, max_bytes: usize) {
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    if end == start {
        return;
    }
    let offset = start + ((end - start) as f64 * at) as u64;
    let read = log.read(offset.min(end - 1), max_bytes).await.unwrap();
    let first = model
        .iter()
        .position(|b| b.next > offset)
        .expect("offset is in the model");
    let mut expected = Vec::new();
    for (i, b) in model[first..].iter().enumerate() {
        if i >= read.batches.len() {
            break;
        }
        assert_eq!(
            read.batches[i].base_offset as u64, b.base,
            "batch {i} of a read at {offset}"
        );
        expected.extend_from_slice(&b.bytes);
    }
    assert!(
        !read.batches.is_empty(),
        "a read below the LEO returns at least one batch"
    );
    assert_same_bytes(&read.to_vec(), &expected, &format!("a read at {offset}"));
    assert!(
        read.batches.len() == 1 || read.len() <= max_bytes,
        "{} > {max_bytes}",
        read.len()
    );
}

async fn exercise(dir: std::path::PathBuf, ops: Vec<Op>, tail_cache_bytes: usize) {
    let now = ManualClock::new(1_000_000i64);
    let open = |now: ManualClock| {
        PartitionLog::open(dir.clone(), config(tail_cache_bytes), Clock::Manual(now))
    };
    let mut log = open(now.clone()).await.unwrap();
    let mut model: Vec<ModelBatch> = Vec::new();
    let mut tag = 0u64;
    for op in ops {
        match op {
            Op::Append { records, value_len } => {
                tag += 1;
                let bytes = batch(tag, records, value_len, now.get());
                let info = log.append(bytes.clone(), 3).unwrap();
                assert_eq!(
                    info.first_offset,
                    model.last().map_or(log.log_start_offset(), |b| b.next)
                );
                model.push(ModelBatch {
                    base: info.first_offset,
                    next: info.last_offset + 1,
                    bytes: stamped(&bytes, info.first_offset, 3),
                });
                log.wait(info.last_offset, Watermark::Written)
                    .await
                    .unwrap();
            }
            Op::Burst { batches, value_len } => {
                let mut last = None;
                for i in 0..batches {
                    tag += 1;
                    let bytes = batch(tag, 1 + i % 7, value_len, now.get());
                    let info = log.append(bytes.clone(), 3).unwrap();
                    model.push(ModelBatch {
                        base: info.first_offset,
                        next: info.last_offset + 1,
                        bytes: stamped(&bytes, info.first_offset, 3),
                    });
                    last = Some(info.last_offset);
                }
                if let Some(last) = last {
                    log.wait(last, Watermark::Written).await.unwrap();
                }
            }
            Op::Read { at, max_bytes } => check_read(&log, &model, at, max_bytes).await,
            Op::WaitDurable => {
                if let Some(last) = model.last() {
                    log.wait(last.next - 1, Watermark::Durable).await.unwrap();
                    assert!(log.durable_offset() >= last.next);
                }
            }
            Op::AdvanceClock { ms } => now.set(now.get() + ms),
            Op::Retention => {
                let before = log.log_start_offset();
                let outcome = log.apply_retention().unwrap();
                let start = outcome.log_start_offset;
                assert!(start >= before);
                model.retain(|b| b.base >= start);
                if let Some(first) = model.first() {
                    assert_eq!(first.base, start, "the log start is a batch boundary");
                }
                if start > 0 {
                    let err = log.read(start - 1, 100).await.unwrap_err();
                    assert!(matches!(err, LogError::OffsetOutOfRange { .. }), "{err}");
                }
            }
            Op::Reopen { clean } => {
                log.close().await.unwrap();
                if !clean {
                    // Take the recovery path: as if the shutdown had not been clean.
                    std::fs::remove_file(dir.join(".clean_shutdown")).unwrap();
                }
                log = open(now.clone()).await.unwrap();
            }
        }
        let model_end = model.last().map_or(log.log_start_offset(), |b| b.next);
        assert_eq!(log.log_end_offset(), model_end);
        let model_bytes: u64 = model.iter().map(|b| b.bytes.len() as u64).sum();
        assert_eq!(
            log.size_bytes(),
            model_bytes,
            "bytes on disk match the model"
        );
    }
    // Finally every batch, one by one, is exactly the model's.
    for b in &model {
        let read = log.read(b.base, 1).await.unwrap();
        assert_same_bytes(
            &read.to_vec(),
            &b.bytes,
            &format!("the batch at {}", b.base),
        );
    }
    log.close().await.unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_log_behaves_like_its_model(ops in prop::collection::vec(op(), 1..60), cached in any::<bool>()) {
        let tail_cache_bytes = if cached { 64 << 10 } else { 0 };
        in_temp_dir(move |path| exercise(path, ops, tail_cache_bytes));
    }
}

/// Found by the property test: a tail read crossing from one write's buffer into the next must
/// not return the first buffer's page padding.
#[test]
fn tail_reads_do_not_return_the_page_padding_of_an_earlier_write() {
    let ops = vec![
        Op::Append {
            records: 5,
            value_len: 0,
        },
        Op::Append {
            records: 8,
            value_len: 522,
        },
        Op::Append {
            records: 18,
            value_len: 0,
        },
        Op::Append {
            records: 15,
            value_len: 28,
        },
        Op::Append {
            records: 6,
            value_len: 0,
        },
        Op::Append {
            records: 1,
            value_len: 0,
        },
        Op::Read {
            at: 0.0,
            max_bytes: 5220,
        },
    ];
    in_temp_dir(move |path| exercise(path, ops, 64 << 10));
}
