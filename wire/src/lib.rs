//! wire — Kafka's bytes, with no I/O beyond reading one frame: the v2 record-batch layout
//! (`batch`), the batch codecs (`codec`), the Kafka protocol (framing, request headers, the version
//! table, the decode entry every request goes through, the hand-written Produce parser and Fetch
//! encoder: `protocol`), the one table of Kafka error codes (`error_code`) and the pure path of one
//! request frame for fuzzing (`inspect`).
//!
//! Architecture invariants: nothing here knows of logs, shards, connections or the coordinator;
//! every function is pure or reads one frame from a stream; no input panics. The storage log, the
//! broker and the bench client all build on this crate; it depends on none of them.

pub mod batch;
pub mod codec;
pub mod error_code;
pub mod inspect;
pub mod protocol;
