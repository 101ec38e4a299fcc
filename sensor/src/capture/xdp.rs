//! The XDP program in user space: load it (it is embedded in the binary, built by `build.rs` from
//! `ebpf/xdp`), configure it (default action, DNS ports, the host's own addresses), attach it to an
//! interface in `drv`, `skb` or `auto` mode, put AF_XDP sockets into its `XskMap`, read its per-CPU
//! counters, and detach it on drop.
//!
//! Order that loses nothing: [`XdpProgram::load`] (maps configured before any frame is seen), open
//! the sockets ([`super::afxdp`]) and [`XdpProgram::register_socket`] them, then
//! [`XdpProgram::attach`]. Shut down in the reverse order: drop (or [`XdpProgram::detach`]) the
//! program *before* the sockets, so the interface never redirects to a closed socket.

use std::collections::BTreeSet;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::str::FromStr;

use aya::maps::{Array, HashMap, MapData, PerCpuArray, XskMap};
use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use dnsentry_common::{
    DefaultAction, XdpCounter, CONFIG_DEFAULT_ACTION, DNS_PORT, MAP_CONFIG, MAP_COUNTERS, MAP_DNS_PORTS,
    MAP_OWN_V4, MAP_OWN_V6, MAP_XSKS, MAX_DNS_PORTS, MAX_OWN_ADDRS, MAX_QUEUES, PROGRAM_NAME,
    XDP_COUNTER_COUNT,
};

use super::iface;
use super::netlink;

/// The XDP program object, compiled for bpfel by `build.rs` (empty when built with
/// `AYA_BUILD_SKIP=1`).
static XDP_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dnsentry-xdp"));

/// Number of XDP counters, the length of [`XdpProgram::counters`].
pub const COUNTERS: usize = XDP_COUNTER_COUNT as usize;

/// Requested attach mode (`--attach`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachMode {
    /// Native (driver) XDP; fails when the driver has no XDP support.
    Drv,
    /// Generic XDP (after the skb is built): works everywhere, slower.
    Skb,
    /// Native, falling back to generic.
    #[default]
    Auto,
}

impl FromStr for AttachMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "drv" | "native" => Ok(AttachMode::Drv),
            "skb" | "generic" => Ok(AttachMode::Skb),
            "auto" => Ok(AttachMode::Auto),
            _ => Err(format!("unknown attach mode `{s}` (expected drv, skb or auto)")),
        }
    }
}

/// The mode the program actually runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachedMode {
    Drv,
    Skb,
}

impl AttachedMode {
    pub const fn name(self) -> &'static str {
        match self {
            AttachedMode::Drv => "drv",
            AttachedMode::Skb => "skb",
        }
    }

    fn aya(self) -> XdpMode {
        match self {
            AttachedMode::Drv => XdpMode::Driver,
            AttachedMode::Skb => XdpMode::Skb,
        }
    }
}

impl fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the program does before it is attached.
#[derive(Debug, Clone)]
pub struct XdpConfig {
    /// For frames that are not redirected: `Pass` on an inline host, `Drop` on a mirror port.
    pub default_action: DefaultAction,
    /// UDP/TCP ports whose frames are redirected (source or destination).
    pub dns_ports: Vec<u16>,
    /// Addresses never redirected; `None` reads the host's addresses ([`iface::host_addresses`]).
    pub own_addresses: Option<BTreeSet<IpAddr>>,
}

impl Default for XdpConfig {
    fn default() -> Self {
        XdpConfig { default_action: DefaultAction::Pass, dns_ports: vec![DNS_PORT], own_addresses: None }
    }
}

/// Errors of the XDP side of live capture, each saying what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("network interface `{0}` does not exist (in this network namespace)")]
    InterfaceMissing(String),
    #[error(
        "{what}: permission denied. Live capture needs root, or CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW \
         and CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8)"
    )]
    PermissionDenied {
        what: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("the driver of `{iface}` has no native XDP support; use --attach skb (generic XDP) or auto")]
    DriverNoXdp {
        iface: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("`{iface}` refuses XDP in {mode} mode at its MTU (ERANGE): lower the MTU or use skb mode")]
    MtuTooLarge {
        iface: String,
        mode: AttachedMode,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error(
        "`{iface}` already runs XDP program `{name}` (id {id}){how}; remove it first \
         (`ip link set dev {iface} xdp off`) or stop the process that owns it"
    )]
    Busy { iface: String, id: u32, name: String, how: &'static str },
    #[error("attaching the XDP program to `{iface}` in {mode} mode failed")]
    Attach {
        iface: String,
        mode: AttachedMode,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error(
        "this binary was built without the XDP program (AYA_BUILD_SKIP); rebuild after \
         `cargo xtask setup`"
    )]
    NotBuilt,
    #[error("loading the XDP program failed (verifier log follows in the cause)")]
    Load(#[source] Box<dyn StdError + Send + Sync>),
    #[error("XDP map `{map}`: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("too many {what}: {n} (the map holds {max})")]
    TooMany { what: &'static str, n: usize, max: u32 },
    #[error("RX queue {0} is beyond the XSK map ({MAX_QUEUES} queues)")]
    QueueOutOfRange(u32),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// The errno behind an error, looking through its causes.
pub(crate) fn errno_of(e: &(dyn StdError + 'static)) -> Option<i32> {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if let Some(io) = x.downcast_ref::<io::Error>() {
            if let Some(n) = io.raw_os_error() {
                return Some(n);
            }
        }
        if let Some(s) = x.downcast_ref::<aya::sys::SyscallError>() {
            if let Some(n) = s.io_error.raw_os_error() {
                return Some(n);
            }
        }
        cur = x.source();
    }
    None
}

fn is_eperm(e: &(dyn StdError + 'static)) -> bool {
    matches!(errno_of(e), Some(libc::EPERM) | Some(libc::EACCES))
}

/// EPERM only: a verifier rejection of the program is EACCES, and is not about privileges.
fn is_eperm_load(e: &(dyn StdError + 'static)) -> bool {
    errno_of(e) == Some(libc::EPERM)
}

fn map_err<E: StdError + Send + Sync + 'static>(map: &'static str) -> impl Fn(E) -> XdpError {
    move |e| {
        if is_eperm(&e) {
            XdpError::PermissionDenied { what: "XDP map access", source: Box::new(e) }
        } else {
            XdpError::Map { map, source: Box::new(e) }
        }
    }
}

/// The loaded (and, after [`XdpProgram::attach`], attached) XDP program with its maps.
pub struct XdpProgram {
    iface: String,
    ifindex: u32,
    attached: Option<(AttachedMode, aya::programs::xdp::XdpLinkId)>,
    replaced: Option<u32>,
    own: BTreeSet<IpAddr>,
    default_action: DefaultAction,
    ebpf: Ebpf,
}

impl fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XdpProgram")
            .field("iface", &self.iface)
            .field("mode", &self.mode())
            .field("default_action", &self.default_action)
            .finish_non_exhaustive()
    }
}

/// Lifts RLIMIT_MEMLOCK (kernels before 5.11 charge BPF maps and UMEMs to it); best effort.
pub(crate) fn raise_memlock() {
    let lim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: plain syscall with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) };
}

impl XdpProgram {
    /// Loads the program for interface `iface` and configures its maps; nothing is attached yet.
    pub fn load(iface: &str, cfg: &XdpConfig) -> Result<Self, XdpError> {
        let ifindex = iface::ifindex(iface).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => XdpError::InterfaceMissing(iface.to_string()),
            _ => XdpError::Io { what: "looking up the interface", source: e },
        })?;
        if XDP_OBJECT.is_empty() {
            return Err(XdpError::NotBuilt);
        }
        raise_memlock();
        let mut ebpf = Ebpf::load(XDP_OBJECT).map_err(|e| {
            if is_eperm_load(&e) {
                XdpError::PermissionDenied { what: "loading the XDP program", source: Box::new(e) }
            } else {
                XdpError::Load(Box::new(e))
            }
        })?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or_else(|| XdpError::Load(format!("no program `{PROGRAM_NAME}` in the object").into()))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| XdpError::Load(Box::new(e)))?;
        prog.load().map_err(|e| {
            if is_eperm_load(&e) {
                XdpError::PermissionDenied { what: "loading the XDP program", source: Box::new(e) }
            } else {
                XdpError::Load(Box::new(e))
            }
        })?;
        let mut p = XdpProgram {
            iface: iface.to_string(),
            ifindex,
            attached: None,
            replaced: None,
            own: BTreeSet::new(),
            default_action: cfg.default_action,
            ebpf,
        };
        p.set_default_action(cfg.default_action)?;
        p.set_dns_ports(&cfg.dns_ports)?;
        match &cfg.own_addresses {
            Some(a) => p.set_own_addresses(a)?,
            None => {
                p.refresh_own_addresses()?;
            }
        }
        Ok(p)
    }

    /// [`XdpProgram::load`] then [`XdpProgram::attach`].
    pub fn load_and_attach(iface: &str, mode: AttachMode, cfg: &XdpConfig) -> Result<Self, XdpError> {
        let mut p = Self::load(iface, cfg)?;
        p.attach(mode)?;
        Ok(p)
    }

    pub fn iface(&self) -> &str {
        &self.iface
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The mode obtained, `None` before [`XdpProgram::attach`].
    pub fn mode(&self) -> Option<AttachedMode> {
        self.attached.as_ref().map(|(m, _)| *m)
    }

    /// Id of a stale dnsentry program that [`XdpProgram::attach`] removed from the interface.
    pub fn replaced_stale(&self) -> Option<u32> {
        self.replaced
    }

    /// The program's fd (for tools and tests).
    pub fn program_fd(&self) -> Result<BorrowedFd<'_>, XdpError> {
        let prog: &Xdp = self
            .ebpf
            .program(PROGRAM_NAME)
            .expect("loaded")
            .try_into()
            .map_err(|e: aya::programs::ProgramError| XdpError::Load(Box::new(e)))?;
        prog.fd().map(|fd| fd.as_fd()).map_err(|e| XdpError::Load(Box::new(e)))
    }

    /// Attaches to the interface. `Auto` tries native then generic. A stale dnsentry program left
    /// on the interface by an earlier run (attached the legacy netlink way, so it outlived its
    /// process) is removed first; any other program is left alone and reported as [`XdpError::Busy`].
    pub fn attach(&mut self, mode: AttachMode) -> Result<AttachedMode, XdpError> {
        if let Some((m, _)) = self.attached {
            return Ok(m);
        }
        self.remove_stale()?;
        let order: &[AttachedMode] = match mode {
            AttachMode::Drv => &[AttachedMode::Drv],
            AttachMode::Skb => &[AttachedMode::Skb],
            AttachMode::Auto => &[AttachedMode::Drv, AttachedMode::Skb],
        };
        let mut last = None;
        for &m in order {
            match self.try_attach(m) {
                Ok(()) => return Ok(m),
                Err(e @ (XdpError::PermissionDenied { .. } | XdpError::Busy { .. })) => return Err(e),
                Err(e) => {
                    if order.len() > 1 {
                        tracing::info!(iface = %self.iface, mode = %m, error = %e, "XDP attach failed, trying the next mode");
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one mode tried"))
    }

    fn try_attach(&mut self, m: AttachedMode) -> Result<(), XdpError> {
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(PROGRAM_NAME)
            .expect("loaded")
            .try_into()
            .map_err(|e: aya::programs::ProgramError| XdpError::Load(Box::new(e)))?;
        match prog.attach_to_if_index(self.ifindex, m.aya()) {
            Ok(id) => {
                self.attached = Some((m, id));
                tracing::info!(iface = %self.iface, mode = %m, "XDP program attached");
                Ok(())
            }
            Err(e) => {
                let iface = self.iface.clone();
                Err(match errno_of(&e) {
                    Some(libc::EPERM) | Some(libc::EACCES) => {
                        XdpError::PermissionDenied { what: "attaching the XDP program", source: Box::new(e) }
                    }
                    Some(libc::EOPNOTSUPP) if m == AttachedMode::Drv => {
                        XdpError::DriverNoXdp { iface, source: Box::new(e) }
                    }
                    Some(libc::ERANGE) => XdpError::MtuTooLarge { iface, mode: m, source: Box::new(e) },
                    Some(libc::EBUSY) | Some(libc::EEXIST) => self.busy_error(),
                    Some(libc::ENODEV) => XdpError::InterfaceMissing(iface),
                    _ => XdpError::Attach { iface, mode: m, source: Box::new(e) },
                })
            }
        }
    }

    fn busy_error(&self) -> XdpError {
        let st = netlink::xdp_state(self.ifindex).unwrap_or_default();
        let id = st.programs().first().map_or(0, |p| p.1);
        XdpError::Busy {
            iface: self.iface.clone(),
            id,
            name: program_name(id).unwrap_or_else(|| "?".into()),
            how: " through a bpf_link held by a running process",
        }
    }

    /// Removes dnsentry programs attached the netlink way (they outlive a crash); refuses others.
    fn remove_stale(&mut self) -> Result<(), XdpError> {
        let st = netlink::xdp_state(self.ifindex)
            .map_err(|e| XdpError::Io { what: "reading the interface's XDP state (netlink)", source: e })?;
        for (flags, id) in st.programs() {
            let name = program_name(id).unwrap_or_default();
            if name != PROGRAM_NAME {
                return Err(XdpError::Busy { iface: self.iface.clone(), id, name, how: "" });
            }
            match netlink::xdp_detach(self.ifindex, flags) {
                Ok(()) => {
                    tracing::warn!(iface = %self.iface, id, "removed a stale dnsentry XDP program left by an earlier run");
                    self.replaced = Some(id);
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(XdpError::Busy {
                        iface: self.iface.clone(),
                        id,
                        name,
                        how: " through a bpf_link held by a running process (another dnsentry?)",
                    });
                }
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    return Err(XdpError::PermissionDenied {
                        what: "removing a stale XDP program",
                        source: Box::new(e),
                    });
                }
                Err(e) => return Err(XdpError::Io { what: "removing a stale XDP program", source: e }),
            }
        }
        Ok(())
    }

    /// Detaches the program (idempotent). Also done on drop.
    pub fn detach(&mut self) {
        if let Some((m, id)) = self.attached.take() {
            if let Some(p) = self.ebpf.program_mut(PROGRAM_NAME) {
                if let Ok(x) = <&mut Xdp>::try_from(p) {
                    if let Err(e) = x.detach(id) {
                        tracing::warn!(iface = %self.iface, error = %e, "XDP detach failed");
                    }
                }
            }
            tracing::info!(iface = %self.iface, mode = %m, "XDP program detached");
        }
    }

    pub fn default_action(&self) -> DefaultAction {
        self.default_action
    }

    /// Sets the action for frames that are not redirected; takes effect at once.
    pub fn set_default_action(&mut self, a: DefaultAction) -> Result<(), XdpError> {
        let mut m: Array<&mut MapData, u32> =
            Array::try_from(self.map_mut(MAP_CONFIG)?).map_err(map_err(MAP_CONFIG))?;
        m.set(CONFIG_DEFAULT_ACTION, a as u32, 0).map_err(map_err(MAP_CONFIG))?;
        self.default_action = a;
        Ok(())
    }

    /// Replaces the set of redirected ports.
    pub fn set_dns_ports(&mut self, ports: &[u16]) -> Result<(), XdpError> {
        let want: BTreeSet<u16> = ports.iter().copied().collect();
        if want.len() > MAX_DNS_PORTS as usize {
            return Err(XdpError::TooMany { what: "DNS ports", n: want.len(), max: MAX_DNS_PORTS });
        }
        let mut m: HashMap<&mut MapData, u16, u8> =
            HashMap::try_from(self.map_mut(MAP_DNS_PORTS)?).map_err(map_err(MAP_DNS_PORTS))?;
        let have: Vec<u16> = m.keys().filter_map(Result::ok).collect();
        for k in have.iter().filter(|k| !want.contains(k)) {
            m.remove(k).map_err(map_err(MAP_DNS_PORTS))?;
        }
        for k in &want {
            m.insert(k, 1, 0).map_err(map_err(MAP_DNS_PORTS))?;
        }
        Ok(())
    }

    /// The addresses currently exempt from redirection.
    pub fn own_addresses(&self) -> &BTreeSet<IpAddr> {
        &self.own
    }

    /// Replaces the set of own addresses (frames to them are never redirected).
    pub fn set_own_addresses(&mut self, addrs: &BTreeSet<IpAddr>) -> Result<(), XdpError> {
        let v4: BTreeSet<[u8; 4]> = addrs
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(a.octets()),
                IpAddr::V6(a) => a.to_ipv4_mapped().map(|a| a.octets()),
            })
            .collect();
        let v6: BTreeSet<[u8; 16]> = addrs
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(a) => Some(a.octets()),
                IpAddr::V4(_) => None,
            })
            .collect();
        for (what, n) in [("own IPv4 addresses", v4.len()), ("own IPv6 addresses", v6.len())] {
            if n > MAX_OWN_ADDRS as usize {
                return Err(XdpError::TooMany { what, n, max: MAX_OWN_ADDRS });
            }
        }
        sync_set::<4>(self.map_mut(MAP_OWN_V4)?, MAP_OWN_V4, &v4)?;
        sync_set::<16>(self.map_mut(MAP_OWN_V6)?, MAP_OWN_V6, &v6)?;
        self.own = addrs.clone();
        Ok(())
    }

    /// Re-reads the host's addresses into the own-address maps (call it periodically, or when the
    /// host's addresses change). Returns the set now in force.
    pub fn refresh_own_addresses(&mut self) -> Result<&BTreeSet<IpAddr>, XdpError> {
        let addrs = iface::host_addresses()
            .map_err(|e| XdpError::Io { what: "reading the host's addresses", source: e })?;
        self.set_own_addresses(&addrs)?;
        Ok(&self.own)
    }

    /// Puts the AF_XDP socket `fd` at RX queue `queue` of the `XskMap`.
    pub fn register_socket(&mut self, queue: u32, fd: RawFd) -> Result<(), XdpError> {
        if queue >= MAX_QUEUES {
            return Err(XdpError::QueueOutOfRange(queue));
        }
        let mut m: XskMap<&mut MapData> =
            XskMap::try_from(self.map_mut(MAP_XSKS)?).map_err(map_err(MAP_XSKS))?;
        m.set(queue, fd, 0).map_err(map_err(MAP_XSKS))
    }

    /// Removes the socket of RX queue `queue` (its DNS frames then get the default action).
    pub fn unregister_socket(&mut self, queue: u32) -> Result<(), XdpError> {
        if queue >= MAX_QUEUES {
            return Err(XdpError::QueueOutOfRange(queue));
        }
        let mut m: XskMap<&mut MapData> =
            XskMap::try_from(self.map_mut(MAP_XSKS)?).map_err(map_err(MAP_XSKS))?;
        m.unset(queue).map_err(map_err(MAP_XSKS))
    }

    /// The per-CPU counters summed over CPUs, indexed by [`XdpCounter`] (see `XdpCounter::ALL`).
    pub fn counters(&self) -> Result<[u64; COUNTERS], XdpError> {
        let map = self
            .ebpf
            .map(MAP_COUNTERS)
            .ok_or(XdpError::Map { map: MAP_COUNTERS, source: "missing from the object".into() })?;
        let m: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map).map_err(map_err(MAP_COUNTERS))?;
        let mut out = [0u64; COUNTERS];
        for c in XdpCounter::ALL {
            let v = m.get(&(c as u32), 0).map_err(map_err(MAP_COUNTERS))?;
            out[c as usize] = v.iter().sum();
        }
        Ok(out)
    }

    fn map_mut(&mut self, name: &'static str) -> Result<&mut aya::maps::Map, XdpError> {
        self.ebpf.map_mut(name).ok_or(XdpError::Map { map: name, source: "missing from the object".into() })
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        self.detach();
    }
}

/// Makes hash map `map` hold exactly the keys in `want`.
fn sync_set<const N: usize>(
    map: &mut aya::maps::Map,
    name: &'static str,
    want: &BTreeSet<[u8; N]>,
) -> Result<(), XdpError> {
    let mut m: HashMap<&mut MapData, [u8; N], u8> = HashMap::try_from(map).map_err(map_err(name))?;
    let have: Vec<[u8; N]> = m.keys().filter_map(Result::ok).collect();
    for k in have.iter().filter(|k| !want.contains(*k)) {
        m.remove(k).map_err(map_err(name))?;
    }
    for k in want {
        m.insert(k, 1, 0).map_err(map_err(name))?;
    }
    Ok(())
}

/// The name of loaded program `id`, if it can be read.
fn program_name(id: u32) -> Option<String> {
    if id == 0 {
        return None;
    }
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == id)
        .and_then(|p| p.name_as_str().map(str::to_string))
}

/// Names of the counters, in [`XdpProgram::counters`] order.
pub fn counter_names() -> [&'static str; COUNTERS] {
    XdpCounter::ALL.map(XdpCounter::name)
}
