//! progress — what a run shows while it runs, and the live hooks the producer feeds: per-interval
//! acknowledged records and an HDR histogram of the interval's publish latency ([`Live`]), a stop
//! flag (timed runs), the run's final merged histograms, and the live line itself
//! ([`ProgressLine`], indicatif on stderr: rate in msg/s and MB/s and the p99 of the last
//! interval, about once a second).
//!
//! It also keeps the histograms of the current HDR-log interval ([`Live::cut_interval`], which
//! the runner calls once a second during the measured phase: `--hdr-log` then has one interval
//! per second; a connection's records count in the interval in which it merged them, within
//! 100 ms of their acknowledgement).
//!
//! Owns the shared counters and their rendering. Must not decide whether to draw (the caller
//! knows whether stderr is a terminal and whether `--quiet` was given) and must not slow the
//! producer: each connection records into its own [`LiveRecorder`] and merges into the shared
//! state at most every 100 ms.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use kclient::producer::{LiveClient, LiveHook, ProduceHistograms};

/// An HDR histogram of microseconds, 1 µs .. 1 h at 3 significant digits (what every latency of a
/// run is recorded in, so they merge).
pub fn latency_histogram() -> Histogram<u64> {
    // Constant, valid bounds (not input).
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

/// The final histograms of one producer run, merged over its connections.
#[derive(Debug, Clone)]
pub struct RunHistograms {
    /// Publish latency (send → ack), µs.
    pub latency: Histogram<u64>,
    /// Publish delay (intended → actual send), µs; empty in a closed-loop run.
    pub delay: Histogram<u64>,
}

/// State shared by a run's connections and whoever watches it.
#[derive(Debug)]
pub struct Live {
    acked: AtomicU64,
    interval: Mutex<Histogram<u64>>,
    /// Latency and delay since the last `cut_interval`.
    log_interval: Mutex<RunHistograms>,
    stop: AtomicBool,
    finished: Mutex<Option<RunHistograms>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            acked: AtomicU64::new(0),
            interval: Mutex::new(latency_histogram()),
            log_interval: Mutex::new(RunHistograms::empty()),
            stop: AtomicBool::new(false),
            finished: Mutex::new(None),
        }
    }
}

impl RunHistograms {
    pub fn empty() -> RunHistograms {
        RunHistograms {
            latency: latency_histogram(),
            delay: latency_histogram(),
        }
    }
}

/// What one look at a [`Live`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Records acknowledged since the run started.
    pub acked: u64,
    /// p99 of publish latency since the previous snapshot, µs (`None`: nothing acknowledged).
    pub interval_p99_us: Option<u64>,
}

impl Live {
    pub fn new() -> Arc<Live> {
        Arc::new(Live::default())
    }

    /// A recorder for one connection.
    pub fn recorder(self: &Arc<Live>) -> LiveRecorder {
        LiveRecorder {
            live: self.clone(),
            local: RunHistograms::empty(),
            acked: 0,
            last_flush: Instant::now(),
        }
    }

    /// The histograms recorded since the previous cut (or the start), which start afresh.
    pub fn cut_interval(&self) -> RunHistograms {
        let mut h = self.log_interval.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *h, RunHistograms::empty())
    }

    /// Records acknowledged so far (as merged by the connections, every 100 ms).
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Asks the producers to stop offering records (they finish what is in flight).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Counts so far and the interval histogram's p99, which it then resets.
    pub fn snapshot(&self) -> Snapshot {
        let mut h = self.interval.lock().unwrap_or_else(|e| e.into_inner());
        let p99 = (!h.is_empty()).then(|| h.value_at_quantile(0.99));
        h.reset();
        Snapshot {
            acked: self.acked.load(Ordering::Relaxed),
            interval_p99_us: p99,
        }
    }

    /// Called by each producer run when it is over, with its merged histograms (several runs
    /// sharing one `Live`, e.g. one per topic, add up).
    pub fn finish(&self, histograms: RunHistograms) {
        let mut slot = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_mut() {
            Some(h) => {
                let _ = h.latency.add(&histograms.latency);
                let _ = h.delay.add(&histograms.delay);
            }
            None => *slot = Some(histograms),
        }
    }

    /// The histograms `finish` left, taken.
    pub fn take_histograms(&self) -> Option<RunHistograms> {
        self.finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// One connection's side of a [`Live`]: records locally, merges every 100 ms and when dropped.
#[derive(Debug)]
pub struct LiveRecorder {
    live: Arc<Live>,
    local: RunHistograms,
    acked: u64,
    last_flush: Instant,
}

impl LiveRecorder {
    /// One record acknowledged after `latency_us`.
    pub fn acked(&mut self, latency_us: u64) {
        let _ = self.local.latency.record(latency_us.max(1));
        self.acked += 1;
    }

    /// One record sent `delay_us` behind its intended time.
    pub fn delayed(&mut self, delay_us: u64) {
        let _ = self.local.delay.record(delay_us);
    }

    /// Whether the run asked producers to stop; also merges if 100 ms passed (call once per
    /// turn of the producer loop).
    pub fn tick(&mut self) -> bool {
        if self.last_flush.elapsed() >= Duration::from_millis(100) {
            self.flush();
        }
        self.live.stopped()
    }

    fn flush(&mut self) {
        self.last_flush = Instant::now();
        if self.acked == 0 && self.local.delay.is_empty() {
            return;
        }
        self.live.acked.fetch_add(self.acked, Ordering::Relaxed);
        self.acked = 0;
        {
            let mut h = self.live.interval.lock().unwrap_or_else(|e| e.into_inner());
            let _ = h.add(&self.local.latency);
        }
        let mut log = self
            .live
            .log_interval
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let _ = log.latency.add(&self.local.latency);
        let _ = log.delay.add(&self.local.delay);
        self.local.latency.reset();
        self.local.delay.reset();
    }
}

/// The producer's seam (`ProducerConfig::live`): each client records into its own
/// [`LiveRecorder`]; each run's merged histograms add up here.
impl LiveHook for Live {
    fn client(self: Arc<Self>) -> Box<dyn LiveClient> {
        Box::new(self.recorder())
    }

    fn finish(&self, histograms: &ProduceHistograms) {
        Live::finish(
            self,
            RunHistograms {
                latency: histograms.latency.clone(),
                delay: histograms.delay.clone(),
            },
        );
    }
}

impl LiveClient for LiveRecorder {
    fn tick(&mut self) -> bool {
        LiveRecorder::tick(self)
    }

    fn acked(&mut self, latency_us: u64) {
        LiveRecorder::acked(self, latency_us)
    }

    fn delayed(&mut self, delay_us: u64) {
        LiveRecorder::delayed(self, delay_us)
    }
}

impl Drop for LiveRecorder {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The live line: `[phase] 12.3 s  48,210 msg/s  49.4 MB/s  p99 3.1 ms`, redrawn about once a
/// second on stderr, until dropped.
pub struct ProgressLine {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressLine {
    /// Starts drawing `live` (values of `value_bytes` each) under `phase`; `draw = false` draws
    /// nothing (not a terminal, or `--quiet`).
    pub fn start(live: Arc<Live>, phase: &str, value_bytes: usize, draw: bool) -> ProgressLine {
        let stop = Arc::new(AtomicBool::new(false));
        if !draw {
            return ProgressLine { stop, thread: None };
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            None,
            indicatif::ProgressDrawTarget::stderr_with_hz(2),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{prefix}] {elapsed:>4} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_prefix(phase.to_string());
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut last = live.snapshot();
            let mut at = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if at.elapsed() < Duration::from_secs(1) {
                    bar.tick();
                    continue;
                }
                let now = live.snapshot();
                bar.set_message(line(&last, &now, at.elapsed(), value_bytes));
                last = now;
                at = Instant::now();
            }
            bar.finish_and_clear();
        });
        ProgressLine {
            stop,
            thread: Some(thread),
        }
    }
}

/// The text of one update: rates between two snapshots `elapsed` apart.
pub fn line(before: &Snapshot, now: &Snapshot, elapsed: Duration, value_bytes: usize) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let records = now.acked.saturating_sub(before.acked) as f64;
    let p99 = now.interval_p99_us.map_or("-".to_string(), |us| {
        format!("{:.2} ms", us as f64 / 1000.0)
    });
    format!(
        "{:>10.0} msg/s {:>8.1} MB/s  p99 {p99}  ({} acked)",
        records / secs,
        records * value_bytes as f64 / secs / 1e6,
        now.acked
    )
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorders_merge_into_the_interval_and_snapshots_reset_it() {
        let live = Live::new();
        let mut a = live.recorder();
        let mut b = live.recorder();
        for _ in 0..99 {
            a.acked(1_000);
        }
        b.acked(50_000);
        drop(a);
        drop(b);
        let s = live.snapshot();
        assert_eq!(s.acked, 100);
        let p99 = s.interval_p99_us.unwrap();
        assert!((990..=1_010).contains(&p99), "{p99}");
        let s2 = live.snapshot();
        assert_eq!(s2.acked, 100);
        assert_eq!(s2.interval_p99_us, None);
        let text = line(
            &Snapshot {
                acked: 0,
                interval_p99_us: None,
            },
            &s,
            Duration::from_secs(2),
            1000,
        );
        assert!(text.contains("50 msg/s"), "{text}");
        assert!(text.contains("0.1 MB/s"), "{text}");
        assert!(text.contains("p99 1.00 ms"), "{text}");
    }

    #[test]
    fn stop_is_seen_by_recorders() {
        let live = Live::new();
        let mut r = live.recorder();
        assert!(!r.tick());
        live.stop();
        assert!(r.tick());
    }
}
