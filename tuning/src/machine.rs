//! machine — what the sweep ran on, stated on every chart: cores, CPU model, memory, and the
//! cgroup limits (cpu.max, memory.max) when the process runs under them.
//!
//! Owns reading those facts from /proc and /sys. Must not measure load (the runner does).

use serde::{Deserialize, Serialize};

/// The machine the generator (and a `--local` broker) ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    pub hostname: String,
    /// Cores this process may use (sched affinity).
    pub cores: usize,
    pub cpu_model: String,
    pub memory_bytes: Option<u64>,
    /// cgroup v2 cpu.max ("max 100000" when unlimited), if readable.
    pub cgroup_cpu_max: Option<String>,
    /// cgroup v2 memory.max, if readable.
    pub cgroup_memory_max: Option<String>,
    pub kernel: String,
}

impl Machine {
    /// This machine, now.
    pub fn this() -> Machine {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
        };
        let cpu_model = read("/proc/cpuinfo")
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let memory_bytes = read("/proc/meminfo").and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
        Machine {
            hostname: read("/proc/sys/kernel/hostname").unwrap_or_default(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_bytes,
            cgroup_cpu_max: read("/sys/fs/cgroup/cpu.max"),
            cgroup_memory_max: read("/sys/fs/cgroup/memory.max"),
            kernel: read("/proc/sys/kernel/osrelease").unwrap_or_default(),
        }
    }

    /// One line for a chart's caption.
    pub fn caption(&self) -> String {
        let mut s = format!("{} cores ({})", self.cores, self.cpu_model);
        if let Some(m) = self.memory_bytes {
            s += &format!(", {:.1} GiB RAM", m as f64 / (1u64 << 30) as f64);
        }
        match self.cgroup_cpu_max.as_deref() {
            Some(limit) if !limit.starts_with("max") => s += &format!(", cgroup cpu.max {limit}"),
            _ => {}
        }
        match self.cgroup_memory_max.as_deref() {
            Some(limit) if limit != "max" => s += &format!(", cgroup memory.max {limit}"),
            _ => {}
        }
        s + &format!(", Linux {}", self.kernel)
    }
}
