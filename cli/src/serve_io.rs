//! `weir serve` and the io-properties file `weir hw iotune` writes: which file is read
//! (`io.properties.file`, else `DATA_DIR/io-properties.toml` if it exists, never with `none`), its
//! checks, and what it changes in the partition logs' config: `suggested.writes_in_flight` →
//! `LogConfig::in_flight_writes_max`, `suggested.write_group_bytes` →
//! `LogConfig::write_group_bytes_max` (docs/HARDWARE.md says why).
//!
//! Owns: that mapping and the line that reports it. Must not: measure the disk (hardware::iotune)
//! or decide how the flusher uses the values (storage::log).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use hardware::iotune::properties::IoProperties;
use storage::config::{IN_FLIGHT_WRITES_RANGE, WRITE_GROUP_BYTES_RANGE};
use storage::LogConfig;

/// The config key (and the name errors use).
pub const KEY: &str = "io.properties.file";
/// Its value that turns the file off, default lookup included.
pub const OFF: &str = "none";
/// The file read from the data directory when `io.properties.file` is not set (what `weir hw
/// iotune --dir DATA_DIR` writes).
pub const DEFAULT_NAME: &str = "io-properties.toml";

/// Which io-properties file `weir serve` reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IoPropertiesFile {
    /// `DATA_DIR/io-properties.toml` if it exists.
    #[default]
    Default,
    /// No file: the built-in defaults.
    Off,
    /// This file; it must exist and be valid.
    Path(PathBuf),
}

impl IoPropertiesFile {
    /// The setting from its config value (`none` or a path).
    pub fn parse(value: &str) -> anyhow::Result<IoPropertiesFile> {
        match value {
            "" => bail!("{KEY} = \"\": expected a path, or \"{OFF}\""),
            OFF => Ok(IoPropertiesFile::Off),
            path => Ok(IoPropertiesFile::Path(PathBuf::from(path))),
        }
    }
}

/// What a valid file sets, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoTuning {
    pub path: PathBuf,
    pub device: Option<String>,
    pub measured_at_unix_s: u64,
    pub writes_in_flight: usize,
    pub write_group_bytes: usize,
}

/// The tuning to apply, if any: the file named, or the data directory's if there is one. A file
/// that is named or present but unreadable or out of range is an error naming `io.properties.file`
/// and the offending key.
pub fn load(setting: &IoPropertiesFile, data_dir: &Path) -> anyhow::Result<Option<IoTuning>> {
    let path = match setting {
        IoPropertiesFile::Off => return Ok(None),
        IoPropertiesFile::Path(p) => p.clone(),
        IoPropertiesFile::Default => {
            let p = data_dir.join(DEFAULT_NAME);
            if !p.exists() {
                return Ok(None);
            }
            p
        }
    };
    let named = |e: String| {
        anyhow!(
            "{KEY} = {:?}: {e} (run `weir hw iotune --dir DIR` to write a new one, or set {KEY} = \
             \"{OFF}\")",
            path.display().to_string()
        )
    };
    let p = IoProperties::read(&path).map_err(|e| named(e.to_string()))?;
    let writes = p.suggested.writes_in_flight;
    if !IN_FLIGHT_WRITES_RANGE.contains(&writes) {
        return Err(named(format!(
            "suggested.writes_in_flight = {writes}: expected {}..={}",
            IN_FLIGHT_WRITES_RANGE.start(),
            IN_FLIGHT_WRITES_RANGE.end()
        )));
    }
    let group = usize::try_from(p.suggested.write_group_bytes)
        .ok()
        .filter(|g| WRITE_GROUP_BYTES_RANGE.contains(g))
        .ok_or_else(|| {
            named(format!(
                "suggested.write_group_bytes = {}: expected {}..={}",
                p.suggested.write_group_bytes,
                WRITE_GROUP_BYTES_RANGE.start(),
                WRITE_GROUP_BYTES_RANGE.end()
            ))
        })?;
    Ok(Some(IoTuning {
        path,
        device: p.device,
        measured_at_unix_s: p.measured_at_unix_s,
        writes_in_flight: writes,
        write_group_bytes: group,
    }))
}

/// The logs' base config with the tuning applied, and the startup line saying what changed.
pub fn apply(tuning: Option<&IoTuning>, base: LogConfig) -> (LogConfig, String) {
    let Some(t) = tuning else {
        let line = format!(
            "weir: no io-properties file ({KEY}); partition logs keep {} writes in flight and \
             write groups of {} bytes",
            base.in_flight_writes_max,
            base.write_group_bytes()
        );
        return (base, line);
    };
    let tuned = LogConfig {
        in_flight_writes_max: t.writes_in_flight,
        write_group_bytes_max: Some(t.write_group_bytes),
        ..base.clone()
    };
    let line = format!(
        "weir: io-properties {} (device {}, measured at unix {}): writes in flight per partition \
         {} -> {}, write group bytes {} -> {}",
        t.path.display(),
        t.device.as_deref().unwrap_or("unknown"),
        t.measured_at_unix_s,
        base.in_flight_writes_max,
        tuned.in_flight_writes_max,
        base.write_group_bytes(),
        tuned.write_group_bytes()
    );
    (tuned, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    use hardware::iotune::properties::{Bandwidth, Latency, Suggested, PROPERTIES_VERSION};
    use std::time::Duration;

    /// A file as `weir hw iotune` writes it, with the two suggestions given.
    fn file(dir: &Path, writes: usize, group: u64) -> PathBuf {
        let seq = Bandwidth::new(1 << 17, 4, 1 << 30, Duration::from_secs(1));
        let p = IoProperties {
            version: PROPERTIES_VERSION,
            dir: dir.display().to_string(),
            device: Some("vda".into()),
            measured_at_unix_s: 1_700_000_000,
            file_bytes: 1 << 30,
            seq_write: seq.clone(),
            seq_read: seq,
            random_read: Vec::new(),
            random_write: Vec::new(),
            fdatasync: Latency::of(vec![1_000_000]),
            suggested: Suggested {
                writes_in_flight: writes,
                write_group_bytes: group,
            },
        };
        let path = dir.join("p.toml");
        p.write(&path).unwrap();
        path
    }

    #[test]
    fn a_valid_file_sets_both_limits_and_the_line_names_old_and_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), 4, 1 << 20);
        let t = load(&IoPropertiesFile::Path(path.clone()), dir.path())
            .unwrap()
            .unwrap();
        let (cfg, line) = apply(Some(&t), LogConfig::default());
        assert_eq!(cfg.in_flight_writes_max, 4);
        assert_eq!(cfg.write_group_bytes(), 1 << 20);
        assert!(line.contains("16 -> 4"), "{line}");
        assert!(line.contains("4194304 -> 1048576"), "{line}");
        assert!(line.contains(&path.display().to_string()), "{line}");
    }

    #[test]
    fn the_data_dir_file_is_the_default_and_none_turns_it_off() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(&IoPropertiesFile::Default, dir.path()).unwrap(), None);
        let written = file(dir.path(), 8, 256 << 10);
        std::fs::rename(written, dir.path().join(DEFAULT_NAME)).unwrap();
        let t = load(&IoPropertiesFile::Default, dir.path())
            .unwrap()
            .unwrap();
        assert_eq!((t.writes_in_flight, t.write_group_bytes), (8, 256 << 10));
        assert_eq!(load(&IoPropertiesFile::Off, dir.path()).unwrap(), None);
        assert_eq!(
            IoPropertiesFile::parse("none").unwrap(),
            IoPropertiesFile::Off
        );
        assert!(IoPropertiesFile::parse("").is_err());
    }

    #[test]
    fn bad_files_are_errors_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        for (writes, group, names) in [
            (0, 1 << 20, "suggested.writes_in_flight = 0"),
            (100_000, 1 << 20, "suggested.writes_in_flight = 100000"),
            (4, 1, "suggested.write_group_bytes = 1"),
            (4, 1 << 40, "suggested.write_group_bytes = 1099511627776"),
        ] {
            let path = file(dir.path(), writes, group);
            let e = load(&IoPropertiesFile::Path(path), dir.path()).unwrap_err();
            let e = format!("{e:#}");
            assert!(e.contains(KEY) && e.contains(names), "{e}");
        }
        let missing = dir.path().join("missing.toml");
        let e = format!(
            "{:#}",
            load(&IoPropertiesFile::Path(missing), dir.path()).unwrap_err()
        );
        assert!(e.contains(KEY) && e.contains("missing.toml"), "{e}");
        std::fs::write(dir.path().join(DEFAULT_NAME), "version = 1\n").unwrap();
        let e = format!(
            "{:#}",
            load(&IoPropertiesFile::Default, dir.path()).unwrap_err()
        );
        assert!(e.contains(KEY) && e.contains("missing field"), "{e}");
    }
}
