#!/usr/bin/env python3
"""Inject VLAN-tagged DNS frames raw (AF_PACKET) for sensor/tests/live_e2e.rs.

  inject-vlan.py IFACE DST_MAC SRC_IP MIRROR_IP

Sends, from IFACE to DST_MAC (the sensor's interface), three IPv4/UDP DNS frames whose addresses
belong to nobody on the sensor (MIRROR_IP is owned by no host, as on a SPAN port):
  1. 802.1Q (VID 110)              query    SRC_IP:40001 -> MIRROR_IP:53
  2. QinQ 802.1ad 300 / 802.1Q 20  query    SRC_IP:40002 -> MIRROR_IP:53
  3. 802.1Q (VID 110)              response MIRROR_IP:53 -> SRC_IP:40001
and prints "sent 3 frames: 2 queries, 1 responses". Standard library only; the kernel has no
8021q module here, so the tags are built by hand.
"""
import socket
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def qname(name):
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns(ident, name, response):
    if response:
        hdr = struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0)
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton("192.0.2.44")
    else:
        hdr = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
        answer = b""
    return hdr + qname(name) + struct.pack("!HH", 1, 1) + answer


def ipv4_udp(src, dst, sport, dport, payload):
    udp_len = 8 + len(payload)
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    pseudo = s + d + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xFFFF) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0x4242, 0, 64, 17, 0, s, d)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + udp


def eth(dst, src, tags, payload):
    f = dst + src
    for tpid, vid in tags:
        f += struct.pack("!HH", tpid, vid)
    return f + struct.pack("!H", 0x0800) + payload


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    iface, dst_mac, src_ip, mirror_ip = sys.argv[1:]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    dst = bytes.fromhex(dst_mac.replace(":", ""))
    src = s.getsockname()[4]
    frames = [
        eth(dst, src, [(0x8100, 110)], ipv4_udp(src_ip, mirror_ip, 40001, 53, dns(0x1111, "www.vlan-e2e.test", False))),
        eth(dst, src, [(0x88A8, 300), (0x8100, 20)],
            ipv4_udp(src_ip, mirror_ip, 40002, 53, dns(0x2222, "mail.vlan-e2e.test", False))),
        eth(dst, src, [(0x8100, 110)], ipv4_udp(mirror_ip, src_ip, 53, 40001, dns(0x1111, "www.vlan-e2e.test", True))),
    ]
    for f in frames:
        s.send(f)
    print("sent %d frames: 2 queries, 1 responses" % len(frames))


if __name__ == "__main__":
    main()
