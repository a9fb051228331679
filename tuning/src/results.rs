//! results — the sweep's results file: JSON lines, one [`Line`] each — a `sweep` header whenever
//! a sweep (or its resumption) starts, then one `point` per finished point — appended and synced
//! as they come, so an interrupted sweep leaves a valid prefix. A torn last line (the process
//! killed mid-write) is ignored when read and cut off before a resumed sweep appends.
//!
//! Owns the file's shape, reading it back, and the per-point summary (median and spread of the
//! repetitions). Must not measure or render.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bench::limits::Limits;
use bench::report::BenchResult;
use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::plan::SweepPlan;
use crate::point::Point;
use crate::TuneError;

/// `format` of the header line.
pub const FORMAT: &str = "weir-tune-results";
/// Version of the lines' shape.
pub const VERSION: u32 = 1;
/// Longest results file read (a large sweep is a few tens of MB).
pub const MAX_RESULTS_BYTES: u64 = 1 << 30;

/// One line of the results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum Line {
    Sweep(Header),
    Point(PointRecord),
}

/// What was swept, where, on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub started_unix_ms: u64,
    pub weir_version: String,
    pub plan: SweepPlan,
    pub machine: Machine,
    pub target: TargetInfo,
    /// The machine's disk and loopback TCP limits, measured as this sweep (or its resumption)
    /// started; absent in files written before they were (and when the sweep skipped them).
    #[serde(default)]
    pub limits: Option<Limits>,
}

/// The cluster measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetInfo {
    /// "local" (a `weir serve` the sweep started) or "bootstrap".
    pub kind: String,
    /// The bootstrap address (the local broker's changes with each start).
    pub bootstrap: String,
    /// With `--local`: each broker variant's weir.toml settings (beyond data.dir and kafka.addr).
    pub broker_settings: BTreeMap<String, BTreeMap<String, String>>,
}

/// A finished point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointRecord {
    pub id: String,
    pub point: Point,
    /// The offered rate of the repetitions (records/s): the load, or the searched rate;
    /// `None`: closed loop (the search found nothing above 1 record/s).
    pub offered_msg_per_s: Option<f64>,
    pub repetitions: Vec<Repetition>,
    /// `None` when the point failed (then `error` says why).
    pub summary: Option<Summary>,
    pub error: Option<String>,
}

/// One measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repetition {
    /// The bench runner's full result document (docs/bench-results.md).
    pub result: BenchResult,
    /// Bytes the broker process wrote to storage meanwhile (/proc/PID/io write_bytes), when
    /// it runs on this machine.
    pub broker_write_bytes: Option<u64>,
}

/// Median and spread (min..max) of one figure over the repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Stat> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// Whether the spreads of two stats overlap (the difference is within noise).
    pub fn overlaps(&self, other: &Stat) -> bool {
        self.min <= other.max && other.min <= self.max
    }
}

/// A point's figures over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub mb_per_s: Stat,
    pub msg_per_s: Stat,
    pub publish_p50_ms: Stat,
    pub publish_p99_ms: Stat,
    pub publish_p99_9_ms: Stat,
    /// Present when a rate was offered.
    pub delay_p99_ms: Option<Stat>,
    /// Present when the plan ran consumers.
    #[serde(default)]
    pub e2e_p99_ms: Option<Stat>,
    pub compression_ratio: Stat,
    /// Broker CPU seconds per GB of values (broker on this machine).
    pub cpu_s_per_gb: Option<Stat>,
    /// Broker storage bytes written per value byte acknowledged.
    pub write_amplification: Option<Stat>,
    /// Records failed over all repetitions.
    pub failed: u64,
    /// Every repetition achieved ≥ 95 % of its offered rate with publish delay p99 ≤ 100 ms
    /// (the runner's rule; always true closed loop).
    pub sustained: bool,
    /// The generator's ceiling was at least 2× the measured rate (`None`: not checked).
    pub ceiling_sufficient: Option<bool>,
}

impl Summary {
    /// From the repetitions (`None` for none).
    pub fn of(reps: &[Repetition]) -> Option<Summary> {
        let get = |f: &dyn Fn(&Repetition) -> Option<f64>| -> Option<Stat> {
            Stat::of(&reps.iter().filter_map(f).collect::<Vec<_>>())
        };
        Some(Summary {
            mb_per_s: get(&|x| Some(x.result.publish.mb_per_s))?,
            msg_per_s: get(&|x| Some(x.result.publish.msg_per_s))?,
            publish_p50_ms: get(&|x| Some(x.result.publish_latency_ms.p50))?,
            publish_p99_ms: get(&|x| Some(x.result.publish_latency_ms.p99))?,
            publish_p99_9_ms: get(&|x| Some(x.result.publish_latency_ms.p99_9))?,
            delay_p99_ms: get(&|x| x.result.publish_delay_ms.as_ref().map(|d| d.p99)),
            e2e_p99_ms: get(&|x| x.result.e2e_latency_ms.as_ref().map(|d| d.p99)),
            compression_ratio: get(&|x| Some(x.result.publish.compression_ratio))?,
            cpu_s_per_gb: get(&|x| x.result.broker_cpu.as_ref().map(|c| c.cpu_s_per_gb)),
            write_amplification: get(&|x| {
                let value_bytes =
                    x.result.publish.records as f64 * x.result.config.message_size as f64;
                x.broker_write_bytes
                    .filter(|_| value_bytes > 0.0)
                    .map(|w| w as f64 / value_bytes)
            }),
            failed: reps.iter().map(|x| x.result.publish.failed).sum(),
            sustained: reps.iter().all(|x| {
                let offered = x.result.config.producer_rate;
                offered <= 0.0
                    || (x.result.publish.msg_per_s >= bench::runner::SUSTAINED_SHARE * offered
                        && x.result
                            .publish_delay_ms
                            .as_ref()
                            .is_none_or(|d| d.p99 <= bench::runner::MAX_DELAY_P99_MS)
                        && x.result.publish.failed == 0)
            }),
            ceiling_sufficient: reps
                .iter()
                .filter_map(|x| x.result.ceiling.as_ref().map(|c| c.sufficient))
                .reduce(|a, b| a && b),
        })
    }
}

/// A results file read back: its headers and its points (the last record of an id wins).
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub headers: Vec<Header>,
    pub points: Vec<PointRecord>,
    /// Set when the last line was torn (not valid JSON and no newline after it).
    pub torn_tail: bool,
}

impl Results {
    /// The limits of the latest start of the sweep that measured them.
    pub fn limits(&self) -> Option<&Limits> {
        self.headers.iter().rev().find_map(|h| h.limits.as_ref())
    }

    /// Reads `path`; a torn last line is skipped, any other bad line is an error naming it.
    pub fn read(path: &Path) -> Result<Results, TuneError> {
        let io = |source| TuneError::Io {
            path: path.display().to_string(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_RESULTS_BYTES {
            return Err(TuneError::Results(format!(
                "{}: {len} bytes, more than {MAX_RESULTS_BYTES}",
                path.display()
            )));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Results::parse(&bytes).map_err(|e| TuneError::Results(format!("{}: {e}", path.display())))
    }

    pub fn parse(bytes: &[u8]) -> Result<Results, String> {
        let mut out = Results::default();
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
        for (n, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed: Line =
                serde_json::from_slice(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            match parsed {
                Line::Sweep(h) => {
                    if h.format != FORMAT || h.version != VERSION {
                        return Err(format!(
                            "line {}: format {:?} version {}, expected {FORMAT:?} version {VERSION}",
                            n + 1,
                            h.format,
                            h.version
                        ));
                    }
                    out.headers.push(h)
                }
                Line::Point(p) => match by_id.get(&p.id) {
                    Some(&i) => out.points[i] = p,
                    None => {
                        by_id.insert(p.id.clone(), out.points.len());
                        out.points.push(p);
                    }
                },
            }
        }
        let tail = &bytes[complete..];
        if !tail.iter().all(u8::is_ascii_whitespace) {
            // A complete line missing only its newline is still a record.
            match serde_json::from_slice::<Line>(tail) {
                Ok(_) => return Results::parse(&[bytes, b"\n"].concat()),
                Err(_) => out.torn_tail = true,
            }
        }
        if out.headers.is_empty() && !out.points.is_empty() {
            return Err("no sweep header line".into());
        }
        Ok(out)
    }
}

/// Appends lines to a results file, each written whole and synced.
pub struct Writer {
    file: File,
    path: PathBuf,
}

impl Writer {
    /// A new file (`resume` false: refused if it exists and is not empty), or the end of an
    /// existing one (`resume`), a torn last line cut off first.
    pub fn open(path: &Path, resume: bool) -> Result<Writer, TuneError> {
        let io = |source| TuneError::Io {
            path: path.display().to_string(),
            source,
        };
        let existing = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if existing > 0 && !resume {
            return Err(TuneError::Results(format!(
                "{} exists: give --resume to continue it, or another --out",
                path.display()
            )));
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        if existing > 0 {
            let bytes = std::fs::read(path).map_err(io)?;
            let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let tail = &bytes[complete..];
            if !tail.is_empty() {
                if serde_json::from_slice::<Line>(tail).is_ok() {
                    // Whole but unterminated: terminate it.
                    let mut f = &file;
                    std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).map_err(io)?;
                    f.write_all(b"\n").map_err(io)?;
                } else {
                    file.set_len(complete as u64).map_err(io)?;
                }
            }
        }
        Ok(Writer {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends one line (one write, then fsync).
    pub fn append(&mut self, line: &Line) -> Result<(), TuneError> {
        let mut text = serde_json::to_vec(line)
            .map_err(|e| TuneError::Results(format!("encoding a line: {e}")))?;
        text.push(b'\n');
        let io = |source| TuneError::Io {
            path: self.path.display().to_string(),
            source,
        };
        std::io::Seek::seek(&mut self.file, std::io::SeekFrom::End(0)).map_err(io)?;
        self.file.write_all(&text).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::Mode;

    fn header() -> Header {
        let plan = SweepPlan::parse(
            "name = \"t\"\nbudget_minutes = 1\n[timing]\nwarmup_s = 0\nmeasure_s = 1\nrepetitions = 1\n\
             [modes]\nfixed_load_mbps = [1]\n[axes]\nlinger_ms = [0, 5]\nbatch_size = [16384]\n\
             compression = [\"none\"]\nacks = [\"1\"]\n",
        )
        .unwrap();
        Header {
            format: FORMAT.into(),
            version: VERSION,
            started_unix_ms: 1,
            weir_version: "0".into(),
            plan,
            machine: Machine::this(),
            target: TargetInfo {
                kind: "bootstrap".into(),
                bootstrap: "127.0.0.1:9092".into(),
                broker_settings: BTreeMap::new(),
            },
            limits: None,
        }
    }

    fn point(h: &Header, i: usize) -> PointRecord {
        let p = h.plan.points().unwrap()[i].clone();
        assert!(matches!(p.mode, Mode::FixedLoad { .. }));
        PointRecord {
            id: p.id(),
            point: p,
            offered_msg_per_s: Some(976.5625),
            repetitions: Vec::new(),
            summary: None,
            error: Some("refused".into()),
        }
    }

    #[test]
    fn lines_round_trip_and_a_torn_tail_is_ignored_then_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let h = header();
        let mut w = Writer::open(&path, false).unwrap();
        w.append(&Line::Sweep(h.clone())).unwrap();
        w.append(&Line::Point(point(&h, 0))).unwrap();
        drop(w);
        let whole = std::fs::read(&path).unwrap();
        // Killed halfway through writing the second point.
        let second = serde_json::to_vec(&Line::Point(point(&h, 1))).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(&second[..second.len() / 2]);
        std::fs::write(&path, &torn).unwrap();
        let r = Results::read(&path).unwrap();
        assert!(r.torn_tail);
        assert_eq!(r.headers, vec![h.clone()]);
        assert_eq!(r.points, vec![point(&h, 0)]);
        // Without --resume an existing file is refused; with it, the torn line goes.
        let e = Writer::open(&path, false).err().unwrap().to_string();
        assert!(e.contains("--resume"), "{e}");
        let mut w = Writer::open(&path, true).unwrap();
        w.append(&Line::Point(point(&h, 1))).unwrap();
        let r = Results::read(&path).unwrap();
        assert!(!r.torn_tail);
        assert_eq!(r.points, vec![point(&h, 0), point(&h, 1)]);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }

    #[test]
    fn a_header_written_before_limits_were_recorded_still_loads() {
        let h = header();
        let mut json = serde_json::to_value(Line::Sweep(h.clone())).unwrap();
        json.as_object_mut().unwrap().remove("limits").unwrap();
        let r = Results::parse(format!("{json}\n").as_bytes()).unwrap();
        assert_eq!(r.headers, vec![h.clone()]);
        assert!(r.limits().is_none());
        // A resumption that measured them: the latest measured limits are the file's.
        let mut measured = h.clone();
        measured.limits = Some(bench::limits::Limits {
            dir: "/data".into(),
            disk_write_mb_per_s: Some(500.0),
            disk_read_mb_per_s: Some(900.0),
            disk_bytes: 1 << 30,
            disk_block_bytes: 1 << 20,
            disk_depth: 8,
            disk_error: None,
            tcp_loopback_mb_per_s: Some(3000.0),
            tcp_error: None,
            elapsed_s: 4.0,
        });
        let text = format!(
            "{json}\n{}\n{}\n",
            serde_json::to_string(&Line::Sweep(measured)).unwrap(),
            serde_json::to_string(&Line::Sweep(h)).unwrap()
        );
        let r = Results::parse(text.as_bytes()).unwrap();
        assert_eq!(r.limits().unwrap().disk_write_mb_per_s, Some(500.0));
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_naming_it() {
        let h = header();
        let mut text = serde_json::to_string(&Line::Sweep(h)).unwrap();
        text += "\n{\"type\":\"point\"}\n";
        let e = Results::parse(text.as_bytes()).unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn median_and_spread() {
        let s = Stat::of(&[3.0, 1.0, 2.0, f64::NAN]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Stat::of(&[4.0, 1.0]).unwrap().median, 2.5);
        assert!(Stat::of(&[]).is_none());
        let a = Stat {
            median: 2.0,
            min: 1.0,
            max: 3.0,
        };
        let b = Stat {
            median: 3.5,
            min: 3.0,
            max: 4.0,
        };
        let c = Stat {
            median: 5.0,
            min: 3.1,
            max: 6.0,
        };
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }
}
