//! The per-host systemd units: the broker (pinned to its cores, memlock and nofile raised, the
//! tuners applied before it starts) and, on coordinator hosts, the coordinator.
//!
//! Owns: the unit text. Must not: validate hosts (hosts.rs) or write files.

use super::hosts::{Host, HostsFile};

/// Open files: partitions x (log + indexes) + client sockets, with room.
pub const NOFILE: u64 = 1_048_576;

fn affinity(cores: &[usize]) -> String {
    cores
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `weir-broker.service`.
pub fn broker_unit(file: &HostsFile, host: &Host) -> String {
    let c = &file.cluster;
    let mut tune = String::new();
    if c.tune {
        // `+`: the tuners need root even when the broker runs as its own user; `-`: a tuner
        // that fails must not keep the broker down.
        tune = format!(
            "ExecStartPre=-+{} hw tune --apply --data-dir {}/broker",
            c.weir_binary, c.data_dir
        );
        if let Some(irq) = &host.irq_cores {
            let cpus: Vec<String> = irq.iter().map(|c| c.to_string()).collect();
            tune.push_str(&format!(" --irq-cpus {}", cpus.join(",")));
        }
        tune.push('\n');
    }
    let after = if host.coordinator {
        " weir-coord.service"
    } else {
        ""
    };
    let pin = host
        .cores
        .as_ref()
        .map(|cores| format!("CPUAffinity={}\n", affinity(cores)))
        .unwrap_or_default();
    format!(
        "# weir broker {id} (rack {rack}) — rendered by `weir deploy render`.\n\
         [Unit]\n\
         Description=weir Kafka broker {id}\n\
         Wants=network-online.target\n\
         After=network-online.target{after}\n\n\
         [Service]\n\
         Type=simple\n\
         User={user}\n\
         ExecStartPre=+/usr/bin/install -d -o {user} {data}/broker\n\
         {tune}\
         ExecStart={bin} serve --config {conf}/weir-broker.toml\n\
         {pin}\
         LimitMEMLOCK=infinity\n\
         LimitNOFILE={nofile}\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=120\n\
         Restart=on-failure\n\
         RestartSec=2\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        id = host.node_id,
        rack = host.rack,
        user = c.user,
        data = c.data_dir,
        bin = c.weir_binary,
        conf = c.config_dir,
        nofile = NOFILE,
    )
}

/// `weir-coord.service` (coordinator hosts only).
pub fn coord_unit(file: &HostsFile, host: &Host) -> String {
    let c = &file.cluster;
    let pin = host
        .coord_core
        .map(|core| format!("CPUAffinity={core}\n"))
        .unwrap_or_default();
    format!(
        "# weir coordinator {id} — rendered by `weir deploy render`.\n\
         [Unit]\n\
         Description=weir coordinator {id}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\n\
         [Service]\n\
         Type=simple\n\
         User={user}\n\
         EnvironmentFile={conf}/weir-coord.env\n\
         ExecStartPre=+/usr/bin/install -d -o {user} {data}/coord\n\
         ExecStart={bin} coord $WEIR_COORD_ARGS\n\
         {pin}\
         LimitMEMLOCK=infinity\n\
         LimitNOFILE={nofile}\n\
         Restart=on-failure\n\
         RestartSec=2\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        id = host.node_id,
        user = c.user,
        conf = c.config_dir,
        data = c.data_dir,
        bin = c.weir_binary,
        nofile = NOFILE,
    )
}
