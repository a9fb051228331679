//! blocking — the admin queries for command-line tools (`weir group`, `weir bench run`'s topic
//! set-up): each call connects with a [`BlockingConn`] (`std` socket, timeouts), runs the
//! [`crate::admin`] query to completion on the calling thread and closes the connection.
//!
//! Owns connecting and the per-request timeout. Must not encode or decode anything itself: the
//! requests and their answers are `crate::admin`'s, over `crate::conn`'s one codec path, exactly
//! as an async caller runs them.

use std::time::Duration;

use futures::executor::block_on;
use kafka_protocol::messages::ApiKey;

use crate::admin::{self, AdminError, Described, Listed};
use crate::conn::BlockingConn;

/// How long one connect, read or write may take, and the broker's CreateTopics timeout.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// The client id the admin requests carry.
pub const CLIENT_ID: &str = "weir-cli";

fn connect(addr: &str) -> Result<BlockingConn, AdminError> {
    Ok(BlockingConn::connect(addr, TIMEOUT, CLIENT_ID)?)
}

/// Every group the broker at `bootstrap` coordinates.
pub fn list_groups(bootstrap: &str) -> Result<Vec<Listed>, AdminError> {
    block_on(admin::list_groups(&mut connect(bootstrap)?))
}

/// The coordinator of `group` ("host:port"), asked of `bootstrap`.
pub fn find_coordinator(bootstrap: &str, group: &str) -> Result<String, AdminError> {
    block_on(admin::find_coordinator(&mut connect(bootstrap)?, group))
}

/// `group` described as [`admin::describe_group`] does: its coordinator found through
/// `bootstrap`, then asked on its own connection.
pub fn describe_group(bootstrap: &str, group: &str) -> Result<Described, AdminError> {
    let mut boot = connect(bootstrap)?;
    let addr = block_on(admin::find_coordinator(&mut boot, group))?;
    let mut coordinator = BlockingConn::connect(&addr, TIMEOUT, CLIENT_ID).map_err(|source| {
        AdminError::Coordinator {
            group: group.to_string(),
            addr: addr.clone(),
            source,
        }
    })?;
    block_on(admin::describe_group(&mut boot, &mut coordinator, group))
}

/// Whether the broker at `bootstrap` advertises `api`.
pub fn supports(bootstrap: &str, api: ApiKey) -> Result<bool, AdminError> {
    block_on(admin::supports(&mut connect(bootstrap)?, api))
}

/// Creates `names` with `partitions` partitions each (an existing topic is fine).
pub fn create_topics(bootstrap: &str, names: &[String], partitions: u32) -> Result<(), AdminError> {
    block_on(admin::create_topics(
        &mut connect(bootstrap)?,
        names,
        partitions,
        TIMEOUT,
    ))
}

/// Deletes `names`.
pub fn delete_topics(bootstrap: &str, names: &[String]) -> Result<(), AdminError> {
    block_on(admin::delete_topics(
        &mut connect(bootstrap)?,
        names,
        TIMEOUT,
    ))
}

/// Partitions of `topic`; `None` if the broker does not know it.
pub fn topic_partitions(bootstrap: &str, topic: &str) -> Result<Option<u32>, AdminError> {
    block_on(admin::topic_partitions(&mut connect(bootstrap)?, topic))
}
