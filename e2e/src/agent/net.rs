//! A pod's network: its own network namespace with one veth pair onto the testbed bridge and an
//! address from its node's range, as the CNI bridge plugin would set up. May touch: network
//! namespaces named `oxbow-<node>-*` and their veth links (through the `ip` tool).

use std::{collections::BTreeSet, process::Command};

use anyhow::{Context, Result, bail};

use super::{BRIDGE, GATEWAY, NETNS_PREFIX, PREFIX_LEN};

/// The network of one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodNetwork {
    /// Network namespace name (`/run/netns/<netns>`).
    pub netns: String,
    /// The pod's address.
    pub ip: String,
    /// The host end of the veth pair.
    pub host_veth: String,
}

/// The network namespace prefix of node `index`'s pods.
pub fn node_prefix(index: u8) -> String {
    format!("{NETNS_PREFIX}{index}-")
}

/// Names of the namespace and host veth of the pod with `uid` on node `index`. Pure.
pub fn names(index: u8, uid: &str) -> (String, String) {
    let short: String = uid.chars().filter(|c| *c != '-').take(10).collect();
    // IFNAMSIZ: at most 15 characters for a link name.
    (
        format!("{}{short}", node_prefix(index)),
        format!("oxv{index}{short}"),
    )
}

/// Hands out the node's pod addresses, `198.18.<index>.2` to `.254`. A pod gets back the address
/// its namesake last had when it is free (a restarted broker keeps its address, so peers whose
/// JVM still caches the old lookup reach it), and otherwise the address free the longest, so a
/// stale cached address rarely points at a different pod.
#[derive(Debug)]
pub struct Addresses {
    index: u8,
    used: BTreeSet<u8>,
    /// Free addresses, least recently released first.
    free: std::collections::VecDeque<u8>,
    /// The last address of each pod key (`<namespace>/<name>`).
    last: std::collections::BTreeMap<String, u8>,
}

impl Addresses {
    pub fn new(index: u8) -> Addresses {
        Addresses {
            index,
            used: BTreeSet::new(),
            free: (2..=254u8).collect(),
            last: std::collections::BTreeMap::new(),
        }
    }

    /// An address for the pod `key`.
    pub fn take(&mut self, key: &str) -> Result<String> {
        let sticky = self
            .last
            .get(key)
            .copied()
            .filter(|n| !self.used.contains(n));
        let last = match sticky {
            Some(n) => n,
            None => *self
                .free
                .iter()
                .find(|n| !self.used.contains(n))
                .context("node has no free pod address left (253 pods)")?,
        };
        self.free.retain(|n| *n != last);
        self.used.insert(last);
        self.last.insert(key.to_owned(), last);
        Ok(format!("198.18.{}.{last}", self.index))
    }

    /// Gives an address back.
    pub fn release(&mut self, ip: &str) {
        if let Some(last) = ip.rsplit('.').next().and_then(|s| s.parse::<u8>().ok())
            && self.used.remove(&last)
        {
            self.free.push_back(last);
        }
    }
}

/// Runs the `ip` tool and returns its standard output; a failure names the command and what
/// `ip` said.
pub fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (is iproute2 installed?)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates the pod's namespace, its veth pair on the bridge and its address and routes.
/// A leftover namespace of the same name is removed first.
pub fn setup(index: u8, uid: &str, address: &str) -> Result<PodNetwork> {
    let (netns, host_veth) = names(index, uid);
    let _ = teardown(&netns);
    let cidr = format!("{address}/{PREFIX_LEN}");
    let mac = mac_for(address)?;
    let steps: Vec<Vec<&str>> = vec![
        vec!["netns", "add", &netns],
        vec![
            "link", "add", &host_veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ],
        vec!["link", "set", &host_veth, "master", BRIDGE, "up"],
        vec!["-n", &netns, "link", "set", "eth0", "address", &mac],
        vec!["-n", &netns, "addr", "add", &cidr, "dev", "eth0"],
        vec!["-n", &netns, "link", "set", "lo", "up"],
        vec!["-n", &netns, "link", "set", "eth0", "up"],
        vec!["-n", &netns, "route", "add", "default", "via", GATEWAY],
    ];
    for step in steps {
        if let Err(e) = ip(&step) {
            let _ = teardown(&netns);
            return Err(e);
        }
    }
    Ok(PodNetwork {
        netns,
        ip: address.to_owned(),
        host_veth,
    })
}

/// The pod interface's MAC address, derived from its IPv4 address as Docker does
/// (`02:42:` then the four address bytes; locally administered, unicast). A pod that gets its
/// namesake's address back then also has its MAC, so peers' ARP entries stay right: with a new
/// MAC each time, a peer kept sending to the old one until its entry expired (up to about a
/// minute), which silently dropped new connections to a restarted KRaft controller long enough
/// for it to fence every broker. (The CNI bridge plugin sends a gratuitous ARP instead.)
pub fn mac_for(address: &str) -> Result<String> {
    let ip: std::net::Ipv4Addr = address
        .parse()
        .map_err(|e| anyhow::anyhow!("pod address {address:?}: {e}"))?;
    let [a, b, c, d] = ip.octets();
    Ok(format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}"))
}

/// Kills whatever still runs in the namespace and deletes it (its veth pair goes with it).
pub fn teardown(netns: &str) -> Result<()> {
    kill_all_in(netns);
    ip(&["netns", "del", netns]).map(|_| ())
}

/// The processes in a network namespace.
pub fn pids_in(netns: &str) -> Vec<i32> {
    ip(&["netns", "pids", netns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// SIGKILLs every process in a network namespace, again while new ones show up (a process may
/// fork while dying), for at most 5 s.
pub fn kill_all_in(netns: &str) {
    let start = std::time::Instant::now();
    loop {
        let pids = pids_in(netns);
        if pids.is_empty() || start.elapsed() > std::time::Duration::from_secs(5) {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Network namespaces whose names start with `prefix`.
pub fn list(prefix: &str) -> Result<Vec<String>> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_follows_the_address() {
        assert_eq!(mac_for("198.18.3.3").unwrap(), "02:42:c6:12:03:03");
        assert_eq!(mac_for("198.18.0.254").unwrap(), "02:42:c6:12:00:fe");
        assert!(mac_for("not-an-address").is_err());
    }

    #[test]
    fn names_fit_linux_limits_and_are_per_node() {
        let (ns, veth) = names(3, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
        assert_eq!(ns, "oxbow-3-0f1e2d3c4b");
        assert_eq!(veth, "oxv30f1e2d3c4b");
        assert!(veth.len() <= 15);
        assert!(ns.starts_with(&node_prefix(3)));
    }

    #[test]
    fn addresses_stick_to_pod_names_and_others_rotate() {
        let mut a = Addresses::new(2);
        assert_eq!(a.take("ns/b0").unwrap(), "198.18.2.2");
        assert_eq!(a.take("ns/b1").unwrap(), "198.18.2.3");
        a.release("198.18.2.2");
        // Another pod does not get the address just released...
        assert_eq!(a.take("ns/c").unwrap(), "198.18.2.4");
        // ...which its namesake gets back.
        assert_eq!(a.take("ns/b0").unwrap(), "198.18.2.2");
        for i in 0..250 {
            a.take(&format!("ns/p{i}")).unwrap();
        }
        assert!(
            a.take("ns/one-too-many").is_err(),
            "only 253 addresses per node"
        );
    }
}
