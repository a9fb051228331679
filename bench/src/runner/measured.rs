//! runner::measured — the measured phase at one rate (or closed loop, or a record count): the
//! broker's CPU read before and after it, and, with consumers, each topic read from its end
//! while it is produced with values carrying their send time (end-to-end latency).
//!
//! Owns the measured phase and the figures only it can give (CPU, consumer backlog, end-to-end
//! latency). Must not search a rate, run the ceiling, or assemble the result document.

use crate::broker_cpu;
use crate::report::{BrokerCpu, Percentiles, Publish};
use crate::workload::Plan;

use super::consumers::Consumers;
use super::phase::{run_phase, Bound, Phase};
use super::{merge_publish, unix_ms, Cut, Payload, RunError, RunOptions, Target};

/// What the measured phase gave.
pub(super) struct Measured {
    pub(super) phase: Phase,
    pub(super) publish: Publish,
    /// Records acknowledged but not yet read when the producers finished (with consumers).
    pub(super) backlog: Option<u64>,
    pub(super) e2e_latency_ms: Option<Percentiles>,
    pub(super) broker_cpu: Option<BrokerCpu>,
    pub(super) started_unix_ms: u64,
    /// About finding the broker and what the consumers read, in that order.
    pub(super) warnings: Vec<String>,
    /// Set when the broker was found but its CPU times could not be read.
    pub(super) cpu_warning: Option<String>,
}

/// Runs the measured phase of `plan` at `rate` (`None`: closed loop).
pub(super) fn measure(
    plan: &Plan,
    target: &Target,
    payload: &Payload,
    rate: Option<f64>,
    opts: &RunOptions,
) -> Result<Measured, RunError> {
    let value_size = payload.value_size;
    let mut warnings = Vec::new();
    let broker = find_broker(&target.bootstrap, opts.broker_pid, &mut warnings);
    let cpu_before = broker
        .as_ref()
        .and_then(|(pid, _)| broker_cpu::cpu_times(*pid));
    let started_unix_ms = unix_ms();
    let bound = match plan.records {
        Some(n) => Bound::Records(n),
        None => Bound::Time(plan.test),
    };
    let consumers = if plan.consumers_per_subscription > 0 {
        Some(Consumers::start(plan, target)?)
    } else {
        None
    };
    let mut stamped;
    let measured_plan = if consumers.is_some() {
        // Each value carries its send time for the consumers' end-to-end latency.
        stamped = plan.clone();
        stamped.producer.stamp_send_time = true;
        &stamped
    } else {
        plan
    };
    let mut measured = run_phase(
        measured_plan,
        target,
        payload,
        rate,
        bound,
        opts,
        "test",
        consumers.as_ref(),
    );
    let mut backlog = None;
    let consumed = match (consumers, &mut measured) {
        (Some(c), Ok(m)) => {
            backlog = Some(c.backlog(m));
            let acked = m.reports.iter().map(|r| r.records_acked).sum();
            let (reports, e2e, drained) = c.finish(acked)?;
            // What was read while the run drained counts in the last interval.
            if let Some(Cut {
                e2e: Some(last), ..
            }) = m.intervals.cuts.last_mut()
            {
                let _ = last.add(&drained);
            }
            Some((reports, e2e))
        }
        (Some(c), Err(_)) => {
            c.stop();
            None
        }
        (None, _) => None,
    };
    let measured = measured?;
    let cpu_after = broker
        .as_ref()
        .and_then(|(pid, _)| broker_cpu::cpu_times(*pid));
    let publish = merge_publish(&measured.reports, value_size);
    let e2e_latency_ms = consumed.map(|(reports, e2e)| {
        let read: u64 = reports.iter().map(|r| r.records).sum();
        if read != publish.records {
            warnings.push(format!(
                "the consumers read {read} records of the {} acknowledged",
                publish.records
            ));
        }
        Percentiles::of(&e2e)
    });
    let (broker_cpu, cpu_warning) = match (broker, cpu_before, cpu_after) {
        (Some((pid, found_by)), Some(a), Some(b)) => {
            let user_s = b.user_s - a.user_s;
            let system_s = b.system_s - a.system_s;
            let cpu_s = user_s + system_s;
            let gb = publish.records as f64 * value_size as f64 / 1e9;
            let cpu = BrokerCpu {
                pid,
                found_by,
                user_s,
                system_s,
                cpu_s,
                cpu_s_per_gb: if gb > 0.0 { cpu_s / gb } else { 0.0 },
                cores_busy: if publish.elapsed_s > 0.0 {
                    cpu_s / publish.elapsed_s
                } else {
                    0.0
                },
            };
            (Some(cpu), None)
        }
        (Some((pid, _)), _, _) => (
            None,
            Some(format!(
                "could not read /proc/{pid}/stat: no broker CPU figures"
            )),
        ),
        _ => (None, None),
    };
    Ok(Measured {
        phase: measured,
        publish,
        backlog,
        e2e_latency_ms,
        broker_cpu,
        started_unix_ms,
        warnings,
        cpu_warning,
    })
}

/// The broker process: given, or found listening on the bootstrap port of a local address.
fn find_broker(
    bootstrap: &str,
    given: Option<u32>,
    warnings: &mut Vec<String>,
) -> Option<(u32, String)> {
    if let Some(pid) = given {
        return Some((pid, "--broker-pid".into()));
    }
    let addr = broker_cpu::is_local(bootstrap)?;
    match broker_cpu::find_listener(addr.port()) {
        Some(pid) if pid == std::process::id() => {
            warnings.push(
                "the target listens in this very process: its CPU is not separable from the generator's"
                    .into(),
            );
            None
        }
        Some(pid) => Some((pid, format!("listening on port {}", addr.port()))),
        None => {
            warnings.push(format!(
                "no process visible listening on port {} (another user's?): no broker CPU figures; give --broker-pid",
                addr.port()
            ));
            None
        }
    }
}
