//! Micro-benchmarks of the per-batch CPU work, producer and broker side, on 64 KiB batches of
//! 1 KiB JSON log records (`bench::payload`, compressible as real logs are):
//! - `crc32c/64KiB`: the batch checksum (hardware CRC32C);
//! - `validate_record_set`: the broker's full validation of an uncompressed batch;
//! - `batch_encode/none`: the producer's `BatchBuilder` appending 1 KiB records and building the
//!   batch (varints, header, CRC), uncompressed; `batch_decode/none`: decoding every record back;
//! - `compress/<codec>`: building the same batch with each codec (the compression dominates; the
//!   header and CRC are the `batch_encode/none` figure), throughput in uncompressed bytes;
//! - `decompress/<codec>`: decompressing that batch's records, throughput in uncompressed bytes.
//!
//! Kept short: ~1 s of measurement per function (`cargo bench -p weir-bench --bench batch`).

use std::time::Duration;

use bench::payload::{PayloadPool, PayloadSpec};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kclient::batch::{decode_batch, decompress, BatchBuilder, Compression, ProducerFields};
use wire::batch::{batch_crc, validate_record_set, HEADER_LEN};

const BATCH: usize = 64 << 10;

/// A builder holding as many 1 KiB JSON log records as fit 64 KiB.
fn builder() -> BatchBuilder {
    let pool = PayloadPool::generate(&PayloadSpec::JsonLog, 1024, 42).expect("json payloads");
    let mut b = BatchBuilder::with_capacity(1_700_000_000_000, BATCH);
    let mut i = 0;
    loop {
        let v = &pool.values[i % pool.values.len()];
        if b.size() + BatchBuilder::record_size(None, Some(v), &[]) > BATCH {
            return b;
        }
        b.append(1_700_000_000_000 + i as i64, None, Some(v), &[]);
        i += 1;
    }
}

fn crc(c: &mut Criterion) {
    let data = vec![0xa5u8; BATCH];
    let mut group = c.benchmark_group("crc32c");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("64KiB", |b| {
        b.iter(|| batch_crc(std::hint::black_box(&data)))
    });
    group.finish();
}

fn validate(c: &mut Criterion) {
    let batch = builder()
        .build(Compression::None, None, ProducerFields::NONE)
        .expect("batch");
    assert!(batch.len() <= BATCH);
    let mut group = c.benchmark_group("validate_record_set");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("64KiB_of_1KiB_records", |b| {
        b.iter(|| validate_record_set(std::hint::black_box(&batch), 1 << 20).map(|s| s.len()))
    });
    group.finish();
}

fn encode_decode(c: &mut Criterion) {
    let pool = PayloadPool::generate(&PayloadSpec::JsonLog, 1024, 42).expect("json payloads");
    let full = builder();
    let records = full.records() as usize;
    let bytes = full.size() as u64;
    let mut group = c.benchmark_group("batch_encode");
    group.throughput(Throughput::Bytes(bytes));
    let mut b2 = BatchBuilder::with_capacity(0, BATCH);
    group.bench_function("none", |b| {
        b.iter(|| {
            b2.reset(1_700_000_000_000);
            for i in 0..records {
                let v = &pool.values[i % pool.values.len()];
                b2.append(1_700_000_000_000 + i as i64, None, Some(v), &[]);
            }
            b2.build(Compression::None, None, ProducerFields::NONE)
                .map(|v| v.len())
        })
    });
    group.finish();
    let batch = full
        .build(Compression::None, None, ProducerFields::NONE)
        .expect("batch");
    let mut group = c.benchmark_group("batch_decode");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("none", |b| {
        b.iter(|| decode_batch(std::hint::black_box(&batch)).map(|r| r.len()))
    });
    group.finish();
}

fn codecs(c: &mut Criterion) {
    let full = builder();
    let bytes = full.size() as u64;
    let codecs = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut group = c.benchmark_group("compress");
    group.throughput(Throughput::Bytes(bytes));
    for codec in codecs {
        let out = full
            .build(codec, None, ProducerFields::NONE)
            .expect("batch");
        eprintln!(
            "{codec}: 64 KiB batch of {} 1 KiB JSON records -> {} bytes (ratio {:.2})",
            full.records(),
            out.len(),
            bytes as f64 / out.len() as f64
        );
        group.bench_function(codec.name(), |b| {
            b.iter(|| {
                full.build(codec, None, ProducerFields::NONE)
                    .map(|v| v.len())
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("decompress");
    group.throughput(Throughput::Bytes(bytes));
    for codec in codecs {
        let batch = full
            .build(codec, None, ProducerFields::NONE)
            .expect("batch");
        let body = &batch[HEADER_LEN..];
        group.bench_function(codec.name(), |b| {
            b.iter(|| decompress(codec, std::hint::black_box(body)).map(|v| v.len()))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = crc, validate, encode_decode, codecs
}
criterion_main!(benches);
