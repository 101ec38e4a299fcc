//! The few rtnetlink requests live capture needs about an interface's XDP state: which program is
//! attached in which mode (to report the mode obtained and find a stale program), and the legacy
//! (netlink, not bpf_link) attach/detach, used to remove a program left behind by an earlier run.
//! Raw `NETLINK_ROUTE` messages over libc; the calling thread's network namespace applies.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLA_F_NESTED: u16 = 1 << 15;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_PROG_ID: u16 = 4;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_HW_PROG_ID: u16 = 7;

/// `XDP_FLAGS_SKB_MODE`: generic XDP.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native (driver) XDP.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `XDP_FLAGS_HW_MODE`: offloaded XDP.
pub const XDP_FLAGS_HW_MODE: u32 = 1 << 3;

/// What `IFLA_XDP` says about an interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpState {
    /// `XDP_ATTACHED_*`: 0 none, 1 drv, 2 skb, 3 hw, 4 multi.
    pub attached: u8,
    /// Program id when exactly one program is attached.
    pub prog_id: u32,
    pub drv_prog_id: u32,
    pub skb_prog_id: u32,
    pub hw_prog_id: u32,
}

impl XdpState {
    /// `(mode flags, program id)` of every attached program.
    pub fn programs(&self) -> Vec<(u32, u32)> {
        let mut v = Vec::new();
        let (mut drv, mut skb, mut hw) = (self.drv_prog_id, self.skb_prog_id, self.hw_prog_id);
        // With a single program the kernel reports only PROG_ID and the mode in ATTACHED.
        match self.attached {
            1 if drv == 0 => drv = self.prog_id,
            2 if skb == 0 => skb = self.prog_id,
            3 if hw == 0 => hw = self.prog_id,
            _ => {}
        }
        for (flags, id) in [(XDP_FLAGS_DRV_MODE, drv), (XDP_FLAGS_SKB_MODE, skb), (XDP_FLAGS_HW_MODE, hw)] {
            if id != 0 {
                v.push((flags, id));
            }
        }
        v
    }
}

struct Msg(Vec<u8>);

impl Msg {
    fn new(kind: u16, flags: u16, ifindex: u32) -> Self {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish()
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&1u32.to_ne_bytes()); // sequence
        b.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
                                                  // struct ifinfomsg
        b.push(libc::AF_UNSPEC as u8);
        b.push(0);
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&(ifindex as i32).to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        Msg(b)
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(payload);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }

    /// An `IFLA_XDP` nest with the fd and mode flags.
    fn xdp(&mut self, fd: i32, flags: u32) {
        let mut inner = Msg(Vec::new());
        inner.attr(IFLA_XDP_FD, &fd.to_ne_bytes());
        inner.attr(IFLA_XDP_FLAGS, &flags.to_ne_bytes());
        self.attr(IFLA_XDP | NLA_F_NESTED, &inner.0);
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned right away.
    let fd =
        unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval { tv_sec: 5, tv_usec: 0 };
    // SAFETY: valid option value of the right size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    Ok(fd)
}

/// Sends `msg` and hands each reply message (type, payload after the netlink header) to `f` until
/// an ack, an error or `NLMSG_DONE`.
fn request(msg: Vec<u8>, mut f: impl FnMut(u16, &[u8])) -> io::Result<()> {
    let fd = socket()?;
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut rest = &buf[..n as usize];
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
            if len < 16 || len > rest.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink message"));
            }
            let payload = &rest[16..len];
            match kind {
                NLMSG_ERROR => {
                    let err = i32::from_ne_bytes(payload[0..4].try_into().unwrap());
                    return if err == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(-err)) };
                }
                NLMSG_DONE => return Ok(()),
                _ => f(kind, payload),
            }
            rest = &rest[(len + 3) & !3..];
            if kind == RTM_NEWLINK {
                // A GETLINK by index answers with one message and no ack.
                return Ok(());
            }
        }
    }
}

/// Iterates the attributes in `b`: (type without flags, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        Some((kind, payload))
    })
}

fn u32_of(p: &[u8]) -> u32 {
    p.get(..4).map_or(0, |x| u32::from_ne_bytes(x.try_into().unwrap()))
}

/// The XDP programs attached to interface `ifindex`.
pub fn xdp_state(ifindex: u32) -> io::Result<XdpState> {
    let mut state = XdpState::default();
    request(Msg::new(RTM_GETLINK, NLM_F_REQUEST, ifindex).finish(), |kind, payload| {
        if kind != RTM_NEWLINK || payload.len() < 16 {
            return;
        }
        for (t, p) in attrs(&payload[16..]) {
            if t != IFLA_XDP {
                continue;
            }
            for (t, p) in attrs(p) {
                match t {
                    IFLA_XDP_ATTACHED => state.attached = p.first().copied().unwrap_or(0),
                    IFLA_XDP_PROG_ID => state.prog_id = u32_of(p),
                    IFLA_XDP_DRV_PROG_ID => state.drv_prog_id = u32_of(p),
                    IFLA_XDP_SKB_PROG_ID => state.skb_prog_id = u32_of(p),
                    IFLA_XDP_HW_PROG_ID => state.hw_prog_id = u32_of(p),
                    _ => {}
                }
            }
        }
    })?;
    Ok(state)
}

/// Attaches program `prog_fd` to `ifindex` the legacy way (netlink, no bpf_link: it stays after the
/// process exits). `flags` is one of the `XDP_FLAGS_*_MODE`. dnsentry itself attaches through a
/// bpf_link; this exists to remove stale programs and to test that.
pub fn xdp_attach_fd(ifindex: u32, prog_fd: i32, flags: u32) -> io::Result<()> {
    let mut m = Msg::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, ifindex);
    m.xdp(prog_fd, flags);
    request(m.finish(), |_, _| {})
}

/// Detaches the netlink-attached program of mode `flags` from `ifindex`. Fails with `EBUSY` when
/// that program is held by a bpf_link (another live process owns it).
pub fn xdp_detach(ifindex: u32, flags: u32) -> io::Result<()> {
    xdp_attach_fd(ifindex, -1, flags)
}
