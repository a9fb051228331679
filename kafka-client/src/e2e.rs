//! e2e — `weir bench e2e`: producers and consumers of one topic together in one process. The
//! consumers find the latest offsets first, then the producers send, stamping each value's first
//! 8 bytes with the send time on the process-wide clock ([`crate::clock::epoch_us`]); the
//! consumers record consume time − that stamp as end-to-end latency. Reports publish rate and
//! latency, publish delay (with a rate), consume rate and end-to-end latency, each from merged HDR
//! histograms.
//!
//! Owns only the orchestration. Must not measure anything itself (the producer and consumer do)
//! nor read argv.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::consumer::{self, ConsumeReport, ConsumerConfig, ConsumerError, Progress, StartAt};
use crate::producer::{self, Latency, ProduceReport, ProducerConfig, ProducerError};

/// Errors of an e2e run.
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    #[error("producer: {0}")]
    Producer(#[from] ProducerError),
    #[error("consumer: {0}")]
    Consumer(#[from] ConsumerError),
    #[error("{0}")]
    Run(String),
}

/// An e2e run: the producer's and the consumer's settings (the topic and bootstrap are the
/// producer's; the consumer starts at the latest offsets and stops once it has read every record
/// the producers sent, or `idle` after the last one).
#[derive(Debug, Clone)]
pub struct E2eConfig {
    pub producer: ProducerConfig,
    pub consumer: ConsumerConfig,
    /// The consumers give up this long after the last record they read.
    pub idle: Duration,
}

/// The result of one e2e run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct E2eReport {
    pub produce: ProduceReport,
    pub consume: ConsumeReport,
    /// Send → consumed, per record (also in `consume.e2e_latency`).
    pub e2e_latency: Latency,
}

impl E2eReport {
    pub fn summary(&self) -> String {
        format!(
            "{}{}end-to-end {}\n",
            self.produce.summary(),
            self.consume.summary(),
            self.e2e_latency.line()
        )
    }
}

pub fn run(config: E2eConfig) -> Result<E2eReport, E2eError> {
    let mut p = config.producer.clone();
    p.stamp_send_time = true;
    let c = ConsumerConfig {
        bootstrap: p.bootstrap.clone(),
        topic: p.topic.clone(),
        start: StartAt::Latest,
        records: Some(p.records),
        idle: Some(config.idle),
        // The runner stops the consumers (below), however long the producers take.
        duration: Duration::MAX,
        e2e: true,
        ..config.consumer.clone()
    };
    let progress = Arc::new(Progress::default());
    let consumers = c.consumers;
    let shared = progress.clone();
    let consumer = std::thread::Builder::new()
        .name("bench-e2e-consumers".into())
        .spawn(move || consumer::run_with(c, shared))
        .map_err(|e| E2eError::Run(format!("starting the consumers: {e}")))?;
    // Produce only once every consumer has its start offsets, or nothing would be measured.
    let deadline = Instant::now() + Duration::from_secs(60);
    while progress.positioned.load(Ordering::SeqCst) < consumers {
        if consumer.is_finished() || Instant::now() > deadline {
            progress.stop.store(true, Ordering::SeqCst);
            return match consumer.join() {
                Ok(Err(e)) => Err(e.into()),
                _ => Err(E2eError::Run("the consumers did not start".into())),
            };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let produced = producer::run(p);
    // Records that failed will never arrive: wait for the acknowledged ones, or until the
    // consumers have read nothing new for `idle`.
    let acked = produced.as_ref().map_or(0, |r| r.records_acked);
    let (mut seen, mut since) = (progress.records.load(Ordering::SeqCst), Instant::now());
    while !consumer.is_finished() {
        let now = progress.records.load(Ordering::SeqCst);
        if now != seen {
            (seen, since) = (now, Instant::now());
        }
        if produced.is_err() || now >= acked || since.elapsed() >= config.idle {
            progress.stop.store(true, Ordering::SeqCst);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let consumed = consumer
        .join()
        .map_err(|_| E2eError::Run("the consumer thread panicked".into()))?;
    let produce = produced?;
    let consume = consumed?;
    let e2e_latency = consume
        .e2e_latency
        .clone()
        .ok_or_else(|| E2eError::Run("no end-to-end latency measured".into()))?;
    Ok(E2eReport {
        produce,
        consume,
        e2e_latency,
    })
}
