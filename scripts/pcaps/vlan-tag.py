#!/usr/bin/env python3
"""Make a VLAN-tagged copy of the start of a classic Ethernet pcap, like a trunk SPAN port sees it.

usage: vlan-tag.py IN.pcap OUT.pcap [MAX_FRAMES]
This kernel has no 802.1Q module, so tags are inserted offline into frames that real tools sent:
  client side  (an IPv4 address in 10.53.1.0/24): one 802.1Q tag, VID 110, PCP 0
  upstream side (10.53.2.0/24): 802.1ad outer tag VID 300 (TPID 0x88a8) + 802.1Q inner VID 20 (QinQ)
  every 7th frame and ARP frames: left untagged (a mixed trunk)
Standard library only.
"""
import struct
import sys


def main():
    src, dst = sys.argv[1], sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    with open(src, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1" or magic == b"\x4d\x3c\xb2\xa1":
        e = "<"
    elif magic == b"\xa1\xb2\xc3\xd4" or magic == b"\xa1\xb2\x3c\x4d":
        e = ">"
    else:
        sys.exit("not a classic pcap: " + src)
    linktype = struct.unpack(e + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit("link type %d, need Ethernet (1)" % linktype)
    out = [data[:24]]
    off, n, counts = 24, 0, {"dot1q": 0, "qinq": 0, "untagged": 0}
    while off + 16 <= len(data) and n < limit:
        ts, tsf, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        n += 1
        ethertype = frame[12:14]
        tag = b""
        if ethertype == b"\x08\x00" and n % 7 != 0:
            ip_src, ip_dst = frame[26:30], frame[30:34]
            if ip_src[:3] == bytes([10, 53, 1]) or ip_dst[:3] == bytes([10, 53, 1]):
                tag = struct.pack(">HH", 0x8100, 110)
                counts["dot1q"] += 1
            else:
                tag = struct.pack(">HHHH", 0x88A8, 300, 0x8100, 20)
                counts["qinq"] += 1
        else:
            counts["untagged"] += 1
        frame = frame[:12] + tag + frame[12:]
        out.append(struct.pack(e + "IIII", ts, tsf, len(frame), orig + len(tag)) + frame)
    with open(dst, "wb") as f:
        f.write(b"".join(out))
    print("vlan-tag: %d frames: %s" % (n, ", ".join("%s=%d" % kv for kv in counts.items())))


if __name__ == "__main__":
    main()
