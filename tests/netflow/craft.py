#!/usr/bin/env python3
"""Craft NetFlow v9 / IPFIX export packets exactly as docs/netflow.md specifies (templates 256,
257 and options template 258) and send them to a collector on loopback. Used to validate the
collector configurations in this directory independently of the exporter.

    craft.py --port 9995 [--format v9|ipfix] [--records 20] [--per-packet 7] [--qname-bytes 128]

Writes the records it sent as JSON lines on stdout (src, dst, sport, dport, proto, qname, qtype,
rcode, id, bytes, pkts), so a caller can compare with what the collector decoded.
"""
import argparse
import json
import socket
import struct
import time

NTOP = 35632
PEN = 32473

# (v9 type, IPFIX (pen, id), length; 0 = variable in IPFIX / qname_bytes in v9)
def fields(v6, qname_bytes):
    a = 16 if v6 else 4
    return [
        (27 if v6 else 8, (0, 27 if v6 else 8), a),
        (28 if v6 else 12, (0, 28 if v6 else 12), a),
        (7, (0, 7), 2),
        (11, (0, 11), 2),
        (4, (0, 4), 1),
        (1, (0, 1), 8),
        (2, (0, 2), 8),
        (152, (0, 152), 8),
        (153, (0, 153), 8),
        (58, (0, 58), 2),
        (10, (0, 10), 4),
        (57677, (NTOP, 205), qname_bytes),  # DNS_QUERY
        (57678, (NTOP, 206), 2),  # DNS_QUERY_ID
        (57679, (NTOP, 207), 2),  # DNS_QUERY_TYPE
        (57680, (NTOP, 208), 2),  # DNS_RET_CODE
        (57681, (NTOP, 209), 2),  # DNS_NUM_ANSWERS
        (57824, (NTOP, 352), 4),  # DNS_TTL_ANSWER
        (48000, (PEN, 48000), 1),  # SCORE
        (48001, (PEN, 48001), 4),  # REASONS
        (48002, (PEN, 48002), 1),  # QNAME_LEN
        (48003, (PEN, 48003), 1),  # LABELS
        (48004, (PEN, 48004), 1),  # LONGEST_LABEL
        (48005, (PEN, 48005), 2),  # ENTROPY
        (48006, (PEN, 48006), 1),  # DOMAIN_LEN
        (48007, (PEN, 48007), 2),  # FLAGS
        (48008, (PEN, 48008), 1),  # REPUTATION (category code)
    ]


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def ie(pen_id, length):
    pen, i = pen_id
    if pen:
        # IPFIX element ids are 15 bits: ids >= 32768 cannot be represented; send the low 15 bits.
        return struct.pack("!HHI", 0x8000 | (i & 0x7FFF), length, pen)
    return struct.pack("!HH", i, length)


def template_v9(tid, v6, qb):
    f = fields(v6, qb)
    body = struct.pack("!HH", tid, len(f)) + b"".join(struct.pack("!HH", t, l) for t, _, l in f)
    return body


def options_v9():
    # template 258, scope length 4 (one scope field), option length 12 (three fields)
    return struct.pack("!HHH", 258, 4, 12) + struct.pack("!HH", 1, 4) + struct.pack(
        "!HHHHHH", 42, 8, 41, 8, 48010, 8)


def template_ipfix(tid, v6):
    f = fields(v6, 0xFFFF)
    return struct.pack("!HH", tid, len(f)) + b"".join(ie(p, l) for _, p, l in f)


def options_ipfix():
    return struct.pack("!HHH", 258, 4, 1) + ie((0, 149), 4) + ie((0, 42), 8) + ie((0, 41), 8) + ie(
        (PEN, 48010), 8)


def record(r, v6, qb, ipfix):
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    q = r["qname"].encode()
    out = socket.inet_pton(fam, r["src"]) + socket.inet_pton(fam, r["dst"])
    out += struct.pack("!HHBQQQQHI", r["sport"], r["dport"], r["proto"], r["bytes"], r["pkts"],
                       r["start"], r["end"], 0, 0)
    if ipfix:
        out += (struct.pack("!B", len(q)) if len(q) < 255 else struct.pack("!BH", 255, len(q))) + q
    else:
        out += q[-qb:].ljust(qb, b"\0")
    labels = q.split(b".")
    out += struct.pack("!HHHHI", r["id"], r["qtype"], r["rcode"], r["ancount"], r["ttl"])
    out += struct.pack("!BIBBBHBH", r["score"], 0, len(q), len(labels), max(map(len, labels)),
                       3000, 10, r["flags"])
    out += struct.pack("!B", r["reputation"])
    return out


def records(n, v6):
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        qname = f"host{i}.sub{i % 3}.example.com" if i % 5 else f"{'a' * 40}.{'b' * 40}.{'c' * 40}.tunnel{i}.example.org"
        out.append({
            "src": f"2001:db8::{i + 1:x}" if v6 else f"10.53.1.{10 + i % 50}",
            "dst": "2001:db8::53" if v6 else "10.53.1.1",
            "sport": 40000 + i, "dport": 53, "proto": 6 if i % 7 == 3 else 17,
            "bytes": 100 + i, "pkts": 1 if i % 4 == 2 else 2,
            "start": now + i, "end": now + i + 5,
            "qname": qname, "qtype": [1, 28, 16, 10][i % 4], "rcode": 65535 if i % 4 == 2 else [0, 3][i % 2],
            "id": 1000 + i, "ancount": i % 3, "ttl": 300, "score": i % 101, "flags": 2 if i % 7 == 3 else 0,
            "reputation": 2 if i % 5 == 1 else 0,
        })
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--format", choices=["v9", "ipfix"], default="v9")
    ap.add_argument("--records", type=int, default=20)
    ap.add_argument("--per-packet", type=int, default=7)
    ap.add_argument("--qname-bytes", type=int, default=128)
    ap.add_argument("--v6", action="store_true")
    ap.add_argument("--source-id", type=int, default=0)
    ap.add_argument("--gap-ms", type=float, default=2.0, help="pause between data packets")
    a = ap.parse_args()
    ipfix = a.format == "ipfix"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    boot = time.time()
    seq = 0  # v9: packets; IPFIX: data records before this message
    tid = 257 if a.v6 else 256

    def send(sets, nrec, ndata):
        nonlocal seq
        body = b"".join(sets)
        now = time.time()
        if ipfix:
            hdr = struct.pack("!HHIII", 10, 16 + len(body), int(now), seq, a.source_id)
            seq += ndata
        else:
            hdr = struct.pack("!HHIIII", 9, nrec, int((now - boot) * 1000), int(now), seq, a.source_id)
            seq += 1
        s.sendto(hdr + body, (a.host, a.port))

    def flowset(fid, content):
        content = pad4(content) if not ipfix else content
        return struct.pack("!HH", fid, 4 + len(content)) + content

    # templates in their own packet
    if ipfix:
        t = template_ipfix(tid, a.v6)
        o = options_ipfix()
        send([flowset(2, t), flowset(3, o)], 0, 0)
    else:
        send([flowset(0, template_v9(tid, a.v6, a.qname_bytes)), flowset(1, options_v9())], 2, 0)
    recs = records(a.records, a.v6)
    for i in range(0, len(recs), a.per_packet):
        chunk = recs[i:i + a.per_packet]
        data = b"".join(record(r, a.v6, a.qname_bytes, ipfix) for r in chunk)
        data = pad4(data)
        send([struct.pack("!HH", tid, 4 + len(data)) + data], len(chunk), len(chunk))
        if a.gap_ms:
            time.sleep(a.gap_ms / 1000)
    # exporter statistics (options data)
    stats = struct.pack("!IQQQ", a.source_id, len(recs), seq, 0)
    send([struct.pack("!HH", 258, 4 + len(stats)) + stats], 1, 1 if ipfix else 0)
    for r in recs:
        if not ipfix:
            r["qname"] = r["qname"][-a.qname_bytes:]
        print(json.dumps(r))


if __name__ == "__main__":
    main()
