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
//! reserved with a file lock, so that two instances (in one process or in
//! two) never share one. Neighbour entries are permanent, so a cut host is
//! never reported unreachable by a failed ARP lookup either: connections
//! just time out. Names carry the owner's process id and an instance
//! number (`cpnh<pid>x<n>…`): each instance removes what it created on drop
//! (and kills every process still running inside its hosts), and
//! [`NetHosts::create`] first sweeps what a killed run left behind (names
//! whose process is gone, and the processes inside them).
//!
//! Needs root and iproute2's `ip`. Without them [`NetHosts::create`] fails
//! with a one-line reason; tests must not skip silently.

use std::fmt;
use std::fs::File;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

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

static NEXT_INSTANCE: AtomicU32 = AtomicU32::new(0);

/// N hosts, each a network namespace on a peer and a client bridge.
#[derive(Debug)]
pub struct NetHosts {
    owner: String,
    slot: u8,
    hosts: usize,
    /// Namespaces and links this instance made, removed on drop.
    namespaces: Vec<String>,
    links: Vec<String>,
    /// Held while the slot's addresses are in use.
    _slot_lock: File,
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
        // One digit keeps every name within the kernel's 15 characters.
        let instance = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed) % 10;
        let owner = format!("{NAME_PREFIX}{}x{instance}", std::process::id());
        let (slot, slot_lock) = reserve_slot()?;
        let mut this = Self {
            owner,
            slot,
            hosts: 0,
            namespaces: Vec::new(),
            links: Vec::new(),
            _slot_lock: slot_lock,
        };
        // On an error half-way, drop removes what was made.
        this.make_bridges()?;
        for i in 0..hosts {
            this.hosts = i + 1;
            this.make_host(i)?;
        }
        this.pin_neighbours()?;
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

    fn make_bridges(&mut self) -> Result<(), NetHostsError> {
        for side in ['p', 'c'] {
            let bridge = self.bridge(side);
            ip(&["link", "add", &bridge, "type", "bridge"])?;
            self.links.push(bridge.clone());
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

    fn make_host(&mut self, i: usize) -> Result<(), NetHostsError> {
        let ns = self.namespace(i);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        in_ns(&ns, &["link", "set", "lo", "up"])?;
        for (side, inner, addr) in [
            ('p', "peer0", self.peer_addr(i)),
            ('c', "client0", self.client_addr(i)),
        ] {
            let outer = self.outer_link(i, side);
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", inner, "netns", &ns,
            ])?;
            // Links go before the bridges they are ports of.
            self.links.insert(0, outer.clone());
            ip(&["link", "set", &outer, "master", &self.bridge(side)])?;
            ip(&["link", "set", &outer, "up"])?;
            in_ns(&ns, &["addr", "add", &format!("{addr}/24"), "dev", inner])?;
            in_ns(&ns, &["link", "set", inner, "up"])?;
        }
        Ok(())
    }
}

impl NetHosts {
    /// Permanent neighbour entries for every address on both networks, in
    /// every namespace: without them a cut host's entry would fail its ARP
    /// probes after a few seconds and connections would get "no route to
    /// host" at once, which is not what a partition looks like.
    fn pin_neighbours(&self) -> Result<(), NetHostsError> {
        let client_bridge = self.bridge('c');
        let gateway_mac = mac_of(None, &client_bridge)?;
        let macs: Vec<(String, String)> = (0..self.hosts)
            .map(|j| {
                let ns = self.namespace(j);
                Ok((mac_of(Some(&ns), "peer0")?, mac_of(Some(&ns), "client0")?))
            })
            .collect::<Result<_, NetHostsError>>()?;
        for (j, (_, client_mac)) in macs.iter().enumerate() {
            pin(None, &self.client_addr(j), client_mac, &client_bridge)?;
        }
        for i in 0..self.hosts {
            let ns = self.namespace(i);
            pin(Some(&ns), &self.gateway(), &gateway_mac, "client0")?;
            for (j, (peer_mac, client_mac)) in macs.iter().enumerate() {
                if i != j {
                    pin(Some(&ns), &self.peer_addr(j), peer_mac, "peer0")?;
                    pin(Some(&ns), &self.client_addr(j), client_mac, "client0")?;
                }
            }
        }
        Ok(())
    }
}

/// The MAC address of `dev` (in namespace `ns`, or the root one).
fn mac_of(ns: Option<&str>, dev: &str) -> Result<String, NetHostsError> {
    let mut args = Vec::new();
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    args.extend(["-o", "link", "show", "dev", dev]);
    let out = ip_output(&args)?;
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .map(str::to_owned)
        .ok_or_else(|| err(format!("no MAC address for {dev}: {out}")))
}

fn pin(ns: Option<&str>, addr: &Ipv4Addr, mac: &str, dev: &str) -> Result<(), NetHostsError> {
    let addr = addr.to_string();
    let mut args = Vec::new();
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    args.extend([
        "neigh",
        "replace",
        &addr,
        "lladdr",
        mac,
        "dev",
        dev,
        "nud",
        "permanent",
    ]);
    ip(&args)
}

impl Drop for NetHosts {
    fn drop(&mut self) {
        // The kernel frees a deleted namespace (and the veth pairs in it)
        // later, in the background: delete each pair from its outer end
        // first (they come first in `links`), so the names are free at once
        // for the next instance; only what this instance made.
        for ns in &self.namespaces {
            kill_all_in(ns);
        }
        for link in &self.links {
            let _ = ip(&["link", "delete", link]);
        }
        for ns in &self.namespaces {
            let _ = ip(&["netns", "delete", ns]);
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
            // Another process may be sweeping the same leftover.
            if ip(&["netns", "delete", name]).is_ok() {
                removed += 1;
            }
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

/// A /24 slot, reserved by an exclusive lock on a file named after it
/// (released when the instance, or its process, ends), that no address of
/// this machine uses yet.
fn reserve_slot() -> Result<(u8, File), NetHostsError> {
    let used = ip_output(&["-o", "-4", "addr", "show"])?;
    let dir = std::env::temp_dir();
    let start = std::process::id() % 200;
    for k in 0..200u32 {
        let slot = u8::try_from(20 + (start + k) % 200).unwrap_or(20);
        let path = dir.join(format!("{NAME_PREFIX}-slot-{slot}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| err(format!("cannot open {}: {e}", path.display())))?;
        if file.try_lock().is_ok() && !used.contains(&format!("10.213.{slot}.")) {
            return Ok((slot, file));
        }
    }
    Err(err("no free 10.213.S.0/24 slot"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_come_from_the_name_prefix() {
        assert_eq!(owner_pid("cpnh1234h0"), Some(1234));
        assert_eq!(owner_pid("cpnh1234x3h0"), Some(1234));
        assert_eq!(owner_pid("cpnh77bp"), Some(77));
        assert_eq!(owner_pid("cpnhx"), None);
        assert_eq!(owner_pid("eth0"), None);
    }
}
