//! Durable small-file writes and directory syncs: the one place the log writes a metadata file
//! (index, marker, checkpoint, producer snapshot) so that a crash leaves either the old file or
//! the new one, and the device probe every directory's first open goes through.
//!
//! Owns: the temporary-name → fdatasync → rename → directory-fsync sequence. Must not: know what
//! the files mean (callers own their formats).

use std::path::Path;

use glommio::io::{DmaFile, OpenOptions};

use crate::error::{LogError, Result};
use crate::failpoint;

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(glommio::GlommioError<()>) -> LogError + 'a {
    move |e| LogError::io(op, path, e)
}

/// Writes a small metadata file (index, marker) through a temporary name: write, fsync, rename,
/// fsync the directory, so a crash leaves either the old file or the new one.
pub async fn write_file_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .dma_open(&tmp)
        .await
        .map_err(io_err("creating", &tmp))?;
    if !bytes.is_empty() {
        let padded = file.align_up(bytes.len() as u64) as usize;
        let mut buf = file.alloc_dma_buffer(padded);
        buf.as_bytes_mut()[..bytes.len()].copy_from_slice(bytes);
        buf.as_bytes_mut()[bytes.len()..].fill(0);
        failpoint::check(failpoint::DURABLE_WRITE, &tmp)
            .map_err(|e| LogError::io("writing", &tmp, e))?;
        file.write_at(buf, 0)
            .await
            .map_err(io_err("writing", &tmp))?;
        file.truncate(bytes.len() as u64)
            .await
            .map_err(io_err("truncating", &tmp))?;
    }
    failpoint::check(failpoint::DURABLE_SYNC, &tmp)
        .map_err(|e| LogError::io("syncing", &tmp, e))?;
    file.fdatasync().await.map_err(io_err("syncing", &tmp))?;
    file.close().await.map_err(io_err("closing", &tmp))?;
    failpoint::check(failpoint::DURABLE_RENAME, &path)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| LogError::io("renaming", &path, e))?;
    sync_dir(dir).await
}

/// Makes glommio's per-thread I/O-polling probe for the device under `dir` see a real read.
///
/// glommio decides once per thread and device whether O_DIRECT I/O may use the polled ring, by
/// reading the start of the first file it opens there. When that file is new and empty the read
/// succeeds without touching the device, the poll ring is wrongly enabled, and every later read
/// fails with EOPNOTSUPP on devices without poll queues (virtio disks, most cloud volumes). So the
/// first open on each device is of a file with one synced block of data.
pub(crate) async fn probe_device(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    thread_local!(static PROBED: std::cell::RefCell<std::collections::HashSet<u64>> = Default::default());
    let device = std::fs::metadata(dir)
        .map_err(|e| LogError::io("inspecting", dir, e))?
        .dev();
    if PROBED.with(|p| p.borrow().contains(&device)) {
        return Ok(());
    }
    let path = dir.join(".device-probe.tmp");
    let io = |op| move |e| LogError::io(op, dir.join(".device-probe.tmp"), e);
    std::fs::write(&path, vec![0x5au8; 4096]).map_err(io("writing probe"))?;
    std::fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing probe"))?;
    let file = DmaFile::open(&path)
        .await
        .map_err(io_err("opening probe", &path))?;
    file.close().await.map_err(io_err("closing probe", &path))?;
    std::fs::remove_file(&path).map_err(io("removing probe"))?;
    PROBED.with(|p| p.borrow_mut().insert(device));
    Ok(())
}

/// fsyncs the directory `dir`, so the names created, renamed or removed in it are durable.
pub async fn sync_dir(dir: &Path) -> Result<()> {
    failpoint::check(failpoint::DIR_SYNC, dir)
        .map_err(|e| LogError::io("syncing directory", dir, e))?;
    let handle = glommio::io::Directory::open(dir)
        .await
        .map_err(io_err("opening directory", dir))?;
    handle
        .sync()
        .await
        .map_err(io_err("syncing directory", dir))?;
    handle
        .close()
        .await
        .map_err(io_err("closing directory", dir))
}
