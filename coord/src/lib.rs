//! coord — the quorum coordinator: a Raft-replicated znode tree (ZooKeeper's data model).
//!
//! Owns: consensus (raft-rs, driven sans-I/O by `node`), the replicated state machine (`tree`),
//! durability (`disk`), the glommio server and client, and coordination recipes.
//! Must not: depend on the engine crate or know anything about the Kafka wire protocol.

pub mod client;
pub mod disk;
pub mod lincheck;
pub mod node;
mod outbox;
pub mod proto;
pub mod recipes;
pub mod server;
pub mod sim;
pub mod store;
pub mod tree;
pub mod zk;
