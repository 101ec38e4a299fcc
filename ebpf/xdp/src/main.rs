//! dnsentry's XDP program: DNS frames go to the AF_XDP socket of their RX queue, everything else
//! gets the configured default action (`pass` on an inline host, `drop` on a dedicated mirror port).
//!
//! Parsed: Ethernet, up to two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8), IPv4 (options skipped),
//! IPv6 (hop-by-hop, routing, destination options and fragment headers walked, bounded), UDP and
//! TCP ports. Fixed offsets are read directly from the packet; the variable ones (after IPv4 options
//! or IPv6 extension headers) through `bpf_xdp_load_bytes` (kernel 5.18+). Only the first buffer of a multi-buffer frame is looked at (`xdp.frags`, so native
//! attach works at jumbo MTU). Frames addressed to one of the host's own addresses are never
//! redirected: an AF_XDP redirect takes the frame away from the kernel stack, and the host's own DNS
//! must keep working in `pass` mode.
//!
//! Every frame ends in exactly one of `redirected`, `passed`, `dropped` (so `seen` is their sum);
//! `no_socket`, `fragments`, `non_ip` and `malformed` say why a frame got the default action.
#![no_std]
#![no_main]

use core::ffi::c_void;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::generated::bpf_xdp_load_bytes,
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray, XskMap},
    programs::XdpContext,
};
use dnsentry_common::{
    DefaultAction, XdpCounter, CONFIG_DEFAULT_ACTION, CONFIG_LEN, MAX_DNS_PORTS, MAX_IPV6_EXT_HEADERS,
    MAX_OWN_ADDRS, MAX_QUEUES, XDP_COUNTER_COUNT,
};

#[map]
static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(XDP_COUNTER_COUNT, 0);

#[map]
static CONFIG: Array<u32> = Array::with_max_entries(CONFIG_LEN, 0);

#[map]
static DNS_PORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_DNS_PORTS, 0);

#[map]
static OWN_V4: HashMap<[u8; 4], u8> = HashMap::with_max_entries(MAX_OWN_ADDRS, 0);

#[map]
static OWN_V6: HashMap<[u8; 16], u8> = HashMap::with_max_entries(MAX_OWN_ADDRS, 0);

const ETH_HLEN: usize = 14;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_DSTOPTS: u8 = 60;
/// Upper bound of the L4 offset the IPv6 walk accepts (longer chains are counted malformed).
const MAX_L4_OFFSET: usize = 1024;

/// Why a frame is not redirected (besides "not DNS").
enum Verdict {
    /// UDP/TCP to or from a DNS port, to an address that is not the host's own.
    Dns,
    /// Anything else: default action.
    Other,
    /// Non-first IP fragment: no ports to look at.
    Fragment,
    /// Neither IPv4 nor IPv6.
    NonIp,
    /// Headers cut short, or an IPv6 extension chain longer than the walk.
    Malformed,
}

#[inline(always)]
fn count(c: XdpCounter) {
    if let Some(p) = COUNTERS.get_ptr_mut(c as u32) {
        // SAFETY: a per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *p += 1 };
    }
}

/// One byte at `off`, bounds-checked against the first buffer.
#[inline(always)]
fn byte(ctx: &XdpContext, off: usize) -> Result<u8, ()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + 1 > end {
        return Err(());
    }
    // SAFETY: in bounds, checked just above.
    Ok(unsafe { *((start + off) as *const u8) })
}

/// A big-endian `u16` at `off`.
#[inline(always)]
fn be16(ctx: &XdpContext, off: usize) -> Result<u16, ()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + 2 > end {
        return Err(());
    }
    // SAFETY: in bounds, checked just above; read byte-wise (no alignment assumed).
    let (a, b) = unsafe { (*((start + off) as *const u8), *((start + off + 1) as *const u8)) };
    Ok(u16::from_be_bytes([a, b]))
}

/// `N` bytes at `off`.
#[inline(always)]
fn bytes<const N: usize>(ctx: &XdpContext, off: usize) -> Result<[u8; N], ()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + N > end {
        return Err(());
    }
    // SAFETY: in bounds, checked just above; unaligned read of plain bytes.
    Ok(unsafe { core::ptr::read_unaligned((start + off) as *const [u8; N]) })
}

/// `N` bytes at a variable offset, through `bpf_xdp_load_bytes` (kernel 5.18+): the helper does the
/// bounds check (across fragments too), which a variable packet offset makes hard to prove to the
/// verifier with direct access.
#[inline(always)]
fn load<const N: usize>(ctx: &XdpContext, off: usize) -> Result<[u8; N], ()> {
    let mut buf = [0u8; N];
    // SAFETY: the helper writes at most N bytes into `buf`.
    let r = unsafe { bpf_xdp_load_bytes(ctx.ctx, off as u32, buf.as_mut_ptr() as *mut c_void, N as u32) };
    if r != 0 {
        return Err(());
    }
    Ok(buf)
}

#[inline(always)]
fn is_dns_port(port: u16) -> bool {
    // SAFETY: the value is a plain u8 that is never written through this reference.
    unsafe { DNS_PORTS.get(&port).is_some() }
}

/// Source and destination port (UDP and TCP both start with them) as read from 4 bytes.
#[inline(always)]
fn dns_ports(p: [u8; 4]) -> bool {
    is_dns_port(u16::from_be_bytes([p[0], p[1]])) || is_dns_port(u16::from_be_bytes([p[2], p[3]]))
}

#[inline(always)]
fn classify(ctx: &XdpContext) -> Verdict {
    match parse(ctx) {
        Ok(v) => v,
        Err(()) => Verdict::Malformed,
    }
}

#[inline(always)]
fn parse(ctx: &XdpContext) -> Result<Verdict, ()> {
    let ethertype = be16(ctx, 12)?;
    // Up to two VLAN tags (QinQ): each is TCI (2) + inner ethertype (2). Each path keeps a constant
    // L3 offset, so the direct packet reads below stay provable for the verifier.
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        let inner = be16(ctx, ETH_HLEN + 2)?;
        if inner == ETH_P_8021Q || inner == ETH_P_8021AD {
            let inner2 = be16(ctx, ETH_HLEN + 6)?;
            return l3(ctx, inner2, ETH_HLEN + 8);
        }
        return l3(ctx, inner, ETH_HLEN + 4);
    }
    l3(ctx, ethertype, ETH_HLEN)
}

#[inline(always)]
fn l3(ctx: &XdpContext, ethertype: u16, off: usize) -> Result<Verdict, ()> {
    match ethertype {
        ETH_P_IPV4 => ipv4(ctx, off),
        ETH_P_IPV6 => ipv6(ctx, off),
        _ => Ok(Verdict::NonIp),
    }
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, off: usize) -> Result<Verdict, ()> {
    let vihl = byte(ctx, off)?;
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Err(());
    }
    // Fragment offset (13 bits): non-zero means a non-first fragment, which carries no ports.
    if be16(ctx, off + 6)? & 0x1fff != 0 {
        return Ok(Verdict::Fragment);
    }
    let proto = byte(ctx, off + 9)?;
    if proto != IPPROTO_UDP && proto != IPPROTO_TCP {
        return Ok(Verdict::Other);
    }
    // No options (the common case): constant offset, direct read. Options: the helper.
    let ports: [u8; 4] = if ihl == 20 { bytes(ctx, off + 20)? } else { load(ctx, off + ihl)? };
    if !dns_ports(ports) {
        return Ok(Verdict::Other);
    }
    let dst: [u8; 4] = bytes(ctx, off + 16)?;
    // SAFETY: plain u8 value, only tested for presence.
    if unsafe { OWN_V4.get(&dst).is_some() } {
        return Ok(Verdict::Other);
    }
    Ok(Verdict::Dns)
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, off: usize) -> Result<Verdict, ()> {
    if byte(ctx, off)? >> 4 != 6 {
        return Err(());
    }
    let first = byte(ctx, off + 6)?;
    let ports: [u8; 4] = if first == IPPROTO_UDP || first == IPPROTO_TCP {
        // No extension header (the common case): constant offset, direct read.
        bytes(ctx, off + 40)?
    } else {
        let mut next = first;
        let mut l4 = off + 40;
        let mut i = 0;
        while i < MAX_IPV6_EXT_HEADERS {
            i += 1;
            match next {
                IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                    let h: [u8; 2] = load(ctx, l4)?;
                    next = h[0];
                    l4 += (h[1] as usize + 1) * 8;
                }
                IPPROTO_FRAGMENT => {
                    let h: [u8; 4] = load(ctx, l4)?;
                    // Offset is the upper 13 bits of bytes 2..4; non-zero: non-first fragment.
                    if u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0 {
                        return Ok(Verdict::Fragment);
                    }
                    next = h[0];
                    l4 += 8;
                }
                _ => break,
            }
            if l4 > MAX_L4_OFFSET {
                return Err(());
            }
        }
        match next {
            IPPROTO_UDP | IPPROTO_TCP => {}
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT => return Err(()),
            _ => return Ok(Verdict::Other),
        }
        load(ctx, l4)?
    };
    if !dns_ports(ports) {
        return Ok(Verdict::Other);
    }
    let dst: [u8; 16] = bytes(ctx, off + 24)?;
    // SAFETY: plain u8 value, only tested for presence.
    if unsafe { OWN_V6.get(&dst).is_some() } {
        return Ok(Verdict::Other);
    }
    Ok(Verdict::Dns)
}

#[xdp(frags)]
pub fn dnsentry_xdp(ctx: XdpContext) -> u32 {
    count(XdpCounter::Seen);
    let default = match CONFIG.get(CONFIG_DEFAULT_ACTION) {
        Some(v) => DefaultAction::from_u32(*v),
        None => DefaultAction::Pass,
    };
    match classify(&ctx) {
        Verdict::Dns => {
            // The low bits of the flags are the verdict when the queue has no socket.
            match XSKS.redirect(ctx.rx_queue_index(), default.xdp_action() as u64) {
                Ok(action) => {
                    count(XdpCounter::Redirected);
                    return action;
                }
                Err(_) => count(XdpCounter::NoSocket),
            }
        }
        Verdict::Other => {}
        Verdict::Fragment => count(XdpCounter::Fragments),
        Verdict::NonIp => count(XdpCounter::NonIp),
        Verdict::Malformed => count(XdpCounter::Malformed),
    }
    match default {
        DefaultAction::Pass => {
            count(XdpCounter::Passed);
            xdp_action::XDP_PASS
        }
        DefaultAction::Drop => {
            count(XdpCounter::Dropped);
            xdp_action::XDP_DROP
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
