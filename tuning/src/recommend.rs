//! recommend — choosing settings from a sweep's points: the highest throughput whose publish
//! p99 meets an SLO (`--slo-p99-ms`), and the lowest publish p99 that sustains a target rate
//! (`--target-mbps`), each with its evidence (the candidates it beat, by how much, with their
//! repetition spread), "within noise" when the spreads (min..max over repetitions) of the
//! winner and a runner-up overlap, and a comparison with the Java client's and librdkafka's
//! defaults.
//!
//! Owns the rules (docs/TUNING.md). Must not read files or render charts.

use crate::point::{Mode, Point};
use crate::results::{PointRecord, Stat};

/// What the user asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Criteria {
    pub slo_p99_ms: Option<f64>,
    pub target_mbps: Option<f64>,
}

/// A client's default producer settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDefaults {
    pub client: &'static str,
    pub linger_ms: u64,
    pub batch_size: usize,
    pub acks: &'static str,
    pub compression: &'static str,
}

/// Java client (Kafka 4.0: linger.ms 5) and librdkafka defaults.
pub const DEFAULTS: [ClientDefaults; 2] = [
    ClientDefaults {
        client: "Java client (Kafka 4.0)",
        linger_ms: 5,
        batch_size: 16_384,
        acks: "all",
        compression: "none",
    },
    ClientDefaults {
        client: "librdkafka",
        linger_ms: 5,
        batch_size: 1_000_000,
        acks: "all",
        compression: "none",
    },
];

/// One configuration's best showing under a goal.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Every setting but the mode ([`Point::settings_id`]).
    pub settings: String,
    /// The point that gave the figure.
    pub point_id: String,
    pub point: Point,
    /// The figure ranked (MB/s or ms).
    pub figure: Stat,
    pub mb_per_s: Stat,
    pub p99_ms: Stat,
    /// The generator's null-sink ceiling was under 2× the point's rate: the figure may
    /// measure the generator, not the cluster.
    pub generator_bound: bool,
}

/// A candidate set against the winner.
#[derive(Debug, Clone, PartialEq)]
pub struct Versus {
    pub candidate: Candidate,
    /// How much better the winner's median is, in percent of this candidate's.
    pub winner_better_percent: f64,
    pub within_noise: bool,
}

/// A client's defaults against the winner.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultsVersus {
    pub defaults: ClientDefaults,
    /// The defaults' own showing, when the sweep measured that combination (with the winner's
    /// other settings: message size, partitions, ...); `None` when it did not, or it missed the
    /// goal.
    pub versus: Option<Versus>,
    /// Why there is no figure.
    pub note: Option<String>,
}

/// A recommendation and its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// "highest throughput with publish p99 ≤ 20 ms", ...
    pub goal: String,
    /// "MB/s" or "ms p99".
    pub unit: &'static str,
    pub winner: Option<Candidate>,
    /// Why there is no winner.
    pub none_because: Option<String>,
    /// What the reader must know about the winner's figure.
    pub note: Option<String>,
    /// Every other qualifying configuration, best first.
    pub others: Vec<Versus>,
    pub defaults: Vec<DefaultsVersus>,
}

impl Recommendation {
    /// The runners-up within noise of the winner.
    pub fn ties(&self) -> impl Iterator<Item = &Versus> {
        self.others.iter().filter(|v| v.within_noise)
    }
}

/// The recommendations the criteria ask for.
pub fn recommend(points: &[PointRecord], criteria: &Criteria) -> Vec<Recommendation> {
    let mut out = Vec::new();
    if let Some(slo) = criteria.slo_p99_ms {
        out.push(rank(
            points,
            format!("highest throughput with publish p99 ≤ {slo} ms"),
            "MB/s",
            true,
            &|r| slo_figure(r, slo),
        ));
    }
    if let Some(target) = criteria.target_mbps {
        out.push(rank(
            points,
            format!("lowest publish p99 sustaining {target} MB/s"),
            "ms p99",
            false,
            &|r| target_figure(r, target),
        ));
    }
    out
}

/// Usable figures of a point: finished, without failures, sustained.
fn usable(r: &PointRecord) -> Option<&crate::results::Summary> {
    r.summary
        .as_ref()
        .filter(|s| r.error.is_none() && s.failed == 0 && s.sustained)
}

/// Throughput, when the point's p99 meets the SLO.
fn slo_figure(r: &PointRecord, slo: f64) -> Option<Stat> {
    usable(r)
        .filter(|s| s.publish_p99_ms.median <= slo)
        .map(|s| s.mb_per_s)
}

/// p99, when the point sustained at least the target: fixed loads at or above it (the lowest
/// such load wins for one configuration, through the ranking), or a maximum-throughput point
/// reaching it (latency at saturation: pessimistic, used when no load qualifies).
fn target_figure(r: &PointRecord, target: f64) -> Option<Stat> {
    let s = usable(r)?;
    let reaches = match r.point.mode {
        Mode::FixedLoad { offered_mbps } => offered_mbps >= target,
        Mode::MaxThroughput => s.mb_per_s.median >= target,
    };
    reaches.then_some(s.publish_p99_ms)
}

/// Ranks configurations by `figure` (one candidate per configuration: its best point).
fn rank(
    points: &[PointRecord],
    goal: String,
    unit: &'static str,
    higher_is_better: bool,
    figure: &dyn Fn(&PointRecord) -> Option<Stat>,
) -> Recommendation {
    let better = |a: &Stat, b: &Stat| {
        if higher_is_better {
            a.median > b.median
        } else {
            a.median < b.median
        }
    };
    let mut best: Vec<Candidate> = Vec::new();
    for r in points {
        let (Some(f), Some(s)) = (figure(r), usable(r)) else {
            continue;
        };
        let c = Candidate {
            settings: r.point.settings_id(),
            point_id: r.id.clone(),
            point: r.point.clone(),
            figure: f,
            mb_per_s: s.mb_per_s,
            p99_ms: s.publish_p99_ms,
            generator_bound: s.ceiling_sufficient == Some(false),
        };
        match best.iter_mut().find(|b| b.settings == c.settings) {
            Some(b) if better(&c.figure, &b.figure) => *b = c,
            Some(_) => {}
            None => best.push(c),
        }
    }
    best.sort_by(|a, b| {
        let o = a.figure.median.total_cmp(&b.figure.median);
        if higher_is_better {
            o.reverse()
        } else {
            o
        }
    });
    let mut iter = best.into_iter();
    let Some(winner) = iter.next() else {
        return Recommendation {
            goal,
            unit,
            winner: None,
            none_because: Some(
                "no configuration met it (sustained, no failed records, and the goal)".into(),
            ),
            note: None,
            others: Vec::new(),
            defaults: Vec::new(),
        };
    };
    let versus = |c: Candidate| {
        let (w, o) = (winner.figure.median, c.figure.median);
        let winner_better_percent = if o == 0.0 {
            0.0
        } else if higher_is_better {
            (w - o) / o * 100.0
        } else {
            (o - w) / o * 100.0
        };
        Versus {
            within_noise: winner.figure.overlaps(&c.figure),
            winner_better_percent,
            candidate: c,
        }
    };
    let others: Vec<Versus> = iter.map(&versus).collect();
    let defaults = DEFAULTS
        .iter()
        .map(|d| defaults_versus(d, &winner, points, figure, higher_is_better, &versus))
        .collect();
    // A fixed load met the SLO best: the configuration may carry more within it.
    let note = match (higher_is_better, winner.point.mode) {
        (true, Mode::FixedLoad { offered_mbps }) => Some(format!(
            "its figure is the offered load ({offered_mbps} MB/s): no point offered more within the goal \
             (maximum-throughput points run at saturation, where p99 is high); sweep higher fixed loads \
             to find how much more it carries"
        )),
        _ => None,
    };
    Recommendation {
        goal,
        unit,
        winner: Some(winner),
        none_because: None,
        note,
        others,
        defaults,
    }
}

/// A client's defaults against the winner: its linger.ms, batch.size and acks with the winner's
/// other settings, uncompressed (the clients' default) when the sweep measured that, else with
/// the winner's codec (said in the note). Only points of the winner's kind of mode count: a
/// maximum-throughput winner is set against the defaults' maximum-throughput points, a
/// fixed-load winner against their fixed-load points (a load offered is not a maximum).
fn defaults_versus(
    d: &ClientDefaults,
    winner: &Candidate,
    points: &[PointRecord],
    figure: &dyn Fn(&PointRecord) -> Option<Stat>,
    higher_is_better: bool,
    versus: &dyn Fn(Candidate) -> Versus,
) -> DefaultsVersus {
    let w = &winner.point;
    let same_kind = |p: &Point| p.mode.is_max_throughput() == w.mode.is_max_throughput();
    let core = |p: &Point| {
        p.linger_ms == d.linger_ms
            && p.batch_size == d.batch_size
            && p.acks == d.acks
            && p.message_size == w.message_size
            && p.partitions == w.partitions
            && p.producers == w.producers
            && p.key_distribution == w.key_distribution
            && p.max_in_flight == w.max_in_flight
            && p.idempotence == w.idempotence
            && p.broker == w.broker
    };
    let note_only = |note: String| DefaultsVersus {
        defaults: d.clone(),
        versus: None,
        note: Some(note),
    };
    let codec = [d.compression.to_string(), w.codec_label()]
        .into_iter()
        .find(|c| {
            points
                .iter()
                .any(|r| core(&r.point) && same_kind(&r.point) && &r.point.codec_label() == c)
        });
    let Some(codec) = codec else {
        let elsewhere = points.iter().any(|r| core(&r.point));
        return note_only(match (elsewhere, w.mode.is_max_throughput()) {
            (false, _) => "not in this sweep".into(),
            (true, true) => "not in this sweep in maximum-throughput mode (only at fixed loads, \
                             which are not comparable with a maximum)"
                .into(),
            (true, false) => "not in this sweep at fixed loads (only in maximum-throughput mode, \
                              which is not comparable with a load offered)"
                .into(),
        });
    };
    let matches = |p: &Point| core(p) && same_kind(p) && p.codec_label() == codec;
    let with = if codec == d.compression {
        String::new()
    } else {
        format!(
            " (with {codec} as swept; the client's default is {})",
            d.compression
        )
    };
    if matches(w) {
        return note_only(format!("the recommendation is these defaults{with}"));
    }
    // The defaults' best qualifying point of that kind, ranked as the winner was.
    let best = points
        .iter()
        .filter(|r| matches(&r.point))
        .filter_map(|r| Some((r, figure(r)?, usable(r)?)))
        .max_by(|(_, a, _), (_, b, _)| {
            let o = a.median.total_cmp(&b.median);
            if higher_is_better {
                o
            } else {
                o.reverse()
            }
        });
    let Some((r, f, s)) = best else {
        let seen: Vec<String> = points
            .iter()
            .filter(|r| matches(&r.point))
            .map(|r| format!("{}: {}", r.point.mode.label(), showing(r)))
            .collect();
        return note_only(format!(
            "measured{with} ({}), but it does not meet the goal",
            seen.join("; ")
        ));
    };
    let candidate = Candidate {
        settings: r.point.settings_id(),
        point_id: r.id.clone(),
        point: r.point.clone(),
        figure: f,
        mb_per_s: s.mb_per_s,
        p99_ms: s.publish_p99_ms,
        generator_bound: s.ceiling_sufficient == Some(false),
    };
    DefaultsVersus {
        defaults: d.clone(),
        versus: Some(versus(candidate)),
        note: (!with.is_empty()).then(|| with.trim().trim_matches(['(', ')']).to_string()),
    }
}

/// A point's figures in a few words, for a note.
fn showing(r: &PointRecord) -> String {
    match (&r.summary, &r.error) {
        (_, Some(e)) => format!("failed: {e}"),
        (None, None) => "no figures".into(),
        (Some(s), None) => {
            let mut text = format!(
                "{:.2} MB/s, publish p99 {:.2} ms",
                s.mb_per_s.median, s.publish_p99_ms.median
            );
            if !s.sustained {
                text += ", not sustained";
            }
            if s.failed > 0 {
                text += &format!(", {} records failed", s.failed);
            }
            text
        }
    }
}

/// Said when the winner may have measured the generator.
pub const GENERATOR_BOUND: &str = "**Generator-bound**: the load generator's null-sink ceiling was under 2× this point's rate, so its figure may measure the generator rather than the cluster (a lower bound for throughput).\n\n";

/// ", 0.125 of the disk-write limit" when the limit was measured, else nothing.
pub fn disk_share(mb_per_s: f64, disk_write_mb_per_s: Option<f64>) -> String {
    disk_write_mb_per_s
        .filter(|&w| w > 0.0)
        .map_or(String::new(), |w| {
            format!(
                " ({:.3} of the disk's O_DIRECT write limit, {w:.0} MB/s)",
                mb_per_s / w
            )
        })
}

/// The recommendation as Markdown; its throughput also as a share of the disk-write limit when
/// that was measured.
pub fn markdown(r: &Recommendation, disk_write_mb_per_s: Option<f64>) -> String {
    let mut s = format!("### {}\n\n", r.goal);
    let Some(w) = &r.winner else {
        s += &format!(
            "None: {}.\n\n",
            r.none_because.as_deref().unwrap_or("no data")
        );
        return s;
    };
    let fig = |x: &Stat| format!("{:.2} {} ({:.2}–{:.2})", x.median, r.unit, x.min, x.max);
    s += &format!(
        "**{}** — {} over the repetitions (median, min–max); throughput {:.2} MB/s{}, publish p99 {:.2} ms (point `{}`).\n\n",
        w.point.settings_label(),
        fig(&w.figure),
        w.mb_per_s.median,
        disk_share(w.mb_per_s.median, disk_write_mb_per_s),
        w.p99_ms.median,
        w.point_id
    );
    if let Some(note) = &r.note {
        s += &format!("Note: {note}.\n\n");
    }
    if w.generator_bound {
        s += GENERATOR_BOUND;
    }
    let ties: Vec<&Versus> = r.ties().collect();
    if !ties.is_empty() {
        s += "Within noise (spreads overlap): ";
        s += &ties
            .iter()
            .map(|v| {
                format!(
                    "{} ({})",
                    v.candidate.point.settings_label(),
                    fig(&v.candidate.figure)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        s += ".\n\n";
    }
    if !r.others.is_empty() {
        s += "| beat | figure | winner better by | within noise |\n|---|---|---|---|\n";
        for v in r.others.iter().take(5) {
            s += &format!(
                "| {} ({}) | {} | {:.1} % | {} |\n",
                v.candidate.point.settings_label(),
                v.candidate.point.mode.label(),
                fig(&v.candidate.figure),
                v.winner_better_percent,
                if v.within_noise { "yes" } else { "no" }
            );
        }
        if r.others.len() > 5 {
            s += &format!("| … and {} more | | | |\n", r.others.len() - 5);
        }
        s += "\n";
    }
    for d in &r.defaults {
        let label = format!(
            "{} defaults (linger.ms {}, batch.size {}, acks {})",
            d.defaults.client, d.defaults.linger_ms, d.defaults.batch_size, d.defaults.acks
        );
        match (&d.versus, &d.note) {
            (Some(v), note) => {
                s += &format!(
                    "- {label}{}: {} — the recommendation is {:.1} % better{}.\n",
                    note.as_ref().map_or(String::new(), |n| format!(" ({n})")),
                    fig(&v.candidate.figure),
                    v.winner_better_percent,
                    if v.within_noise {
                        " (within noise)"
                    } else {
                        ""
                    }
                )
            }
            (None, Some(note)) => s += &format!("- {label}: {note}.\n"),
            (None, None) => {}
        }
    }
    s + "\n"
}

#[cfg(test)]
mod tests;
