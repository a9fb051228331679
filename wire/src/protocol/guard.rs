//! A pre-decode check of control-plane requests: walks the request layout and refuses any array
//! whose length exceeds the bytes left in the frame, before the `kafka-protocol` decoder sees it.
//!
//! Why: that crate (0.18) allocates `Vec::with_capacity(n)` from the wire length `n` before
//! decoding any element, so a 21-byte Metadata request claiming 2^31 topics made the allocator
//! abort the whole broker. Every array element takes at least one byte, so a length larger than
//! what is left is malformed. Owns the layouts of the control-plane requests weir answers (the
//! versions in the API table, `apis`, whose guard column names each API's layout here); must be
//! extended with every API or version added there (the tests check every supported version
//! against the crate's own encoder).
//! Must not: accept what the decoder would refuse for another reason (it only adds refusals).

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use super::wire::Reader;
use super::ProtocolError;

type Result<T> = std::result::Result<T, ProtocolError>;

/// A cursor over one body that checks array lengths as it walks (opaque to the table).
pub struct Walk {
    r: Reader,
    flexible: bool,
}

impl Walk {
    fn string(&mut self) -> Result<()> {
        self.r.string(self.flexible).map(drop)
    }
    fn skip(&mut self, n: usize) -> Result<()> {
        self.r.bytes(n).map(drop)
    }
    fn bytes(&mut self) -> Result<()> {
        self.r.nullable_bytes(self.flexible).map(drop)
    }
    fn tags(&mut self) -> Result<()> {
        if self.flexible {
            self.r.skip_tagged_fields()?;
        }
        Ok(())
    }
    fn array(&mut self, mut each: impl FnMut(&mut Walk) -> Result<()>) -> Result<()> {
        let n = self.r.array_len(self.flexible)?;
        for _ in 0..n {
            each(self)?;
        }
        Ok(())
    }
}

/// How one API's body is walked: its arrays and what precedes each, for version `v`.
pub type Layout = fn(&mut Walk, i16) -> Result<()>;

/// Checks the body of `api_key` v`version` with its layout from the API table
/// (`apis::guard_layout`); APIs without arrays or not decoded by the crate pass.
pub fn check(api_key: ApiKey, version: i16, body: &Bytes) -> Result<()> {
    let Some(layout) = super::apis::guard_layout(api_key) else {
        return Ok(());
    };
    // Flexible versions (compact lengths, tagged fields) are those with request header v2: the
    // crate's own table, as its decoder uses.
    let mut w = Walk {
        r: Reader::new(body.clone()),
        flexible: api_key.request_header_version(version) >= 2,
    };
    layout(&mut w, version)
}

pub(super) fn metadata(w: &mut Walk, v: i16) -> Result<()> {
    w.array(|w| {
        if v >= 10 {
            w.skip(16)?;
        }
        w.string()?;
        w.tags()
    })
}

pub(super) fn fetch(w: &mut Walk, v: i16) -> Result<()> {
    w.skip(4 + 4 + 4 + 4 + 1)?; // replica_id, max_wait_ms, min_bytes, max_bytes, isolation
    if v >= 7 {
        w.skip(8)?; // session id and epoch
    }
    w.array(|w| {
        w.string()?;
        w.array(|w| {
            w.skip(4)?;
            if v >= 9 {
                w.skip(4)?;
            }
            w.skip(8)?;
            if v >= 12 {
                w.skip(4)?;
            }
            if v >= 5 {
                w.skip(8)?;
            }
            w.skip(4)?;
            w.tags()
        })?;
        w.tags()
    })?;
    if v >= 7 {
        w.array(|w| {
            w.string()?;
            w.array(|w| w.skip(4))?;
            w.tags()
        })?;
    }
    Ok(())
}

pub(super) fn list_offsets(w: &mut Walk, v: i16) -> Result<()> {
    w.skip(4)?;
    if v >= 2 {
        w.skip(1)?;
    }
    w.array(|w| {
        w.string()?;
        w.array(|w| {
            w.skip(4)?;
            if v >= 4 {
                w.skip(4)?;
            }
            w.skip(8)?;
            w.tags()
        })?;
        w.tags()
    })
}

pub(super) fn create_topics(w: &mut Walk, _v: i16) -> Result<()> {
    w.array(|w| {
        w.string()?;
        w.skip(4 + 2)?;
        w.array(|w| {
            w.skip(4)?;
            w.array(|w| w.skip(4))?;
            w.tags()
        })?;
        w.array(|w| {
            w.string()?;
            w.string()?;
            w.tags()
        })?;
        w.tags()
    })
}

pub(super) fn delete_topics(w: &mut Walk, _v: i16) -> Result<()> {
    w.array(|w| w.string())
}

pub(super) fn create_partitions(w: &mut Walk, _v: i16) -> Result<()> {
    w.array(|w| {
        w.string()?;
        w.skip(4)?;
        w.array(|w| {
            w.array(|w| w.skip(4))?;
            w.tags()
        })?;
        w.tags()
    })
}

pub(super) fn describe_configs(w: &mut Walk, _v: i16) -> Result<()> {
    w.array(|w| {
        w.skip(1)?;
        w.string()?;
        w.array(|w| w.string())?;
        w.tags()
    })
}

/// AlterConfigs and IncrementalAlterConfigs: the latter has an operation byte per config.
fn configs_to_alter(w: &mut Walk, incremental: bool) -> Result<()> {
    w.array(|w| {
        w.skip(1)?; // resource type
        w.string()?;
        w.array(|w| {
            w.string()?;
            if incremental {
                w.skip(1)?; // operation
            }
            w.string()?;
            w.tags()
        })?;
        w.tags()
    })
}

pub(super) fn alter_configs(w: &mut Walk, _v: i16) -> Result<()> {
    configs_to_alter(w, false)
}

pub(super) fn incremental_alter_configs(w: &mut Walk, _v: i16) -> Result<()> {
    configs_to_alter(w, true)
}

pub(super) fn find_coordinator(w: &mut Walk, v: i16) -> Result<()> {
    if v < 4 {
        return Ok(()); // v0-3 have no array
    }
    w.skip(1)?; // key type
    w.array(|w| w.string())
}

pub(super) fn join_group(w: &mut Walk, v: i16) -> Result<()> {
    w.string()?; // group
    w.skip(4)?; // session timeout
    if v >= 1 {
        w.skip(4)?; // rebalance timeout
    }
    w.string()?; // member id
    if v >= 5 {
        w.string()?; // group instance id
    }
    w.string()?; // protocol type
    w.array(|w| {
        w.string()?;
        w.bytes()?;
        w.tags()
    })
}

pub(super) fn sync_group(w: &mut Walk, v: i16) -> Result<()> {
    w.string()?;
    w.skip(4)?;
    w.string()?;
    if v >= 3 {
        w.string()?;
    }
    if v >= 5 {
        w.string()?; // protocol type
        w.string()?; // protocol name
    }
    w.array(|w| {
        w.string()?;
        w.bytes()?;
        w.tags()
    })
}

pub(super) fn leave_group(w: &mut Walk, v: i16) -> Result<()> {
    if v < 3 {
        return Ok(()); // v0-2 have no array
    }
    w.string()?;
    w.array(|w| {
        w.string()?;
        w.string()?;
        if v >= 5 {
            w.string()?;
        }
        w.tags()
    })
}

pub(super) fn offset_commit(w: &mut Walk, v: i16) -> Result<()> {
    w.string()?;
    w.skip(4)?; // generation
    w.string()?; // member id
    if v >= 7 {
        w.string()?; // group instance id
    }
    if v <= 4 {
        w.skip(8)?; // retention time
    }
    w.array(|w| {
        w.string()?;
        w.array(|w| {
            w.skip(4 + 8)?;
            if v >= 6 {
                w.skip(4)?;
            }
            w.string()?; // metadata
            w.tags()
        })?;
        w.tags()
    })
}

pub(super) fn offset_fetch(w: &mut Walk, v: i16) -> Result<()> {
    if v >= 8 {
        return w.array(|w| {
            w.string()?;
            w.array(|w| {
                w.string()?;
                w.array(|w| w.skip(4))?;
                w.tags()
            })?;
            w.tags()
        });
    }
    w.string()?;
    w.array(|w| {
        w.string()?;
        w.array(|w| w.skip(4))?;
        w.tags()
    })
}

pub(super) fn list_groups(w: &mut Walk, v: i16) -> Result<()> {
    if v < 4 {
        return Ok(()); // v0-3 have no array
    }
    w.array(|w| w.string())
}

pub(super) fn describe_groups(w: &mut Walk, _v: i16) -> Result<()> {
    w.array(|w| w.string())
}

pub(super) fn delete_groups(w: &mut Walk, _v: i16) -> Result<()> {
    w.array(|w| w.string())
}

pub(super) fn offset_delete(w: &mut Walk, _v: i16) -> Result<()> {
    w.string()?;
    w.array(|w| {
        w.string()?;
        w.array(|w| w.skip(4))
    })
}
