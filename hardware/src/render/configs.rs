//! The per-host config files: the broker's TOML (the keys `weir serve --config` reads, see
//! cli/src/serve_config.rs) and the coordinator's systemd environment file (its flags: `weir
//! coord` takes no config file).
//!
//! Owns: the text of both. Must not: validate hosts (hosts.rs) or write files.

use super::hosts::{Cluster, Host, HostsFile};

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list<T: ToString>(items: impl IntoIterator<Item = T>, quote: bool) -> String {
    let items: Vec<String> = items
        .into_iter()
        .map(|i| {
            if quote {
                quoted(&i.to_string())
            } else {
                i.to_string()
            }
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// The coordinators' weir-protocol addresses, as brokers and peers dial them.
pub fn coord_servers(file: &HostsFile) -> Vec<String> {
    file.coordinators()
        .iter()
        .map(|h| h.advertised(file.cluster.coord_port))
        .collect()
}

/// `weir-broker.toml` of one host.
pub fn broker_toml(file: &HostsFile, host: &Host) -> String {
    let c: &Cluster = &file.cluster;
    let mut out = format!(
        "# weir broker {} — rendered by `weir deploy render`; loads with `weir serve --config`.\n\
         data.dir = {}\n\
         kafka.addr = {}\n\
         advertised.addr = {}\n\
         node.id = {}\n\
         coord.servers = {}\n",
        host.node_id,
        quoted(&format!("{}/broker", c.data_dir)),
        quoted(&host.bind(c.kafka_port)),
        quoted(&host.advertised(c.kafka_port)),
        host.node_id,
        list(coord_servers(file), true),
    );
    if let Some(cores) = &host.cores {
        out.push_str(&format!("cores = {}\n", list(cores, false)));
    }
    out.push_str(&format!(
        "broker.rack = {}    # the availability zone; Metadata and DescribeCluster report it\n",
        quoted(&host.rack)
    ));
    out
}

/// The coordinator's flags, one per line in the environment file's variable.
pub fn coord_args(file: &HostsFile, host: &Host) -> Vec<String> {
    let c = &file.cluster;
    let peers: Vec<String> = file
        .coordinators()
        .iter()
        .map(|h| format!("{}={}", h.node_id, h.advertised(c.coord_port)))
        .collect();
    let mut args = vec![
        "--id".to_string(),
        host.node_id.to_string(),
        "--data-dir".into(),
        format!("{}/coord", c.data_dir),
        "--listen".into(),
        host.bind(c.coord_port),
    ];
    if peers.len() > 1 {
        args.extend(["--peers".into(), peers.join(",")]);
    }
    match c.zk_port {
        Some(port) => args.extend(["--zk-addr".into(), host.bind(port)]),
        None => args.push("--no-zk".into()),
    }
    if let Some(core) = host.coord_core {
        args.extend(["--cores".into(), core.to_string()]);
    }
    args
}

/// `weir-coord.env`: `WEIR_COORD_ARGS`, expanded word by word by systemd (`$WEIR_COORD_ARGS`).
pub fn coord_env(file: &HostsFile, host: &Host) -> String {
    format!(
        "# weir coordinator {} — rendered by `weir deploy render`; read by weir-coord.service.\n\
         WEIR_COORD_ARGS=\"{}\"\n",
        host.node_id,
        coord_args(file, host).join(" ")
    )
}
