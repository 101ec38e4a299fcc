//! Smoke test of live capture on a real interface (root): attaches the XDP program, opens one
//! AF_XDP socket per RX queue, decodes what arrives with the same `Decoder` replay uses, and prints
//! the modes obtained, per-queue frames, socket statistics and the XDP counters.
//!
//! ```text
//! cargo run --release --example live_capture_smoke -- IFACE [--attach drv|skb|auto]
//!     [--bind zero-copy|copy|auto] [--default pass|drop] [--seconds N] [--queues N]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dnsentry::capture::afxdp::{BindMode, XskConfig, XskSocket};
use dnsentry::capture::xdp::{counter_names, AttachMode, XdpConfig, XdpProgram};
use dnsentry::config::Config;
use dnsentry::decode::LinkType;
use dnsentry::detect::allowlist::Allowlist;
use dnsentry::worker::Decoder;
use dnsentry_common::DefaultAction;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut iface = None;
    let (mut attach, mut bind, mut default, mut secs, mut queues) =
        (AttachMode::Auto, BindMode::Auto, DefaultAction::Pass, 5u64, None);
    while let Some(a) = args.next() {
        let mut val = || args.next().context("missing value");
        match a.as_str() {
            "--attach" => attach = val()?.parse().map_err(anyhow::Error::msg)?,
            "--bind" => bind = val()?.parse().map_err(anyhow::Error::msg)?,
            "--default" => {
                default = match val()?.as_str() {
                    "pass" => DefaultAction::Pass,
                    "drop" => DefaultAction::Drop,
                    o => bail!("--default pass|drop, not {o}"),
                }
            }
            "--seconds" => secs = val()?.parse()?,
            "--queues" => queues = Some(val()?.parse()?),
            _ if iface.is_none() && !a.starts_with('-') => iface = Some(a),
            _ => bail!("unexpected argument {a}"),
        }
    }
    let iface = iface.context("usage: live_capture_smoke IFACE [options]")?;

    let cfg = XdpConfig { default_action: default, ..XdpConfig::default() };
    let mut prog = XdpProgram::load(&iface, &cfg)?;
    let xcfg = XskConfig { bind, ..XskConfig::default() };
    let mut socks = XskSocket::open_all(&iface, queues, &xcfg)?;
    for s in &socks {
        prog.register_socket(s.queue(), s.fd())?;
        println!("queue {}: AF_XDP socket bound in {} mode", s.queue(), s.mode());
    }
    let mode = prog.attach(attach)?;
    println!("XDP attached to {iface} in {mode} mode, default action {}", default.name());

    let config = Config::default();
    let allow = Arc::new(Allowlist::new(true, &[]));
    let mut dec = Decoder::new(&config, allow);
    let mut per_queue = vec![0u64; socks.len()];
    let mut records = 0u64;
    let end = Instant::now() + Duration::from_secs(secs);
    let mut seq = 0u64;
    while Instant::now() < end {
        for (i, s) in socks.iter_mut().enumerate() {
            let n = s.poll(Duration::from_millis(10), |frame| {
                seq += 1;
                dec.frame(Some(LinkType::Ethernet), frame, 0, seq, &mut |_r, _| records += 1);
            })?;
            per_queue[i] += n as u64;
        }
    }
    let counters = prog.counters()?;
    // Detach before the sockets close.
    drop(prog);
    for (s, n) in socks.iter().zip(&per_queue) {
        println!("queue {}: {n} frames, {:?}", s.queue(), s.stats()?);
    }
    println!("DNS messages decoded: {records}");
    let c: Vec<String> = counter_names().iter().zip(counters).map(|(n, v)| format!("{n}={v}")).collect();
    println!("XDP counters: {}", c.join(" "));
    Ok(())
}
