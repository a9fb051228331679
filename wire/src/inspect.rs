//! The whole pure path of one request frame, for the fuzz target (`fuzz/`) and the corpus test
//! (`wire/tests/decoder_corpus.rs`): [`protocol::request::decode_request`] (what the dispatch
//! stage does), then for a Produce request the checks each owning shard runs on a partition's
//! record set before it touches the partition's state (`batch::idempotent_header`, then
//! `batch::validate_record_set`, which `PartitionLog::append` runs first).
//!
//! Owns only that composition: every step is the function the broker itself calls, so there is
//! no second copy of any decoder here. Must not: touch state or panic on any input.

use bytes::Bytes;

use crate::batch::BatchError;
use crate::batch::{self, BatchSpan};
use crate::protocol::request::{decode_request, DecodedRequest, RequestBody};
use crate::protocol::ProtocolError;

/// What the pure path made of one frame.
#[derive(Debug)]
pub struct Inspection {
    pub request: DecodedRequest,
    /// For a Produce request, each non-null record set in request order: its batches, or the
    /// error its partition would be answered with (the connection stays open).
    pub record_sets: Vec<Result<Vec<BatchSpan>, BatchError>>,
}

/// Runs the pure path on `frame` (the bytes after the size prefix). Record sets are validated
/// against the largest possible `max.message.bytes`, so every byte of them is walked.
pub fn inspect_request(frame: Bytes) -> Result<Inspection, ProtocolError> {
    let request = decode_request(frame)?;
    let mut record_sets = Vec::new();
    if let RequestBody::Produce(p) = &request.body {
        for records in p
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|p| p.records.as_ref())
        {
            record_sets.push(
                batch::idempotent_header(records)
                    .and_then(|_| batch::validate_record_set(records, usize::MAX)),
            );
        }
    }
    Ok(Inspection {
        request,
        record_sets,
    })
}
