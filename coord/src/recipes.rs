//! Coordination recipes on top of the client: distributed lock, leader election, config watch.
//!
//! Owns: the ZooKeeper recipes built from ephemeral-sequential nodes (each waiter watches only
//! its predecessor, so a release wakes one waiter, not a herd) and a re-arming config watch.
//! Must not: reach into the server or the protocol beyond the public `Client` API.
//!
//! Safety note, as in ZooKeeper: holding a lock means "held as of the last time the session was
//! alive". A holder whose session expires loses the lock; check `Client::is_expired` (or use the
//! node's czxid as a fencing token) before acting on protected state.

use crate::client::{Client, ClientError, Watch};
use crate::proto::{CreateMode, Stat, ZkError};

const PREFIX: &str = "n-";

fn seq_of(name: &str) -> Option<u64> {
    name.rsplit_once(PREFIX).and_then(|(_, s)| s.parse().ok())
}

/// Creates `path` and its missing ancestors as persistent nodes.
pub async fn ensure_path(c: &Client, path: &str) -> Result<(), ClientError> {
    let mut cur = String::new();
    for comp in path.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(comp);
        match c.create(&cur, b"", CreateMode::Persistent).await {
            Ok(_) | Err(ClientError::Zk(ZkError::NodeExists)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A place in the queue under `dir`: the ephemeral-sequential node this client owns.
pub struct Ticket {
    client: Client,
    dir: String,
    path: String,
    seq: u64,
}

impl Ticket {
    /// Joins the queue under `dir` with `data` (e.g. the candidate's address).
    pub async fn join(client: &Client, dir: &str, data: &[u8]) -> Result<Ticket, ClientError> {
        ensure_path(client, dir).await?;
        let path = client
            .create(
                &format!("{dir}/{PREFIX}"),
                data,
                CreateMode::EphemeralSequential,
            )
            .await?;
        let seq = seq_of(&path)
            .ok_or_else(|| ClientError::Unexpected(format!("bad sequential name {path}")))?;
        Ok(Ticket {
            client: client.clone(),
            dir: dir.to_string(),
            path,
            seq,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The czxid-like sequence of this ticket; usable as a fencing token.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The node just ahead of this one, or None if this ticket is first.
    async fn predecessor(&self) -> Result<Option<String>, ClientError> {
        let mut seqs: Vec<(u64, String)> = self
            .client
            .children(&self.dir)
            .await?
            .into_iter()
            .filter_map(|n| seq_of(&n).map(|s| (s, n)))
            .collect();
        seqs.sort();
        if !seqs.iter().any(|(s, _)| *s == self.seq) {
            // Our node is gone: the session expired.
            return Err(ZkError::SessionExpired.into());
        }
        Ok(seqs
            .into_iter()
            .take_while(|(s, _)| *s < self.seq)
            .last()
            .map(|(_, n)| format!("{}/{n}", self.dir)))
    }

    /// Whether this ticket is first in line right now.
    pub async fn is_first(&self) -> Result<bool, ClientError> {
        Ok(self.predecessor().await?.is_none())
    }

    /// Waits until this ticket is first in line.
    pub async fn wait_first(&self) -> Result<(), ClientError> {
        loop {
            let Some(pred) = self.predecessor().await? else {
                return Ok(());
            };
            let (stat, w): (Option<Stat>, Watch) = self.client.exists_watch(&pred).await?;
            if stat.is_some() {
                w.wait().await;
            }
        }
    }

    /// Leaves the queue (releases the lock / resigns).
    pub async fn leave(self) -> Result<(), ClientError> {
        match self.client.delete(&self.path, -1).await {
            Ok(()) | Err(ClientError::Zk(ZkError::NoNode)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A distributed mutual-exclusion lock under `dir`.
pub struct Lock;

impl Lock {
    /// Blocks until the lock is held; release with `Ticket::leave`.
    pub async fn acquire(client: &Client, dir: &str) -> Result<Ticket, ClientError> {
        Lock::acquire_with(client, dir, b"").await
    }

    /// As `acquire`, with `data` stored in the lock node (who holds it).
    pub async fn acquire_with(
        client: &Client,
        dir: &str,
        data: &[u8],
    ) -> Result<Ticket, ClientError> {
        let t = Ticket::join(client, dir, data).await?;
        t.wait_first().await?;
        Ok(t)
    }
}

/// Leader election under `dir`: the first ticket leads; the others wait in line.
pub struct Election;

impl Election {
    /// Becomes a candidate with `data`; returns once this candidate leads.
    pub async fn lead(client: &Client, dir: &str, data: &[u8]) -> Result<Ticket, ClientError> {
        Lock::acquire_with(client, dir, data).await
    }

    /// The current leader's data, if any.
    pub async fn leader(client: &Client, dir: &str) -> Result<Option<Vec<u8>>, ClientError> {
        let mut names: Vec<(u64, String)> = match client.children(dir).await {
            Ok(v) => v,
            Err(ClientError::Zk(ZkError::NoNode)) => return Ok(None),
            Err(e) => return Err(e),
        }
        .into_iter()
        .filter_map(|n| seq_of(&n).map(|s| (s, n)))
        .collect();
        names.sort();
        for (_, n) in names {
            match client.get(&format!("{dir}/{n}")).await {
                Ok((data, _)) => return Ok(Some(data)),
                Err(ClientError::Zk(ZkError::NoNode)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

/// Follows a configuration znode: `next` returns each new value (the first call returns the
/// current one). Changes between two calls may be coalesced, as with any ZooKeeper watch.
pub struct ConfigWatch {
    client: Client,
    path: String,
    pending: Option<Watch>,
    last_mzxid: Option<u64>,
}

impl ConfigWatch {
    pub fn new(client: &Client, path: &str) -> Self {
        ConfigWatch {
            client: client.clone(),
            path: path.to_string(),
            pending: None,
            last_mzxid: None,
        }
    }

    /// Waits for the next value (None while the node does not exist).
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            if let Some(w) = self.pending.take() {
                w.wait().await;
            }
            let (stat, w) = self.client.exists_watch(&self.path).await?;
            self.pending = Some(w);
            let m = stat.map(|s| s.mzxid);
            if m == self.last_mzxid && self.last_mzxid.is_some() {
                continue;
            }
            self.last_mzxid = m;
            if stat.is_none() {
                return Ok(None);
            }
            match self.client.get(&self.path).await {
                Ok((data, stat)) => {
                    self.last_mzxid = Some(stat.mzxid);
                    return Ok(Some(data));
                }
                Err(ClientError::Zk(ZkError::NoNode)) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
