//! partitioner — Kafka's default producer partitioner: murmur2 of the key for keyed records,
//! sticky partitioning (KIP-480) for records without a key.
//!
//! Owns the choice of a partition for one record. Must not do I/O or know about batches beyond
//! being told, through [`Partitioner::on_new_batch`], that the sticky partition's batch was closed.
//! The hash must stay bit-for-bit Kafka's `Utils.murmur2`: a keyed record has to land where the Java
//! client (and librdkafka's `murmur2_random`) would put it.

/// Kafka's `Utils.murmur2`: MurmurHash2, 32-bit, seed `0x9747b28c`, little-endian 4-byte words,
/// returned as Java's signed `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // Java's switch falls through: 3 → 2 → 1, each byte sign-masked with 0xff.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which fails on `i32::MIN`).
pub fn to_positive(n: i32) -> u32 {
    (n & 0x7fff_ffff) as u32
}

/// The partition Kafka's default partitioner gives a keyed record:
/// `toPositive(murmur2(key)) % numPartitions`. `partitions` must be at least 1.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    to_positive(murmur2(key)) % partitions.max(1)
}

/// The default partitioner of one topic: keyed records by [`partition_for_key`], null-key records
/// to a sticky partition that changes only when its batch is closed (KIP-480), so null-key traffic
/// fills whole batches instead of spraying one record per partition.
#[derive(Debug, Clone)]
pub struct Partitioner {
    partitions: u32,
    sticky: Option<u32>,
    rng: u64,
}

impl Partitioner {
    /// A partitioner over `partitions` partitions (at least 1); `seed` drives the sticky choice.
    pub fn new(partitions: u32, seed: u64) -> Partitioner {
        Partitioner {
            partitions: partitions.max(1),
            sticky: None,
            // xorshift64 must not start at 0.
            rng: seed | 1,
        }
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The partition of a record with this key (`None`: a null key).
    pub fn partition(&mut self, key: Option<&[u8]>) -> u32 {
        match key {
            Some(key) => partition_for_key(key, self.partitions),
            None => match self.sticky {
                Some(p) => p,
                None => {
                    let p = self.random_other(None);
                    self.sticky = Some(p);
                    p
                }
            },
        }
    }

    /// The producer closed the batch of `partition` and starts a new one. If that was the sticky
    /// partition, null-key records move to another one (chosen at random, never the same when
    /// there are two or more), as Kafka's `StickyPartitionCache.nextPartition`.
    pub fn on_new_batch(&mut self, partition: u32) {
        if self.sticky == Some(partition) {
            self.sticky = Some(self.random_other(Some(partition)));
        }
    }

    /// The current sticky partition, if a null-key record has been placed.
    pub fn sticky(&self) -> Option<u32> {
        self.sticky
    }

    fn random_other(&mut self, previous: Option<u32>) -> u32 {
        let n = self.partitions;
        match previous {
            Some(prev) if n > 1 => {
                // Uniform over the n - 1 other partitions.
                let pick = (self.next_random() % u64::from(n - 1)) as u32;
                if pick >= prev {
                    pick + 1
                } else {
                    pick
                }
            }
            _ => (self.next_random() % u64::from(n)) as u32,
        }
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `UtilsTest.testMurmur2` vectors (clients/src/test/java/org/apache/kafka/common/
    /// utils/UtilsTest.java).
    const KAFKA_VECTORS: &[(&[u8], i32)] = &[
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
    ];

    #[test]
    fn murmur2_matches_kafkas_test_vectors() {
        for &(input, expected) in KAFKA_VECTORS {
            assert_eq!(
                murmur2(input),
                expected,
                "murmur2({:?})",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn keyed_partition_is_to_positive_hash_modulo_partitions() {
        // toPositive(-790332482) = 1357151166; % 10 = 6, % 50 = 16.
        assert_eq!(to_positive(-790_332_482), 1_357_151_166);
        assert_eq!(partition_for_key(b"foobar", 10), 6);
        assert_eq!(partition_for_key(b"foobar", 50), 16);
        // toPositive clears the sign bit; it is not abs().
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), 0x7fff_ffff);
        let mut p = Partitioner::new(50, 7);
        assert_eq!(p.partition(Some(b"foobar")), 16);
        // Keyed records never move the sticky partition.
        assert_eq!(p.sticky(), None);
    }

    #[test]
    fn null_keys_stick_until_the_batch_is_closed_then_move() {
        let mut p = Partitioner::new(8, 42);
        let first = p.partition(None);
        for _ in 0..100 {
            assert_eq!(p.partition(None), first, "null keys must stick");
        }
        // Closing another partition's batch does not move it.
        p.on_new_batch((first + 1) % 8);
        assert_eq!(p.partition(None), first);
        let mut seen = std::collections::HashSet::new();
        let mut prev = first;
        for _ in 0..200 {
            p.on_new_batch(prev);
            let next = p.partition(None);
            assert_ne!(next, prev, "a closed batch moves the sticky partition");
            assert!(next < 8);
            seen.insert(next);
            prev = next;
        }
        assert_eq!(seen.len(), 8, "every partition is chosen eventually");
    }

    #[test]
    fn one_partition_always_gets_partition_zero() {
        let mut p = Partitioner::new(1, 3);
        assert_eq!(p.partition(None), 0);
        p.on_new_batch(0);
        assert_eq!(p.partition(None), 0);
        assert_eq!(p.partition(Some(b"k")), 0);
    }
}
