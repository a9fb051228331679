//! Named storage failpoints (sled-style): a test arms "fail the next N hits of point X" and the
//! I/O call at that point returns an injected `io::Error` instead of running.
//!
//! Owns the names of the points (one at each data write, fdatasync, rename and directory sync of
//! the storage crate; the table is [`POINTS`]) and, with the cargo feature `failpoints`, the
//! registry. Without the feature [`check`] is an inline `Ok(())` and nothing else exists. Must not
//! be armed outside tests, and must not decide what a failure means: the caller's ordinary error
//! path runs, exactly as for a real I/O error. The registry is thread-local: a shard is a thread,
//! and a test arms points from the executor that runs the log.

use std::path::Path;

/// Each O_DIRECT write of a group's buffer by the flusher (`log::flusher`).
pub const LOG_WRITE: &str = "log.write";
/// The flusher's fdatasync of the active segment (acks=all, flush.messages, flush.ms).
pub const LOG_SYNC: &str = "log.sync";
/// fdatasync of a new segment file (`Segment::create`).
pub const SEGMENT_CREATE_SYNC: &str = "segment.create.sync";
/// The fallocate reserving blocks ahead of the active segment's writes (`segment::reserve`).
pub const SEGMENT_RESERVE: &str = "segment.reserve";
/// fdatasync of the active segment at open, after its torn tail is cut (`Segment::open_active`).
pub const SEGMENT_OPEN_SYNC: &str = "segment.open.sync";
/// A seal's first fdatasync, of the data, before the preallocated tail is cut (`Segment::seal`).
pub const SEGMENT_SEAL_SYNC: &str = "segment.seal.sync";
/// A seal's second fdatasync, of the truncated length.
pub const SEGMENT_SEAL_TRUNCATE_SYNC: &str = "segment.seal.truncate_sync";
/// The data write of a small durable file (index, time index, marker, checkpoint, swap marker,
/// producer snapshot) into its temporary name (`durable::write_file_durably`).
pub const DURABLE_WRITE: &str = "durable.write";
/// The fdatasync of that temporary file.
pub const DURABLE_SYNC: &str = "durable.sync";
/// The rename of the temporary file over the final name (the path given is the final name).
pub const DURABLE_RENAME: &str = "durable.rename";
/// Every directory fsync (`durable::sync_dir`; the path given is the directory).
pub const DIR_SYNC: &str = "dir.sync";
/// Each data write of compaction's `.cleaned` segment file.
pub const COMPACT_WRITE: &str = "compact.write";
/// The fdatasync of the `.cleaned` segment file.
pub const COMPACT_SYNC: &str = "compact.sync";
/// Each rename of a `.cleaned` file over the first segment's, after the swap's commit point
/// (`compact::swap::finish_swap`, also run by recovery); the path given is the destination.
pub const COMPACT_SWAP_RENAME: &str = "compact.swap.rename";

/// Every point, with where it is; docs and a test that each one is reached use this table.
pub const POINTS: &[(&str, &str)] = &[
    (
        LOG_WRITE,
        "log/flusher.rs: each O_DIRECT write of a group buffer",
    ),
    (LOG_SYNC, "log/flusher.rs: fdatasync of the active segment"),
    (
        SEGMENT_CREATE_SYNC,
        "segment.rs: fdatasync of a new segment",
    ),
    (
        SEGMENT_RESERVE,
        "segment.rs: fallocate ahead of the active segment's writes",
    ),
    (
        SEGMENT_OPEN_SYNC,
        "segment.rs: fdatasync after recovering the active segment",
    ),
    (SEGMENT_SEAL_SYNC, "segment.rs: seal, fdatasync of the data"),
    (
        SEGMENT_SEAL_TRUNCATE_SYNC,
        "segment.rs: seal, fdatasync after truncation",
    ),
    (
        DURABLE_WRITE,
        "durable.rs: small file, write of the temporary file",
    ),
    (
        DURABLE_SYNC,
        "durable.rs: small file, fdatasync of the temporary file",
    ),
    (
        DURABLE_RENAME,
        "durable.rs: small file, rename over the final name",
    ),
    (DIR_SYNC, "durable.rs: every directory fsync"),
    (
        COMPACT_WRITE,
        "compact/files.rs: each write of a .cleaned segment",
    ),
    (
        COMPACT_SYNC,
        "compact/files.rs: fdatasync of a .cleaned segment",
    ),
    (
        COMPACT_SWAP_RENAME,
        "compact/swap.rs: rename of a .cleaned file in the swap",
    ),
];

/// Passes through, or — with the `failpoints` feature and the point armed for this hit — returns
/// the injected error. `path` is the file the I/O is about (armed points may match on it).
#[inline]
pub(crate) fn check(point: &'static str, path: &Path) -> std::io::Result<()> {
    #[cfg(feature = "failpoints")]
    {
        registry::hit(point, path)
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = (point, path);
        Ok(())
    }
}

#[cfg(feature = "failpoints")]
pub use registry::{fail_after, fail_next, fail_next_matching, fail_next_os, hits, reset};

#[cfg(feature = "failpoints")]
mod registry {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::path::Path;

    /// One arming of a point: let `skip` hits pass, then fail `count`.
    struct Armed {
        point: &'static str,
        path_contains: Option<String>,
        skip: u32,
        count: u32,
        /// The OS error to inject (say ENOSPC, 28); None: a generic error.
        os_error: Option<i32>,
    }

    #[derive(Default)]
    struct Registry {
        armed: Vec<Armed>,
        hits: HashMap<&'static str, u64>,
    }

    thread_local! {
        static REGISTRY: RefCell<Registry> = RefCell::default();
    }

    /// Fails the next `count` hits of `point` on this thread.
    pub fn fail_next(point: &'static str, count: u32) {
        arm(point, None, 0, count);
    }

    /// Fails the next `count` hits of `point` with the OS error `errno` (ENOSPC is 28), for
    /// callers that treat one kind of failure apart.
    pub fn fail_next_os(point: &'static str, count: u32, errno: i32) {
        arm_with(point, None, 0, count, Some(errno));
    }

    /// Lets `skip` hits of `point` pass, then fails the `count` after them.
    pub fn fail_after(point: &'static str, skip: u32, count: u32) {
        arm(point, None, skip, count);
    }

    /// Fails the next `count` hits of `point` whose path contains `path_contains` (say ".swap"
    /// for compaction's commit marker among all durable small-file writes).
    pub fn fail_next_matching(point: &'static str, path_contains: &str, count: u32) {
        arm(point, Some(path_contains.to_string()), 0, count);
    }

    fn arm(point: &'static str, path_contains: Option<String>, skip: u32, count: u32) {
        arm_with(point, path_contains, skip, count, None);
    }

    fn arm_with(
        point: &'static str,
        path_contains: Option<String>,
        skip: u32,
        count: u32,
        os_error: Option<i32>,
    ) {
        assert!(count > 0, "arming {point} to fail 0 times");
        assert!(
            super::POINTS.iter().any(|(name, _)| *name == point),
            "unknown failpoint {point}"
        );
        REGISTRY.with(|r| {
            r.borrow_mut().armed.push(Armed {
                point,
                path_contains,
                skip,
                count,
                os_error,
            })
        });
    }

    /// How often `point` was reached on this thread since the last [`reset`] (failed or not).
    pub fn hits(point: &'static str) -> u64 {
        REGISTRY.with(|r| r.borrow().hits.get(point).copied().unwrap_or(0))
    }

    /// Disarms every point and forgets the hit counts of this thread.
    pub fn reset() {
        REGISTRY.with(|r| *r.borrow_mut() = Registry::default());
    }

    pub(super) fn hit(point: &'static str, path: &Path) -> std::io::Result<()> {
        REGISTRY.with(|r| {
            let mut registry = r.borrow_mut();
            *registry.hits.entry(point).or_default() += 1;
            if !registry.armed.iter().any(|a| a.point == point) {
                return Ok(());
            }
            let shown = path.to_string_lossy();
            let matching = registry.armed.iter_mut().find(|a| {
                a.point == point
                    && a.path_contains
                        .as_deref()
                        .is_none_or(|needle| shown.contains(needle))
            });
            let Some(armed) = matching else {
                return Ok(());
            };
            if armed.skip > 0 {
                armed.skip -= 1;
                return Ok(());
            }
            armed.count -= 1;
            let os_error = armed.os_error;
            registry.armed.retain(|a| a.count > 0);
            if let Some(errno) = os_error {
                return Err(std::io::Error::from_raw_os_error(errno));
            }
            Err(std::io::Error::other(format!(
                "injected failure at failpoint {point} ({shown})"
            )))
        })
    }
}
