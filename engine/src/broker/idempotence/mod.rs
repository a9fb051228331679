//! The idempotent producer: InitProducerId hands out producer ids (blocks of ids reserved in the
//! coordinator, so ids are unique across shards, brokers and restarts), and each partition keeps,
//! per producer id, the epoch and the last five batches' sequence ranges so a retried batch is
//! answered with its original offsets instead of being appended twice, and a gap is refused.
//!
//! Owns the sequence rules (Kafka's, see [`ProducerTable::check`]), the producer table's
//! durability and its bound:
//! - **Snapshots** beside the segments, `<offset>.snapshot` (20 digits, like a segment): the table
//!   as of that offset, checksummed, written through a temporary file, fdatasync, rename and
//!   directory fsync. One is cut at each roll (at the new segment's base offset, below which the
//!   log is sealed and durable, so a kill -9 can never leave a snapshot ahead of the log) and one
//!   at clean close (at the log end). Older ones are then removed.
//! - **Rebuild at open** ([`ProducerTable::load`]): the newest readable snapshot at or below the
//!   log end, then a replay of every batch header after it (`PartitionLog::for_each_batch_header`)
//!   — about one segment after a crash, nothing after a clean close. Without a snapshot the whole
//!   log is replayed.
//! - **Expiration** (producer.id.expiration.ms, Kafka's default one day): a producer whose last
//!   batch's max timestamp is that old is dropped at open and at every retention check; it may
//!   then start again at any sequence, as in Kafka since KIP-360. So is one whose last batch fell
//!   below the log start (retention), as Kafka does.
//!
//! Must not: append or wait (the Produce handler does both), or run anywhere but the partition's
//! owning shard. Transactions are not supported (InitProducerId with a transactional id answers
//! COORDINATOR_NOT_AVAILABLE).
//!
//! Layout: the InitProducerId handler is in `init_producer_id`; this file holds the producer
//! table, its snapshots and the producer-id blocks.

mod init_producer_id;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{store, Broker};
use storage::error::LogError;
use storage::log::PartitionLog;
use wire::batch::BatchHeader;
use wire::error_code as ec;

/// Batches remembered per producer (Kafka's max.in.flight limit for idempotence).
const RECENT_BATCHES_MAX: usize = 5;

/// Kafka's producer.id.expiration.ms default (one day).
pub const PRODUCER_ID_EXPIRATION_MS: u64 = 86_400_000;

const SNAPSHOT_SUFFIX: &str = ".snapshot";

const SNAPSHOT_MAGIC: &[u8; 4] = b"WPSS";

const SNAPSHOT_VERSION: u16 = 1;

/// Bytes read per step when replaying the log's tail.
const REPLAY_CHUNK_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    first_seq: i32,
    last_seq: i32,
    first_offset: u64,
    last_offset: u64,
    /// The batch's max timestamp: the producer's last one is what expiration compares.
    max_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Producer {
    epoch: i16,
    recent: VecDeque<Seen>,
}

/// What to do with an idempotent batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// Not seen: append it.
    Append,
    /// Already appended: answer with these offsets (after waiting for their watermark).
    Duplicate { first_offset: u64, last_offset: u64 },
    /// Refuse with this Kafka code.
    Refuse(i16),
}

/// A producer-state snapshot file that cannot be used (the table is then rebuilt from an older
/// snapshot or from the log start).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("producer-state snapshot {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

fn last_seq(h: &BatchHeader) -> i32 {
    ((i64::from(h.base_sequence) + i64::from(h.last_offset_delta)) % (i64::from(i32::MAX) + 1))
        as i32
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// One partition's producers, and the offset of its newest snapshot.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ProducerTable {
    producers: HashMap<i64, Producer>,
    /// The table as of this offset is in a snapshot file (0: none).
    snapshot_offset: u64,
}

impl ProducerTable {
    /// Kafka's rules (`ProducerStateManager` / `LogValidator`, 2.5 and later):
    /// - a negative base sequence from an idempotent producer is INVALID_RECORD;
    /// - an unknown producer (never seen, expired, or its batches removed by retention) may start
    ///   at any sequence (KIP-360: the broker no longer answers UNKNOWN_PRODUCER_ID);
    /// - an epoch older than the producer's is INVALID_PRODUCER_EPOCH (Kafka answers it since 2.7,
    ///   instead of PRODUCER_FENCED, whatever the Produce version);
    /// - a newer epoch must start at sequence 0, else OUT_OF_ORDER_SEQUENCE_NUMBER;
    /// - same epoch: one of the last five batches again (same first and last sequence) is a
    ///   duplicate; otherwise it must start at last sequence + 1 (wrapping after i32::MAX), else
    ///   OUT_OF_ORDER_SEQUENCE_NUMBER.
    pub(super) fn check(&self, h: &BatchHeader) -> Check {
        if h.base_sequence < 0 {
            return Check::Refuse(ec::INVALID_RECORD);
        }
        let Some(p) = self.producers.get(&h.producer_id) else {
            return Check::Append;
        };
        if h.producer_epoch < p.epoch {
            return Check::Refuse(ec::INVALID_PRODUCER_EPOCH);
        }
        if h.producer_epoch > p.epoch {
            return if h.base_sequence == 0 {
                Check::Append
            } else {
                Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        let last = last_seq(h);
        if let Some(s) = p
            .recent
            .iter()
            .find(|s| s.first_seq == h.base_sequence && s.last_seq == last)
        {
            return Check::Duplicate {
                first_offset: s.first_offset,
                last_offset: s.last_offset,
            };
        }
        match p.recent.back() {
            Some(prev) if h.base_sequence != next_seq(prev.last_seq) => {
                Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
            }
            _ => Check::Append,
        }
    }

    pub(super) fn record(&mut self, h: &BatchHeader, first_offset: u64, last_offset: u64) {
        let p = self.producers.entry(h.producer_id).or_insert(Producer {
            epoch: h.producer_epoch,
            recent: VecDeque::new(),
        });
        if h.producer_epoch < p.epoch {
            // Only a replay can meet one (the live path fences it first): keep the newer epoch.
            return;
        }
        if h.producer_epoch > p.epoch {
            p.epoch = h.producer_epoch;
            p.recent.clear();
        }
        p.recent.push_back(Seen {
            first_seq: h.base_sequence,
            last_seq: last_seq(h),
            first_offset,
            last_offset,
            max_timestamp: h.max_timestamp,
        });
        while p.recent.len() > RECENT_BATCHES_MAX {
            p.recent.pop_front();
        }
    }

    /// Replays one batch of the log (base offset as stored): idempotent batches update the table.
    pub(super) fn replay(&mut self, h: &BatchHeader) {
        if h.producer_id >= 0 && h.base_sequence >= 0 && h.base_offset >= 0 {
            let first = h.base_offset as u64;
            self.record(h, first, first + h.last_offset_delta.max(0) as u64);
        }
    }

    /// Drops producers whose last batch's timestamp is `expiration_ms` or more before `now_ms`
    /// (Kafka's producer.id.expiration.ms); returns how many.
    pub(super) fn expire(&mut self, now_ms: i64, expiration_ms: u64) -> usize {
        let limit = now_ms.saturating_sub(i64::try_from(expiration_ms).unwrap_or(i64::MAX));
        self.retain_by_last_batch(|last| last.max_timestamp > limit)
    }

    /// Drops producers whose last batch lies below the log start (retention deleted it), as
    /// Kafka does: such a producer is unknown again and may start at any sequence.
    pub(super) fn evict_before(&mut self, log_start: u64) -> usize {
        self.retain_by_last_batch(|last| last.last_offset >= log_start)
    }

    /// Keeps the producers whose last batch passes `keep` (one with none is dropped); returns
    /// how many were dropped.
    fn retain_by_last_batch(&mut self, keep: impl Fn(&Seen) -> bool) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, p| p.recent.back().is_some_and(&keep));
        before - self.producers.len()
    }

    pub(super) fn len(&self) -> usize {
        self.producers.len()
    }

    /// The table as it was when the log ended at `offset`, encoded: only batches below `offset`
    /// (producers with none left are omitted; a replay from `offset` brings them back).
    ///
    /// Format (big-endian): magic `WPSS`, version u16, offset u64, producer count u32; per
    /// producer: id i64, epoch i16, batch count u8, and per batch first sequence i32, last
    /// sequence i32, first offset u64, last offset u64, max timestamp i64; then the CRC32C of
    /// everything before it, u32.
    pub(super) fn encode_snapshot(&self, offset: u64) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&offset.to_be_bytes());
        let count_at = out.len();
        out.extend_from_slice(&0u32.to_be_bytes());
        let mut count = 0u32;
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let p = &self.producers[id];
            let kept: Vec<&Seen> = p.recent.iter().filter(|s| s.last_offset < offset).collect();
            if kept.is_empty() {
                continue;
            }
            count += 1;
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&p.epoch.to_be_bytes());
            out.push(kept.len() as u8);
            for s in kept {
                out.extend_from_slice(&s.first_seq.to_be_bytes());
                out.extend_from_slice(&s.last_seq.to_be_bytes());
                out.extend_from_slice(&s.first_offset.to_be_bytes());
                out.extend_from_slice(&s.last_offset.to_be_bytes());
                out.extend_from_slice(&s.max_timestamp.to_be_bytes());
            }
        }
        out[count_at..count_at + 4].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes a snapshot written by [`Self::encode_snapshot`]: the table and its offset.
    pub(super) fn decode_snapshot(
        bytes: &[u8],
        path: &Path,
    ) -> Result<(u64, ProducerTable), SnapshotError> {
        let corrupt = |reason: &str| SnapshotError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let Some((body, crc)) = bytes.split_last_chunk::<4>() else {
            return Err(corrupt("shorter than its checksum"));
        };
        if crc32c::crc32c(body) != u32::from_be_bytes(*crc) {
            return Err(corrupt("checksum mismatch"));
        }
        let mut r = Reader(body);
        if r.take::<4>() != Some(*SNAPSHOT_MAGIC) {
            return Err(corrupt("bad magic"));
        }
        let version = r.take::<2>().map(u16::from_be_bytes);
        if version != Some(SNAPSHOT_VERSION) {
            return Err(corrupt(&format!("unknown version {version:?}")));
        }
        let truncated = || corrupt("truncated");
        let offset = r
            .take::<8>()
            .map(u64::from_be_bytes)
            .ok_or_else(truncated)?;
        let count = r
            .take::<4>()
            .map(u32::from_be_bytes)
            .ok_or_else(truncated)?;
        let mut table = ProducerTable {
            producers: HashMap::new(),
            snapshot_offset: offset,
        };
        for _ in 0..count {
            let id = r
                .take::<8>()
                .map(i64::from_be_bytes)
                .ok_or_else(truncated)?;
            let epoch = r
                .take::<2>()
                .map(i16::from_be_bytes)
                .ok_or_else(truncated)?;
            let [n] = r.take::<1>().ok_or_else(truncated)?;
            if usize::from(n) > RECENT_BATCHES_MAX {
                return Err(corrupt("more batches than a producer keeps"));
            }
            let mut recent = VecDeque::with_capacity(usize::from(n));
            for _ in 0..n {
                recent.push_back(Seen {
                    first_seq: r
                        .take::<4>()
                        .map(i32::from_be_bytes)
                        .ok_or_else(truncated)?,
                    last_seq: r
                        .take::<4>()
                        .map(i32::from_be_bytes)
                        .ok_or_else(truncated)?,
                    first_offset: r
                        .take::<8>()
                        .map(u64::from_be_bytes)
                        .ok_or_else(truncated)?,
                    last_offset: r
                        .take::<8>()
                        .map(u64::from_be_bytes)
                        .ok_or_else(truncated)?,
                    max_timestamp: r
                        .take::<8>()
                        .map(i64::from_be_bytes)
                        .ok_or_else(truncated)?,
                });
            }
            table.producers.insert(id, Producer { epoch, recent });
        }
        if !r.0.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok((offset, table))
    }

    /// A snapshot to write if the log has rolled since the last one: the table as of the newest
    /// segment's base offset (everything below it is sealed, so durable — a kill -9 cannot take
    /// back what the snapshot says). The caller writes it with [`write_snapshot`].
    pub(super) fn snapshot_due(&mut self, active_segment_base: u64) -> Option<(u64, Vec<u8>)> {
        if active_segment_base <= self.snapshot_offset {
            return None;
        }
        self.snapshot_offset = active_segment_base;
        Some((
            active_segment_base,
            self.encode_snapshot(active_segment_base),
        ))
    }

    /// Rebuilds a partition's table when its log opens: the newest usable snapshot at or below
    /// the log end, then every batch after it (from the log start if there is none), then
    /// expiration. Bounded: snapshots are written at each roll, so the replay reads about the
    /// active segment.
    pub(super) async fn load(
        log: &PartitionLog,
        now_ms: i64,
        expiration_ms: u64,
    ) -> Result<(ProducerTable, Loaded), LogError> {
        let dir = log.dir();
        let log_end = log.log_end_offset();
        let mut snapshots = list_snapshots(dir)?;
        snapshots.sort_unstable_by(|a, b| b.cmp(a));
        let mut table = ProducerTable::default();
        let mut from = 0;
        for offset in snapshots {
            if offset > log_end {
                // The log lost data the snapshot describes (a truncated tail): useless.
                continue;
            }
            let path = dir.join(snapshot_name(offset));
            let decoded = std::fs::read(&path)
                .map_err(|e| SnapshotError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })
                .and_then(|bytes| ProducerTable::decode_snapshot(&bytes, &path));
            match decoded {
                Ok((at, t)) if at == offset => {
                    table = t;
                    from = offset;
                    break;
                }
                Ok(_) => {
                    tracing::warn!(path = %path.display(), "snapshot offset disagrees with its name")
                }
                Err(e) => tracing::warn!("{e}; trying an older one"),
            }
        }
        let mut replayed = 0u64;
        log.for_each_batch_header(from, REPLAY_CHUNK_BYTES, |h| {
            replayed += 1;
            table.replay(h);
        })
        .await?;
        let expired =
            table.expire(now_ms, expiration_ms) + table.evict_before(log.log_start_offset());
        Ok((
            table,
            Loaded {
                snapshot_offset: from,
                replayed_batches: replayed,
                expired,
            },
        ))
    }
}

/// How a table was rebuilt (for the open log line).
#[derive(Debug, Clone, Copy)]
pub(super) struct Loaded {
    pub snapshot_offset: u64,
    pub replayed_batches: u64,
    pub expired: usize,
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

#[cfg(test)] // the tests' batch timestamps (the broker reads `BrokerConfig::clock`)
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn snapshot_name(offset: u64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

/// Offsets of the snapshot files in a partition directory.
fn list_snapshots(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io("listing", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("listing", dir, e))?;
        let name = entry.file_name();
        if let Some(offset) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SNAPSHOT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(offset);
        }
    }
    Ok(out)
}

/// Writes a snapshot durably (temporary file, fdatasync, rename, directory fsync), then removes
/// older snapshots.
pub(super) async fn write_snapshot(dir: &Path, offset: u64, bytes: &[u8]) -> Result<(), LogError> {
    storage::durable::write_file_durably(dir, &snapshot_name(offset), bytes).await?;
    for older in list_snapshots(dir)?.into_iter().filter(|&o| o < offset) {
        let path = dir.join(snapshot_name(older));
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::debug!(path = %path.display(), "removing an old snapshot: {e}");
        }
    }
    Ok(())
}

impl Broker {
    /// A fresh producer id: from this shard's block, reserving a new block when it runs out.
    async fn next_producer_id(self: &Rc<Self>) -> Result<i64, store::StoreError> {
        {
            let mut ids = self.producer_ids.borrow_mut();
            if ids.start < ids.end {
                let id = ids.start;
                ids.start += 1;
                return Ok(id);
            }
        }
        let block = store::reserve_producer_ids(&self.coord).await?;
        let mut ids = self.producer_ids.borrow_mut();
        *ids = block;
        let id = ids.start;
        ids.start += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: records,
        }
    }

    #[test]
    fn retries_are_duplicates_gaps_are_refused_and_old_epochs_fenced() {
        let mut t = ProducerTable::default();
        let a = header(7, 0, 0, 3);
        assert_eq!(t.check(&a), Check::Append);
        t.record(&a, 10, 12);
        assert_eq!(
            t.check(&a),
            Check::Duplicate {
                first_offset: 10,
                last_offset: 12
            }
        );
        let gap = header(7, 0, 5, 1);
        assert_eq!(
            t.check(&gap),
            Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        let next = header(7, 0, 3, 2);
        assert_eq!(t.check(&next), Check::Append);
        t.record(&next, 13, 14);
        // A new epoch must start at 0.
        assert_eq!(
            t.check(&header(7, 1, 5, 1)),
            Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        let bumped = header(7, 1, 0, 1);
        assert_eq!(t.check(&bumped), Check::Append);
        t.record(&bumped, 15, 15);
        assert_eq!(t.check(&a), Check::Refuse(ec::INVALID_PRODUCER_EPOCH));
        // Sequences wrap after i32::MAX.
        let mut t = ProducerTable::default();
        let top = header(9, 0, i32::MAX - 1, 2);
        t.record(&top, 0, 1);
        assert_eq!(t.check(&header(9, 0, 0, 1)), Check::Append);
    }

    #[test]
    fn kafka_sequence_rules_for_unknown_producers_old_batches_and_bad_sequences() {
        let mut t = ProducerTable::default();
        // An unknown producer may start anywhere (expired, or removed by retention: KIP-360).
        let late = header(3, 2, 1000, 2);
        assert_eq!(t.check(&late), Check::Append);
        t.record(&late, 0, 1);
        // A negative sequence is an invalid record.
        assert_eq!(
            t.check(&header(3, 2, -1, 1)),
            Check::Refuse(ec::INVALID_RECORD)
        );
        // Same first sequence but a different length is not a duplicate: out of order.
        assert_eq!(
            t.check(&header(3, 2, 1000, 1)),
            Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        // Six batches: the first falls out of the window and is then out of order, not a
        // duplicate; the last five are duplicates with their offsets.
        let mut offset = 2;
        let mut seq = 1002;
        for _ in 0..6 {
            let h = header(3, 2, seq, 3);
            assert_eq!(t.check(&h), Check::Append);
            t.record(&h, offset, offset + 2);
            offset += 3;
            seq += 3;
        }
        assert_eq!(
            t.check(&header(3, 2, 1002, 3)),
            Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(
            t.check(&header(3, 2, 1005, 3)),
            Check::Duplicate {
                first_offset: 5,
                last_offset: 7
            }
        );
        // An older epoch is fenced even with the right sequence.
        assert_eq!(
            t.check(&header(3, 1, seq, 1)),
            Check::Refuse(ec::INVALID_PRODUCER_EPOCH)
        );
        // Wrap: a batch that crosses i32::MAX ends at a small sequence; the next starts after it.
        let mut t = ProducerTable::default();
        let across = header(4, 0, i32::MAX - 1, 4);
        t.record(&across, 0, 3);
        assert_eq!(
            t.check(&header(4, 0, i32::MAX - 1, 4)),
            Check::Duplicate {
                first_offset: 0,
                last_offset: 3
            }
        );
        assert_eq!(t.check(&header(4, 0, 2, 1)), Check::Append);
        assert_eq!(
            t.check(&header(4, 0, 3, 1)),
            Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
    }

    #[test]
    fn snapshots_round_trip_keep_only_batches_below_their_offset_and_detect_damage() {
        let mut t = ProducerTable::default();
        for (i, pid) in [5i64, 6, 7].iter().enumerate() {
            for b in 0..7u64 {
                let mut h = header(*pid, 1, (b * 2) as i32, 2);
                h.max_timestamp = 1_000 + b as i64;
                let first = 100 * i as u64 + b * 2;
                t.record(&h, first, first + 1);
            }
        }
        let path = Path::new("x.snapshot");
        let full = t.encode_snapshot(1_000);
        let (offset, back) = ProducerTable::decode_snapshot(&full, path).expect("decodes");
        assert_eq!(offset, 1_000);
        assert_eq!(back.producers, t.producers);
        assert_eq!(back.snapshot_offset, 1_000);
        // As of offset 110: producer 5 (offsets 4..13) keeps its first four batches in the
        // window, producer 6 (offsets 104..113) keeps 104..109, producer 7 (204..) is omitted.
        let (_, cut) =
            ProducerTable::decode_snapshot(&t.encode_snapshot(110), path).expect("decodes");
        assert_eq!(cut.producers[&5], t.producers[&5]);
        let six: Vec<u64> = cut.producers[&6]
            .recent
            .iter()
            .map(|s| s.first_offset)
            .collect();
        assert_eq!(six, vec![104, 106, 108]);
        assert!(!cut.producers.contains_key(&7));
        // Any flipped byte or truncation is refused.
        for at in [0, 5, 20, full.len() - 1] {
            let mut bad = full.clone();
            bad[at] ^= 1;
            assert!(
                ProducerTable::decode_snapshot(&bad, path).is_err(),
                "byte {at}"
            );
        }
        assert!(ProducerTable::decode_snapshot(&full[..full.len() - 3], path).is_err());
        assert!(ProducerTable::decode_snapshot(&[], path).is_err());
        // Expiration: last timestamps are 1006; an hour of expiration at 1006 + 1h drops all.
        let mut e = back;
        assert_eq!(e.expire(1_006 + 3_600_000 - 1, 3_600_000), 0);
        assert_eq!(e.expire(1_006 + 3_600_000, 3_600_000), 3);
        assert_eq!(e.len(), 0);
        // Retention: producers whose last batch is below the log start are dropped.
        let (_, mut r) = ProducerTable::decode_snapshot(&full, path).expect("decodes");
        assert_eq!(r.evict_before(113), 1, "producer 5 ends at 13");
        assert_eq!(r.evict_before(114), 1, "producer 6 ends at 113");
        assert_eq!(r.len(), 1);
    }

    /// An idempotent batch of `records` records, as a producer sends it.
    fn idempotent_batch(pid: i64, epoch: i16, seq: i32, records: usize) -> bytes::Bytes {
        use wire::batch::{encode_batch, reseal, Record};
        let records: Vec<Record> = (0..records)
            .map(|i| Record {
                timestamp: now_ms() + i as i64,
                key: Some(format!("k{i}").into_bytes()),
                value: Some(vec![7u8; 300]),
                headers: Vec::new(),
            })
            .collect();
        let mut b = encode_batch(&records);
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&epoch.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        reseal(&mut b);
        bytes::Bytes::from(b)
    }

    #[test]
    fn the_table_is_rebuilt_after_a_crash_from_the_snapshot_and_the_log_tail() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .spawn(move || async move {
                let config = storage::LogConfig {
                    segment_bytes: 16 << 10,
                    ..storage::LogConfig::default()
                };
                let clock = storage::Clock::System;
                let log = PartitionLog::open(&path, config.clone(), clock.clone())
                    .await
                    .expect("open");
                let mut live = ProducerTable::default();
                let mut seqs = [0i32; 3];
                let mut snapshots = 0;
                for i in 0..60usize {
                    let p = i % 3;
                    let epoch = if p == 2 && i >= 30 { 1 } else { 0 };
                    if p == 2 && i == 32 {
                        seqs[2] = 0;
                    }
                    let b = idempotent_batch(p as i64, epoch, seqs[p], 2);
                    let h = wire::batch::idempotent_header(&b)
                        .expect("valid")
                        .expect("idempotent");
                    assert_eq!(live.check(&h), Check::Append, "batch {i}");
                    let info = log.append(b, 0).expect("append");
                    log.wait(info.last_offset, storage::Watermark::Durable)
                        .await
                        .expect("durable");
                    live.record(&h, info.first_offset, info.last_offset);
                    seqs[p] += 2;
                    if let Some((offset, bytes)) = live.snapshot_due(log.active_segment_base()) {
                        write_snapshot(log.dir(), offset, &bytes)
                            .await
                            .expect("snapshot");
                        snapshots += 1;
                    }
                }
                assert!(snapshots >= 2, "{snapshots} snapshots");
                let at = list_snapshots(&path).expect("list");
                assert_eq!(at.len(), 1, "older snapshots are removed: {at:?}");
                // kill -9: no close, no clean-shutdown marker.
                drop(log);
                let log = PartitionLog::open(&path, config.clone(), clock.clone())
                    .await
                    .expect("reopen");
                let (mut rebuilt, loaded) =
                    ProducerTable::load(&log, now_ms(), PRODUCER_ID_EXPIRATION_MS)
                        .await
                        .expect("load");
                assert_eq!(loaded.snapshot_offset, at[0]);
                assert!(loaded.replayed_batches > 0 && loaded.replayed_batches < 60);
                assert_eq!(rebuilt.producers, live.producers);
                // A retry after the restart is a duplicate with its original offsets.
                let retry = idempotent_batch(0, 0, seqs[0] - 2, 2);
                let h = wire::batch::idempotent_header(&retry)
                    .expect("valid")
                    .expect("idempotent");
                assert!(matches!(rebuilt.check(&h), Check::Duplicate { .. }));

                // Without any snapshot, a full replay gives the same table; a damaged snapshot
                // is passed over.
                std::fs::write(path.join(snapshot_name(at[0])), b"garbage").expect("damage");
                let (full, loaded) = ProducerTable::load(&log, now_ms(), PRODUCER_ID_EXPIRATION_MS)
                    .await
                    .expect("load");
                assert_eq!(loaded.snapshot_offset, 0);
                assert_eq!(loaded.replayed_batches, 60);
                assert_eq!(full.producers, live.producers);
                // Expired at load: every producer's last batch is older than 0 ms ago... after 1 ms.
                let (none, loaded) = ProducerTable::load(&log, now_ms() + 60_000, 1)
                    .await
                    .expect("load");
                assert_eq!((none.len(), loaded.expired), (0, 3));
                rebuilt.expire(now_ms(), PRODUCER_ID_EXPIRATION_MS);
                assert_eq!(rebuilt.len(), 3);
                log.close().await.expect("close");
            })
            .expect("spawn executor")
            .join()
            .expect("executor panicked");
    }
}
