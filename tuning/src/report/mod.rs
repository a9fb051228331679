//! report — `weir tune report`: from a results file, one self-contained HTML file (inline SVG
//! charts drawn with plotters, no network fetch), a Markdown summary with the recommendations,
//! and a CSV of every point.
//!
//! Owns choosing what each chart shows ([`View`]: the plan's first value of every axis a chart
//! does not vary) and writing the files. Must not measure or decide (recommend does); the
//! drawing is `charts`', the page `html`'s, the tables `tables`'.

mod charts;
mod html;
mod tables;

use std::path::{Path, PathBuf};

use bench::limits::Limits;

use crate::point::{Codec, Mode, Point};
use crate::recommend::{self, Criteria};
use crate::results::{Header, PointRecord, Results, Summary};
use crate::TuneError;

/// What `write` produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// summary.md's text.
    pub summary_markdown: String,
}

/// One chart: its title, the SVG, and a note on what it selects.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub svg: String,
    pub note: String,
}

/// Writes report.html, summary.md and points.csv into `dir` (created if missing).
pub fn write(results: &Results, dir: &Path, criteria: &Criteria) -> Result<Written, TuneError> {
    let header = results
        .headers
        .last()
        .ok_or_else(|| TuneError::Report("the results file has no sweep header".into()))?;
    if results.points.is_empty() {
        return Err(TuneError::Report(
            "the results file has no finished point".into(),
        ));
    }
    let view = View::new(header, &results.points, results.limits());
    let recommendations = recommend::recommend(&results.points, criteria);
    let charts = charts::all(&view)?;
    let summary = tables::markdown(&view, &recommendations, &charts);
    let page = html::page(&view, &recommendations, &charts);
    let csv = tables::csv(&view);
    std::fs::create_dir_all(dir).map_err(|source| TuneError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut files = Vec::new();
    for (name, text) in [
        ("report.html", &page),
        ("summary.md", &summary),
        ("points.csv", &csv),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| TuneError::Io {
            path: path.display().to_string(),
            source,
        })?;
        files.push(path);
    }
    Ok(Written {
        files,
        summary_markdown: summary,
    })
}

/// An axis a chart may vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    Linger,
    Batch,
    Codec,
    Acks,
}

/// The results as the charts see them.
pub(crate) struct View<'a> {
    pub header: &'a Header,
    pub points: &'a [PointRecord],
    /// The machine's limits measured by the sweep (its latest start that measured them).
    pub limits: Option<&'a Limits>,
    /// The plan's first codec (as "zstd:3").
    first_codec: String,
}

impl<'a> View<'a> {
    fn new(header: &'a Header, points: &'a [PointRecord], limits: Option<&'a Limits>) -> View<'a> {
        let first_codec = header
            .plan
            .axes
            .compression
            .first()
            .and_then(|c| Codec::parse(c).ok())
            .map(|c| match c.level {
                Some(l) => format!("{}:{l}", c.name),
                None => c.name,
            })
            .unwrap_or_default();
        View {
            header,
            points,
            limits,
            first_codec,
        }
    }

    /// The limits, as a caption fragment.
    pub fn limits_caption(&self) -> String {
        match self.limits {
            Some(l) => format!("Limits measured in the run: {}", l.caption()),
            None => "Limits (disk, network): not measured (the results file does not record them)"
                .into(),
        }
    }

    /// The disk's O_DIRECT sequential write limit (MB/s), when measured.
    pub fn disk_write_mb_per_s(&self) -> Option<f64> {
        self.limits
            .and_then(|l| l.disk_write_mb_per_s)
            .filter(|&w| w > 0.0)
    }

    /// `mb_per_s` as a share of the disk-write limit ("0.125"), or "–" when not measured.
    pub fn disk_ratio(&self, mb_per_s: f64) -> String {
        match self.disk_write_mb_per_s() {
            Some(w) => format!("{:.3}", mb_per_s / w),
            None => "–".into(),
        }
    }

    /// Finished points with figures, whose settings outside `free` are the plan's first values.
    pub fn select(&self, free: &[Axis], mode: impl Fn(&Mode) -> bool) -> Vec<(&Point, &Summary)> {
        let a = &self.header.plan.axes;
        let first_broker = self.header.plan.broker_names().into_iter().next();
        self.points
            .iter()
            .filter(|r| r.error.is_none() && mode(&r.point.mode))
            .filter_map(|r| r.summary.as_ref().map(|s| (&r.point, s)))
            .filter(|(p, _)| {
                let fixed = |axis: Axis, same: bool| free.contains(&axis) || same;
                fixed(Axis::Linger, a.linger_ms.first() == Some(&p.linger_ms))
                    && fixed(Axis::Batch, a.batch_size.first() == Some(&p.batch_size))
                    && fixed(Axis::Codec, p.codec_label() == self.first_codec)
                    && fixed(Axis::Acks, a.acks.first() == Some(&p.acks))
                    && a.message_size.first() == Some(&p.message_size)
                    && a.partitions.first() == Some(&p.partitions)
                    && a.producers.first() == Some(&p.producers)
                    && a.key_distribution.first() == Some(&p.key_distribution)
                    && a.max_in_flight.first() == Some(&p.max_in_flight)
                    && a.idempotence.first() == Some(&p.idempotence)
                    && first_broker.as_ref() == Some(&p.broker)
            })
            .collect()
    }

    /// The fixed settings of the charts, in words.
    pub fn fixed_settings(&self) -> String {
        let a = &self.header.plan.axes;
        let first = |v: Option<String>| v.unwrap_or_default();
        format!(
            "message size {} B, {} partitions, {} producer(s), keys {}, max.in.flight {}, idempotence {}, payload {}",
            first(a.message_size.first().map(|v| v.to_string())),
            first(a.partitions.first().map(|v| v.to_string())),
            first(a.producers.first().map(|v| v.to_string())),
            first(a.key_distribution.first().cloned()),
            first(a.max_in_flight.first().map(|v| v.to_string())),
            first(a.idempotence.first().map(|v| v.to_string())),
            self.header.plan.workload.payload
        )
    }

    /// What every chart states: machine and its measured limits, target and broker settings,
    /// flush and acks policy, timing.
    pub fn caption(&self, acks: &str) -> String {
        let h = self.header;
        let broker = match h.target.broker_settings.iter().next() {
            Some((name, s)) if !s.is_empty() => format!(
                "broker {name}: {}",
                s.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some((name, _)) => format!("broker {name}: its defaults"),
            None => "broker: its defaults".into(),
        };
        let flush = h
            .target
            .broker_settings
            .values()
            .next()
            .map(|s| {
                let set: Vec<String> = s
                    .iter()
                    .filter(|(k, _)| k.starts_with("log.flush"))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                if set.is_empty() {
                    "flush: the broker's default policy (log.flush.* unset)".to_string()
                } else {
                    format!("flush: {}", set.join(", "))
                }
            })
            .unwrap_or_else(|| "flush: the broker's default policy".into());
        let t = &h.plan.timing;
        format!(
            "Machine: {}. {}. Target: {} — {}; {}; acks {}. Each point: {} s warm-up, {} × {} s windows (median, min–max). {}.",
            h.machine.caption(),
            self.limits_caption(),
            self.target(),
            broker,
            flush,
            acks,
            t.warmup_s,
            t.repetitions,
            t.measure_s,
            self.fixed_settings()
        )
    }

    /// The cluster measured, in words.
    pub fn target(&self) -> String {
        let t = &self.header.target;
        if t.kind == "local" {
            "a weir serve started by the sweep (--local)".into()
        } else {
            format!("the cluster at {}", t.bootstrap)
        }
    }

    /// The acks values of the plan, as a caption fragment.
    pub fn acks_list(&self) -> String {
        self.header.plan.axes.acks.join(" and ")
    }

    /// The plan's first acks value.
    pub fn first_acks(&self) -> String {
        self.header
            .plan
            .axes
            .acks
            .first()
            .cloned()
            .unwrap_or_default()
    }

    /// The codecs of the plan, as labels, in plan order.
    pub fn codecs(&self) -> Vec<String> {
        self.header
            .plan
            .axes
            .compression
            .iter()
            .filter_map(|c| Codec::parse(c).ok())
            .map(|c| match c.level {
                Some(l) => format!("{}:{l}", c.name),
                None => c.name,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
