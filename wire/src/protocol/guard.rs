//! A pre-decode check of control-plane requests: walks the request layout and refuses any array
//! whose length exceeds the bytes left in the frame, before the `kafka-protocol` decoder sees it.
//!
//! Why: that crate (0.18) allocates `Vec::with_capacity(n)` from the wire length `n` before
//! decoding any element, so a 21-byte Metadata request claiming 2^31 topics made the allocator
//! abort the whole broker. Every array element takes at least one byte, so a length larger than
//! what is left is malformed. Owns the layouts of the control-plane requests weir answers (the
//! versions in `api_versions::SUPPORTED`); must be extended with every API or version added there
//! (the tests check every supported version against the crate's own encoder).
//! Must not: accept what the decoder would refuse for another reason (it only adds refusals).

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use super::wire::Reader;
use super::ProtocolError;

type Result<T> = std::result::Result<T, ProtocolError>;

struct Walk {
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

/// Checks the body of `api_key` v`version`; APIs without arrays or not decoded by the crate pass.
pub fn check(api_key: ApiKey, version: i16, body: &Bytes) -> Result<()> {
    let v = version;
    // Flexible versions (compact lengths, tagged fields) are those with request header v2: the
    // crate's own table, as its decoder uses.
    let flexible = match api_key {
        ApiKey::Metadata
        | ApiKey::Fetch
        | ApiKey::ListOffsets
        | ApiKey::CreateTopics
        | ApiKey::DeleteTopics
        | ApiKey::DescribeConfigs
        | ApiKey::CreatePartitions
        | ApiKey::AlterConfigs
        | ApiKey::IncrementalAlterConfigs
        | ApiKey::FindCoordinator
        | ApiKey::JoinGroup
        | ApiKey::SyncGroup
        | ApiKey::LeaveGroup
        | ApiKey::OffsetCommit
        | ApiKey::OffsetFetch
        | ApiKey::ListGroups
        | ApiKey::DescribeGroups
        | ApiKey::DeleteGroups
        | ApiKey::OffsetDelete => api_key.request_header_version(v) >= 2,
        _ => return Ok(()),
    };
    let mut w = Walk {
        r: Reader::new(body.clone()),
        flexible,
    };
    match api_key {
        ApiKey::Metadata => w.array(|w| {
            if v >= 10 {
                w.skip(16)?;
            }
            w.string()?;
            w.tags()
        }),
        ApiKey::Fetch => {
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
        ApiKey::ListOffsets => {
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
        ApiKey::CreateTopics => w.array(|w| {
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
        }),
        ApiKey::DeleteTopics => w.array(|w| w.string()),
        ApiKey::CreatePartitions => w.array(|w| {
            w.string()?;
            w.skip(4)?;
            w.array(|w| {
                w.array(|w| w.skip(4))?;
                w.tags()
            })?;
            w.tags()
        }),
        ApiKey::DescribeConfigs => w.array(|w| {
            w.skip(1)?;
            w.string()?;
            w.array(|w| w.string())?;
            w.tags()
        }),
        ApiKey::AlterConfigs | ApiKey::IncrementalAlterConfigs => w.array(|w| {
            w.skip(1)?; // resource type
            w.string()?;
            w.array(|w| {
                w.string()?;
                if api_key == ApiKey::IncrementalAlterConfigs {
                    w.skip(1)?; // operation
                }
                w.string()?;
                w.tags()
            })?;
            w.tags()
        }),
        // v0-3 have no array.
        ApiKey::FindCoordinator if v >= 4 => {
            w.skip(1)?; // key type
            w.array(|w| w.string())
        }
        ApiKey::JoinGroup => {
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
        ApiKey::SyncGroup => {
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
        // v0-2 have no array.
        ApiKey::LeaveGroup if v >= 3 => {
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
        ApiKey::OffsetCommit => {
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
        ApiKey::OffsetFetch if v >= 8 => w.array(|w| {
            w.string()?;
            w.array(|w| {
                w.string()?;
                w.array(|w| w.skip(4))?;
                w.tags()
            })?;
            w.tags()
        }),
        ApiKey::OffsetFetch => {
            w.string()?;
            w.array(|w| {
                w.string()?;
                w.array(|w| w.skip(4))?;
                w.tags()
            })
        }
        // v0-3 have no array.
        ApiKey::ListGroups if v >= 4 => w.array(|w| w.string()),
        ApiKey::DescribeGroups => w.array(|w| w.string()),
        ApiKey::DeleteGroups => w.array(|w| w.string()),
        ApiKey::OffsetDelete => {
            w.string()?;
            w.array(|w| {
                w.string()?;
                w.array(|w| w.skip(4))
            })
        }
        _ => Ok(()),
    }
}
