//! AF_XDP sockets: one per RX queue, each with its own UMEM, receiving the frames the XDP program
//! redirects to the queue's `XskMap` slot.
//!
//! Built on `xdpilone` (pure Rust, no libxdp): unlike xsk-rs 0.11, whose `Socket::new` binds before
//! it hands out the fill queue, it lets us fill the fill ring *before* `bind`, so the first frames
//! after bind are not dropped for want of buffers; and no libxdp program is ever loaded (the socket
//! fd goes into our own `XskMap`, see [`super::xdp::XdpProgram::register_socket`]).
//!
//! Frames are processed in place in the UMEM ([`XskSocket::poll`] lends each one to a closure) and
//! returned to the fill ring right after the batch.

use std::fmt;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::str::FromStr;
use std::time::Duration;

use xdpilone::{DeviceQueue, IfInfo, RingRx, Socket, SocketConfig, Umem, UmemConfig, User};

use super::iface;

const SOL_XDP: libc::c_int = 283;
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;

/// Requested bind mode (`--bind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Zero-copy: the NIC DMAs into the UMEM. Fails when the driver cannot.
    ZeroCopy,
    /// Copy mode: the kernel copies each redirected frame into the UMEM. Works with any XDP.
    Copy,
    /// Zero-copy, falling back to copy.
    #[default]
    Auto,
}

impl FromStr for BindMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "zero-copy" | "zerocopy" | "zc" => Ok(BindMode::ZeroCopy),
            "copy" => Ok(BindMode::Copy),
            "auto" => Ok(BindMode::Auto),
            _ => Err(format!("unknown bind mode `{s}` (expected zero-copy, copy or auto)")),
        }
    }
}

/// The mode a socket got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundMode {
    ZeroCopy,
    Copy,
}

impl BoundMode {
    pub const fn name(self) -> &'static str {
        match self {
            BoundMode::ZeroCopy => "zero-copy",
            BoundMode::Copy => "copy",
        }
    }
}

impl fmt::Display for BoundMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Sizes of one socket's UMEM and rings. Ring sizes must be powers of two.
#[derive(Debug, Clone)]
pub struct XskConfig {
    /// Frames in the UMEM. Should cover the fill ring plus the RX ring plus a batch.
    pub frame_count: u32,
    /// Bytes per frame (2048 or 4096: a power of two, aligned chunk mode).
    pub frame_size: u32,
    pub fill_size: u32,
    pub completion_size: u32,
    pub rx_size: u32,
    /// Frames handled per [`XskSocket::poll`] call at most.
    pub batch: u32,
    /// Bind with `XDP_USE_NEED_WAKEUP` (wake the driver only when it asks).
    pub need_wakeup: bool,
    pub bind: BindMode,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frame_count: 4096,
            frame_size: 4096,
            fill_size: 2048,
            completion_size: 64,
            rx_size: 2048,
            batch: 64,
            need_wakeup: true,
            bind: BindMode::Auto,
        }
    }
}

/// Why a socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    #[error("network interface `{0}` does not exist (in this network namespace)")]
    InterfaceMissing(String),
    #[error("{what}: permission denied. AF_XDP sockets need root or CAP_NET_RAW (+ CAP_IPC_LOCK or a raised RLIMIT_MEMLOCK for the UMEM)")]
    PermissionDenied { what: &'static str, source: io::Error },
    #[error("`{iface}` queue {queue}: zero-copy bind refused ({source}): the driver does not support it (veth never does); use --bind copy or auto")]
    ZeroCopyUnsupported { iface: String, queue: u32, source: io::Error },
    #[error("`{iface}` queue {queue} is busy: another AF_XDP socket (another dnsentry, or a libxdp tool) is bound to it")]
    QueueBusy { iface: String, queue: u32, source: io::Error },
    #[error("`{iface}` has no RX queue {queue} ({count} queues)")]
    NoSuchQueue { iface: String, queue: u32, count: u32 },
    #[error("invalid AF_XDP configuration: {0}")]
    Config(String),
    #[error("`{iface}` queue {queue}: {what} failed")]
    Setup { iface: String, queue: u32, what: &'static str, source: io::Error },
}

/// `XDP_STATISTICS` of one socket: frames the kernel could not deliver to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Dropped for other reasons (e.g. a frame larger than the UMEM frame).
    pub rx_dropped: u64,
    /// Dropped because the RX ring was full (user space too slow).
    pub rx_ring_full: u64,
    /// Times the fill ring was empty when the kernel needed a buffer.
    pub fill_ring_empty_descs: u64,
    pub rx_invalid_descs: u64,
}

/// An anonymous, page-aligned mapping holding a UMEM.
struct Area {
    ptr: NonNull<u8>,
    len: usize,
}

impl Area {
    fn new(len: usize) -> io::Result<Self> {
        // SAFETY: anonymous private mapping; checked for failure.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Area { ptr: NonNull::new(p.cast()).expect("mmap returned NULL"), len })
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used (the socket fields drop first).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One AF_XDP socket bound to one RX queue, with its own UMEM.
pub struct XskSocket {
    iface: String,
    queue: u32,
    mode: BoundMode,
    batch: u32,
    frame_size: u64,
    need_wakeup: bool,
    /// Frame addresses owned by user space, waiting to go back to the fill ring.
    free: Vec<u64>,
    rx: RingRx,
    fq: DeviceQueue,
    user: User,
    _umem: Umem,
    /// Dropped last: every ring and the socket fd are gone before the memory is unmapped.
    area: Area,
}

// SAFETY: every part is owned by this struct alone (the UMEM mapping, the socket fd and its rings);
// nothing is shared with another thread, so moving the whole to a worker thread is sound.
unsafe impl Send for XskSocket {}

impl fmt::Debug for XskSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XskSocket")
            .field("iface", &self.iface)
            .field("queue", &self.queue)
            .field("mode", &self.mode)
            .field("fd", &self.fd())
            .finish_non_exhaustive()
    }
}

fn errno(e: xdpilone::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.get_raw().abs())
}

fn pow2(name: &str, v: u32) -> Result<(), XskError> {
    if v == 0 || !v.is_power_of_two() {
        return Err(XskError::Config(format!("{name} must be a power of two, got {v}")));
    }
    Ok(())
}

impl XskConfig {
    fn validate(&self) -> Result<(), XskError> {
        pow2("frame_size", self.frame_size)?;
        pow2("fill_size", self.fill_size)?;
        pow2("completion_size", self.completion_size)?;
        pow2("rx_size", self.rx_size)?;
        if !(2048..=65536).contains(&self.frame_size) {
            return Err(XskError::Config(format!(
                "frame_size must be 2048..=65536, got {}",
                self.frame_size
            )));
        }
        if self.frame_count < self.fill_size {
            return Err(XskError::Config(format!(
                "frame_count ({}) must be at least fill_size ({})",
                self.frame_count, self.fill_size
            )));
        }
        if self.batch == 0 {
            return Err(XskError::Config("batch must be at least 1".into()));
        }
        Ok(())
    }
}

impl XskSocket {
    /// Opens a socket on every RX queue of `iface` (`queues`: how many, default the interface's
    /// count from [`iface::rx_queue_count`]). Stops at the first error.
    pub fn open_all(iface: &str, queues: Option<u32>, cfg: &XskConfig) -> Result<Vec<XskSocket>, XskError> {
        let n = match queues {
            Some(n) => n,
            None => iface::rx_queue_count(iface).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => XskError::InterfaceMissing(iface.to_string()),
                _ => XskError::Setup { iface: iface.into(), queue: 0, what: "counting RX queues", source: e },
            })?,
        };
        (0..n).map(|q| XskSocket::open(iface, q, cfg)).collect()
    }

    /// Opens a socket on RX queue `queue` of `iface` in the requested bind mode (`Auto`: zero-copy,
    /// then copy). The fill ring is filled before bind.
    pub fn open(iface: &str, queue: u32, cfg: &XskConfig) -> Result<XskSocket, XskError> {
        cfg.validate()?;
        iface::ifindex(iface).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => XskError::InterfaceMissing(iface.to_string()),
            _ => XskError::Setup { iface: iface.into(), queue, what: "looking up the interface", source: e },
        })?;
        if let Ok(count) = iface::rx_queue_count(iface) {
            // sysfs may show another namespace's view; trust only ethtool for a hard refusal.
            if matches!(iface::ethtool_rx_queues(iface), Ok(Some(_))) && queue >= count {
                return Err(XskError::NoSuchQueue { iface: iface.into(), queue, count });
            }
        }
        super::xdp::raise_memlock();
        match cfg.bind {
            BindMode::Copy => Self::open_mode(iface, queue, cfg, BoundMode::Copy),
            BindMode::ZeroCopy => Self::open_mode(iface, queue, cfg, BoundMode::ZeroCopy),
            BindMode::Auto => match Self::open_mode(iface, queue, cfg, BoundMode::ZeroCopy) {
                Ok(s) => Ok(s),
                Err(XskError::ZeroCopyUnsupported { .. }) => {
                    tracing::debug!(iface, queue, "zero-copy unsupported, binding in copy mode");
                    Self::open_mode(iface, queue, cfg, BoundMode::Copy)
                }
                Err(e) => Err(e),
            },
        }
    }

    fn open_mode(iface: &str, queue: u32, cfg: &XskConfig, want: BoundMode) -> Result<XskSocket, XskError> {
        let setup = |what: &'static str| {
            let iface = iface.to_string();
            move |e: xdpilone::Errno| {
                let source = errno(e);
                match source.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EACCES) => XskError::PermissionDenied { what, source },
                    _ => XskError::Setup { iface, queue, what, source },
                }
            }
        };
        let len = cfg.frame_count as usize * cfg.frame_size as usize;
        let area = Area::new(len).map_err(|source| XskError::Setup {
            iface: iface.into(),
            queue,
            what: "mmap of the UMEM",
            source,
        })?;
        let umem_cfg = UmemConfig {
            fill_size: cfg.fill_size,
            complete_size: cfg.completion_size,
            frame_size: cfg.frame_size,
            headroom: 0,
            flags: 0,
        };
        let region = NonNull::slice_from_raw_parts(area.ptr, area.len);
        // SAFETY: `area` is page aligned, `len` bytes long, and outlives the UMEM (field order).
        let umem = unsafe { Umem::new(umem_cfg, region) }
            .map_err(setup("creating the UMEM (socket + XDP_UMEM_REG)"))?;
        let mut info = IfInfo::invalid();
        let cname = std::ffi::CString::new(iface).map_err(|_| XskError::InterfaceMissing(iface.into()))?;
        info.from_name(&cname).map_err(|_| XskError::InterfaceMissing(iface.into()))?;
        info.set_queue(queue);
        let sock = Socket::with_shared(&info, &umem).map_err(setup("creating the socket"))?;
        let mut fq = umem.fq_cq(&sock).map_err(setup("mapping the fill/completion rings"))?;
        let mut flags = match want {
            BoundMode::ZeroCopy => SocketConfig::XDP_BIND_ZEROCOPY,
            BoundMode::Copy => SocketConfig::XDP_BIND_COPY,
        };
        if cfg.need_wakeup {
            flags |= SocketConfig::XDP_BIND_NEED_WAKEUP;
        }
        let sc = SocketConfig { rx_size: NonZeroU32::new(cfg.rx_size), tx_size: None, bind_flags: flags };
        let user = umem.rx_tx(&sock, &sc).map_err(setup("configuring the RX ring"))?;
        let rx = user.map_rx().map_err(setup("mapping the RX ring"))?;

        // Fill before bind: the kernel has buffers for the very first frames.
        let frame_size = u64::from(cfg.frame_size);
        let mut free: Vec<u64> = (0..u64::from(cfg.frame_count)).rev().map(|i| i * frame_size).collect();
        {
            let mut w = fq.fill(cfg.fill_size);
            let n = w.insert(free.iter().rev().copied());
            w.commit();
            free.truncate(free.len() - n as usize);
        }

        if let Err(e) = umem.bind(&user) {
            let source = errno(e);
            let iface = iface.to_string();
            return Err(match source.raw_os_error() {
                // veth says EOPNOTSUPP; virtio_net without zero-copy support says EINVAL (the queue
                // itself was checked above).
                Some(libc::EOPNOTSUPP) | Some(libc::EPROTONOSUPPORT) | Some(libc::EINVAL)
                    if want == BoundMode::ZeroCopy =>
                {
                    XskError::ZeroCopyUnsupported { iface, queue, source }
                }
                Some(libc::EBUSY) => XskError::QueueBusy { iface, queue, source },
                Some(libc::EPERM) | Some(libc::EACCES) => {
                    XskError::PermissionDenied { what: "binding the AF_XDP socket", source }
                }
                Some(libc::EINVAL) => {
                    let count = iface::rx_queue_count(&iface).unwrap_or(0);
                    if queue >= count && count > 0 {
                        XskError::NoSuchQueue { iface, queue, count }
                    } else {
                        XskError::Setup { iface, queue, what: "bind", source }
                    }
                }
                _ => XskError::Setup { iface, queue, what: "bind", source },
            });
        }
        let s = XskSocket {
            iface: iface.to_string(),
            queue,
            mode: want,
            batch: cfg.batch,
            frame_size,
            need_wakeup: cfg.need_wakeup,
            free,
            rx,
            fq,
            user,
            _umem: umem,
            area,
        };
        // Trust the kernel's word on the mode obtained.
        let mode = match s.options() {
            Ok(o) if o & XDP_OPTIONS_ZEROCOPY != 0 => BoundMode::ZeroCopy,
            Ok(_) => BoundMode::Copy,
            Err(_) => want,
        };
        tracing::info!(iface, queue, mode = %mode, fd = s.fd(), "AF_XDP socket bound");
        Ok(XskSocket { mode, ..s })
    }

    /// The socket fd, to put into the `XskMap` ([`super::xdp::XdpProgram::register_socket`]).
    pub fn fd(&self) -> RawFd {
        self.user.as_raw_fd()
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }

    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The bind mode obtained.
    pub fn mode(&self) -> BoundMode {
        self.mode
    }

    fn options(&self) -> io::Result<u32> {
        let mut v: u32 = 0;
        let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
        // SAFETY: valid buffer and length for the XDP_OPTIONS getsockopt.
        let r = unsafe {
            libc::getsockopt(self.fd(), SOL_XDP, XDP_OPTIONS, (&mut v as *mut u32).cast(), &mut len)
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(v)
    }

    /// Receives up to one batch: waits at most `timeout` when nothing is ready (zero: never
    /// sleeps), calls `f` on each frame *in place in the UMEM*, then hands the frames back to the
    /// fill ring. Returns the number of frames.
    pub fn poll(&mut self, timeout: Duration, mut f: impl FnMut(&[u8])) -> io::Result<usize> {
        if self.rx.available() == 0 {
            let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
            if ms > 0 || (self.need_wakeup && self.fq.needs_wakeup()) {
                let mut pfd = libc::pollfd { fd: self.fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd.
                let r = unsafe { libc::poll(&mut pfd, 1, ms) };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        let base = self.area.ptr.as_ptr();
        let area_len = self.area.len as u64;
        let mask = !(self.frame_size - 1);
        let mut n = 0;
        {
            let mut rd = self.rx.receive(self.batch);
            while let Some(d) = rd.read() {
                let end = d.addr.saturating_add(u64::from(d.len));
                if end <= area_len {
                    // SAFETY: inside the UMEM mapping (checked); the kernel handed this frame to user
                    // space and will not touch it until it is back on the fill ring, after `f`.
                    let data =
                        unsafe { std::slice::from_raw_parts(base.add(d.addr as usize), d.len as usize) };
                    f(data);
                }
                self.free.push(d.addr & mask);
                n += 1;
            }
            rd.release();
        }
        self.refill();
        Ok(n)
    }

    /// Returns free frames to the fill ring, waking the driver if it asked for it.
    fn refill(&mut self) {
        if !self.free.is_empty() {
            let mut w = self.fq.fill(self.free.len() as u32);
            let k = w.insert(self.free.iter().rev().copied());
            w.commit();
            let keep = self.free.len() - k as usize;
            self.free.truncate(keep);
        }
        if self.need_wakeup && self.fq.needs_wakeup() {
            // SAFETY: a zero-length, non-blocking recvfrom only kicks the driver.
            unsafe {
                libc::recvfrom(
                    self.fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
        }
    }

    /// The socket's `XDP_STATISTICS`.
    pub fn stats(&self) -> io::Result<XskStats> {
        let s = self.user.statistics_v2().map_err(errno)?;
        Ok(XskStats {
            rx_dropped: s.rx_dropped,
            rx_ring_full: s.rx_ring_full,
            fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            rx_invalid_descs: s.rx_invalid_descs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_checks() {
        XskConfig::default().validate().unwrap();
        let bad = XskConfig { rx_size: 1000, ..XskConfig::default() };
        assert!(matches!(bad.validate(), Err(XskError::Config(_))));
        let small = XskConfig { frame_count: 16, ..XskConfig::default() };
        assert!(matches!(small.validate(), Err(XskError::Config(_))));
        assert_eq!("copy".parse::<BindMode>().unwrap(), BindMode::Copy);
        assert_eq!("zero-copy".parse::<BindMode>().unwrap(), BindMode::ZeroCopy);
        assert!("fast".parse::<BindMode>().is_err());
    }
}
