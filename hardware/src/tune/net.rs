//! Tuners of the network stack: RPS (receive packet steering over the IRQ CPUs), XPS (transmit
//! queue i served from CPU i), and the connection backlogs (somaxconn, tcp_max_syn_backlog,
//! netdev_max_backlog; raised, never lowered).
//!
//! Owns: those plans and the CPU mask format. Must not: write (run.rs does).

use std::collections::BTreeSet;

use super::{plan_of, raise_to, Action, Plan, TuneContext, Tuner};
use crate::irq::{nic_queues, nics};
use crate::recommended::{NETDEV_MAX_BACKLOG, SOMAXCONN, TCP_MAX_SYN_BACKLOG};
use crate::root::HostRoot;

/// A kernel CPU mask: hex in 32-bit groups separated by commas, highest first (`ff,ffffffff`).
pub fn mask_of(cpus: &[usize]) -> String {
    let groups = cpus.iter().max().map_or(1, |m| m / 32 + 1);
    let mut words = vec![0u32; groups];
    for &cpu in cpus {
        words[cpu / 32] |= 1 << (cpu % 32);
    }
    let mut out = format!("{:x}", words[groups - 1]);
    for w in words[..groups - 1].iter().rev() {
        out.push_str(&format!(",{w:08x}"));
    }
    out
}

/// The CPUs of a kernel mask; `None` if it is not hex.
pub fn cpus_of_mask(text: &str) -> Option<BTreeSet<usize>> {
    let mut cpus = BTreeSet::new();
    let digits: Vec<char> = text.trim().chars().filter(|c| *c != ',').collect();
    for (i, c) in digits.iter().rev().enumerate() {
        let nibble = c.to_digit(16)?;
        for bit in 0..4 {
            if nibble & (1 << bit) != 0 {
                cpus.insert(i * 4 + bit);
            }
        }
    }
    Some(cpus)
}

/// A write of the mask of `cpus` unless the file already holds that set.
fn set_mask(root: &HostRoot, path: &str, cpus: &[usize]) -> Option<Vec<Action>> {
    let from = root.read(path)?;
    let wanted: BTreeSet<usize> = cpus.iter().copied().collect();
    if cpus_of_mask(&from).as_ref() == Some(&wanted) {
        return Some(Vec::new());
    }
    Some(vec![Action::Write {
        path: path.to_string(),
        from,
        to: mask_of(cpus),
    }])
}

pub struct Rps;

impl Tuner for Rps {
    fn name(&self) -> &'static str {
        "nic_rps"
    }
    fn about(&self) -> &'static str {
        "rps_cpus of every receive queue = the IRQ CPUs (spread softirq work)"
    }
    fn plan(&self, root: &HostRoot, ctx: &TuneContext) -> Plan {
        let cpus = super::irq::irq_cpus(root, ctx);
        let parts = nics(root)
            .iter()
            .flat_map(|nic| {
                nic_queues(root, nic, "rx-")
                    .into_iter()
                    .map(|q| format!("/sys/class/net/{nic}/queues/{q}/rps_cpus"))
                    .collect::<Vec<_>>()
            })
            .map(|path| set_mask(root, &path, &cpus))
            .collect();
        plan_of(parts, "no receive queue with rps_cpus")
    }
}

pub struct Xps;

impl Tuner for Xps {
    fn name(&self) -> &'static str {
        "nic_xps"
    }
    fn about(&self) -> &'static str {
        "xps_cpus of transmit queue i = IRQ CPU i (round robin): each CPU sends on its own queue"
    }
    fn plan(&self, root: &HostRoot, ctx: &TuneContext) -> Plan {
        let cpus = super::irq::irq_cpus(root, ctx);
        if cpus.is_empty() {
            return Plan::NotApplicable("no CPUs online".into());
        }
        let mut parts = Vec::new();
        for nic in nics(root) {
            for (i, q) in nic_queues(root, &nic, "tx-").into_iter().enumerate() {
                let path = format!("/sys/class/net/{nic}/queues/{q}/xps_cpus");
                parts.push(set_mask(root, &path, &[cpus[i % cpus.len()]]));
            }
        }
        plan_of(parts, "no transmit queue with xps_cpus")
    }
}

pub struct Backlog;

impl Tuner for Backlog {
    fn name(&self) -> &'static str {
        "net_backlog"
    }
    fn about(&self) -> &'static str {
        "raise somaxconn and tcp_max_syn_backlog to 4096, netdev_max_backlog to 16384"
    }
    fn plan(&self, root: &HostRoot, _: &TuneContext) -> Plan {
        plan_of(
            vec![
                raise_to(root, "/proc/sys/net/core/somaxconn", SOMAXCONN),
                raise_to(
                    root,
                    "/proc/sys/net/ipv4/tcp_max_syn_backlog",
                    TCP_MAX_SYN_BACKLOG,
                ),
                raise_to(
                    root,
                    "/proc/sys/net/core/netdev_max_backlog",
                    NETDEV_MAX_BACKLOG,
                ),
            ],
            "no net sysctls (a network namespace without /proc/sys/net?)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_round_trip_in_the_kernel_format() {
        assert_eq!(mask_of(&[0, 1, 2, 3]), "f");
        assert_eq!(mask_of(&[0, 39]), "80,00000001");
        assert_eq!(mask_of(&[]), "0");
        assert_eq!(cpus_of_mask("80,00000001\n"), Some(BTreeSet::from([0, 39])));
        assert_eq!(
            cpus_of_mask("00000000,0000000f"),
            Some(BTreeSet::from([0, 1, 2, 3]))
        );
        assert_eq!(cpus_of_mask("xyz"), None);
    }
}
