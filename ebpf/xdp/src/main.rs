//! Placeholder XDP program: passes every frame. The DNS redirect to AF_XDP sockets, per-CPU
//! counters and default action are the live-capture work (issue 3); the counter layout it will
//! fill is already shared with user space in `dnsentry-common`.
#![no_std]
#![no_main]

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

#[xdp]
pub fn dnsentry_xdp(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
