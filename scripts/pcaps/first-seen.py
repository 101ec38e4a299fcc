#!/usr/bin/env python3
"""Find the capture timestamp of the first attack packet in a pcap (for the labels' attack_start).

  first-seen.py FILE domain DOMAIN   the first DNS packet (UDP or TCP, port 53) whose question name is
                                     DOMAIN or ends with .DOMAIN
  first-seen.py FILE nondns          the first packet to or from port 53 whose payload is not a
                                     well-formed DNS message (UDP; TCP: a segment that does not start
                                     with a length-prefixed DNS message)
Prints the timestamp (seconds since the epoch, 6 decimals) and the packet number (1-based), or exits 1.
Classic pcap, Ethernet (with 802.1Q/802.1ad tags) and IPv4. Standard library only.
"""
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        magic = struct.unpack("<I", hdr[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            e = "<"
        else:
            e = ">"
            magic = struct.unpack(">I", hdr[:4])[0]
        nano = magic == 0xA1B23C4D
        n = 0
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                return
            sec, frac, incl, _ = struct.unpack(e + "IIII", rh)
            data = f.read(incl)
            n += 1
            yield n, sec + frac / (1e9 if nano else 1e6), data


def l4(frame):
    """(proto, sport, dport, payload) of an IPv4 UDP/TCP frame, or None."""
    off = 12
    et = struct.unpack("!H", frame[off:off + 2])[0]
    while et in (0x8100, 0x88A8):
        off += 4
        et = struct.unpack("!H", frame[off:off + 2])[0]
    if et != 0x0800:
        return None
    ip = frame[off + 2:]
    ihl = (ip[0] & 15) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    proto = ip[9]
    if struct.unpack("!H", ip[6:8])[0] & 0x1FFF:
        return None  # a later fragment
    seg = ip[ihl:total]
    if proto == 17 and len(seg) >= 8:
        sp, dp = struct.unpack("!HH", seg[:4])
        return 17, sp, dp, seg[8:]
    if proto == 6 and len(seg) >= 20:
        sp, dp = struct.unpack("!HH", seg[:4])
        return 6, sp, dp, seg[(seg[12] >> 4) * 4:]
    return None


def name(msg, off, depth=0):
    labels = []
    jumped = None
    while True:
        if off >= len(msg) or depth > 20:
            raise ValueError("name")
        ln = msg[off]
        if ln == 0:
            off += 1
            break
        if ln & 0xC0 == 0xC0:
            ptr = struct.unpack("!H", msg[off:off + 2])[0] & 0x3FFF
            if ptr >= off:
                raise ValueError("forward pointer")
            sub, _ = name(msg, ptr, depth + 1)
            labels.append(sub)
            off += 2
            jumped = True
            break
        if ln & 0xC0:
            raise ValueError("label type")
        labels.append(msg[off + 1:off + 1 + ln].decode("latin-1"))
        off += 1 + ln
    return ".".join(x for x in labels if x), off


def parse_dns(msg):
    """The question name if msg is a well-formed DNS message (every section parses, nothing left over)."""
    if len(msg) < 12:
        raise ValueError("short")
    qd, an, ns, ar = struct.unpack("!HHHH", msg[4:12])
    off = 12
    q = None
    for _ in range(qd):
        nm, off = name(msg, off)
        if off + 4 > len(msg):
            raise ValueError("question")
        off += 4
        q = q if q is not None else nm
    for _ in range(an + ns + ar):
        _, off = name(msg, off)
        if off + 10 > len(msg):
            raise ValueError("rr")
        rdlen = struct.unpack("!H", msg[off + 8:off + 10])[0]
        off += 10 + rdlen
        if off > len(msg):
            raise ValueError("rdata")
    if off != len(msg):
        raise ValueError("trailing bytes")
    return q


def main():
    path, mode = sys.argv[1], sys.argv[2]
    dom = sys.argv[3].lower().rstrip(".") if mode == "domain" else None
    for n, ts, frame in packets(path):
        p = l4(frame)
        if p is None:
            continue
        proto, sp, dp, pl = p
        if 53 not in (sp, dp) or not pl:
            continue
        msg = pl[2:] if proto == 6 else pl
        try:
            if proto == 6 and struct.unpack("!H", pl[:2])[0] != len(msg):
                raise ValueError("tcp length")
            q = parse_dns(msg)
            ok = True
        except (ValueError, struct.error, IndexError):
            q, ok = None, False
        if mode == "nondns" and not ok:
            print("%.6f %d" % (ts, n))
            return
        if mode == "domain" and q is not None:
            q = q.lower()
            if q == dom or q.endswith("." + dom):
                print("%.6f %d" % (ts, n))
                return
    sys.exit(1)


if __name__ == "__main__":
    main()
