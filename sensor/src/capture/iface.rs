//! Facts about a network interface that live capture needs: its index, its RX queue count, and the
//! host's own addresses (never redirected by the XDP program). All of them follow the calling
//! thread's network namespace, except the sysfs fallback of [`rx_queue_count`] (sysfs shows the
//! namespace it was mounted in).

use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The interface index of `name`; `NotFound` when there is no such interface.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))?;
    // SAFETY: a valid C string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::ENODEV) || e.raw_os_error() == Some(0) {
            io::Error::new(io::ErrorKind::NotFound, format!("no interface `{name}`"))
        } else {
            e
        });
    }
    Ok(idx)
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// RX queues of `name` from ethtool channels (`rx + combined`), `None` when the driver does not
/// report channels.
pub fn ethtool_rx_queues(name: &str) -> io::Result<Option<u32>> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "interface name too long"));
    }
    // SAFETY: plain syscall; the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ch = EthtoolChannels { cmd: ETHTOOL_GCHANNELS, ..Default::default() };
    let mut req =
        IfReq { name: [0; libc::IFNAMSIZ], data: (&mut ch as *mut EthtoolChannels).cast(), _pad: [0; 16] };
    for (d, s) in req.name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: `req` points at a live `EthtoolChannels` for the duration of the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), SIOCETHTOOL as _, &mut req as *mut IfReq) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) => Ok(None),
            Some(libc::ENODEV) => {
                Err(io::Error::new(io::ErrorKind::NotFound, format!("no interface `{name}`")))
            }
            _ => Err(e),
        };
    }
    let n = ch.rx_count + ch.combined_count;
    Ok((n > 0).then_some(n))
}

/// RX queues of `name`: ethtool channels, else the `rx-*` entries in `/sys/class/net/NAME/queues`,
/// else 1.
pub fn rx_queue_count(name: &str) -> io::Result<u32> {
    if let Some(n) = ethtool_rx_queues(name)? {
        return Ok(n);
    }
    let dir = format!("/sys/class/net/{name}/queues");
    let n = match std::fs::read_dir(&dir) {
        Ok(rd) => {
            rd.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with("rx-")).count()
        }
        Err(_) => 0,
    };
    Ok(n.max(1) as u32)
}

/// Every address configured on the host (all interfaces of the calling thread's namespace,
/// loopback and link-local included): frames to them are for the host itself.
pub fn host_addresses() -> io::Result<BTreeSet<IpAddr>> {
    addresses(None)
}

/// The addresses configured on interface `name`.
pub fn interface_addresses(name: &str) -> io::Result<BTreeSet<IpAddr>> {
    addresses(Some(name))
}

fn addresses(only: Option<&str>) -> io::Result<BTreeSet<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head`; freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = BTreeSet::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        if let Some(want) = only {
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
            if name.to_bytes() != want.as_bytes() {
                continue;
            }
        }
        // SAFETY: ifa_addr is non-null and its family says which sockaddr it is.
        unsafe {
            match (*ifa.ifa_addr).sa_family as i32 {
                libc::AF_INET => {
                    let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    out.insert(IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))));
                }
                libc::AF_INET6 => {
                    let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    out.insert(IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)));
                }
                _ => {}
            }
        }
    }
    // SAFETY: the list getifaddrs returned.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_facts() {
        let lo = ifindex("lo").unwrap();
        assert!(lo > 0);
        assert_eq!(ifindex("no-such-if0").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(rx_queue_count("lo").unwrap() >= 1);
        assert!(host_addresses().unwrap().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(interface_addresses("lo").unwrap().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
