//! Live capture end to end on a veth pair (root only): the XDP program in `skb` and `drv` mode, one
//! AF_XDP socket per RX queue, DNS sent from a peer namespace.
//!
//! Each test builds two network namespaces of its own (`dxdp-PID-MODE-s` with the sensor end `vs`,
//! `dxdp-PID-MODE-p` with the peer end `vp`; the veth has 2 RX and 2 TX queues), removed by a Drop
//! guard even when the test fails. Traffic only goes to addresses inside them: 10.233.0.1 and
//! fd00:233::1 (the sensor host's own addresses), 10.233.0.2 / fd00:233::2 (the peer), and
//! 10.233.0.77 / fd00:233::77, which no host owns: the peer has a static neighbour entry pointing
//! them at the sensor end, so those frames reach it the way mirrored traffic reaches a SPAN port.
//!
//! Skips when not root; fails instead when `CI=true`.

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dnsentry::capture::afxdp::{BindMode, BoundMode, XskConfig, XskError, XskSocket};
use dnsentry::capture::iface;
use dnsentry::capture::netlink::{self, XDP_FLAGS_SKB_MODE};
use dnsentry::capture::xdp::{AttachMode, AttachedMode, XdpConfig, XdpError, XdpProgram, COUNTERS};
use dnsentry::config::Config;
use dnsentry::decode::LinkType;
use dnsentry::detect::allowlist::Allowlist;
use dnsentry::worker::Decoder;
use dnsentry_common::{DefaultAction, XdpCounter};

/// One test at a time: two cores, and the counts below are exact.
static SERIAL: Mutex<()> = Mutex::new(());

const SENSOR_V4: Ipv4Addr = Ipv4Addr::new(10, 233, 0, 1);
const PEER_V4: Ipv4Addr = Ipv4Addr::new(10, 233, 0, 2);
const MIRROR_V4: Ipv4Addr = Ipv4Addr::new(10, 233, 0, 77);
const SENSOR_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x233, 0, 0, 0, 0, 0, 1);
const PEER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x233, 0, 0, 0, 0, 0, 2);
const MIRROR_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x233, 0, 0, 0, 0, 0, 0x77);

fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// `false` (and a message) when the test must skip; panics instead when `CI=true`.
fn may_run() -> bool {
    if is_root() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "live_xdp needs root (CI runs as root)");
    eprintln!("skipping live_xdp: needs root (network namespaces, XDP, AF_XDP)");
    false
}

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

fn ok(args: &[&str]) {
    let out = sh(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Moves the calling thread into network namespace `name` (only this thread: threads it spawns
/// afterwards start there too).
fn enter_netns(name: &str) {
    let f = File::open(format!("/run/netns/{name}")).expect("open netns");
    // SAFETY: a valid namespace fd.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {name}: {}", std::io::Error::last_os_error());
}

/// Runs `f` on a new thread inside network namespace `name`.
fn in_netns<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let name = name.to_string();
    std::thread::spawn(move || {
        enter_netns(&name);
        f()
    })
    .join()
    .expect("netns thread panicked")
}

/// Two namespaces joined by a veth pair; the test thread lives in the sensor's until drop.
struct Lab {
    sensor_ns: String,
    peer_ns: String,
    sensor_mac: [u8; 6],
    peer_ifindex: u32,
    home: File,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        remove_stale_labs();
        let pid = std::process::id();
        let sensor_ns = format!("dxdp-{pid}-{tag}-s");
        let peer_ns = format!("dxdp-{pid}-{tag}-p");
        let home = File::open("/proc/thread-self/ns/net").expect("own netns");
        // The guard exists before anything is created, so a failure below still cleans up.
        let mut lab = Lab { sensor_ns, peer_ns, sensor_mac: [0; 6], peer_ifindex: 0, home };
        let (s, p) = (lab.sensor_ns.clone(), lab.peer_ns.clone());
        ok(&["ip", "netns", "add", &s]);
        ok(&["ip", "netns", "add", &p]);
        ok(&[
            "ip",
            "-n",
            &s,
            "link",
            "add",
            "vs",
            "numrxqueues",
            "2",
            "numtxqueues",
            "2",
            "type",
            "veth",
            "peer",
            "name",
            "vp",
            "netns",
            &p,
            "numrxqueues",
            "2",
            "numtxqueues",
            "2",
        ]);
        ok(&["ip", "-n", &s, "addr", "add", "10.233.0.1/24", "dev", "vs"]);
        ok(&["ip", "-n", &s, "addr", "add", "fd00:233::1/64", "dev", "vs", "nodad"]);
        ok(&["ip", "-n", &p, "addr", "add", "10.233.0.2/24", "dev", "vp"]);
        ok(&["ip", "-n", &p, "addr", "add", "fd00:233::2/64", "dev", "vp", "nodad"]);
        for (ns, dev) in [(&s, "vs"), (&p, "vp"), (&s, "lo"), (&p, "lo")] {
            ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        enter_netns(&s);
        lab.sensor_mac = mac_of(&s, "vs");
        let mac_s = lab.sensor_mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        // The mirror addresses: frames for them reach the sensor, which does not own them.
        ok(&[
            "ip",
            "-n",
            &p,
            "neigh",
            "replace",
            "10.233.0.77",
            "lladdr",
            &mac_s,
            "dev",
            "vp",
            "nud",
            "permanent",
        ]);
        ok(&[
            "ip",
            "-n",
            &p,
            "neigh",
            "replace",
            "fd00:233::77",
            "lladdr",
            &mac_s,
            "dev",
            "vp",
            "nud",
            "permanent",
        ]);
        lab.peer_ifindex = in_netns(&p, || iface::ifindex("vp").unwrap());
        lab
    }

    fn peer(&self) -> &str {
        &self.peer_ns
    }

    fn ping(&self, count: u32) -> bool {
        let c = count.to_string();
        sh(&["ip", "netns", "exec", self.peer(), "ping", "-c", &c, "-i", "0.2", "-W", "1", "10.233.0.1"])
            .status
            .success()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // SAFETY: the fd of the namespace the thread started in.
        unsafe { libc::setns(self.home.as_raw_fd(), libc::CLONE_NEWNET) };
        // Deleting a namespace destroys the veth end inside it (and so the pair).
        for ns in [&self.sensor_ns, &self.peer_ns] {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}

/// Namespaces left by an earlier run of this test whose process is gone (e.g. killed).
fn remove_stale_labs() {
    let Ok(rd) = std::fs::read_dir("/run/netns") else { return };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("dxdp-").and_then(|r| r.split('-').next()) else { continue };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = sh(&["ip", "netns", "del", &name]);
        }
    }
}

fn mac_of(ns: &str, dev: &str) -> [u8; 6] {
    let out = sh(&["ip", "-n", ns, "-o", "link", "show", dev]);
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text.split("link/ether ").nth(1).and_then(|r| r.split_whitespace().next()).expect("mac");
    let v: Vec<u8> = hex.split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
    v.try_into().unwrap()
}

/// A DNS query for `q{id}.example.com` type A, with DNS id `id`.
fn dns_query(id: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    let label = format!("q{id}");
    for l in [label.as_str(), "example", "com"] {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// Sends one query per id from its own socket (so each has its own source port, i.e. its own flow).
fn send_queries(lab: &Lab, dst: SocketAddr, ids: std::ops::Range<u16>) {
    in_netns(lab.peer(), move || {
        let bind: SocketAddr = if dst.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().unwrap();
        for id in ids {
            let s = UdpSocket::bind(bind).unwrap();
            s.send_to(&dns_query(id), dst).unwrap();
        }
    });
}

/// Sends queries to `dst` and counts the answers (within 300 ms each).
fn ask(lab: &Lab, dst: SocketAddr, ids: std::ops::Range<u16>) -> usize {
    in_netns(lab.peer(), move || {
        let mut answered = 0;
        for id in ids {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
            s.send_to(&dns_query(id), dst).unwrap();
            let mut buf = [0u8; 512];
            if let Ok((n, _)) = s.recv_from(&mut buf) {
                if n >= 2 && buf[..2] == id.to_be_bytes() {
                    answered += 1;
                }
            }
        }
        answered
    })
}

/// A minimal DNS responder on the sensor host's own address (the host's own DNS service).
struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Responder {
    /// Must be called from the sensor namespace (the thread inherits it).
    fn start() -> Responder {
        let sock = UdpSocket::bind((SENSOR_V4, 53)).expect("bind 10.233.0.1:53");
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut served = 0;
            let mut buf = [0u8; 512];
            while !st.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    if n >= 12 {
                        buf[2] |= 0x80; // QR: a response
                        let _ = sock.send_to(&buf[..n], from);
                        served += 1;
                    }
                }
            }
            served
        });
        Responder { stop, thread: Some(thread) }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls every socket until `want` frames arrived (or 5 s), then 300 ms more to catch extras.
fn collect(socks: &mut [XskSocket], want: usize) -> Vec<(u32, Vec<u8>)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut extra_until: Option<Instant> = None;
    loop {
        for s in socks.iter_mut() {
            let q = s.queue();
            s.poll(Duration::from_millis(5), |f| got.push((q, f.to_vec()))).expect("poll");
        }
        let now = Instant::now();
        if got.len() >= want && extra_until.is_none() {
            extra_until = Some(now + Duration::from_millis(300));
        }
        if extra_until.is_some_and(|t| now >= t) || now >= deadline {
            return got;
        }
    }
}

fn delta(after: &[u64; COUNTERS], before: &[u64; COUNTERS], c: XdpCounter) -> u64 {
    after[c as usize] - before[c as usize]
}

// ---- raw frames, injected from the peer over AF_PACKET ----

fn eth(dst: [u8; 6], ethertype: u16, tags: &[u16], payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    // Tags: (TPID, TCI) pairs; the TPID list is given outermost first.
    for (i, tpid) in tags.iter().enumerate() {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(100 + i as u16).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn tcp_syn(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    t
}

fn ipv4(proto: u8, options: &[u8], frag: u16, payload: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = (20 + options.len()) / 4;
    let mut p = vec![0x40 | ihl as u8, 0];
    p.extend_from_slice(&((ihl * 4 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&PEER_V4.octets());
    p.extend_from_slice(&MIRROR_V4.octets());
    p.extend_from_slice(options);
    p.extend_from_slice(payload);
    p
}

/// IPv6 to the mirror address; `exts` are (header type, header bytes without the next-header byte).
fn ipv6(exts: &[(u8, Vec<u8>)], l4: u8, payload: &[u8]) -> Vec<u8> {
    let mut chain = Vec::new();
    for (i, (_, body)) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(l4, |e| e.0);
        chain.push(next);
        chain.extend_from_slice(body);
    }
    let first = exts.first().map_or(l4, |e| e.0);
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((chain.len() + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[first, 64]);
    p.extend_from_slice(&PEER_V6.octets());
    p.extend_from_slice(&MIRROR_V6.octets());
    p.extend_from_slice(&chain);
    p.extend_from_slice(payload);
    p
}

/// (frame, expected outcome) for the parser cases.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Redirect,
    Other,
    Fragment,
    NonIp,
    Malformed,
}

fn crafted(mac: [u8; 6]) -> Vec<(&'static str, Vec<u8>, Expect)> {
    let q = dns_query(7000);
    let opts = [0x01, 0x01, 0x01, 0x00]; // NOP NOP NOP EOL: a header with options (IHL 6)
    let pad6 = vec![0, 1, 4, 0, 0, 0, 0]; // len 0 (8 bytes), PadN of 4
    let frag_first = vec![0, 0x00, 0x01, 0, 0, 0, 1]; // offset 0, M=1
    let frag_later = vec![0, 0x00, 0xb8, 0, 0, 0, 1]; // offset 23 (x8 bytes)
    vec![
        ("802.1Q", eth(mac, 0x0800, &[0x8100], &ipv4(17, &[], 0, &udp(40001, 53, &q))), Expect::Redirect),
        (
            "QinQ",
            eth(mac, 0x0800, &[0x88a8, 0x8100], &ipv4(17, &[], 0, &udp(40002, 53, &q))),
            Expect::Redirect,
        ),
        ("IPv4 options", eth(mac, 0x0800, &[], &ipv4(17, &opts, 0, &udp(40003, 53, &q))), Expect::Redirect),
        (
            "IPv6 hop-by-hop + destination options",
            eth(mac, 0x86dd, &[], &ipv6(&[(0, pad6.clone()), (60, pad6.clone())], 17, &udp(40004, 53, &q))),
            Expect::Redirect,
        ),
        ("TCP SYN to 53", eth(mac, 0x0800, &[], &ipv4(6, &[], 0, &tcp_syn(40005, 53))), Expect::Redirect),
        (
            "IPv6 first fragment",
            eth(mac, 0x86dd, &[], &ipv6(&[(44, frag_first)], 17, &udp(40006, 53, &q))),
            Expect::Redirect,
        ),
        ("UDP 5353", eth(mac, 0x0800, &[], &ipv4(17, &[], 0, &udp(40007, 5353, &q))), Expect::Other),
        ("IPv4 later fragment", eth(mac, 0x0800, &[], &ipv4(17, &[], 0x00b9, &q)), Expect::Fragment),
        ("IPv6 later fragment", eth(mac, 0x86dd, &[], &ipv6(&[(44, frag_later)], 17, &q)), Expect::Fragment),
        ("non-IP", eth(mac, 0x88b5, &[], &[0u8; 46]), Expect::NonIp),
        ("truncated UDP", eth(mac, 0x0800, &[], &ipv4(17, &[], 0, &[0, 53])[..22]), Expect::Malformed),
    ]
}

fn inject(lab: &Lab, frames: Vec<Vec<u8>>) {
    let ifindex = lab.peer_ifindex;
    in_netns(lab.peer(), move || {
        // SAFETY: plain syscalls with valid arguments; the fd is closed at the end.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            for f in frames {
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_ifindex = ifindex as i32;
                sll.sll_halen = 6;
                sll.sll_addr[..6].copy_from_slice(&f[..6]);
                let r = libc::sendto(
                    fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert_eq!(r, f.len() as isize, "sendto: {}", std::io::Error::last_os_error());
            }
            libc::close(fd);
        }
    });
}

fn run(mode: AttachMode, tag: &str) {
    if !may_run() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(tag);
    let want_mode = if mode == AttachMode::Drv { AttachedMode::Drv } else { AttachedMode::Skb };
    if want_mode == AttachedMode::Drv {
        // Mirror ports often run jumbo MTU: native XDP must attach there too (multi-buffer program).
        ok(&["ip", "-n", &lab.sensor_ns, "link", "set", "vs", "mtu", "9000"]);
        ok(&["ip", "-n", lab.peer(), "link", "set", "vp", "mtu", "9000"]);
    }

    assert_eq!(iface::rx_queue_count("vs").unwrap(), 2, "ethtool channels of the veth");

    // Load and configure (own addresses read from this namespace), open the sockets, attach.
    let mut prog = XdpProgram::load("vs", &XdpConfig::default()).expect("load");
    assert!(prog.own_addresses().contains(&SENSOR_V4.into()), "{:?}", prog.own_addresses());
    assert!(prog.own_addresses().contains(&SENSOR_V6.into()), "{:?}", prog.own_addresses());

    // veth has no zero-copy: forcing it is a clear error; auto gets copy.
    let zc = XskSocket::open("vs", 0, &XskConfig { bind: BindMode::ZeroCopy, ..XskConfig::default() });
    assert!(matches!(zc, Err(XskError::ZeroCopyUnsupported { .. })), "{zc:?}");
    let cfg = XskConfig { frame_count: 1024, fill_size: 512, rx_size: 512, ..XskConfig::default() };
    let mut socks = XskSocket::open_all("vs", None, &cfg).expect("open sockets");
    assert_eq!(socks.len(), 2);
    for s in &socks {
        assert_eq!(s.mode(), BoundMode::Copy);
        prog.register_socket(s.queue(), s.fd()).unwrap();
    }
    // A second socket on a bound queue: busy.
    let busy = XskSocket::open("vs", 0, &cfg);
    assert!(matches!(busy, Err(XskError::QueueBusy { .. })), "{busy:?}");

    let got_mode = prog.attach(mode).expect("attach");
    assert_eq!(got_mode, want_mode);
    let st = netlink::xdp_state(prog.ifindex()).unwrap();
    assert_eq!(st.attached, if want_mode == AttachedMode::Drv { 1 } else { 2 }, "{st:?}");
    eprintln!(
        "{tag}: XDP attached in {got_mode} mode; sockets: {}",
        socks.iter().map(|s| format!("q{}={}", s.queue(), s.mode())).collect::<Vec<_>>().join(" ")
    );

    // 1. DNS to an address the sensor does not own: every query lands in a socket.
    let c0 = prog.counters().unwrap();
    const N4: u16 = 60;
    const N6: u16 = 20;
    send_queries(&lab, SocketAddr::from((MIRROR_V4, 53)), 0..N4);
    send_queries(&lab, SocketAddr::from((MIRROR_V6, 53)), N4..N4 + N6);
    let frames = collect(&mut socks, usize::from(N4 + N6));
    let c1 = prog.counters().unwrap();
    let per_queue: Vec<usize> = (0..2).map(|q| frames.iter().filter(|f| f.0 == q).count()).collect();
    eprintln!("{tag}: {} DNS frames received, per queue {per_queue:?}; counters {c1:?}", frames.len());
    assert_eq!(frames.len(), usize::from(N4 + N6), "frames received vs sent");
    assert_eq!(delta(&c1, &c0, XdpCounter::Redirected), u64::from(N4 + N6));
    assert!(delta(&c1, &c0, XdpCounter::Seen) >= u64::from(N4 + N6));
    assert_eq!(delta(&c1, &c0, XdpCounter::NoSocket), 0);
    if want_mode == AttachedMode::Drv {
        assert!(per_queue.iter().all(|&n| n > 0), "drv mode spreads flows over both queues: {per_queue:?}");
    }
    // They are the queries sent, and the replay decoder reads them, in place.
    let mut ids: Vec<u16> = frames
        .iter()
        .map(|(_, f)| {
            let l4 = if u16::from_be_bytes([f[12], f[13]]) == 0x0800 { 14 + 20 } else { 14 + 40 };
            assert_eq!(u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]), 53);
            u16::from_be_bytes([f[l4 + 8], f[l4 + 9]])
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..N4 + N6).collect::<Vec<_>>());
    let mut dec = Decoder::new(&Config::default(), Arc::new(Allowlist::new(true, &[])));
    let mut records = 0;
    for (i, (_, f)) in frames.iter().enumerate() {
        dec.frame(Some(LinkType::Ethernet), f, 0, i as u64, &mut |_, _| records += 1);
    }
    assert_eq!(records, frames.len(), "decoded DNS messages");

    // 2. The parser: VLAN tags, IPv4 options, IPv6 extension headers, TCP, fragments, junk.
    let cases = crafted(lab.sensor_mac);
    let want_redirect = cases.iter().filter(|c| c.2 == Expect::Redirect).count();
    let count = |e| cases.iter().filter(|c| c.2 == e).count() as u64;
    let c0 = prog.counters().unwrap();
    inject(&lab, cases.iter().map(|c| c.1.clone()).collect());
    let frames = collect(&mut socks, want_redirect);
    let c1 = prog.counters().unwrap();
    let names: Vec<&str> = cases
        .iter()
        .filter(|c| c.2 == Expect::Redirect && !frames.iter().any(|f| f.1 == c.1))
        .map(|c| c.0)
        .collect();
    assert!(names.is_empty(), "{tag}: not redirected: {names:?}");
    assert_eq!(frames.len(), want_redirect);
    assert_eq!(delta(&c1, &c0, XdpCounter::Redirected), want_redirect as u64);
    assert_eq!(delta(&c1, &c0, XdpCounter::Fragments), count(Expect::Fragment));
    assert_eq!(delta(&c1, &c0, XdpCounter::Malformed), count(Expect::Malformed));
    assert!(delta(&c1, &c0, XdpCounter::NonIp) >= count(Expect::NonIp));
    assert!(delta(&c1, &c0, XdpCounter::Passed) >= count(Expect::Other) + count(Expect::Fragment));

    // 3. The host's own DNS (pass mode): answered by the host, never redirected.
    let responder = Responder::start();
    let c0 = prog.counters().unwrap();
    let answered = ask(&lab, SocketAddr::from((SENSOR_V4, 53)), 100..110);
    let frames = collect(&mut socks, 0);
    let c1 = prog.counters().unwrap();
    assert_eq!(answered, 10, "the host's own DNS must keep working in pass mode");
    assert!(frames.is_empty(), "DNS to the host's own address was redirected");
    assert_eq!(delta(&c1, &c0, XdpCounter::Redirected), 0);
    assert!(delta(&c1, &c0, XdpCounter::Passed) >= 10);

    // 4. Pass mode: ping works.
    assert!(lab.ping(2), "ping must work in pass mode");

    // 5. Drop mode: ping and the host's own DNS stop; mirrored DNS is still captured.
    prog.set_default_action(DefaultAction::Drop).unwrap();
    let c0 = prog.counters().unwrap();
    assert!(!lab.ping(2), "ping must fail in drop mode");
    assert_eq!(ask(&lab, SocketAddr::from((SENSOR_V4, 53)), 200..203), 0, "own DNS is dropped in drop mode");
    send_queries(&lab, SocketAddr::from((MIRROR_V4, 53)), 300..310);
    let frames = collect(&mut socks, 10);
    let c1 = prog.counters().unwrap();
    assert_eq!(frames.len(), 10);
    assert_eq!(delta(&c1, &c0, XdpCounter::Redirected), 10);
    assert!(delta(&c1, &c0, XdpCounter::Dropped) >= 2 + 3);
    assert_eq!(delta(&c1, &c0, XdpCounter::Passed), 0);
    prog.set_default_action(DefaultAction::Pass).unwrap();
    assert!(lab.ping(3), "ping works again in pass mode");
    assert!(responder.stop() >= 10);

    // 6. A queue without a socket: DNS falls back to the default action and is counted.
    let c0 = prog.counters().unwrap();
    for s in &socks {
        prog.unregister_socket(s.queue()).unwrap();
    }
    send_queries(&lab, SocketAddr::from((MIRROR_V4, 53)), 400..405);
    std::thread::sleep(Duration::from_millis(200));
    let c1 = prog.counters().unwrap();
    assert_eq!(delta(&c1, &c0, XdpCounter::NoSocket), 5);
    assert_eq!(delta(&c1, &c0, XdpCounter::Redirected), 0);

    // Socket statistics are readable, and nothing was lost on the way.
    for s in &socks {
        let st = s.stats().unwrap();
        eprintln!("{tag}: queue {} {st:?}", s.queue());
        assert_eq!(st.rx_dropped + st.rx_ring_full + st.rx_invalid_descs, 0, "{st:?}");
    }

    // Detach (before the sockets close): the interface is clean again.
    let ifindex = prog.ifindex();
    drop(prog);
    assert_eq!(netlink::xdp_state(ifindex).unwrap().attached, 0);
    drop(socks);
}

#[test]
fn live_xdp_skb() {
    run(AttachMode::Skb, "skb");
}

#[test]
fn live_xdp_drv() {
    run(AttachMode::Drv, "drv");
}

/// A stale dnsentry program (attached the netlink way, as if by a crashed run of an older
/// version: it outlives its process) is replaced; a program held by a live bpf_link is not.
#[test]
fn live_xdp_stale_program_replaced() {
    if !may_run() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _lab = Lab::new("stale");
    let ifindex = iface::ifindex("vs").unwrap();
    {
        let old = XdpProgram::load("vs", &XdpConfig::default()).unwrap();
        netlink::xdp_attach_fd(
            ifindex,
            std::os::fd::AsRawFd::as_raw_fd(&old.program_fd().unwrap()),
            XDP_FLAGS_SKB_MODE,
        )
        .unwrap();
    }
    let stale = netlink::xdp_state(ifindex).unwrap();
    assert_eq!(stale.attached, 2, "the stale program stays attached: {stale:?}");
    let mut p = XdpProgram::load("vs", &XdpConfig::default()).unwrap();
    assert_eq!(p.attach(AttachMode::Auto).unwrap(), AttachedMode::Drv);
    assert_eq!(p.replaced_stale(), Some(stale.prog_id));

    let mut other = XdpProgram::load("vs", &XdpConfig::default()).unwrap();
    let err = other.attach(AttachMode::Skb).unwrap_err();
    assert!(matches!(err, XdpError::Busy { .. }), "{err}");
    eprintln!("stale: replaced program {}; second attach: {err}", stale.prog_id);

    let missing = XdpProgram::load("no-such-if0", &XdpConfig::default()).unwrap_err();
    assert!(matches!(missing, XdpError::InterfaceMissing(_)), "{missing}");
    let missing = XskSocket::open("no-such-if0", 0, &XskConfig::default()).unwrap_err();
    assert!(matches!(missing, XskError::InterfaceMissing(_)), "{missing}");
}
