//! Probe of the network: per NIC its driver, speed, queues, IRQs and their affinity, and ENA's
//! allowance-exceeded counters; the connection backlogs.
//!
//! Owns: reading /sys/class/net, /proc/irq and the net sysctls, and `ethtool -S` on an ENA NIC of
//! the real host (the counters are not in sysfs). Must not: change anything.

use std::collections::BTreeSet;

use super::{Item, Severity};
use crate::irq::{irqs_of_device, nic_driver, nic_queues, nics};
use crate::recommended::{NETDEV_MAX_BACKLOG, SOMAXCONN, TCP_MAX_SYN_BACKLOG};
use crate::root::HostRoot;

/// ENA's `*_allowance_exceeded` counters from `ethtool -S` text: packets the instance's network
/// allowance shaped or dropped (bandwidth in/out, packets per second, conntrack, link-local).
pub fn parse_ena_allowance(ethtool_stats: &str) -> Vec<(String, u64)> {
    ethtool_stats
        .lines()
        .filter_map(|l| {
            let (name, value) = l.trim().split_once(':')?;
            let name = name.trim();
            if !name.ends_with("_allowance_exceeded") {
                return None;
            }
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

fn ena_items(root: &HostRoot, nic: &str, items: &mut Vec<Item>) {
    let name = format!("net.{nic}.ena_allowance_exceeded");
    if !root.is_real() {
        items.push(Item::info("net", name, None).note("ethtool counters: real host only"));
        return;
    }
    let out = std::process::Command::new("ethtool")
        .args(["-S", nic])
        .output();
    let counters = match out {
        Ok(o) if o.status.success() => parse_ena_allowance(&String::from_utf8_lossy(&o.stdout)),
        _ => {
            items.push(Item::info("net", name, None).note("`ethtool -S` failed or is missing"));
            return;
        }
    };
    let total: u64 = counters.iter().map(|(_, v)| *v).sum();
    let text = counters
        .iter()
        .map(|(n, v)| format!("{}={v}", n.trim_end_matches("_allowance_exceeded")))
        .collect::<Vec<_>>()
        .join(" ");
    items.push(
        Item::check(
            "net",
            name,
            Some(text),
            "all 0",
            total == 0,
            Severity::Warning,
        )
        .note("non-zero: the instance's network allowance shaped traffic"),
    );
}

fn nic_items(root: &HostRoot, nic: &str, items: &mut Vec<Item>) {
    let base = format!("/sys/class/net/{nic}");
    let driver = nic_driver(root, nic);
    items.push(Item::info(
        "net",
        format!("net.{nic}.driver"),
        driver.clone(),
    ));
    // speed reads -1 or fails with EINVAL when the link has no speed (virtio, down links).
    let speed = root
        .read_trim(&format!("{base}/speed"))
        .filter(|s| s.parse::<i64>().is_ok_and(|v| v > 0));
    items.push(Item::info("net", format!("net.{nic}.speed_mbps"), speed));
    let (rx, tx) = (nic_queues(root, nic, "rx-"), nic_queues(root, nic, "tx-"));
    items.push(Item::info(
        "net",
        format!("net.{nic}.queues"),
        Some(format!("rx {} tx {}", rx.len(), tx.len())),
    ));
    let irqs = irqs_of_device(root, &format!("{base}/device"));
    let affinities: Vec<String> = irqs
        .iter()
        .map(|irq| {
            root.read_trim(&format!("/proc/irq/{irq}/smp_affinity_list"))
                .unwrap_or_else(|| "?".into())
        })
        .collect();
    let distinct: BTreeSet<&String> = affinities.iter().collect();
    let cpus = crate::irq::online_cpus(root).len();
    // Spread means: with several IRQs and CPUs, not every IRQ may land on the same CPU set.
    let spread = irqs.len() < 2 || cpus < 2 || distinct.len() > 1;
    let value = (!irqs.is_empty()).then(|| {
        irqs.iter()
            .zip(&affinities)
            .map(|(irq, a)| format!("{irq}:{a}"))
            .collect::<Vec<_>>()
            .join(" ")
    });
    items.push(
        Item::check(
            "net",
            format!("net.{nic}.irq_affinity"),
            value,
            "spread over CPUs",
            spread,
            Severity::Warning,
        )
        .note("IRQ:CPU list; the nic_irq_affinity tuner spreads them"),
    );
    if driver.as_deref() == Some("ena") {
        ena_items(root, nic, items);
    }
}

pub(super) fn probe(root: &HostRoot, items: &mut Vec<Item>) {
    for nic in nics(root) {
        nic_items(root, &nic, items);
    }
    super::sysctls_at_least(
        root,
        "net",
        &[
            (
                "net.core.somaxconn",
                "/proc/sys/net/core/somaxconn",
                SOMAXCONN,
            ),
            (
                "net.ipv4.tcp_max_syn_backlog",
                "/proc/sys/net/ipv4/tcp_max_syn_backlog",
                TCP_MAX_SYN_BACKLOG,
            ),
            (
                "net.core.netdev_max_backlog",
                "/proc/sys/net/core/netdev_max_backlog",
                NETDEV_MAX_BACKLOG,
            ),
        ],
        items,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ena_counters_parse_from_ethtool_text() {
        let text = "NIC statistics:\n     tx_timeout: 0\n     bw_in_allowance_exceeded: 12\n     \
                    pps_allowance_exceeded: 0\n     conntrack_allowance_exceeded: x\n";
        assert_eq!(
            parse_ena_allowance(text),
            vec![
                ("bw_in_allowance_exceeded".to_string(), 12),
                ("pps_allowance_exceeded".to_string(), 0)
            ]
        );
    }
}
