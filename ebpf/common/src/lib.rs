//! Types shared between the XDP program (`ebpf/xdp`) and user space. `no_std`, plain `repr(C)`
//! data only, so both sides agree on layouts without serialisation.
#![no_std]

/// Default DNS port redirected to the AF_XDP sockets.
pub const DNS_PORT: u16 = 53;

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
