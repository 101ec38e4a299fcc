#!/usr/bin/env python3
"""Builds the captures `scripts/bench-scale.sh` measures on (plain pcap, Ethernet, microseconds).

  benign.pcap        real benign DNS (the given pcap/pcapng files, merged by time), replicated in
                     capture time until it holds at least --min-packets frames
  flood-one.pcap     --flood queries for random subdomains of ONE registered domain ("water
                     torture"), each answered NXDOMAIN: 2 x --flood frames, clients and ports spread
  flood-resolvers.pcap  the same flood forwarded by 8 resolvers (8 clients)
  many-domains.pcap  --domains queries, each for a different registered domain, answered

Only the standard library: it runs unchanged on a bench machine that has python3 and nothing else.
"""

import argparse
import random
import struct
import sys
from pathlib import Path

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def read_frames(path):
    """Yields (ts_us, frame) from a plain pcap or pcapng file (Ethernet assumed)."""
    data = Path(path).read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        nanos = magic == b"\x4d\x3c\xb2\xa1"
        off = 24
        while off + 16 <= len(data):
            sec, frac, incl, _ = struct.unpack_from("<IIII", data, off)
            off += 16
            yield sec * 1_000_000 + (frac // 1000 if nanos else frac), data[off:off + incl]
            off += incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        off = 0
        tsresol = []  # per interface: ticks per microsecond divisor (1 = microseconds)
        while off + 12 <= len(data):
            btype, blen = struct.unpack_from("<II", data, off)
            if blen < 12:
                sys.exit(f"{path}: corrupt pcapng block at {off}")
            body = data[off + 8:off + blen - 4]
            if btype == 0x0A0D0D0A:
                tsresol = []
            elif btype == 1:  # interface description: find if_tsresol (option 9)
                div = 1
                opt = 8
                while opt + 4 <= len(body):
                    code, olen = struct.unpack_from("<HH", body, opt)
                    if code == 0:
                        break
                    if code == 9 and olen >= 1:
                        r = body[opt + 4]
                        div = (10 ** (r & 0x7F) if not r & 0x80 else 2 ** (r & 0x7F)) // 1_000_000 or 1
                    opt += 4 + ((olen + 3) & ~3)
                tsresol.append(div)
            elif btype == 6:  # enhanced packet
                iface, hi, lo, caplen, _ = struct.unpack_from("<IIIII", body, 0)
                div = tsresol[iface] if iface < len(tsresol) else 1
                yield ((hi << 32) | lo) // div, body[20:20 + caplen]
            off += blen
    else:
        sys.exit(f"{path}: not a pcap or pcapng file")


class Writer:
    def __init__(self, path):
        self.f = open(path, "wb", buffering=1 << 20)
        self.f.write(PCAP_HEADER)
        self.n = 0

    def frame(self, ts_us, frame):
        self.f.write(struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame), len(frame)))
        self.f.write(frame)
        self.n += 1

    def close(self):
        self.f.close()


def benign(out, sources, min_packets):
    frames = sorted((f for s in sources for f in read_frames(s)), key=lambda f: f[0])
    if not frames:
        sys.exit("no frames in the benign sources")
    span = frames[-1][0] - frames[0][0] + 1_000_000
    w = Writer(out)
    copy = 0
    while w.n < min_packets:
        for ts, fr in frames:
            w.frame(ts + copy * span, fr)
        copy += 1
    w.close()
    return w.n


def checksum(b):
    s = sum(struct.unpack(f"!{len(b) // 2}H", b[: len(b) // 2 * 2]))
    if len(b) % 2:
        s += b[-1] << 8
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def dns_frame(src, dst, sport, dport, dns):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(dns), 0) + dns
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp


def qname(name):
    return b"".join(bytes([len(l)]) + l for l in name.encode().split(b".")) + b"\x00"


def message(qid, name, response, rcode=0, answer=None):
    flags = (0x8180 | rcode) if response else 0x0100
    body = qname(name) + struct.pack("!HH", 1, 1)
    ancount = 1 if answer else 0
    if answer:
        body += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + answer
    return struct.pack("!HHHHHH", qid, flags, 1, ancount, 0, 0) + body


def exchanges(out, names, rcode, rng, clients=0):
    """A query and its response for each name, ports spread; clients spread, or `clients` of them
    (resolvers forwarding a flood). Ten frames per microsecond: the 10 Mpps of a saturated 10GbE
    mirror, so capture time runs as it would on the wire (the sensor merges per millisecond of
    capture time)."""
    w = Writer(out)
    ts = 1_700_000_000_000_000
    server = bytes([10, 53, 0, 1])
    sent = 0
    for name in names:
        if clients:
            client = bytes([10, 0, 0, 1 + rng.randrange(clients)])
        else:
            client = bytes([10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)])
        sport, qid = rng.randrange(1024, 65536), rng.randrange(65536)
        w.frame(ts, dns_frame(client, server, sport, 53, message(qid, name, False)))
        answer = None if rcode else bytes([192, 0, 2, rng.randrange(256)])
        w.frame(ts, dns_frame(server, client, 53, sport, message(qid, name, True, rcode, answer)))
        sent += 1
        ts += sent % 5 == 0
    w.close()
    return w.n


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("outdir")
    p.add_argument("--benign", nargs="+", required=True, help="real benign captures (pcap or pcapng)")
    p.add_argument("--min-packets", type=int, default=3_000_000)
    p.add_argument("--flood", type=int, default=1_000_000, help="random subdomains of one domain")
    p.add_argument("--domains", type=int, default=1_000_000, help="distinct registered domains")
    a = p.parse_args()
    out = Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(53)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    n = benign(out / "benign.pcap", a.benign, a.min_packets)
    print(f"benign.pcap: {n} frames")
    flood = ("".join(rng.choices(alphabet, k=16)) + ".water-torture.example" for _ in range(a.flood))
    n = exchanges(out / "flood-one.pcap", flood, 3, rng)
    print(f"flood-one.pcap: {n} frames")
    flood = ("".join(rng.choices(alphabet, k=16)) + ".water-torture.example" for _ in range(a.flood))
    n = exchanges(out / "flood-resolvers.pcap", flood, 3, rng, clients=8)
    print(f"flood-resolvers.pcap: {n} frames")
    domains = (f"www.d{i:07d}-{rng.randrange(1 << 20):05x}.com" for i in range(a.domains))
    n = exchanges(out / "many-domains.pcap", domains, 0, rng)
    print(f"many-domains.pcap: {n} frames")


if __name__ == "__main__":
    main()
