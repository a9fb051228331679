//! Core placement for `weir serve`: which CPU each shard runs on and which one the embedded
//! coordinator gets, from the host's topology read through a [`HostRoot`] (online CPUs, the
//! process's allowed CPUs, SMT siblings, NUMA nodes).
//!
//! The rule: shards take distinct physical cores before any core's second hardware thread, and
//! alternate NUMA nodes while doing so (so a broker with fewer shards than CPUs spreads over the
//! memory controllers and never doubles up on a core while a core is idle). The coordinator
//! gets a CPU no shard has — preferring one on a core no shard has — and only when every allowed
//! CPU has a shard does it share the last one placed. Explicit `cores` and `coord.core` are kept
//! as given, checked against the CPUs the process may use.
//!
//! Owns: reading the topology and that rule. Must not: pin anything (the engine's shards and the
//! coordinator do) or read argv.

use std::collections::BTreeMap;
use std::fmt;

use crate::root::{parse_cpu_list, HostRoot};
use crate::HwError;

/// Most CPUs a host may list (Linux's NR_CPUS upper bound).
pub const CPUS_MAX: usize = 8192;

/// One hardware thread the process may run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    pub id: usize,
    /// The physical core: the lowest id among its SMT siblings.
    pub core: usize,
    /// The NUMA node (0 when the host has no NUMA information).
    pub node: usize,
}

/// The CPUs this process may use, in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub cpus: Vec<Cpu>,
}

/// What the operator asked for (`cores`, `shards`, `coord.core`); `None` leaves it to the rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub cores: Option<Vec<usize>>,
    pub shards: Option<usize>,
    pub coord_core: Option<usize>,
}

/// Where everything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Shard i runs on `shard_cpus[i]`.
    pub shard_cpus: Vec<usize>,
    /// The embedded coordinator's CPU.
    pub coord_cpu: usize,
}

fn cpu_list(root: &HostRoot, rel: &str) -> Result<Vec<usize>, HwError> {
    let text = root.read(rel).ok_or_else(|| {
        HwError::io(
            "reading",
            &root.path(rel),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })?;
    parse_cpu_list(&text, CPUS_MAX)
        .ok_or_else(|| HwError::Invalid(format!("{rel}: not a CPU list: {:?}", text.trim())))
}

/// The process's allowed CPUs from /proc/self/status (`Cpus_allowed_list`), if it says.
fn allowed(root: &HostRoot) -> Option<Vec<usize>> {
    let status = root.read("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    parse_cpu_list(line, CPUS_MAX)
}

impl Topology {
    /// The online CPUs the process may use, with their cores and nodes. A CPU whose siblings or
    /// node cannot be read is its own core, on node 0 (VMs and containers hide some of sysfs).
    pub fn read(root: &HostRoot) -> Result<Topology, HwError> {
        let online = cpu_list(root, "/sys/devices/system/cpu/online")?;
        let allowed = allowed(root);
        let mut node_of = BTreeMap::new();
        for node in cpu_list(root, "/sys/devices/system/node/online").unwrap_or_default() {
            let rel = format!("/sys/devices/system/node/node{node}/cpulist");
            for cpu in cpu_list(root, &rel).unwrap_or_default() {
                node_of.insert(cpu, node);
            }
        }
        let cpus: Vec<Cpu> = online
            .into_iter()
            .filter(|id| allowed.as_ref().is_none_or(|a| a.contains(id)))
            .map(|id| {
                let rel = format!("/sys/devices/system/cpu/cpu{id}/topology/thread_siblings_list");
                let core = cpu_list(root, &rel)
                    .ok()
                    .and_then(|s| s.into_iter().min())
                    .unwrap_or(id);
                let node = node_of.get(&id).copied().unwrap_or(0);
                Cpu { id, core, node }
            })
            .collect();
        if cpus.is_empty() {
            return Err(HwError::Invalid(
                "no online CPU is in this process's allowed set".into(),
            ));
        }
        Ok(Topology { cpus })
    }

    /// `n` CPUs, each its own core, one node: for a host whose sysfs cannot be read.
    pub fn flat(n: usize) -> Topology {
        Topology {
            cpus: (0..n.max(1))
                .map(|id| Cpu {
                    id,
                    core: id,
                    node: 0,
                })
                .collect(),
        }
    }

    pub fn cpu(&self, id: usize) -> Option<&Cpu> {
        self.cpus.iter().find(|c| c.id == id)
    }

    /// Every CPU in the order shards take them: the first thread of each core before any second
    /// thread, NUMA nodes in turn within each round.
    pub fn shard_order(&self) -> Vec<usize> {
        // Per node, per core, its threads in id order.
        let mut by_node: BTreeMap<usize, BTreeMap<usize, Vec<usize>>> = BTreeMap::new();
        for c in &self.cpus {
            by_node
                .entry(c.node)
                .or_default()
                .entry(c.core)
                .or_default()
                .push(c.id);
        }
        let threads_max = by_node
            .values()
            .flat_map(|cores| cores.values().map(Vec::len))
            .max()
            .unwrap_or(0);
        let mut order = Vec::with_capacity(self.cpus.len());
        for thread in 0..threads_max {
            // This round's CPU of each core, per node; then the nodes interleaved.
            let mut columns: Vec<Vec<usize>> = by_node
                .values()
                .map(|cores| {
                    cores
                        .values()
                        .filter_map(|threads| threads.get(thread).copied())
                        .collect()
                })
                .collect();
            let longest = columns.iter().map(Vec::len).max().unwrap_or(0);
            for i in 0..longest {
                for column in &mut columns {
                    if let Some(&cpu) = column.get(i) {
                        order.push(cpu);
                    }
                }
            }
        }
        assert_eq!(order.len(), self.cpus.len(), "every CPU placed once");
        order
    }

    /// Places the shards and the coordinator (see the module's rule).
    pub fn place(&self, request: &Request) -> Result<Placement, HwError> {
        let allowed = |what: &str, id: usize| -> Result<(), HwError> {
            if self.cpu(id).is_none() {
                let ids: Vec<usize> = self.cpus.iter().map(|c| c.id).collect();
                return Err(HwError::Invalid(format!(
                    "{what} names CPU {id}, which is not online or not allowed for this process \
                     (usable: {})",
                    CpuIds(&ids)
                )));
            }
            Ok(())
        };
        let pool = match &request.cores {
            Some(cores) if cores.is_empty() => {
                return Err(HwError::Invalid("cores is empty".into()))
            }
            Some(cores) => {
                for &c in cores {
                    allowed("cores", c)?;
                }
                cores.clone()
            }
            None => self.shard_order(),
        };
        let shards = request.shards.unwrap_or(pool.len());
        if shards == 0 {
            return Err(HwError::Invalid("shards must be at least 1".into()));
        }
        let shard_cpus: Vec<usize> = (0..shards).map(|i| pool[i % pool.len()]).collect();
        let coord_cpu = match request.coord_core {
            Some(c) => {
                allowed("coord.core", c)?;
                c
            }
            None => self.coordinator_cpu(&shard_cpus),
        };
        Ok(Placement {
            shard_cpus,
            coord_cpu,
        })
    }

    /// A CPU on a core without shards, else a CPU without a shard, else the last shard's.
    fn coordinator_cpu(&self, shard_cpus: &[usize]) -> usize {
        let busy_cores: Vec<usize> = shard_cpus
            .iter()
            .filter_map(|id| self.cpu(*id).map(|c| c.core))
            .collect();
        let order = self.shard_order();
        let free = |c: &&usize| !shard_cpus.contains(c);
        order
            .iter()
            .rev()
            .filter(free)
            .find(|id| {
                self.cpu(**id)
                    .is_some_and(|c| !busy_cores.contains(&c.core))
            })
            .or_else(|| order.iter().rev().find(free))
            .copied()
            .or_else(|| shard_cpus.last().copied())
            .unwrap_or(0)
    }

    /// `cpu 3 (core 1, node 0)`, for the startup line.
    pub fn describe(&self, id: usize) -> String {
        match self.cpu(id) {
            Some(c) => format!("cpu {} (core {}, node {})", c.id, c.core, c.node),
            None => format!("cpu {id}"),
        }
    }
}

/// CPU ids as a kernel-style list (`0-3,8`).
pub struct CpuIds<'a>(pub &'a [usize]);

impl fmt::Display for CpuIds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids = self.0.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut first = true;
        let mut i = 0;
        while i < ids.len() {
            let start = ids[i];
            while i + 1 < ids.len() && ids[i + 1] == ids[i] + 1 {
                i += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if ids[i] == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{}", ids[i])?;
            }
            i += 1;
        }
        Ok(())
    }
}
