#!/usr/bin/env python3
"""Scripted imitations of DNS tunnel / C2 / exfiltration tools, written straight to pcap files.

  imitate.py OUTDIR [NAME...]      write OUTDIR/NAME.pcap for each NAME (default: all), and print one
                                   line per file: name, class, tool, variant, domain, attack_start, notes
                                   (tab-separated; make-pcaps.sh puts them into LABELS.tsv)

No packet is sent anywhere: the frames (Ethernet / IPv4 / UDP or TCP / DNS queries AND responses) are
built here, between clients in 10.53.1.0/24 and the resolver 10.53.1.1 (or, for the tools that talk to
their server directly, a server in 10.77.0.0/16), with synthetic timestamps from a fixed base time and
a fixed random seed, so every run writes byte-identical files. The formats follow the public sources
of each tool (see pcaps/eval/README.md); the payloads are random bytes standing in for the tools'
encrypted / compressed data. Standard library only.
"""
import base64
import hashlib
import os
import random
import struct
import sys

SEED = 6053
BASE_TS = 1781000000.0  # 2026-06-09 10:13:20 UTC: the start of every scripted capture
RESOLVER = "10.53.1.1"
RESOLVER_MAC = "ee:47:da:7f:3b:5a"
SNAPLEN = 262144

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "NULL": 10, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
          "SRV": 33, "HTTPS": 65}


# --- pcap and packet building --------------------------------------------------------------------
class Pcap:
    def __init__(self, path):
        self.path = path
        self.frames = []  # (ts, seq, bytes); sorted on close (several conversations interleave)

    def add(self, ts, frame):  # ts: seconds from the start of the capture
        self.frames.append((BASE_TS + ts, len(self.frames), frame))

    def close(self):
        self.frames.sort()
        with open(self.path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1))
            for ts, _, fr in self.frames:
                sec = int(ts)
                usec = int(round((ts - sec) * 1e6))
                if usec >= 1000000:
                    sec, usec = sec + 1, usec - 1000000
                f.write(struct.pack("<IIII", sec, usec, len(fr), len(fr)))
                f.write(fr)
        return len(self.frames), (self.frames[0][0] if self.frames else None)


def mac_bytes(m):
    return bytes(int(x, 16) for x in m.split(":"))


def ip_bytes(a):
    return bytes(int(x) for x in a.split("."))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ident, ttl=64):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000 if proto == 6 else 0,
                      ttl, proto, 0, ip_bytes(src), ip_bytes(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def udp(src, dst, sport, dport, payload):
    ln = 8 + len(payload)
    pseudo = ip_bytes(src) + ip_bytes(dst) + struct.pack("!BBH", 0, 17, ln)
    hdr = struct.pack("!HHHH", sport, dport, ln, 0)
    c = csum(pseudo + hdr + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, ln, c) + payload


def tcp(src, dst, sport, dport, seq, ack, flags, payload, win=64240):
    off = 5 << 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off, flags, win, 0, 0)
    pseudo = ip_bytes(src) + ip_bytes(dst) + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    c = csum(pseudo + hdr + payload)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:] + payload


def eth(src_mac, dst_mac, payload):
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + b"\x08\x00" + payload


# --- DNS -----------------------------------------------------------------------------------------
def enc_name(name):
    out = b""
    for lab in name.rstrip(".").split("."):
        if not lab:
            continue
        b = lab.encode("latin-1")
        assert 0 < len(b) <= 63, (lab, len(b))
        out += bytes([len(b)]) + b
    out += b"\0"
    assert len(out) <= 255, (name, len(out))
    return out


def rd_a(ip):
    return ("A", ip_bytes(ip))


def rd_aaaa(b16):
    assert len(b16) == 16
    return ("AAAA", b16)


def rd_txt(*strings):
    out = b""
    for s in strings:
        if isinstance(s, str):
            s = s.encode()
        assert len(s) <= 255
        out += bytes([len(s)]) + s
    return ("TXT", out)


def rd_cname(name):
    return ("CNAME", enc_name(name))


def rd_mx(pref, name):
    return ("MX", struct.pack("!H", pref) + enc_name(name))


def dns_msg(qid, qname, qtype, flags, answers=(), ttl=1, edns=False, authority=()):
    qd = enc_name(qname) + struct.pack("!HH", QTYPES[qtype], 1)
    body = b""
    for typ, rdata in answers:
        body += b"\xc0\x0c" + struct.pack("!HHIH", QTYPES[typ], 1, ttl, len(rdata)) + rdata
    for typ, rdata in authority:
        body += b"\xc0\x0c" + struct.pack("!HHIH", QTYPES[typ], 1, ttl, len(rdata)) + rdata
    add = b""
    if edns:
        add = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    hdr = struct.pack("!HHHHHH", qid, flags, 1, len(answers), len(authority), 1 if edns else 0)
    return hdr + qd + body + add


class Host:
    def __init__(self, ip, mac):
        self.ip, self.mac = ip, mac
        self.ident = 0


class Net:
    """One capture: hosts talking DNS (and other things) through the client-side link."""

    def __init__(self, path, rnd):
        self.pcap = Pcap(path)
        self.R = rnd
        self.hosts = {}
        self.first_attack = None

    def host(self, ip):
        if ip not in self.hosts:
            h = hashlib.sha256(ip.encode()).digest()
            mac = RESOLVER_MAC if ip == RESOLVER else "52:54:%02x:%02x:%02x:%02x" % tuple(h[:4])
            self.hosts[ip] = Host(ip, mac)
            self.hosts[ip].ident = self.R.randrange(65536)
        return self.hosts[ip]

    def mark(self, ts):
        if self.first_attack is None or ts < self.first_attack:
            self.first_attack = ts

    def udp_frame(self, ts, src, dst, sport, dport, payload, ttl=64):
        s, d = self.host(src), self.host(dst)
        s.ident = (s.ident + 1) & 0xFFFF
        self.pcap.add(ts, eth(s.mac, d.mac, ipv4(src, dst, 17, udp(src, dst, sport, dport, payload), s.ident, ttl)))

    def tcp_frame(self, ts, src, dst, sport, dport, seq, ack, flags, payload=b""):
        s, d = self.host(src), self.host(dst)
        s.ident = (s.ident + 1) & 0xFFFF
        self.pcap.add(ts, eth(s.mac, d.mac, ipv4(src, dst, 6, tcp(src, dst, sport, dport, seq, ack, flags, payload), s.ident)))

    def exchange(self, ts, client, qname, qtype, answers=(), rcode=0, rtt=None, sport=None, server=RESOLVER,
                 ttl=1, edns=False, aa=False, attack=True, authority=()):
        """A query at ts and its response rtt later. Returns the time the response arrived."""
        R = self.R
        qid = R.randrange(65536)
        sport = sport or R.randrange(32768, 61000)
        if rtt is None:
            rtt = R.uniform(0.012, 0.065)
        self.udp_frame(ts, client, server, sport, 53, dns_msg(qid, qname, qtype, 0x0100, edns=edns))
        flags = 0x8180 | (0x0400 if aa else 0) | rcode
        self.udp_frame(ts + rtt, server, client, 53, sport,
                       dns_msg(qid, qname, qtype, flags, answers if rcode == 0 else (), ttl=ttl, edns=edns,
                               authority=authority))
        if attack:
            self.mark(ts)
        return ts + rtt

    def close(self):
        return self.pcap.close()


# --- benign background (other clients' ordinary lookups through the same resolver) ---------------
BG_NAMES = ["www.google.com", "outlook.office365.com", "login.microsoftonline.com", "www.bing.com", "github.com",
            "api.github.com", "www.youtube.com", "i.ytimg.com", "fonts.gstatic.com", "www.gstatic.com",
            "clients2.google.com", "update.googleapis.com", "teams.microsoft.com", "graph.microsoft.com",
            "www.wikipedia.org", "slack.com", "edge.microsoft.com", "ctldl.windowsupdate.com", "time.windows.com",
            "www.amazon.com", "d2x8k5rq0v7j1n.cloudfront.net", "s3.amazonaws.com", "www.linkedin.com",
            "static.licdn.com", "www.reddit.com", "zoom.us", "www.netflix.com", "pypi.org", "files.pythonhosted.org",
            "registry.npmjs.org", "www.apple.com", "gsp-ssl.ls.apple.com", "mtalk.google.com", "www.office.com"]
BG_CLIENTS = ["10.53.1.10", "10.53.1.11", "10.53.1.12", "10.53.1.30"]


def background(net, t0, t1, rate, R):
    """Poisson lookups of ordinary names (A + AAAA pairs), rate per second, answered from 'cache'."""
    t = t0 + R.expovariate(rate)
    while t < t1:
        c = R.choice(BG_CLIENTS)
        n = R.choice(BG_NAMES)
        h = hashlib.sha256(n.encode()).digest()
        ip = "%d.%d.%d.%d" % (h[0] % 200 + 13, h[1], h[2], h[3] % 254 + 1)
        net.exchange(t, c, n, "A", [rd_a(ip)], ttl=R.randrange(20, 300), rtt=R.uniform(0.0003, 0.03), attack=False)
        if R.random() < 0.7:
            net.exchange(t + 0.0004, c, n, "AAAA", [rd_aaaa(b"\x26\x06" + h[4:18])], ttl=R.randrange(20, 300),
                         rtt=R.uniform(0.0003, 0.03), attack=False)
        t += R.expovariate(rate)


def hexs(b):
    return b.hex()


def b32(b):
    return base64.b32encode(b).decode().rstrip("=").lower()


def split_labels(s, n):
    return ".".join(s[i:i + n] for i in range(0, len(s), n))


# --- dnscat2 -------------------------------------------------------------------------------------
def dnscat2(path, R, domain, prefix=False):
    """dnscat2 0.07 client: hex-encoded packets (packet_id:2 type:1 session_id:2 ...), 60-char labels,
    query type chosen at random among TXT/CNAME/MX for each packet; server answers in the same type
    (TXT: hex string; CNAME/MX: hex labels + domain). prefix=True: no domain, 'dnscat.<hex>' names sent
    straight to the server (dnscat2 --dns server=...), unencrypted."""
    net = Net(path, R)
    client = "10.53.1.13"
    server = "10.77.53.53" if prefix else RESOLVER
    sport = R.randrange(32768, 61000)  # dnscat2 uses one UDP socket for the whole session
    sess = R.randrange(65536)
    t = 2.0 + R.uniform(0, 1)
    background(net, 0.0, 95.0, 0.4, R)
    maxlen = (255 // 2) - (len("dnscat") if prefix else len(domain)) - 1 - ((255 // 62) + 1)
    seq_c, seq_s = R.randrange(65536), R.randrange(65536)

    def name_for(data):
        h = data.hex()
        labels = []
        while h:
            labels.append(h[:60])
            h = h[60:]
        return ("dnscat." + ".".join(labels)) if prefix else (".".join(labels) + "." + domain)

    def answer_for(qtype, data):
        h = data.hex()
        if qtype == "TXT":
            return [rd_txt(h)]
        labels = []
        while h:
            labels.append(h[:60])
            h = h[60:]
        nm = ("dnscat." + ".".join(labels)) if prefix else (".".join(labels) + "." + domain)
        return [rd_cname(nm)] if qtype == "CNAME" else [rd_mx(10, nm)]

    def send(t, cdata, sdata, gap=None):
        qtype = R.choice(["TXT", "CNAME", "MX"])
        rtt = R.uniform(0.004, 0.012) if prefix else R.uniform(0.018, 0.07)
        net.exchange(t, client, name_for(cdata), qtype, answer_for(qtype, sdata), sport=sport, server=server,
                     rtt=rtt, ttl=1 if not prefix else 0)
        return t + rtt + (gap if gap is not None else R.uniform(0.002, 0.02))

    def hdr(typ):
        return struct.pack("!HBH", R.randrange(65536), typ, sess)

    enc = not prefix
    if enc:
        # ENC INIT (subtype 0) with the client's / server's public keys, then ENC AUTH (subtype 1)
        t = send(t, hdr(0x03) + b"\x00\x00\x00\x00" + R.randbytes(64), hdr(0x03) + b"\x00\x00\x00\x00" + R.randbytes(64))
        t = send(t, hdr(0x03) + b"\x00\x01" + R.randbytes(32), hdr(0x03) + b"\x00\x01" + R.randbytes(32))

    def wrap(typ, body):
        if enc:  # nonce + truncated MAC, then the encrypted body
            return hdr(typ) + R.randbytes(2) + R.randbytes(6) + R.randbytes(len(body))
        return hdr(typ) + body

    # SYN: isn, options (0x0001 = name), name
    t = send(t, wrap(0x00, struct.pack("!HH", seq_c, 1) + b"command (ws4)\x00"), wrap(0x00, struct.pack("!HH", seq_s, 0)))

    def msg(data_c=b"", data_s=b""):
        return (wrap(0x01, struct.pack("!HH", seq_c, seq_s) + data_c), wrap(0x01, struct.pack("!HH", seq_s, seq_c) + data_s))

    room = maxlen - 5 - 4 - (8 if enc else 0)
    # the session: idle polls about once a second, commands from the operator, output uploaded in bursts
    script = [(6, 120, 2600), (14, 80, 900), (25, 200, 16000), (40, 60, 300), (52, 900, 400), (63, 100, 9000)]
    end = 92.0
    si = 0
    while t < end:
        if si < len(script) and t >= script[si][0]:
            _, down, up = script[si]
            si += 1
            while down > 0:  # command from the server, in poll responses
                n = min(down, room)
                c, s = msg(b"", R.randbytes(n))
                seq_s = (seq_s + n) & 0xFFFF
                down -= n
                t = send(t, c, s)
            while up > 0:  # output from the client
                n = min(up, room)
                c, s = msg(R.randbytes(n), b"")
                seq_c = (seq_c + n) & 0xFFFF
                up -= n
                t = send(t, c, s)
            continue
        c, s = msg()
        t = send(t, c, s, gap=R.uniform(0.95, 1.1))
    # FIN
    send(t, wrap(0x02, b"\x00"), wrap(0x02, b"\x00"))
    n, _ = net.close()
    return n, net.first_attack, sum(x[2] for x in script), sum(x[1] for x in script)


# --- OzymanDNS / sods ----------------------------------------------------------------------------
def ozymandns(path, R, ext):
    """droute.pl (OzymanDNS 0.1) carrying an ssh session: upstream A queries
    '<base32 data, 60-char labels>.<nonce>-<sum_up>.id-<id>.up.<ext>' (110-byte reads), downstream TXT
    polls '<sum>-<nonce>.id-<id>.down.<ext>' answered with base64 TXT; polls back off x3 up to 4 s when idle."""
    net = Net(path, R)
    client = "10.53.1.14"
    sid = R.randrange(65536)
    sum_up = sum_down = 0
    background(net, 0.0, 75.0, 0.4, R)
    # ssh: banners, kex, auth, a short interactive session, then a 7 KB scp download and 3 KB upload
    events = [(3.0, "up", 41), (3.05, "down", 39), (3.3, "up", 1400), (3.4, "down", 1100), (3.9, "up", 48),
              (4.1, "down", 600), (4.6, "up", 300), (4.9, "down", 280), (5.5, "up", 120), (6.0, "down", 90)]
    t = 8.0
    for _ in range(30):  # typing
        events.append((t, "up", 36))
        events.append((t + 0.2, "down", 36 + R.choice([0, 0, 0, 40, 120, 400])))
        t += R.uniform(0.3, 1.6)
    events.append((t + 1.0, "down", 7000))
    events.append((t + 15.0, "up", 3000))
    events.append((t + 25.0, "up", 36))
    end = t + 40.0
    events.sort()
    tot_up = sum(e[2] for e in events if e[1] == "up")
    tot_down = sum(e[2] for e in events if e[1] == "down")
    upq, downq = [], 0
    t = 2.9 + R.uniform(0, 0.1)
    sleep = 0.1
    ei = 0
    while t < end:
        while ei < len(events) and events[ei][0] <= t:
            _, d, n = events[ei]
            ei += 1
            if d == "up":
                while n > 0:
                    upq.append(min(n, 110))
                    n -= 110
            else:
                downq += n
        # downstream poll (TXT)
        nonce = R.randrange(65536)
        q = "%d-%d.id-%d.down.%s" % (sum_down, nonce, sid, ext)
        if downq:
            n = min(downq, 180)
            downq -= n
            sum_down += n
            txt = base64.b64encode(R.randbytes(n)).decode()
            tt = net.exchange(t, client, q, "TXT", [rd_txt(txt)], rtt=R.uniform(0.02, 0.07))
            sleep = 0.1
        else:
            tt = net.exchange(t, client, q, "TXT", [rd_txt("")], rtt=R.uniform(0.02, 0.07))
            sleep = min(sleep * 3, 4.0)
        # upstream (A), one chunk per loop, interleaved with the polls
        while upq:
            n = upq.pop(0)
            nonce = R.randrange(65536)
            data = split_labels(b32(R.randbytes(n)), 60)
            q = "%s.%d-%d.id-%d.up.%s" % (data, nonce, sum_up, sid, ext)
            sum_up += n
            tt = net.exchange(tt + R.uniform(0.005, 0.012), client, q, "A", [rd_a("0.0.0.0")], rtt=R.uniform(0.02, 0.07))
            if len(upq) % 4 == 0:
                break
        t = max(tt, t + sleep) + R.uniform(0.005, 0.015)
    n, _ = net.close()
    return n, net.first_attack, tot_up, tot_down


# --- DNSExfiltrator ------------------------------------------------------------------------------
def dnsexfiltrator(path, R, domain, encoding):
    """DNSExfiltrator (Arno0x): file zipped + RC4 (random bytes here), TXT queries through the system
    resolver: 'init.<base32(filename|nbchunks)>.<base32|base64>.<domain>' answered TXT "OK", then
    '<chunk#>.<data labels of 63 chars>.<domain>' (base32 lowercase or base64url, no padding),
    255-byte requests, each answered TXT "<chunk#>"."""
    net = Net(path, R)
    client = "10.53.1.15"
    background(net, 0.0, 40.0, 0.5, R)
    data = R.randbytes(9000)
    s = b32(data) if encoding == "base32" else base64.urlsafe_b64encode(data).decode().rstrip("=")
    bytes_left = 255 - 10 - (len(domain) + 2)
    full = bytes_left // 64
    chunk_max = full * 63 + (bytes_left % 64 - 1)
    nb = len(s) // chunk_max + 1
    init = b32(("Q3-payroll.xlsx|%d" % nb).encode())
    t = 5.0 + R.uniform(0, 1)
    t = net.exchange(t, client, "init.%s.%s.%s" % (init, encoding, domain), "TXT", [rd_txt("OK")], rtt=R.uniform(0.03, 0.08))
    i = ci = 0
    while i < len(s):
        chunk = s[i:i + chunk_max]
        q = "%d.%s.%s" % (ci, split_labels(chunk, 63), domain)
        t = net.exchange(t + R.uniform(0.001, 0.004), client, q, "TXT", [rd_txt(str(ci))], rtt=R.uniform(0.02, 0.06))
        i += chunk_max
        ci += 1
    n, _ = net.close()
    return n, net.first_attack


# --- Cobalt Strike DNS beacon --------------------------------------------------------------------
def cobaltstrike(path, R, domain, mode, duration=600.0):
    """Cobalt Strike DNS beacon (default Malleable C2 dns-beacon names), imitated:
    check-ins: A '<beacon id hex>.<domain>' every sleep (30 s, 20 % jitter) answered dns_idle 0.0.0.0,
    metadata: A 'www.<hex>.<hex>.<seq><id>.<domain>', task download in the chosen mode: A 'cdn.' (4 bytes
    per answer), AAAA 'www6.' (16 bytes) or TXT 'api.' (base64, up to 252 chars), output: A
    'post.<hex labels>.<seq><id>.<domain>'. TXT mode starts with the DNS stager: TXT
    'aaa.stage.<hex id>.<domain>', 'aab.stage...' (sequential 3-letter counters)."""
    net = Net(path, R)
    client = "10.53.1.16"
    bid = "%08x" % R.randrange(1 << 31)
    seq = R.randrange(0x100000, 0xF00000)
    background(net, 0.0, duration, 0.3, R)
    t = 10.0 + R.uniform(0, 2)

    def nm(prefix, *labels):
        nonlocal seq
        seq += 1
        parts = ([prefix] if prefix else []) + list(labels) + ["%x%s" % (seq, bid), domain]
        return ".".join(parts)

    if mode == "txt":  # the DNS stager pulls the beacon: ~64 KB in 252-char TXT answers
        sid = "%06x" % R.randrange(1 << 24)
        stage = base64.b64encode(R.randbytes(48000)).decode()
        k = 0
        for off in range(0, len(stage), 252):
            c = "".join("abcdefghijklmnopqrstuvwxyz"[(k // d) % 26] for d in (676, 26, 1))
            t = net.exchange(t, client, "%s.stage.%s.%s" % (c, sid, domain), "TXT", [rd_txt(stage[off:off + 252])],
                             rtt=R.uniform(0.02, 0.06), ttl=1)
            t += R.uniform(0.001, 0.01)
            k += 1
        t += R.uniform(1, 3)

    def checkin(t, answer="0.0.0.0"):
        return net.exchange(t, client, "%s.%s" % (bid, domain), "A", [rd_a(answer)], ttl=1, rtt=R.uniform(0.02, 0.07))

    def put_metadata(t):
        meta = R.randbytes(128).hex()
        for off in range(0, len(meta), 112):
            part = meta[off:off + 112]
            t = net.exchange(t + R.uniform(0.005, 0.02), client, nm("www", *[part[i:i + 56] for i in range(0, len(part), 56)]),
                             "A", [rd_a("0.0.0.0")], ttl=1, rtt=R.uniform(0.02, 0.07))
        return t

    def get_task(t, size):
        # first answer carries the length, then the task bytes
        t = net.exchange(t + 0.01, client, nm({"a": "cdn", "aaaa": "www6", "txt": "api"}[mode]),
                         {"a": "A", "aaaa": "AAAA", "txt": "TXT"}[mode],
                         [rd_a("0.0.%d.%d" % (size >> 8 & 255, size & 255))] if mode == "a" else
                         [rd_aaaa(struct.pack("!I", size) + R.randbytes(12))] if mode == "aaaa" else
                         [rd_txt(base64.b64encode(struct.pack("!I", size)).decode())], ttl=1, rtt=R.uniform(0.02, 0.07))
        per = {"a": 4, "aaaa": 16, "txt": 189}[mode]
        left = size
        while left > 0:
            d = R.randbytes(min(per, left))
            left -= len(d)
            if mode == "a":
                ans, qt = [rd_a(".".join(str(x) for x in d.ljust(4, b"\0")))], "A"
            elif mode == "aaaa":
                ans, qt = [rd_aaaa(d.ljust(16, b"\0"))], "AAAA"
            else:
                ans, qt = [rd_txt(base64.b64encode(d).decode())], "TXT"
            t = net.exchange(t + R.uniform(0.002, 0.015), client, nm({"a": "cdn", "aaaa": "www6", "txt": "api"}[mode]), qt, ans,
                             ttl=1, rtt=R.uniform(0.02, 0.07))
        return t

    def post_output(t, size):
        out = R.randbytes(size).hex()
        per = 55 + 56 * 2  # a label-count digit, then up to 3 labels of 56 characters
        for off in range(0, len(out), per):
            part = out[off:off + per]
            rest = [part[i:i + 56] for i in range(55, len(part), 56)]
            labels = ["%d%s" % (1 + len(rest), part[:55])] + rest
            t = net.exchange(t + R.uniform(0.002, 0.015), client, nm("post", *labels), "A", [rd_a("0.0.0.0")], ttl=1,
                             rtt=R.uniform(0.02, 0.07))
        return t

    tasks = {2: (900, 2400), 6: (1800 if mode != "a" else 700, 6000), 11: (300, 9000)}
    k = 0
    while t < duration:
        if k == 0:
            t = checkin(t, "0.0.0.243")  # unknown beacon: asks for metadata
            t = put_metadata(t)
        elif k in tasks:
            tsize, osize = tasks[k]
            t = checkin(t, {"a": "0.0.0.241", "aaaa": "0.0.0.242", "txt": "0.0.0.243"}[mode])
            t = get_task(t, tsize)
            t = post_output(t + R.uniform(0.2, 2.0), osize)
        else:
            t = checkin(t)
        t += 30.0 * R.uniform(0.8, 1.2)
        k += 1
    n, _ = net.close()
    return n, net.first_attack


# --- low and slow, beaconing ---------------------------------------------------------------------
def slow(path, R, domain, encoding, rate_bps, duration, gap):
    """Payload of rate_bps bytes/s on average: one A query every uniform(gap) seconds carrying the bytes
    due so far (20-40 bytes for 1 B/s), hex or base32 labels + a 2-digit sequence label, answered
    A 127.0.0.1 by the exfiltration server."""
    net = Net(path, R)
    client = "10.53.1.17"
    background(net, 0.0, duration + 30.0, 0.2, R)
    t0 = 15.0 + R.uniform(0, 5)
    t = t0
    sent = 0
    k = 0
    last = t0
    while True:
        t_next = t + R.uniform(*gap)
        if t - t0 > duration:
            break
        due = max(1, int(round(rate_bps * (t_next - t0))) - sent)
        data = R.randbytes(due)
        s = data.hex() if encoding == "hex" else b32(data)
        nl = (len(s) + 59) // 60
        w = (len(s) + nl - 1) // nl
        q = "%s.%02x.%s" % (split_labels(s, w), k & 0xFF, domain)
        net.exchange(t, client, q, "A", [rd_a("127.0.0.1")], ttl=0, rtt=R.uniform(0.03, 0.09))
        last = t
        sent += due
        k += 1
        t = t_next
    n, _ = net.close()
    return n, net.first_attack, sent, k, last - t0


def beacon(path, R, domain, period=60.0, jitter=3.0, duration=1800.0):
    """Beaconing with no payload: an A query for '<8 random hex>.<domain>' every period +- jitter s."""
    net = Net(path, R)
    client = "10.53.1.18"
    background(net, 0.0, duration + 60.0, 0.2, R)
    t = 20.0 + R.uniform(0, 5)
    t0 = t
    k = 0
    while t - t0 <= duration:
        net.exchange(t, client, "%08x.%s" % (R.randrange(1 << 32), domain), "A", [rd_a("198.18.7.%d" % R.randrange(1, 30))],
                     ttl=0, rtt=R.uniform(0.03, 0.09))
        t += period + R.uniform(-jitter, jitter)
        k += 1
    n, _ = net.close()
    return n, net.first_attack, k


# --- not DNS at all on port 53 -------------------------------------------------------------------
def tls_client_hello(R, sni):
    ext = b""
    sn = sni.encode()
    ext += struct.pack("!HHHBH", 0, len(sn) + 5, len(sn) + 3, 0, len(sn)) + sn
    ext += struct.pack("!HH", 10, 8) + struct.pack("!H", 6) + b"\x00\x1d\x00\x17\x00\x18"  # groups
    ext += struct.pack("!HH", 13, 10) + struct.pack("!H", 8) + b"\x04\x03\x08\x04\x04\x01\x05\x03"
    ext += struct.pack("!HH", 16, 11) + struct.pack("!H", 9) + b"\x02h2\x08http/1.1"
    ext += struct.pack("!HH", 43, 5) + b"\x04\x03\x04\x03\x03"
    ks = R.randbytes(32)
    ext += struct.pack("!HHHHH", 51, 38, 36, 0x1d, 32) + ks
    suites = b"\x13\x01\x13\x02\x13\x03\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30\xcc\xa9\xcc\xa8\x00\x9c\x00\x9d"
    body = b"\x03\x03" + R.randbytes(32) + b"\x20" + R.randbytes(32) + struct.pack("!H", len(suites)) + suites + b"\x01\x00"
    body += struct.pack("!H", len(ext)) + ext
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def nondns_udp(path, R):
    """A client's ordinary DNS through the resolver, then a UDP/53 flow straight to 10.77.9.53 that is
    not DNS: a TLS ClientHello (as a VPN over 'DNS port' would send), a ServerHello-sized reply, then
    random-byte datagrams both ways (like an encrypted UDP VPN) for 30 s."""
    net = Net(path, R)
    client, server = "10.53.1.19", "10.77.9.53"
    background(net, 0.0, 70.0, 0.5, R)
    for i, n in enumerate(["www.google.com", "vpn.example.net", "clients2.google.com"]):
        net.exchange(3.0 + i * 0.7, client, n, "A", [rd_a("93.184.216.%d" % (30 + i))], ttl=300, attack=False)
    sport = R.randrange(32768, 61000)
    t = 6.0 + R.uniform(0, 1)
    net.mark(t)
    net.udp_frame(t, client, server, sport, 53, tls_client_hello(R, "vpn.example.net"))
    t += R.uniform(0.02, 0.05)
    net.udp_frame(t, server, client, 53, sport, b"\x16\x03\x03" + struct.pack("!H", 1180) + b"\x02" + R.randbytes(1179))
    end = t + 30.0
    while t < end:
        t += R.expovariate(8.0)
        if R.random() < 0.5:
            net.udp_frame(t, client, server, sport, 53, b"\x17\x03\x03" + R.randbytes(R.randrange(60, 400)))
        else:
            net.udp_frame(t, server, client, 53, sport, b"\x17\x03\x03" + R.randbytes(R.choice([R.randrange(60, 400), 1200])))
    # and a second, raw-random flow from another port (no structure at all)
    sport2 = R.randrange(32768, 61000)
    t2 = 20.0
    while t2 < 45.0:
        net.udp_frame(t2, client, server, sport2, 53, R.randbytes(R.randrange(24, 512)))
        if R.random() < 0.6:
            net.udp_frame(t2 + R.uniform(0.01, 0.04), server, client, 53, sport2, R.randbytes(R.randrange(24, 900)))
        t2 += R.uniform(0.2, 1.5)
    n, _ = net.close()
    return n, net.first_attack


def nondns_tcp(path, R):
    """An SSH session on TCP/53 to 10.77.9.54 (firewall lets 'DNS' out): handshake, banners, kex,
    then encrypted packets for 30 s; the client also does ordinary DNS through the resolver."""
    net = Net(path, R)
    client, server = "10.53.1.19", "10.77.9.54"
    background(net, 0.0, 50.0, 0.5, R)
    net.exchange(2.0, client, "www.google.com", "A", [rd_a("142.250.74.100")], ttl=300, attack=False)
    sport = R.randrange(32768, 61000)
    cs, ss = R.randrange(1 << 32), R.randrange(1 << 32)
    t = 4.0 + R.uniform(0, 1)
    net.tcp_frame(t, client, server, sport, 53, cs, 0, 0x02)
    net.tcp_frame(t + 0.02, server, client, 53, sport, ss, cs + 1, 0x12)
    net.tcp_frame(t + 0.0201, client, server, sport, 53, cs + 1, ss + 1, 0x10)
    cs, ss = cs + 1, ss + 1
    t += 0.03

    def c2s(t, data):
        nonlocal cs
        net.tcp_frame(t, client, server, sport, 53, cs, ss, 0x18, data)
        cs += len(data)
        net.tcp_frame(t + 0.02, server, client, 53, sport, ss, cs, 0x10)

    def s2c(t, data):
        nonlocal ss
        net.tcp_frame(t, server, client, 53, sport, ss, cs, 0x18, data)
        ss += len(data)
        net.tcp_frame(t + 0.0005, client, server, sport, 53, cs, ss, 0x10)

    net.mark(t)
    c2s(t, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    s2c(t + 0.03, b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n")
    c2s(t + 0.05, struct.pack("!IBB", 1500, 10, 20) + R.randbytes(1494))
    s2c(t + 0.08, struct.pack("!IBB", 1080, 10, 20) + R.randbytes(1074))
    t += 0.2
    end = t + 30.0
    while t < end:
        t += R.expovariate(4.0)
        if R.random() < 0.5:
            c2s(t, R.randbytes(R.choice([36, 36, 52, 100])))
        else:
            s2c(t, R.randbytes(R.choice([36, 52, 140, 600, 1200])))
    net.tcp_frame(t + 0.1, client, server, sport, 53, cs, ss, 0x11)
    net.tcp_frame(t + 0.12, server, client, 53, sport, ss, cs + 1, 0x11)
    net.tcp_frame(t + 0.1201, client, server, sport, 53, cs + 1, ss + 1, 0x10)
    n, _ = net.close()
    return n, net.first_attack


# --- the catalogue -------------------------------------------------------------------------------
def run(out, name):
    R = random.Random("%d/%s" % (SEED, name))  # one stream per file: files do not depend on each other
    p = os.path.join(out, name + ".pcap")
    F = "%.6f"

    def F_(x):
        return "%.6f" % (BASE_TS + x)
    if name == "dnscat2-txt-cname-mx":
        d = "dc2-lab.test"
        n, a, up, down = dnscat2(p, R, d)
        return ("tunnel", "dnscat2", "encrypted session, TXT/CNAME/MX chosen per query, hex labels (60 chars), via resolver", d, F_(a),
                "scripted imitation; client 10.53.1.13 (one UDP source port); packet_id/type/session_id framing; "
                "idle polls ~1/s; %d B up / %d B down in 90 s; light background from other clients" % (up, down))
    if name == "dnscat2-prefix":
        n, a, up, down = dnscat2(p, R, "", prefix=True)
        return ("tunnel", "dnscat2", "no domain: 'dnscat.<hex>' names sent straight to the server 10.77.53.53, unencrypted", "dnscat", F_(a),
                "scripted imitation; there is no registered domain (the domain column holds the fixed first label 'dnscat'); "
                "the client 10.53.1.13 queries 10.77.53.53 directly, no resolver; %d B up / %d B down in 90 s" % (up, down))
    if name == "ozymandns":
        d = "ozy-lab.test"
        n, a, up, down = ozymandns(p, R, "s." + d)
        return ("tunnel", "ozymandns", "droute.pl: base32 up (A, <data>.<nonce>-<sum>.id-<id>.up.), base64 TXT down polls", d, F_(a),
                "scripted imitation of an ssh session through droute (ext s.ozy-lab.test); %d B up, %d B down" % (up, down))
    if name.startswith("dnsexfiltrator-"):
        enc = "base32" if name.endswith("base32") else "base64"
        d = "exf%s-lab.test" % ("32" if enc == "base32" else "64")
        n, a = dnsexfiltrator(p, R, d, enc)
        return ("tunnel", "dnsexfiltrator", "TXT, data in %s, 255-byte names, 63-char labels" % ("base32" if enc == "base32" else "base64url"),
                d, F_(a), "scripted imitation; init.<base32(name|chunks)>.%s.<domain> then <chunk#>.<data>.<domain>; 9 KB file "
                "(zip+RC4: random bytes) back to back" % enc)
    if name.startswith("cobaltstrike-"):
        mode = name.split("-")[1]
        d = "cs%s-lab.test" % {"a": "a", "aaaa": "aaaa", "txt": "txt"}[mode]
        n, a = cobaltstrike(p, R, d, mode)
        v = {"a": "DNS beacon, A mode (cdn.)", "aaaa": "DNS beacon, AAAA mode (www6.)", "txt": "DNS stager (aaa.stage.) + beacon, TXT mode (api.)"}[mode]
        return ("tunnel", "cobaltstrike", v, d, F_(a),
                "scripted imitation; 10 min; check-ins <id>.<domain> every 30 s +-20 % (dns_idle 0.0.0.0), www. metadata, 3 tasks "
                "with post. output (2-9 KB)")
    if name == "slow-hex-1Bps":
        d = "slow-hex.test"
        n, a, sent, k, dur = slow(p, R, d, "hex", 1.0, 600.0, (20.0, 40.0))
        return ("slow", "none", "exfiltration at 1 B/s, hex labels, one A query every 20-40 s", d, F_(a),
                "scripted; %d bytes in %d queries over %.0f s (%.2f B/s); background lookups from 4 other clients" % (sent, k, dur, sent / dur))
    if name == "slow-b32-1Bps":
        d = "slow-b32.test"
        n, a, sent, k, dur = slow(p, R, d, "base32", 1.0, 600.0, (20.0, 40.0))
        return ("slow", "none", "exfiltration at 1 B/s, base32 labels, one A query every 20-40 s", d, F_(a),
                "scripted; %d bytes in %d queries over %.0f s (%.2f B/s); background lookups from 4 other clients" % (sent, k, dur, sent / dur))
    if name == "slow-hex-0.25Bps":
        d = "slow-quarter.test"
        n, a, sent, k, dur = slow(p, R, d, "hex", 0.25, 3600.0, (80.0, 160.0))
        return ("slow", "none", "exfiltration at 0.25 B/s, hex labels, one A query every 80-160 s, 60 min", d, F_(a),
                "scripted; %d bytes in %d queries over %.0f s (%.3f B/s); background lookups from 4 other clients" % (sent, k, dur, sent / dur))
    if name == "beacon-60s":
        d = "beacon-lab.test"
        n, a, k = beacon(p, R, d)
        return ("beacon", "none", "no payload: <8 hex>.<domain> A every 60 +- 3 s, 30 min", d, F_(a),
                "scripted; %d queries from 10.53.1.18; random 8-hex label each time (cache busting); background lookups" % k)
    if name == "nondns-udp53-tls":
        n, a = nondns_udp(p, R)
        return ("nondns", "none", "UDP/53 to 10.77.9.53: TLS ClientHello + encrypted-looking datagrams, and a random-bytes flow", "-", F_(a),
                "scripted; flows 10.53.1.19 -> 10.77.9.53:53 (two source ports); the client also does normal DNS via 10.53.1.1")
    if name == "nondns-tcp53-ssh":
        n, a = nondns_tcp(p, R)
        return ("nondns", "none", "TCP/53 to 10.77.9.54 carrying SSH", "-", F_(a),
                "scripted; flow 10.53.1.19 -> 10.77.9.54:53; SSH banners + kex + 30 s of encrypted packets")
    raise SystemExit("unknown capture " + name)


ALL = ["dnscat2-txt-cname-mx", "dnscat2-prefix", "ozymandns", "dnsexfiltrator-base32", "dnsexfiltrator-base64url",
       "cobaltstrike-a", "cobaltstrike-aaaa", "cobaltstrike-txt", "slow-hex-1Bps", "slow-b32-1Bps", "slow-hex-0.25Bps",
       "beacon-60s", "nondns-udp53-tls", "nondns-tcp53-ssh"]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name in sys.argv[2:] or ALL:
        row = run(out, name)
        print("\t".join([name + ".pcap"] + list(row)), flush=True)


if __name__ == "__main__":
    main()
