//! ZooKeeper client-protocol compatibility.
//!
//! Owns: `jute`, the wire encoding of ZooKeeper's client protocol; `front`, the frontend that
//! serves it on each node; `four_letter`, the answers to ZooKeeper's four-letter words.
//! Must not: change the replicated model's semantics for weir's own clients.

pub mod four_letter;
pub mod front;
pub mod jute;
