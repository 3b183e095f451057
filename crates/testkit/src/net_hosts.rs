//! Hosts of their own for partition tests: [`NetHosts`].
//!
//! Each host is a Linux network namespace with two interfaces:
//! - `peer0` on the **peer** bridge, for traffic between hosts;
//! - `client0` on the **client** bridge, which also holds an address in the
//!   test process's own (root) namespace, so the test reaches every host.
//!
//! [`isolate`](NetHosts::isolate) takes the bridge side of a host's link
//! down: frames are dropped with no RST and no FIN, as in a cloud network
//! partition. [`heal`](NetHosts::heal) brings it up again.
//!
//! Addresses come from two private /24 networks the helper owns,
//! `10.213.S.0/24` (client) and `10.214.S.0/24` (peer), where `S` is a slot
//! chosen so that two test processes never share one. Names carry the
//! owner's process id (`cpnh<pid>…`): everything is removed on drop (and
//! every process still running inside a host is killed), and
//! [`NetHosts::create`] first sweeps what a killed run left behind (names
//! whose process is gone, and the processes inside them).
//!
//! Needs root and iproute2's `ip`. Without them [`NetHosts::create`] fails
//! with a one-line reason; tests must not skip silently.

use std::fmt;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Name prefix of every namespace and interface this helper creates.
pub const NAME_PREFIX: &str = "cpnh";

/// Why the helper could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetHostsError(pub String);

impl fmt::Display for NetHostsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "network hosts: {}", self.0)
    }
}

impl std::error::Error for NetHostsError {}

fn err(message: impl Into<String>) -> NetHostsError {
    NetHostsError(message.into())
}

/// Which of a host's networks to cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// Host to host.
    Peer,
    /// Host to the test process.
    Client,
    /// Both.
    All,
}

/// N hosts, each a network namespace on a peer and a client bridge.
#[derive(Debug)]
pub struct NetHosts {
    owner: String,
    slot: u8,
    hosts: usize,
}

impl NetHosts {
    /// Creates `hosts` hosts (1–9), after sweeping leftovers of killed runs.
    pub fn create(hosts: usize) -> Result<Self, NetHostsError> {
        if !(1..=9).contains(&hosts) {
            return Err(err(format!(
                "{hosts} hosts asked for; 1 to 9 are supported"
            )));
        }
        require_root()?;
        ip(&["-V"]).map_err(|e| err(format!("iproute2's `ip` is needed: {}", e.0)))?;
        sweep()?;
        let owner = format!("{NAME_PREFIX}{}", std::process::id());
        let slot = free_slot()?;
        let mut this = Self {
            owner,
            slot,
            hosts: 0,
        };
        // On an error half-way, drop removes what was made.
        this.make_bridges()?;
        for i in 0..hosts {
            this.hosts = i + 1;
            this.make_host(i)?;
        }
        Ok(this)
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts
    }

    /// Whether there are no hosts.
    pub fn is_empty(&self) -> bool {
        self.hosts == 0
    }

    /// The namespace of host `i` (for `ip netns exec`).
    pub fn namespace(&self, i: usize) -> String {
        format!("{}h{i}", self.owner)
    }

    /// Host `i`'s address on the client network (reachable from the test).
    pub fn client_addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.slot, host_octet(i))
    }

    /// Host `i`'s address on the peer network (reachable from other hosts).
    pub fn peer_addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 214, self.slot, host_octet(i))
    }

    /// The test process's own address on the client network.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.slot, 1)
    }

    /// A command that runs `program` inside host `i`.
    pub fn command(&self, i: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace(i)])
            .arg(program);
        command
    }

    /// Cuts host `i` off `net`: its link on that bridge goes down, so
    /// frames vanish (no RST, no FIN).
    pub fn isolate(&self, i: usize, net: Net) -> Result<(), NetHostsError> {
        self.set_links(i, net, "down")
    }

    /// Brings every link of host `i` up again.
    pub fn heal(&self, i: usize) -> Result<(), NetHostsError> {
        self.set_links(i, Net::All, "up")
    }

    fn set_links(&self, i: usize, net: Net, state: &str) -> Result<(), NetHostsError> {
        if i >= self.hosts {
            return Err(err(format!("no host {i}")));
        }
        let sides: &[char] = match net {
            Net::Peer => &['p'],
            Net::Client => &['c'],
            Net::All => &['p', 'c'],
        };
        for side in sides {
            ip(&["link", "set", &self.outer_link(i, *side), state])?;
        }
        Ok(())
    }

    fn bridge(&self, side: char) -> String {
        format!("{}b{side}", self.owner)
    }

    /// The root-namespace end of host `i`'s veth pair on bridge `side`.
    fn outer_link(&self, i: usize, side: char) -> String {
        format!("{}{side}{i}", self.owner)
    }

    fn make_bridges(&self) -> Result<(), NetHostsError> {
        for side in ['p', 'c'] {
            let bridge = self.bridge(side);
            ip(&["link", "add", &bridge, "type", "bridge"])?;
            ip(&["link", "set", &bridge, "up"])?;
        }
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.gateway()),
            "dev",
            &self.bridge('c'),
        ])
    }

    fn make_host(&self, i: usize) -> Result<(), NetHostsError> {
        let ns = self.namespace(i);
        ip(&["netns", "add", &ns])?;
        in_ns(&ns, &["link", "set", "lo", "up"])?;
        for (side, inner, addr) in [
            ('p', "peer0", self.peer_addr(i)),
            ('c', "client0", self.client_addr(i)),
        ] {
            let outer = self.outer_link(i, side);
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", inner, "netns", &ns,
            ])?;
            ip(&["link", "set", &outer, "master", &self.bridge(side)])?;
            ip(&["link", "set", &outer, "up"])?;
            in_ns(&ns, &["addr", "add", &format!("{addr}/24"), "dev", inner])?;
            in_ns(&ns, &["link", "set", inner, "up"])?;
        }
        Ok(())
    }
}

impl Drop for NetHosts {
    fn drop(&mut self) {
        // The kernel frees a deleted namespace (and the veth pairs in it)
        // later, in the background: delete each pair from its outer end
        // first, so the names are free at once for the next instance.
        for i in 0..self.hosts {
            for side in ['p', 'c'] {
                let _ = ip(&["link", "delete", &self.outer_link(i, side)]);
            }
            kill_all_in(&self.namespace(i));
            let _ = ip(&["netns", "delete", &self.namespace(i)]);
        }
        for side in ['p', 'c'] {
            let _ = ip(&["link", "delete", &self.bridge(side)]);
        }
    }
}

fn host_octet(i: usize) -> u8 {
    // `create` allows at most 9 hosts.
    10 + u8::try_from(i).unwrap_or(0)
}

/// Runs `ip ARGS`, turning a failure into an error with its stderr.
fn ip(args: &[&str]) -> Result<(), NetHostsError> {
    ip_output(args).map(drop)
}

fn ip_output(args: &[&str]) -> Result<String, NetHostsError> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| err(format!("cannot run `ip {}`: {e}", args.join(" "))))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

fn in_ns(ns: &str, args: &[&str]) -> Result<(), NetHostsError> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    ip(&full)
}

fn require_root() -> Result<(), NetHostsError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| err(format!("cannot read /proc/self/status: {e}")))?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .ok_or_else(|| err("no Uid line in /proc/self/status"))?;
    if euid == "0" {
        Ok(())
    } else {
        Err(err(format!(
            "network namespaces need root (effective uid {euid}); run the partition tests as root"
        )))
    }
}

/// The owner process id in a name made by this helper, if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes namespaces and links whose owner process is gone.
pub fn sweep() -> Result<usize, NetHostsError> {
    let mut removed = 0;
    for ns in ip_output(&["netns", "list"])?.lines() {
        let name = ns.split_whitespace().next().unwrap_or_default();
        if owner_pid(name).is_some_and(|pid| !alive(pid)) {
            // Processes a killed run started there (a service node) would
            // live on in the detached namespace.
            kill_all_in(name);
            ip(&["netns", "delete", name])?;
            removed += 1;
        }
    }
    for line in ip_output(&["-o", "link", "show"])?.lines() {
        // `7: cpnh123bp: <...` or `8: cpnh123p0@if2: <...`
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name);
        if owner_pid(name).is_some_and(|pid| !alive(pid)) {
            // A veth end may already be gone with its namespace.
            if ip(&["link", "delete", name]).is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// SIGKILLs every process inside namespace `ns`.
fn kill_all_in(ns: &str) {
    let Ok(pids) = ip_output(&["netns", "pids", ns]) else {
        return;
    };
    for pid in pids.split_whitespace() {
        let _ = Command::new("kill")
            .args(["-9", pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A /24 slot no live network of this host uses yet.
fn free_slot() -> Result<u8, NetHostsError> {
    let used = ip_output(&["-o", "-4", "addr", "show"])?;
    let start = std::process::id() % 200;
    (0..200u32)
        .map(|k| u8::try_from(20 + (start + k) % 200).unwrap_or(20))
        .find(|slot| !used.contains(&format!("10.213.{slot}.")))
        .ok_or_else(|| err("no free 10.213.S.0/24 slot"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_come_from_the_name_prefix() {
        assert_eq!(owner_pid("cpnh1234h0"), Some(1234));
        assert_eq!(owner_pid("cpnh77bp"), Some(77));
        assert_eq!(owner_pid("cpnhx"), None);
        assert_eq!(owner_pid("eth0"), None);
    }
}
