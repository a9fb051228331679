//! What a compaction pass keeps of one batch: the offset map's rule, tombstones, producers' last
//! batches, control batches, and rebuilding a batch (re-compressed with its codec) from the kept
//! records.
//!
//! Owns the per-batch decision and the rebuilt bytes. Must not do I/O or choose segments.

use std::borrow::Cow;
use std::collections::HashMap;

use wire::batch::{self, BatchHeader, HEADER_LEN};
use wire::codec::{self, Codec};

use crate::error::{LogError, Result};

use super::DECOMPRESSED_BATCH_MAX;

/// What a pass keeps.
pub(super) struct Rules<'a> {
    pub(super) map: &'a HashMap<Vec<u8>, u64>,
    pub(super) producer_last: &'a HashMap<i64, u64>,
    pub(super) keep_tombstones: bool,
    /// Tombstones with a timestamp below this are removed.
    pub(super) horizon: i64,
    pub(super) delete_retention_ms: i64,
}

pub(super) enum Kept {
    All,
    Nothing,
    Some(Vec<u8>),
}

impl Rules<'_> {
    /// Which records of one batch stay: (what to write, records removed, when the oldest kept
    /// tombstone becomes removable).
    pub(super) fn filter(
        &self,
        bytes: &[u8],
        header: &BatchHeader,
    ) -> Result<(Kept, u64, Option<i64>)> {
        let whole = header.is_control()
            || (header.producer_id >= 0
                && self.producer_last.get(&header.producer_id)
                    == Some(&(header.base_offset as u64)));
        if whole {
            return Ok((Kept::All, 0, None));
        }
        let plain = plain_records(bytes, header);
        let Some(records) = plain
            .as_deref()
            .and_then(|p| batch::records_in(p, header.records_count))
        else {
            // Unreadable: kept whole, and the map pass flagged the log `opaque`.
            return Ok((Kept::All, 0, None));
        };
        let timestamp_of = |r: &batch::RecordView<'_>| {
            if header.is_log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp + r.timestamp_delta
            }
        };
        let mut due: Option<i64> = None;
        let total = records.len();
        let kept: Vec<_> = records
            .into_iter()
            .filter(|r| {
                let Some(key) = r.key else { return false };
                let offset = header.base_offset as u64 + r.offset_delta as u64;
                if self.map.get(key).is_some_and(|&latest| offset < latest) {
                    return false;
                }
                if r.value.is_none() {
                    let timestamp = timestamp_of(r);
                    if !self.keep_tombstones && timestamp < self.horizon {
                        return false;
                    }
                    if !self.keep_tombstones {
                        let at = timestamp.saturating_add(self.delete_retention_ms);
                        due = Some(due.map_or(at, |d| d.min(at)));
                    }
                }
                true
            })
            .collect();
        let removed = (total - kept.len()) as u64;
        let out = if kept.len() == total {
            Kept::All
        } else if kept.is_empty() {
            Kept::Nothing
        } else {
            // Kafka's rebuilt batch: the same codec (at its default level), and a max timestamp
            // over the kept records (the log append time stays for LOG_APPEND_TIME batches).
            let plain: Vec<u8> = kept.iter().flat_map(|r| r.raw.iter().copied()).collect();
            let codec_error = |source| LogError::Codec {
                offset: header.base_offset as u64,
                source,
            };
            let codec = Codec::from_id(header.compression()).map_err(codec_error)?;
            let records = codec::compress(codec, None, &plain).map_err(codec_error)?;
            let max_timestamp = kept.iter().map(timestamp_of).max().unwrap_or(-1);
            Kept::Some(batch::rebuilt(
                bytes,
                &records,
                kept.len() as i32,
                max_timestamp,
            ))
        };
        Ok((out, removed, due))
    }
}

/// The records part of one whole batch as plain bytes: borrowed if uncompressed, decompressed
/// (at most [`DECOMPRESSED_BATCH_MAX`]) otherwise; `None`, with a warning, if it cannot be read.
pub(super) fn plain_records<'a>(bytes: &'a [u8], header: &BatchHeader) -> Option<Cow<'a, [u8]>> {
    let body = bytes.get(HEADER_LEN..)?;
    if header.compression() == 0 {
        return Some(Cow::Borrowed(body));
    }
    let decoded = Codec::from_id(header.compression())
        .and_then(|codec| codec::decompress(codec, body, DECOMPRESSED_BATCH_MAX));
    match decoded {
        Ok(plain) => Some(Cow::Owned(plain)),
        Err(e) => {
            tracing::warn!(
                offset = header.base_offset,
                error = %e,
                "compaction keeps a batch whole: its records cannot be read"
            );
            None
        }
    }
}
