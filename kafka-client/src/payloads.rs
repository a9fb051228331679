//! payloads — the producer's fallback record values, for a [`ProducerConfig`] without its own
//! (`weir bench produce|e2e` bring bench's generator; tests and library users may not): JSON-like
//! values, deterministic, [`FALLBACK_POOL_BYTES`] of distinct ones so that no batch holds a value
//! twice and no codec finds repeats real data would not have.
//!
//! Owns generating that pool. Must not know about batches, codecs or the producer's loop.
//!
//! [`ProducerConfig`]: crate::producer::ProducerConfig

/// Bytes of the fallback pool: more than any batch (max.request.size is 1 MiB by default), so
/// no batch holds a value twice (`bench::payload::POOL_BYTES` is the same, for the same reason).
pub const FALLBACK_POOL_BYTES: usize = 16 << 20;

/// JSON-like record values (compressible as real events are), [`FALLBACK_POOL_BYTES`] of them
/// (64 to 65536 values) to cycle through.
pub fn fallback(size: usize) -> Vec<Vec<u8>> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    (0..(FALLBACK_POOL_BYTES / size.max(1)).clamp(64, 1 << 16))
        .map(|i| {
            let mut v = Vec::with_capacity(size + 64);
            while v.len() < size {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                v.extend_from_slice(
                    format!(
                        "{{\"id\":{},\"user\":\"u{}\",\"score\":{},\"kind\":\"event-{}\"}},",
                        seed % 1_000_000,
                        seed % 5_000,
                        (seed >> 20) % 100_000,
                        i % 7
                    )
                    .as_bytes(),
                );
            }
            v.truncate(size);
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchBuilder, Compression, ProducerFields};

    #[test]
    fn payloads_have_the_record_size_and_compress_like_text() {
        let p = fallback(1024);
        assert_eq!(p.len(), FALLBACK_POOL_BYTES / 1024);
        assert!(p.iter().all(|v| v.len() == 1024));
        let mut b = BatchBuilder::new(0);
        for v in p.iter().take(1024) {
            b.append(0, None, Some(v), &[]);
        }
        let lz4 = b
            .build(Compression::Lz4, None, ProducerFields::NONE)
            .unwrap();
        assert!(
            b.size() > lz4.len() * 3 / 2,
            "{} vs {}",
            b.size(),
            lz4.len()
        );
    }
}
