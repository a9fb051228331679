//! runner::ceiling — the honesty check: the same load, closed loop, against an in-process null
//! sink; its rate is the generator's own ceiling, and a ceiling under
//! [`CEILING_FACTOR`](crate::report::CEILING_FACTOR) times the measured rate means the generator
//! may have been the bottleneck.
//!
//! Owns running the sink and the ceiling's verdict. Must not touch the target (it runs after the
//! measured phase, while the target is idle).

use std::time::Duration;

use crate::null_sink::{NullSink, NullSinkConfig};
use crate::report::{Ceiling, Publish, CEILING_FACTOR};
use crate::workload::Plan;

use super::phase::{run_phase, Bound};
use super::{merge_publish, Payload, RunError, RunOptions, Target};

/// Longest ceiling run (the null sink answers fast; more adds nothing).
pub const CEILING_MAX: Duration = Duration::from_secs(10);

/// The generator's ceiling (msg/s, MB/s) for `plan`: `None` unless `opts.check_ceiling`; the
/// known one when given; else measured against a fresh null sink.
pub fn figures(
    plan: &Plan,
    target: &Target,
    payload: &Payload,
    opts: &RunOptions,
) -> Result<Option<(f64, f64)>, RunError> {
    if !opts.check_ceiling {
        return Ok(None);
    }
    if let Some(known) = opts.known_ceiling {
        return Ok(Some(known));
    }
    let sink = NullSink::start(NullSinkConfig {
        listen: "127.0.0.1:0"
            .parse()
            .map_err(|e| RunError::Other(format!("{e}")))?,
        partitions: plan.partitions_per_topic,
    })?;
    let sink_target = Target {
        name: "null-sink".into(),
        bootstrap: sink.addr().to_string(),
        topic_names: target.topic_names.clone(),
    };
    let bound = match plan.records {
        Some(n) => Bound::Records(n),
        None => Bound::Time(plan.test.min(CEILING_MAX)),
    };
    let phase = run_phase(
        plan,
        &sink_target,
        payload,
        None,
        bound,
        opts,
        "ceiling",
        None,
    );
    sink.stop();
    let p = merge_publish(&phase?.reports, payload.value_size);
    Ok(Some((p.msg_per_s, p.mb_per_s)))
}

/// The ceiling's verdict against what the target achieved.
pub(super) fn verdict((msg_per_s, mb_per_s): (f64, f64), publish: &Publish) -> Ceiling {
    let ratio = if publish.msg_per_s > 0.0 {
        msg_per_s / publish.msg_per_s
    } else {
        f64::INFINITY
    };
    Ceiling {
        msg_per_s,
        mb_per_s,
        ratio: if ratio.is_finite() { ratio } else { 0.0 },
        sufficient: ratio.is_finite() && ratio >= CEILING_FACTOR,
    }
}
