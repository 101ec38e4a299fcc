//! Types shared between the XDP program (`ebpf/xdp`) and user space. `no_std`, plain `repr(C)`
//! data only, so both sides agree on layouts without serialisation.
#![no_std]

/// Default DNS port redirected to the AF_XDP sockets.
pub const DNS_PORT: u16 = 53;

/// Names of the XDP program and its maps in the object file (user space looks them up by name).
pub const PROGRAM_NAME: &str = "dnsentry_xdp";
/// `XskMap`: RX queue index → AF_XDP socket.
pub const MAP_XSKS: &str = "XSKS";
/// `PerCpuArray<u64>` indexed by [`XdpCounter`].
pub const MAP_COUNTERS: &str = "COUNTERS";
/// `Array<u32>` indexed by the `CONFIG_*` constants.
pub const MAP_CONFIG: &str = "CONFIG";
/// `HashMap<u16, u8>`: DNS ports (host byte order) whose frames are redirected; value unused (1).
pub const MAP_DNS_PORTS: &str = "DNS_PORTS";
/// `HashMap<[u8; 4], u8>`: the host's own IPv4 addresses (network order bytes); never redirected.
pub const MAP_OWN_V4: &str = "OWN_V4";
/// `HashMap<[u8; 16], u8>`: the host's own IPv6 addresses; never redirected.
pub const MAP_OWN_V6: &str = "OWN_V6";

/// Entries of the `XSKS` map: RX queues that can hold a socket.
pub const MAX_QUEUES: u32 = 256;
/// Entries of the `DNS_PORTS` map.
pub const MAX_DNS_PORTS: u32 = 64;
/// Entries of each own-address map.
pub const MAX_OWN_ADDRS: u32 = 1024;

/// Index in the `CONFIG` array: the [`DefaultAction`] (as `u32`) for frames not redirected.
pub const CONFIG_DEFAULT_ACTION: u32 = 0;
/// Entries of the `CONFIG` array.
pub const CONFIG_LEN: u32 = 4;

/// IPv6 extension headers the XDP program walks before giving up (counted `malformed`).
pub const MAX_IPV6_EXT_HEADERS: u32 = 8;

/// Index of each per-CPU counter in the XDP program's counter array map.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpCounter {
    /// Every frame the program looked at.
    Seen = 0,
    /// Frames redirected to an AF_XDP socket.
    Redirected = 1,
    /// Frames given the default action `pass`.
    Passed = 2,
    /// Frames given the default action `drop`.
    Dropped = 3,
    /// DNS frames whose queue had no socket (fell back to the default action).
    NoSocket = 4,
    /// Non-first IP fragments (no ports to match).
    Fragments = 5,
    /// Frames that are neither IPv4 nor IPv6.
    NonIp = 6,
    /// Frames too short for the headers they announce.
    Malformed = 7,
}

/// Number of entries in the counter array map.
pub const XDP_COUNTER_COUNT: u32 = 8;

impl XdpCounter {
    /// All counters, in map index order.
    pub const ALL: [XdpCounter; XDP_COUNTER_COUNT as usize] = [
        XdpCounter::Seen,
        XdpCounter::Redirected,
        XdpCounter::Passed,
        XdpCounter::Dropped,
        XdpCounter::NoSocket,
        XdpCounter::Fragments,
        XdpCounter::NonIp,
        XdpCounter::Malformed,
    ];

    /// Stable lower-case name, used as a metrics label.
    pub const fn name(self) -> &'static str {
        match self {
            XdpCounter::Seen => "seen",
            XdpCounter::Redirected => "redirected",
            XdpCounter::Passed => "passed",
            XdpCounter::Dropped => "dropped",
            XdpCounter::NoSocket => "no_socket",
            XdpCounter::Fragments => "fragments",
            XdpCounter::NonIp => "non_ip",
            XdpCounter::Malformed => "malformed",
        }
    }
}

/// Default action for frames that are not redirected, as stored in the config map.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// Hand the frame to the kernel stack (inline host).
    Pass = 0,
    /// Drop it (dedicated mirror port: nothing else wants it).
    Drop = 1,
}

impl DefaultAction {
    /// The XDP verdict (`XDP_PASS` = 2, `XDP_DROP` = 1) for this action.
    pub const fn xdp_action(self) -> u32 {
        match self {
            DefaultAction::Pass => 2,
            DefaultAction::Drop => 1,
        }
    }

    /// Decodes the value stored in the config map; anything unknown is `Pass` (the safe choice on
    /// an inline host).
    pub const fn from_u32(v: u32) -> Self {
        match v {
            1 => DefaultAction::Drop,
            _ => DefaultAction::Pass,
        }
    }

    /// Stable lower-case name (`pass`, `drop`).
    pub const fn name(self) -> &'static str {
        match self {
            DefaultAction::Pass => "pass",
            DefaultAction::Drop => "drop",
        }
    }
}
