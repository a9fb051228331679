//! The EC2 catalogue (`hardware/data/ec2.toml`, compiled in): instance types people run Kafka
//! on, each figure either sourced (a URL and a date) or explicitly unknown.
//!
//! Owns: the data file's shape and its validity rules (units, ranges, sources). Must not: invent
//! or derive figures; a missing figure stays `unknown`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::HwError;

/// The data file, as shipped.
pub const EC2_TOML: &str = include_str!("../data/ec2.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub id: String,
    pub url: String,
    /// `YYYY-MM-DD`: when the source said it.
    pub date: String,
}

/// One figure: a sourced value, or why it is unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Figure {
    Known { value: f64, source: String },
    Unknown { unknown: String },
}

impl Figure {
    pub fn value(&self) -> Option<f64> {
        match self {
            Figure::Known { value, .. } => Some(*value),
            Figure::Unknown { .. } => None,
        }
    }

    /// The value as text, `?` when unknown.
    pub fn show(&self) -> String {
        self.value().map_or("?".into(), |v| {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v}")
            }
        })
    }
}

/// One instance type. Units are in the names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub name: String,
    pub family: String,
    pub vcpus: Figure,
    pub memory_gib: Figure,
    pub network_baseline_gbps: Figure,
    pub network_burst_gbps: Figure,
    pub ebs_baseline_mbps: Figure,
    pub ebs_max_mbps: Figure,
    pub ebs_max_iops: Figure,
    pub instance_store_disks: Figure,
    pub instance_store_disk_gb: Option<Figure>,
    pub instance_store_random_read_iops: Option<Figure>,
    pub instance_store_write_iops: Option<Figure>,
    pub instance_store_write_mb_per_s: Option<Figure>,
    pub instance_store_read_mb_per_s: Option<Figure>,
    pub on_demand_usd_per_hour: Figure,
}

impl Instance {
    /// Every figure with its key name.
    pub fn figures(&self) -> Vec<(&'static str, &Figure)> {
        let mut all = vec![
            ("vcpus", &self.vcpus),
            ("memory_gib", &self.memory_gib),
            ("network_baseline_gbps", &self.network_baseline_gbps),
            ("network_burst_gbps", &self.network_burst_gbps),
            ("ebs_baseline_mbps", &self.ebs_baseline_mbps),
            ("ebs_max_mbps", &self.ebs_max_mbps),
            ("ebs_max_iops", &self.ebs_max_iops),
            ("instance_store_disks", &self.instance_store_disks),
            ("on_demand_usd_per_hour", &self.on_demand_usd_per_hour),
        ];
        for (name, f) in [
            ("instance_store_disk_gb", &self.instance_store_disk_gb),
            (
                "instance_store_random_read_iops",
                &self.instance_store_random_read_iops,
            ),
            ("instance_store_write_iops", &self.instance_store_write_iops),
            (
                "instance_store_write_mb_per_s",
                &self.instance_store_write_mb_per_s,
            ),
            (
                "instance_store_read_mb_per_s",
                &self.instance_store_read_mb_per_s,
            ),
        ] {
            if let Some(f) = f {
                all.push((name, f));
            }
        }
        all
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// The region prices would be for.
    pub region: String,
    pub source: Vec<Source>,
    pub instance: Vec<Instance>,
}

/// Plausible range of each figure, in its unit: a value outside is a unit mistake (MB for GB,
/// Gbps for Mbps) or a typo.
fn range_of(key: &str) -> (f64, f64) {
    match key {
        "vcpus" => (1.0, 512.0),
        "memory_gib" => (0.5, 24_576.0),
        "network_baseline_gbps" | "network_burst_gbps" => (0.05, 400.0),
        "ebs_baseline_mbps" | "ebs_max_mbps" => (100.0, 100_000.0),
        "ebs_max_iops" => (1_000.0, 1_000_000.0),
        "instance_store_disks" => (0.0, 24.0),
        "instance_store_disk_gb" => (50.0, 30_000.0),
        "instance_store_random_read_iops" | "instance_store_write_iops" => (1_000.0, 10_000_000.0),
        "instance_store_write_mb_per_s" | "instance_store_read_mb_per_s" => (10.0, 100_000.0),
        "on_demand_usd_per_hour" => (0.001, 200.0),
        _ => (f64::MIN, f64::MAX),
    }
}

/// Figures counted in whole units.
const INTEGER_KEYS: [&str; 6] = [
    "vcpus",
    "ebs_max_iops",
    "instance_store_disks",
    "instance_store_disk_gb",
    "instance_store_random_read_iops",
    "instance_store_write_iops",
];

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s.chars()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

impl Catalogue {
    /// The shipped catalogue.
    pub fn shipped() -> Result<Catalogue, HwError> {
        Catalogue::parse(EC2_TOML)
    }

    pub fn parse(text: &str) -> Result<Catalogue, HwError> {
        toml::from_str(text).map_err(|e| HwError::Invalid(format!("EC2 catalogue: {e}")))
    }

    pub fn find(&self, name: &str) -> Option<&Instance> {
        self.instance.iter().find(|i| i.name == name)
    }

    /// Every rule broken, one line each (empty: valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut ids = BTreeSet::new();
        for s in &self.source {
            if !ids.insert(s.id.as_str()) {
                out.push(format!("source {} is listed twice", s.id));
            }
            if !s.url.starts_with("https://") {
                out.push(format!("source {}: url {:?} is not https", s.id, s.url));
            }
            if !is_date(&s.date) {
                out.push(format!(
                    "source {}: date {:?} is not YYYY-MM-DD",
                    s.id, s.date
                ));
            }
        }
        let mut names = BTreeSet::new();
        for i in &self.instance {
            if !names.insert(i.name.as_str()) {
                out.push(format!("{} is listed twice", i.name));
            }
            if i.name.split_once('.').map(|(f, _)| f) != Some(i.family.as_str()) {
                out.push(format!("{}: family {:?} does not match", i.name, i.family));
            }
            for (key, f) in i.figures() {
                match f {
                    Figure::Known { value, source } => {
                        if !ids.contains(source.as_str()) {
                            out.push(format!("{}.{key}: unknown source {source:?}", i.name));
                        }
                        let (lo, hi) = range_of(key);
                        if !(lo..=hi).contains(value) {
                            out.push(format!(
                                "{}.{key} = {value}: outside {lo}..={hi} (wrong unit?)",
                                i.name
                            ));
                        }
                        if INTEGER_KEYS.contains(&key) && value.fract() != 0.0 {
                            out.push(format!("{}.{key} = {value}: not a whole number", i.name));
                        }
                    }
                    Figure::Unknown { unknown } if unknown.trim().is_empty() => {
                        out.push(format!("{}.{key}: unknown without a reason", i.name));
                    }
                    Figure::Unknown { .. } => {}
                }
            }
            out.extend(self.consistency(i));
        }
        out
    }

    /// Rules across figures of one instance.
    fn consistency(&self, i: &Instance) -> Vec<String> {
        let mut out = Vec::new();
        let pairs = [
            (
                &i.network_baseline_gbps,
                &i.network_burst_gbps,
                "network burst below baseline",
            ),
            (
                &i.ebs_baseline_mbps,
                &i.ebs_max_mbps,
                "EBS maximum below baseline",
            ),
        ];
        for (low, high, what) in pairs {
            if let (Some(l), Some(h)) = (low.value(), high.value()) {
                if h < l {
                    out.push(format!("{}: {what}", i.name));
                }
            }
        }
        if let (Some(m), Some(v)) = (i.memory_gib.value(), i.vcpus.value()) {
            let per_vcpu = m / v;
            if !(1.0..=32.0).contains(&per_vcpu) {
                out.push(format!(
                    "{}: {per_vcpu} GiB per vCPU (memory in GiB?)",
                    i.name
                ));
            }
        }
        let store = [
            &i.instance_store_disk_gb,
            &i.instance_store_random_read_iops,
            &i.instance_store_write_iops,
            &i.instance_store_write_mb_per_s,
            &i.instance_store_read_mb_per_s,
        ];
        match i.instance_store_disks.value() {
            Some(0.0) if store.iter().any(|f| f.is_some()) => {
                out.push(format!("{}: instance-store figures without disks", i.name));
            }
            Some(d) if d > 0.0 && store.iter().any(|f| f.is_none()) => {
                out.push(format!(
                    "{}: disks without every instance-store figure",
                    i.name
                ));
            }
            _ => {}
        }
        out
    }

    /// A fixed-width table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<15} {:>5} {:>8} {:>15} {:>14} {:>16} {:>16} {:>8}\n",
            "TYPE",
            "VCPU",
            "MEM_GIB",
            "NET_GBPS b/burst",
            "EBS_MBPS b/max",
            "STORE disks x GB",
            "STORE_IOPS r/w",
            "USD/H"
        );
        for i in &self.instance {
            let store = match i.instance_store_disks.value() {
                Some(d) if d > 0.0 => format!(
                    "{} x {}",
                    i.instance_store_disks.show(),
                    i.instance_store_disk_gb
                        .as_ref()
                        .map_or("?".into(), Figure::show)
                ),
                Some(_) => "EBS only".into(),
                None => "?".into(),
            };
            let iops = match (
                &i.instance_store_random_read_iops,
                &i.instance_store_write_iops,
            ) {
                (Some(r), Some(w)) => format!("{}/{}", r.show(), w.show()),
                _ => "-".into(),
            };
            out.push_str(&format!(
                "{:<15} {:>5} {:>8} {:>15} {:>14} {:>16} {:>16} {:>8}\n",
                i.name,
                i.vcpus.show(),
                i.memory_gib.show(),
                format!(
                    "{}/{}",
                    i.network_baseline_gbps.show(),
                    i.network_burst_gbps.show()
                ),
                format!("{}/{}", i.ebs_baseline_mbps.show(), i.ebs_max_mbps.show()),
                store,
                iops,
                i.on_demand_usd_per_hour.show(),
            ));
        }
        out.push_str("? = unknown (no source found; see hardware/data/ec2.toml)\n");
        out
    }
}
