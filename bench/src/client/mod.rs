//! client — a native Kafka-protocol producer for load generation (issue #7), with Kafka's names
//! and semantics: the default partitioner, record batches with every codec, and (in `producer`)
//! linger.ms / batch.size / acks / max.in.flight.requests.per.connection.
//!
//! Must not depend on the broker's internals: it speaks the wire protocol only, so it measures any
//! Kafka-compatible broker. It reuses `engine::batch` for the batch layout checks and varints,
//! and `engine::protocol::frame` to read response frames.

pub mod batch;
pub mod partitioner;
pub mod producer;
