//! Builds the XDP program (`ebpf/xdp`) with aya-build, so `cargo build -p dnsentry` embeds it.
//!
//! aya-build runs `rustup run nightly cargo build --package dnsentry-xdp -Z build-std=core --target
//! bpfel-unknown-none` (bpf-linker links it). `ebpf/xdp` is its own workspace, outside this one (the
//! host toolchain cannot build a `no_std` bpf binary), so the nested cargo runs from its directory.
//! Needs the toolchain from `scripts/setup-ebpf.sh` (`cargo xtask setup`).
//!
//! `AYA_BUILD_SKIP=1` skips the eBPF build (an empty object is embedded; loading it then fails with
//! a clear error), for hosts that only replay captures.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("workspace root").to_path_buf();
    let xdp_dir = root.join("ebpf/xdp");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let object = out_dir.join("dnsentry-xdp");

    for p in ["ebpf/xdp/src", "ebpf/xdp/Cargo.toml", "ebpf/xdp/Cargo.lock", "ebpf/common/src"] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    let skip = std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        println!(
            "cargo:warning=AYA_BUILD_SKIP set: the XDP program is not built; live capture will not work"
        );
        std::fs::write(&object, b"").expect("write empty eBPF object");
        return;
    }

    if Command::new("bpf-linker").arg("--version").output().map_or(true, |o| !o.status.success()) {
        panic!(
            "bpf-linker not found on PATH: the XDP program cannot be linked. Run `cargo xtask setup` \
             (or scripts/setup-ebpf.sh), or set AYA_BUILD_SKIP=1 to build without live capture."
        );
    }

    // aya-build starts the nested cargo in the current directory; ebpf/xdp is its own workspace.
    std::env::set_current_dir(&xdp_dir).expect("cd ebpf/xdp");
    // aya-build turns every stderr line of the nested cargo into a cargo warning: keep it to errors.
    std::env::set_var("CARGO_TERM_QUIET", "true");
    let package = aya_build::Package {
        name: "dnsentry-xdp",
        root_dir: xdp_dir.to_str().expect("UTF-8 path"),
        ..Default::default()
    };
    if let Err(e) = aya_build::build_ebpf([package], aya_build::Toolchain::default()) {
        panic!("building the XDP program (ebpf/xdp) failed: {e:#}");
    }
    assert!(object.exists(), "aya-build did not produce {}", object.display());
}
