//! kclient — weir's one Kafka client: wire-level producer, consumer and admin queries, speaking
//! the Kafka protocol only, so it drives any Kafka-compatible broker (weir, Apache Kafka, the
//! bench null sink). Used by `bench` (load generation: `weir bench produce|consume|e2e|run`) and
//! by the `weir` command line (`weir group`, topic set-up); the replica fetcher and mirror maker
//! are to use it next.
//!
//! Module map, bottom up:
//! - [`conn`]: the one codec path — request frames, response headers, correlation, typed calls —
//!   on any `AsyncRead + AsyncWrite` (glommio) or a blocking `std` socket ([`conn::BlockingConn`]).
//! - [`metadata`]: Metadata (`TopicMeta`: brokers, the leader of each partition).
//! - [`clock`]: the process-wide µs clock end-to-end latency is measured with.
//! - [`rng`]: a deterministic xorshift64 (random keys; the bench's payloads).
//! - [`admin`]: group queries, ApiVersions, CreateTopics, partition counts, on a caller's
//!   connections; [`blocking`] runs them for command-line tools.
//! - [`partitioner`], [`batch`], [`accumulator`]: Kafka's default partitioner, v2 record batches
//!   with every codec, the record accumulator (batch.size / linger.ms / buffer.memory).
//! - [`payloads`]: the producer's fallback record values (16 MiB of distinct JSON-like values).
//! - [`producer`]: the load producer (acks, retries, delivery.timeout.ms, max.block.ms,
//!   idempotence, several brokers), with HDR histograms of publish latency and delay.
//! - [`consumer`]: the load consumer (Fetch with fetch.min.bytes / fetch.max.wait.ms /
//!   max.partition.fetch.bytes, end-to-end latency).
//! - [`e2e`]: producers and consumers in one process, end-to-end latency.
//!
//! Must not depend on the broker's internals (`engine`, `storage`): only the wire crate, whose
//! `wire::batch` layout checks and varints, `wire::codec` codecs, `wire::protocol::frame` frame
//! reader and `wire::error_code` names it reuses rather than re-implementing. Errors are typed
//! (`WireError`, `AdminError`, `ProducerError`, `ConsumerError`); nothing panics on input from
//! the network.

pub mod accumulator;
pub mod admin;
pub mod batch;
pub mod blocking;
pub mod clock;
pub mod conn;
pub mod consumer;
pub mod e2e;
pub mod metadata;
pub mod partitioner;
pub mod payloads;
pub mod producer;
pub mod rng;
