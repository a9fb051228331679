//! client — a native Kafka-protocol producer and consumer for load generation (issue #7), with
//! Kafka's names and semantics: the default partitioner, record batches with every codec, the
//! accumulator (batch.size / linger.ms / buffer.memory), the producer (acks, retries,
//! delivery.timeout.ms, max.block.ms, idempotence, several brokers), the consumer (Fetch with
//! fetch.min.bytes / fetch.max.wait.ms / max.partition.fetch.bytes) and the end-to-end runner.
//!
//! Must not depend on the broker's internals: it speaks the wire protocol only, so it measures any
//! Kafka-compatible broker. It reuses `::wire::batch` for the batch layout checks and varints,
//! and `::wire::protocol::frame` to read response frames.

pub mod accumulator;
pub mod batch;
pub mod consumer;
pub mod e2e;
pub mod partitioner;
pub mod producer;
pub mod wire;
