#!/usr/bin/env bash
# Idempotent set-up of the eBPF toolchain live capture needs (XDP program + AF_XDP sockets), for a
# fresh Debian 12 machine. Each step is skipped when its result is already there, so a second run
# does nothing and needs no network.
#
#  1. Debian packages (scripts/apt-packages.txt, through scripts/setup.sh): LLVM 22, libpolly,
#     zlib and libzstd, which bpf-linker links against. (AF_XDP uses xdpilone, pure Rust: nothing
#     else to install for it.)
#  2. The nightly's `rust-src` component: aya-build compiles the XDP program with
#     `cargo +nightly build -Z build-std=core --target bpfel-unknown-none`.
#  3. bpf-linker, pinned, built against Debian's LLVM 22 (its LLVM must be at least as new as the
#     nightly's: nightly 1.97 of 2026-05-19 uses LLVM 22.1.4; Debian ships 22.1.x).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

BPF_LINKER_VERSION=0.13.0
LLVM_PREFIX_DIR=/usr/lib/llvm-22

bash "$here/setup.sh"

# rustup's shims and `cargo install` live in CARGO_HOME/bin; make sure they are found.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "setup-ebpf: installing the nightly toolchain" >&2
  rustup toolchain install nightly --profile minimal
fi

if ! rustup component list --installed --toolchain nightly 2>/dev/null | grep -q '^rust-src'; then
  echo "setup-ebpf: adding rust-src to the nightly toolchain" >&2
  rustup component add rust-src --toolchain nightly
fi

if ! bpf-linker --version >/dev/null 2>&1; then
  if [[ ! -x $LLVM_PREFIX_DIR/bin/llvm-config ]]; then
    echo "setup-ebpf: $LLVM_PREFIX_DIR/bin/llvm-config missing (Debian package llvm-22-dev)" >&2
    exit 1
  fi
  echo "setup-ebpf: building bpf-linker $BPF_LINKER_VERSION against LLVM 22 (about 1-2 minutes)" >&2
  # Without LLVM_PREFIX and llvm-22 first on PATH, llvm-sys finds llvm-14's llvm-config and fails
  # with "unable to find library -lLLVM".
  PATH="$LLVM_PREFIX_DIR/bin:$PATH" LLVM_PREFIX="$LLVM_PREFIX_DIR" \
    cargo install bpf-linker --version "$BPF_LINKER_VERSION" --locked \
    --no-default-features --features llvm-22
  bpf-linker --version >&2
fi
