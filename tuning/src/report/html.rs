//! report::html — the self-contained report page: inline CSS, inline SVG charts each with a
//! caption stating machine, broker settings, flush and acks policy; the recommendations with
//! their evidence; every point in a table. No script, no external resource (not even a
//! favicon), so it renders offline and identically everywhere.
//!
//! Owns the page's markup. Must not choose or draw.

use std::fmt::Write as _;

use super::{Chart, View};
use crate::recommend::Recommendation;
use crate::results::Stat;

const STYLE: &str =
    "body{font-family:sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;color:#222}\
figure{margin:1.5em 0;border:1px solid #ddd;padding:.5em;background:#fff}\
figcaption{font-size:.85em;color:#444;margin-top:.4em}\
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}\
td:first-child,th:first-child{text-align:left}\
.win{background:#e8f6e8;padding:.5em;border-left:4px solid #3a3}\
.none{background:#fbeaea;padding:.5em;border-left:4px solid #a33}\
.note{color:#666;font-size:.85em}";

/// The whole page.
pub(super) fn page(view: &View, recs: &[Recommendation], charts: &[Chart]) -> String {
    let h = view.header;
    let mut s = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(
        s,
        "<title>weir tune report: {}</title><link rel=\"icon\" href=\"data:,\"><style>{STYLE}</style></head><body>",
        esc(&h.plan.name)
    );
    let _ = write!(
        s,
        "<h1>weir tune report: {}</h1><p>{}</p><p class=\"note\">{}</p>",
        esc(&h.plan.name),
        esc(&h.plan.description),
        esc(&view.caption(&view.acks_list()))
    );
    s += "<h2>Recommendations</h2>";
    if recs.is_empty() {
        s += "<p>None asked for: give <code>--slo-p99-ms</code> and/or <code>--target-mbps</code>.</p>";
    }
    for r in recs {
        s += &recommendation(r, view.disk_write_mb_per_s());
    }
    s += "<h2>Charts</h2>";
    for c in charts {
        let _ = write!(
            s,
            "<figure>{}<figcaption>{}</figcaption></figure>",
            strip_xml_decl(&c.svg),
            esc(&c.note)
        );
    }
    s += &points_table(view);
    s += "</body></html>\n";
    s
}

fn fig(x: &Stat, unit: &str) -> String {
    format!("{:.2} {unit} ({:.2}–{:.2})", x.median, x.min, x.max)
}

fn recommendation(r: &Recommendation, disk_write_mb_per_s: Option<f64>) -> String {
    let mut s = format!("<h3>{}</h3>", esc(&r.goal));
    let Some(w) = &r.winner else {
        let _ = write!(
            s,
            "<p class=\"none\">None: {}.</p>",
            esc(r.none_because.as_deref().unwrap_or("no data"))
        );
        return s;
    };
    let _ = write!(
        s,
        "<p class=\"win\"><b>{}</b>: {} (median over the repetitions, min–max); {:.2} MB/s{}, publish p99 {:.2} ms.<br><span class=\"note\">{}</span></p>",
        esc(&w.point.settings_label()),
        esc(&fig(&w.figure, r.unit)),
        w.mb_per_s.median,
        esc(&crate::recommend::disk_share(w.mb_per_s.median, disk_write_mb_per_s)),
        w.p99_ms.median,
        esc(&w.point_id)
    );
    if let Some(note) = &r.note {
        let _ = write!(s, "<p class=\"note\">Note: {}.</p>", esc(note));
    }
    if w.generator_bound {
        s += "<p class=\"none\"><b>Generator-bound</b>: the load generator's null-sink ceiling was under 2× this point's rate, so its figure may measure the generator rather than the cluster (a lower bound for throughput).</p>";
    }
    let ties: Vec<String> = r
        .ties()
        .map(|v| {
            format!(
                "{} ({})",
                v.candidate.point.settings_label(),
                fig(&v.candidate.figure, r.unit)
            )
        })
        .collect();
    if !ties.is_empty() {
        let _ = write!(
            s,
            "<p><b>Within noise</b> (the repetition spreads overlap): {}.</p>",
            esc(&ties.join("; "))
        );
    }
    if !r.others.is_empty() {
        s += "<table><tr><th>beat</th><th>figure</th><th>winner better by</th><th>within noise</th></tr>";
        for v in r.others.iter().take(8) {
            let _ = write!(
                s,
                "<tr><td>{} ({})</td><td>{}</td><td>{:.1} %</td><td>{}</td></tr>",
                esc(&v.candidate.point.settings_label()),
                esc(&v.candidate.point.mode.label()),
                esc(&fig(&v.candidate.figure, r.unit)),
                v.winner_better_percent,
                if v.within_noise { "yes" } else { "no" }
            );
        }
        s += "</table>";
    }
    s += "<ul>";
    for d in &r.defaults {
        let label = format!(
            "{} defaults (linger.ms {}, batch.size {}, acks {})",
            d.defaults.client, d.defaults.linger_ms, d.defaults.batch_size, d.defaults.acks
        );
        let text = match (&d.versus, &d.note) {
            (Some(v), note) => format!(
                "{}{}: {} — the recommendation is {:.1} % better{}",
                label,
                note.as_ref().map_or(String::new(), |n| format!(" ({n})")),
                fig(&v.candidate.figure, r.unit),
                v.winner_better_percent,
                if v.within_noise {
                    " (within noise)"
                } else {
                    ""
                }
            ),
            (None, Some(n)) => format!("{label}: {n}"),
            (None, None) => label,
        };
        let _ = write!(s, "<li>{}</li>", esc(&text));
    }
    s + "</ul>"
}

fn points_table(view: &View) -> String {
    let mut s = String::from(
        "<h2>Every point</h2><table><tr><th>point</th><th>MB/s</th><th>÷ disk write</th><th>publish p99 ms</th><th>p99.9 ms</th><th>compression</th><th>CPU s/GB</th><th>sustained</th></tr>",
    );
    for r in view.points {
        match (&r.summary, &r.error) {
            (Some(x), None) => {
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
                    esc(&r.id),
                    esc(&fig(&x.mb_per_s, "")),
                    esc(&view.disk_ratio(x.mb_per_s.median)),
                    esc(&fig(&x.publish_p99_ms, "")),
                    x.publish_p99_9_ms.median,
                    x.compression_ratio.median,
                    x.cpu_s_per_gb.map_or("–".into(), |c| format!("{:.1}", c.median)),
                    if x.sustained { "yes" } else { "no" }
                );
            }
            (_, error) => {
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td colspan=\"7\">failed: {}</td></tr>",
                    esc(&r.id),
                    esc(error.as_deref().unwrap_or("no figures"))
                );
            }
        }
    }
    s + "</table>"
}

/// An SVG document without its XML declaration (inline in HTML).
fn strip_xml_decl(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest.find("?>").map_or(svg, |i| rest[i + 2..].trim_start()),
        None => svg,
    }
}

/// HTML-escaped text.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '&' => out += "&amp;",
            '"' => out += "&quot;",
            '\'' => out += "&#39;",
            c => out.push(c),
        }
    }
    out
}
