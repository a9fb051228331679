//! engine — the broker: the shard runtime (one pinned glommio executor per core, SO_REUSEPORT
//! listeners, cross-shard message passing: `shard`) and the broker that gives each Kafka API its
//! meaning on top of the partition log (`broker`).
//!
//! Architecture invariants: everything stateful is shard-local (`!Send`) and reached from other
//! shards only through `shard::Mesh` jobs; bytes on the wire are `wire`'s, bytes on disk are
//! `storage`'s; the coordinator is reached only through `coord::client` (and started through
//! `coord::server::start_embedded`); every error a client sees carries its Kafka code.

pub mod broker;
pub mod shard;
