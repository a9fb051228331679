//! ZooKeeper client-protocol compatibility.
//!
//! Owns: `jute`, the wire encoding of ZooKeeper's client protocol.
//! Must not: change the replicated model's semantics for weir's own clients.

pub mod front;
pub mod jute;
