//! `hosts.toml`, the input of `weir deploy render`: the cluster's shared settings and one entry
//! per host with its fixed address, rack (AZ), node id and cores. Parsing refuses what would
//! break a fixed-IP deployment: wildcard or loopback addresses, duplicates, even quorums.
//!
//! Owns: the file's shape and its refusals. Must not: render anything (configs.rs, units.rs).

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Deserialize;

use crate::HwError;

/// A bound on hosts in one file.
pub const HOSTS_MAX: usize = 1000;

/// Settings every host shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    #[serde(default = "default_kafka_port")]
    pub kafka_port: u16,
    /// weir's coordinator protocol (brokers and peers).
    #[serde(default = "default_coord_port")]
    pub coord_port: u16,
    /// ZooKeeper clients on every coordinator; absent: not served.
    pub zk_port: Option<u16>,
    /// Broker data in DATA_DIR/broker, coordinator data in DATA_DIR/coord.
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// Where configs go on the hosts.
    #[serde(default = "default_config_dir")]
    pub config_dir: String,
    #[serde(default = "default_binary")]
    pub weir_binary: String,
    /// The user the services run as.
    #[serde(default = "default_user")]
    pub user: String,
    /// Run `weir hw tune --apply` before the broker starts.
    #[serde(default = "default_true")]
    pub tune: bool,
}

fn default_kafka_port() -> u16 {
    9092
}
fn default_coord_port() -> u16 {
    2281
}
fn default_data_dir() -> String {
    "/var/lib/weir".into()
}
fn default_config_dir() -> String {
    "/etc/weir".into()
}
fn default_binary() -> String {
    "/usr/local/bin/weir".into()
}
fn default_user() -> String {
    "weir".into()
}
fn default_true() -> bool {
    true
}

/// One broker host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Kafka `node.id`; also the coordinator's Raft id on a coordinator host (>= 1).
    pub node_id: i32,
    /// The fixed address clients and peers use: an IP (a secondary ENI's) or a DNS name.
    pub address: String,
    /// The IP to bind when `address` is a DNS name (it must be an IP of this host).
    pub listen_ip: Option<IpAddr>,
    /// Rack, on EC2 the availability zone (`us-east-1a`).
    pub rack: String,
    /// Runs a coordinator node too.
    #[serde(default)]
    pub coordinator: bool,
    /// Cores for the broker's shards (default: every online core).
    pub cores: Option<Vec<usize>>,
    /// Core for the coordinator node.
    pub coord_core: Option<usize>,
    /// CPUs that take NIC and disk interrupts (passed to the tuners).
    pub irq_cores: Option<Vec<usize>>,
}

impl Host {
    /// The IP the listeners bind.
    pub fn bind_ip(&self) -> IpAddr {
        match (self.address.parse::<IpAddr>(), self.listen_ip) {
            (Ok(ip), _) => ip,
            (Err(_), Some(ip)) => ip,
            // `check` refuses a name without listen_ip before anything is rendered.
            (Err(_), None) => IpAddr::from([0, 0, 0, 0]),
        }
    }

    /// `address:port` with IPv6 in brackets.
    pub fn advertised(&self, port: u16) -> String {
        join(&self.address, port)
    }

    pub fn bind(&self, port: u16) -> String {
        join(&self.bind_ip().to_string(), port)
    }
}

fn join(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostsFile {
    pub cluster: Cluster,
    pub host: Vec<Host>,
}

fn refuse_ip(what: &str, ip: IpAddr) -> Result<(), HwError> {
    if ip.is_unspecified() {
        return Err(HwError::Invalid(format!(
            "{what} {ip} is a wildcard: brokers must bind and advertise their fixed address"
        )));
    }
    if ip.is_loopback() {
        return Err(HwError::Invalid(format!(
            "{what} {ip} is loopback: other hosts cannot reach it"
        )));
    }
    Ok(())
}

fn check_name(what: &str, name: &str) -> Result<(), HwError> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid {
        return Err(HwError::Invalid(format!(
            "{what} {name:?} is neither an IP nor a DNS name"
        )));
    }
    let lower = name.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Err(HwError::Invalid(format!("{what} {name:?} is loopback")));
    }
    Ok(())
}

impl HostsFile {
    pub fn parse(text: &str) -> Result<HostsFile, HwError> {
        let file: HostsFile =
            toml::from_str(text).map_err(|e| HwError::Invalid(format!("hosts file: {e}")))?;
        file.check()?;
        Ok(file)
    }

    /// The refusals.
    pub fn check(&self) -> Result<(), HwError> {
        let bad = |m: String| Err(HwError::Invalid(m));
        if self.host.is_empty() || self.host.len() > HOSTS_MAX {
            return bad(format!("expected 1..={HOSTS_MAX} [[host]] entries"));
        }
        let (mut ids, mut addresses, mut binds) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for h in &self.host {
            let what = format!("host {} address", h.node_id);
            if h.node_id < 1 {
                return bad(format!("node_id {} must be at least 1", h.node_id));
            }
            if !ids.insert(h.node_id) {
                return bad(format!("node_id {} is used twice", h.node_id));
            }
            match h.address.parse::<IpAddr>() {
                Ok(ip) => {
                    refuse_ip(&what, ip)?;
                    if let Some(l) = h.listen_ip.filter(|l| *l != ip) {
                        return bad(format!(
                            "host {}: listen_ip {l} differs from its IP address {ip}",
                            h.node_id
                        ));
                    }
                }
                Err(_) => {
                    check_name(&what, &h.address)?;
                    match h.listen_ip {
                        Some(ip) => refuse_ip(&format!("host {} listen_ip", h.node_id), ip)?,
                        None => {
                            return bad(format!(
                            "host {}: address {:?} is a name; give listen_ip, the fixed IP to bind",
                            h.node_id, h.address
                        ))
                        }
                    }
                }
            }
            if !addresses.insert(h.address.to_ascii_lowercase()) {
                return bad(format!("address {} is used by two hosts", h.address));
            }
            if !binds.insert(h.bind_ip()) {
                return bad(format!("listen IP {} is used by two hosts", h.bind_ip()));
            }
            if h.rack.trim().is_empty() {
                return bad(format!("host {}: rack is empty", h.node_id));
            }
            if h.cores.as_ref().is_some_and(|c| c.is_empty()) {
                return bad(format!("host {}: cores is empty", h.node_id));
            }
        }
        let coordinators = self.host.iter().filter(|h| h.coordinator).count();
        if coordinators == 0 || coordinators % 2 == 0 {
            return bad(format!(
                "{coordinators} hosts have coordinator = true: \
                 a Raft quorum needs an odd number (1, 3 or 5)"
            ));
        }
        let c = &self.cluster;
        let ports = [Some(c.kafka_port), Some(c.coord_port), c.zk_port];
        let set: BTreeSet<u16> = ports.iter().flatten().copied().collect();
        if set.len() != ports.iter().flatten().count() || set.contains(&0) {
            return bad("kafka_port, coord_port and zk_port must be distinct and not 0".into());
        }
        for (what, path) in [
            ("data_dir", &c.data_dir),
            ("config_dir", &c.config_dir),
            ("weir_binary", &c.weir_binary),
        ] {
            if !path.starts_with('/') || path.contains(char::is_whitespace) {
                return bad(format!(
                    "{what} {path:?} must be an absolute path without spaces"
                ));
            }
        }
        Ok(())
    }

    /// The coordinator hosts, in node-id order.
    pub fn coordinators(&self) -> Vec<&Host> {
        let mut v: Vec<&Host> = self.host.iter().filter(|h| h.coordinator).collect();
        v.sort_by_key(|h| h.node_id);
        v
    }
}
