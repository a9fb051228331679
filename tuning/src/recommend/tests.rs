//! The recommendation rules against hand-made results.

use super::*;
use crate::results::Summary;

fn stat(min: f64, median: f64, max: f64) -> Stat {
    Stat { median, min, max }
}

/// A finished point with the given throughput and publish p99 (min, median, max).
fn rec(
    linger_ms: u64,
    batch_size: usize,
    mode: Mode,
    mbps: [f64; 3],
    p99: [f64; 3],
) -> PointRecord {
    let point = Point {
        linger_ms,
        batch_size,
        compression: "none".into(),
        compression_level: None,
        acks: "all".into(),
        message_size: 1024,
        partitions: 6,
        producers: 1,
        key_distribution: "NO_KEY".into(),
        max_in_flight: 5,
        idempotence: false,
        broker: "default".into(),
        mode,
    };
    let one = |x: f64| stat(x, x, x);
    PointRecord {
        id: point.id(),
        offered_msg_per_s: None,
        repetitions: Vec::new(),
        summary: Some(Summary {
            mb_per_s: stat(mbps[0], mbps[1], mbps[2]),
            msg_per_s: one(mbps[1] * 1e6 / 1024.0),
            publish_p50_ms: one(p99[1] / 3.0),
            publish_p99_ms: stat(p99[0], p99[1], p99[2]),
            publish_p99_9_ms: one(p99[2] * 2.0),
            delay_p99_ms: None,
            e2e_p99_ms: None,
            compression_ratio: one(1.0),
            cpu_s_per_gb: None,
            write_amplification: None,
            failed: 0,
            sustained: true,
            ceiling_sufficient: Some(true),
        }),
        error: None,
        point,
    }
}

const MAX: Mode = Mode::MaxThroughput;

fn slo(ms: f64) -> Criteria {
    Criteria {
        slo_p99_ms: Some(ms),
        target_mbps: None,
    }
}

#[test]
fn the_highest_throughput_under_the_slo_wins_and_is_set_against_the_java_defaults() {
    let points = vec![
        rec(5, 16_384, MAX, [38.0, 40.0, 41.0], [7.0, 8.0, 9.0]),
        rec(20, 262_144, MAX, [88.0, 90.0, 92.0], [14.0, 15.0, 16.0]),
        rec(
            50,
            1_048_576,
            MAX,
            [118.0, 120.0, 125.0],
            [35.0, 40.0, 45.0],
        ),
    ];
    let r = &recommend(&points, &slo(20.0))[0];
    let w = r.winner.as_ref().unwrap();
    assert_eq!((w.point.linger_ms, w.point.batch_size), (20, 262_144));
    assert_eq!(w.figure.median, 90.0);
    // Only the 40 MB/s point qualifies besides it: the 120 MB/s one misses the SLO.
    assert_eq!(r.others.len(), 1);
    let beaten = &r.others[0];
    assert_eq!(beaten.candidate.point.linger_ms, 5);
    assert!((beaten.winner_better_percent - 125.0).abs() < 1e-9);
    assert!(!beaten.within_noise);
    assert_eq!(r.ties().count(), 0);
    // linger.ms 5, batch.size 16 KiB, acks all, no compression: the Java client's defaults.
    let java = &r.defaults[0];
    assert_eq!(
        java.versus.as_ref().unwrap().candidate.point.batch_size,
        16_384
    );
    let rdkafka = &r.defaults[1];
    assert!(rdkafka.versus.is_none());
    assert_eq!(rdkafka.note.as_deref(), Some("not in this sweep"));
    let text = markdown(r, None);
    assert!(text.contains("linger.ms=20 batch.size=262144"), "{text}");
    assert!(!w.generator_bound && !text.contains("Generator-bound"));
    assert!(text.contains("125.0 % better"), "{text}");
    // With the disk's write limit measured, the throughput is also its share of it.
    let text = markdown(r, Some(360.0));
    assert!(
        text.contains("throughput 90.00 MB/s (0.250 of the disk's O_DIRECT write limit, 360 MB/s)"),
        "{text}"
    );
}

#[test]
fn two_candidates_whose_spreads_overlap_are_within_noise() {
    let points = vec![
        rec(20, 262_144, MAX, [85.0, 90.0, 95.0], [10.0, 11.0, 12.0]),
        rec(10, 262_144, MAX, [80.0, 88.0, 92.0], [9.0, 10.0, 11.0]),
        rec(5, 262_144, MAX, [58.0, 60.0, 62.0], [5.0, 6.0, 7.0]),
    ];
    let mut points = points;
    points[0].summary.as_mut().unwrap().ceiling_sufficient = Some(false);
    let r = &recommend(&points, &slo(50.0))[0];
    assert_eq!(r.winner.as_ref().unwrap().point.linger_ms, 20);
    assert!(r.winner.as_ref().unwrap().generator_bound);
    assert!(markdown(r, None).contains("**Generator-bound**"));
    let ties: Vec<u64> = r.ties().map(|v| v.candidate.point.linger_ms).collect();
    assert_eq!(
        ties,
        vec![10],
        "88 (80–92) overlaps 90 (85–95); 60 (58–62) does not"
    );
    assert!(
        markdown(r, None).contains("Within noise"),
        "{}",
        markdown(r, None)
    );
}

#[test]
fn the_target_rate_is_met_by_fixed_loads_at_or_above_it_and_the_lowest_p99_wins() {
    let load = |offered_mbps| Mode::FixedLoad { offered_mbps };
    let points = vec![
        rec(5, 16_384, load(50.0), [49.0, 50.0, 50.0], [2.8, 3.0, 3.3]),
        rec(1, 65_536, load(50.0), [49.0, 50.0, 50.0], [1.8, 2.0, 2.4]),
        // Below the target: its lower p99 does not count.
        rec(0, 16_384, load(20.0), [20.0, 20.0, 20.0], [0.5, 1.0, 1.1]),
    ];
    let r = &recommend(
        &points,
        &Criteria {
            slo_p99_ms: None,
            target_mbps: Some(40.0),
        },
    )[0];
    let w = r.winner.as_ref().unwrap();
    assert_eq!((w.point.linger_ms, w.point.batch_size), (1, 65_536));
    assert_eq!(w.figure.median, 2.0);
    assert_eq!(r.others.len(), 1);
    assert!((r.others[0].winner_better_percent - (1.0 / 3.0 * 100.0)).abs() < 1e-6);
    assert!(!r.others[0].within_noise, "2.4 < 2.8");
}

#[test]
fn failed_or_unsustained_points_never_win_and_no_winner_says_why() {
    let mut failed = rec(20, 262_144, MAX, [88.0, 90.0, 92.0], [1.0, 1.0, 1.0]);
    failed.summary.as_mut().unwrap().failed = 3;
    let mut late = rec(10, 262_144, MAX, [88.0, 99.0, 100.0], [1.0, 1.0, 1.0]);
    late.summary.as_mut().unwrap().sustained = false;
    let ok = rec(5, 16_384, MAX, [10.0, 10.0, 10.0], [1.0, 1.0, 1.0]);
    let r = &recommend(&[failed.clone(), late.clone(), ok], &slo(5.0))[0];
    assert_eq!(r.winner.as_ref().unwrap().point.linger_ms, 5);
    assert!(r.others.is_empty());
    let none = &recommend(&[failed, late], &slo(5.0))[0];
    assert!(none.winner.is_none());
    assert!(markdown(none, None).contains("None: no configuration met it"));
}

#[test]
fn defaults_measured_only_compressed_are_compared_with_the_codec_named() {
    let lz4 = |mut r: PointRecord| {
        r.point.compression = "lz4".into();
        r.id = r.point.id();
        r
    };
    let points = vec![
        lz4(rec(5, 16_384, MAX, [40.0, 42.0, 44.0], [7.0, 8.0, 9.0])),
        lz4(rec(
            5,
            262_144,
            MAX,
            [300.0, 310.0, 320.0],
            [9.0, 10.0, 11.0],
        )),
    ];
    let r = &recommend(&points, &slo(20.0))[0];
    assert_eq!(r.winner.as_ref().unwrap().point.batch_size, 262_144);
    assert!(r.note.is_none(), "a max-throughput winner needs no note");
    let java = &r.defaults[0];
    assert_eq!(
        java.versus.as_ref().unwrap().candidate.point.batch_size,
        16_384
    );
    let note = java.note.as_deref().unwrap();
    assert!(
        note.contains("with lz4 as swept") && note.contains("default is none"),
        "{note}"
    );
    let text = markdown(r, None);
    assert!(
        text.contains("(with lz4 as swept; the client's default is none): 42.00 MB/s"),
        "{text}"
    );
    // A fixed-load winner of the SLO goal says that its figure is only the load offered.
    let load = Mode::FixedLoad { offered_mbps: 20.0 };
    let fixed = vec![lz4(rec(
        5,
        16_384,
        load,
        [19.9, 20.0, 20.0],
        [7.0, 8.0, 9.0],
    ))];
    let r = &recommend(&fixed, &slo(20.0))[0];
    assert!(r
        .note
        .as_deref()
        .unwrap()
        .contains("sweep higher fixed loads"));
}

/// The bug this guards: a maximum-throughput winner was set against the defaults' best point of
/// any mode, so a fixed load the defaults carried (10 MB/s offered) read as "the recommendation
/// is 800 % better" although the defaults' own maximum was never compared.
#[test]
fn a_maximum_throughput_winner_is_set_only_against_the_defaults_maximum_throughput_points() {
    let load = Mode::FixedLoad { offered_mbps: 10.0 };
    let winner = rec(20, 262_144, MAX, [88.0, 90.0, 92.0], [14.0, 15.0, 16.0]);
    let java_at_load = rec(5, 16_384, load, [9.9, 10.0, 10.0], [2.0, 2.5, 3.0]);
    let java_max_fast = rec(5, 16_384, MAX, [58.0, 60.0, 63.0], [9.0, 10.0, 11.0]);
    let mut java_max_slow = java_max_fast.clone();
    java_max_slow.summary.as_mut().unwrap().publish_p99_ms = stat(40.0, 45.0, 50.0);

    // The defaults' maximum meets the SLO: that is the figure compared, not the fixed load.
    let points = vec![winner.clone(), java_at_load.clone(), java_max_fast];
    let r = &recommend(&points, &slo(20.0))[0];
    assert_eq!(r.winner.as_ref().unwrap().figure.median, 90.0);
    let java = r.defaults[0].versus.as_ref().unwrap();
    assert_eq!(java.candidate.point.mode, MAX);
    assert_eq!(java.candidate.figure.median, 60.0);
    assert!((java.winner_better_percent - 50.0).abs() < 1e-9);
    assert!(markdown(r, None)
        .contains(": 60.00 MB/s (58.00–63.00) — the recommendation is 50.0 % better"));

    // Its maximum misses the SLO: no figure, although its fixed load met it.
    let points = vec![winner.clone(), java_at_load.clone(), java_max_slow];
    let r = &recommend(&points, &slo(20.0))[0];
    let java = &r.defaults[0];
    assert!(java.versus.is_none(), "{java:?}");
    assert_eq!(
        java.note.as_deref(),
        Some("measured (max: 60.00 MB/s, publish p99 45.00 ms), but it does not meet the goal")
    );
    // The fixed load is evidence (a configuration competes with its best point), named as a
    // load; it is not the defaults' comparison.
    let text = markdown(r, None);
    assert!(
        text.contains(
            "| linger.ms=5 batch.size=16384 compression=none acks=all (load=10MB/s) | 10.00 MB/s"
        ),
        "{text}"
    );
    let java_line = text.lines().find(|l| l.starts_with("- Java")).unwrap();
    assert!(
        !java_line.contains("10.00 MB/s") && !java_line.contains("better"),
        "{java_line}"
    );

    // Only the fixed load was swept for the defaults: said so, nothing compared.
    let points = vec![winner.clone(), java_at_load];
    let r = &recommend(&points, &slo(20.0))[0];
    let note = r.defaults[0].note.as_deref().unwrap();
    assert!(
        r.defaults[0].versus.is_none()
            && note.starts_with("not in this sweep in maximum-throughput mode"),
        "{note}"
    );
    assert_eq!(r.defaults[1].note.as_deref(), Some("not in this sweep"));
    assert!(markdown(r, None).contains(
        "librdkafka defaults (linger.ms 5, batch.size 1000000, acks all): not in this sweep."
    ));
}

#[test]
fn a_fixed_load_winner_is_set_only_against_the_defaults_fixed_load_points() {
    let load = |offered_mbps| Mode::FixedLoad { offered_mbps };
    let points = vec![
        rec(1, 65_536, load(50.0), [49.0, 50.0, 50.0], [1.8, 2.0, 2.4]),
        rec(5, 16_384, load(50.0), [49.0, 50.0, 50.0], [3.5, 4.0, 4.4]),
        // The defaults at saturation: a worse p99, but not the comparison for a load.
        rec(5, 16_384, MAX, [70.0, 71.0, 72.0], [30.0, 31.0, 33.0]),
    ];
    let r = &recommend(
        &points,
        &Criteria {
            slo_p99_ms: None,
            target_mbps: Some(40.0),
        },
    )[0];
    let java = r.defaults[0].versus.as_ref().unwrap();
    assert_eq!(java.candidate.point.mode, load(50.0));
    assert_eq!(java.candidate.figure.median, 4.0);
    assert!((java.winner_better_percent - 50.0).abs() < 1e-9);
}
