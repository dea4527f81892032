//! workerd's own socket behind `wrangler dev`. wrangler answers on its port through a proxy worker in a second
//! workerd, a dev-only hop that production does not have and that caps a stream at a few MB/s; the bench talks
//! to the workerd that runs the Worker itself, found among the listening sockets of wrangler's process group.

use std::time::Duration;

use vf_e2e::process;

/// A Worker's own workerd: where to reach it, and its process (whose CPU time the bench reads).
#[derive(Clone, Debug)]
pub struct Workerd {
    pub base: String,
    pub pid: u32,
}

impl Workerd {
    /// Resident memory of the process, bytes.
    pub fn rss(&self) -> u64 {
        process::rss_bytes(self.pid)
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
    let ports = process::group_members(pgid, "workerd")
        .into_iter()
        .flat_map(|pid| {
            process::listening_ports(pid)
                .into_iter()
                .map(move |port| (port, pid))
        });
    for (port, pid) in ports {
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
