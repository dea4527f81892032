//! workerd's own socket behind `wrangler dev`. wrangler answers on its port through a proxy worker in a second
//! workerd, a dev-only hop that production does not have and that caps a stream at a few MB/s; the bench talks
//! to the workerd that runs the Worker itself, found among the listening sockets of wrangler's process group.

use std::collections::HashMap;
use std::time::Duration;

/// The sockets the workerd processes of group `pgid` hold open: (socket inode, pid).
fn sockets(pgid: u32) -> HashMap<u64, u32> {
    let mut inodes = HashMap::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return inodes;
    };
    for process in processes.flatten() {
        // Fields after the command name: state, ppid, pgrp, …
        let in_group = std::fs::read_to_string(process.path().join("stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit(')')
                    .next()?
                    .split_whitespace()
                    .nth(2)?
                    .parse()
                    .ok()
            })
            == Some(pgid);
        let workerd = std::fs::read_to_string(process.path().join("comm"))
            .is_ok_and(|comm| comm.trim() == "workerd");
        let pid = process.file_name().to_str().and_then(|p| p.parse().ok());
        let Some(pid) = pid.filter(|_| in_group && workerd) else {
            continue;
        };
        inodes.extend(socket_inodes(pid).into_iter().map(|inode| (inode, pid)));
    }
    inodes
}

/// The inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            target
                .to_string_lossy()
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Loopback ports in LISTEN state held by `sockets`, with the pid holding each.
fn listening_ports(sockets: &HashMap<u64, u32>) -> Vec<(u16, u32)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            let pid = sockets.get(&inode.parse().ok()?)?;
            let port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (*state == "0A").then_some((port, *pid))
        })
        .collect()
}

/// A Worker's own workerd: where to reach it, and its process (whose CPU time the bench reads).
#[derive(Clone, Debug)]
pub struct Workerd {
    pub base: String,
    pub pid: u32,
}

impl Workerd {
    /// Resident memory of the process, bytes.
    pub fn rss(&self) -> u64 {
        vf_e2e::process::rss_bytes(self.pid)
    }

    /// The loopback ports the process listens on (its inspector's among them).
    pub fn ports(&self) -> Vec<u16> {
        let sockets = socket_inodes(self.pid)
            .into_iter()
            .map(|inode| (inode, self.pid))
            .collect();
        listening_ports(&sockets)
            .into_iter()
            .map(|(port, _)| port)
            .collect()
    }

    /// CPU time the process has used so far, all threads, µs.
    pub fn cpu_us(&self) -> u64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return 0;
        };
        let nanos: u64 = tasks
            .flatten()
            .filter_map(|task| {
                let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
                stat.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum();
        nanos / 1000
    }
}

/// The workerd of group `pgid` (other than wrangler's public `public_port`) whose answer to `GET probe` has
/// status `status` and a body containing `marker`.
pub async fn workerd(
    pgid: u32,
    public_port: u16,
    probe: &str,
    status: u16,
    marker: &str,
) -> Workerd {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client");
    for (port, pid) in listening_ports(&sockets(pgid)) {
        if port == public_port {
            continue;
        }
        let base = format!("http://127.0.0.1:{port}");
        let Ok(response) = http.get(format!("{base}{probe}")).send().await else {
            continue;
        };
        if response.status().as_u16() == status
            && response
                .text()
                .await
                .is_ok_and(|body| body.contains(marker))
        {
            eprintln!(
                "vf-bench: {probe} answers directly at {base} (wrangler's port: {public_port})"
            );
            return Workerd { base, pid };
        }
    }
    panic!("no workerd of process group {pgid} answers {probe} with {status} and {marker:?}");
}
