//! Micro-benchmarks of the per-batch CPU work on the append path: the CRC32C of a 64 KiB batch and
//! the full validation of a 64 KiB batch of 1 KiB records. Kept short (a few seconds in all).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::batch::{batch_crc, encode_batch, validate_record_set, Record};

fn batch_64k() -> Vec<u8> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut value = || {
        (0..1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect::<Vec<u8>>()
    };
    let records: Vec<Record> = (0..62)
        .map(|i| Record {
            timestamp: 1_700_000_000_000 + i,
            key: None,
            value: Some(value()),
            headers: Vec::new(),
        })
        .collect();
    encode_batch(&records)
}

fn crc(c: &mut Criterion) {
    let data = vec![0xa5u8; 64 << 10];
    let mut group = c.benchmark_group("crc32c");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("64KiB", |b| {
        b.iter(|| batch_crc(std::hint::black_box(&data)))
    });
    group.finish();
}

fn validate(c: &mut Criterion) {
    let batch = batch_64k();
    assert!(batch.len() <= 64 << 10);
    let mut group = c.benchmark_group("validate_record_set");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("64KiB_of_1KiB_records", |b| {
        b.iter(|| validate_record_set(std::hint::black_box(&batch), 1 << 20).map(|s| s.len()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = crc, validate
}
criterion_main!(benches);
