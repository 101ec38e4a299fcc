#!/usr/bin/env python3
"""Move bytes both ways over one TCP connection (used through the DNS tunnels).

  xfer.py serve HOST PORT SEND RECV   accept one connection, send SEND random bytes while reading
                                      RECV bytes, print "server: sent N (sha256) received M (sha256)", close
  xfer.py fetch HOST PORT SEND RECV   connect, the same from the client side
  an optional 6th argument RATE paces the sending side at about RATE bytes/s (1 KiB chunks)
  XFER_PAYLOAD=text sends compressible text (log-like lines) instead of random bytes
Both sides stream concurrently (a thread writes, the main thread reads). No half-close: dns2tcpc
tears the whole session down on a local FIN, so each side reads the length it expects and only
then closes (the server first). Standard library only.
"""
import hashlib
import os
import random
import socket
import sys
import threading
import time


WORDS = ("GET POST 200 304 404 /api/v1/items /static/app.js /login user=alice user=bob session ok cache miss "
         "hit upstream latency_ms=12 latency_ms=48 bytes=5120 Mozilla/5.0 (X11; Linux x86_64) INFO WARN DEBUG").split()


def text(n):
    out = []
    size = 0
    while size < n:
        line = "%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), " ".join(random.choice(WORDS) for _ in range(8)))
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def pump(sock, n, sent_hash, rate):
    left = n
    start = time.monotonic()
    as_text = os.environ.get("XFER_PAYLOAD") == "text"
    while left:
        k = min(left, 1024 if rate else 4096)
        chunk = text(k) if as_text else os.urandom(k)
        sent_hash.update(chunk)
        sock.sendall(chunk)
        left -= len(chunk)
        if rate:
            ahead = (n - left) / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)


def run(sock, role, n, want, rate):
    sh = hashlib.sha256()
    th = threading.Thread(target=pump, args=(sock, n, sh, rate))
    th.start()
    h = hashlib.sha256()
    got = 0
    while got < want:
        b = sock.recv(min(65536, want - got))
        if not b:
            break
        got += len(b)
        h.update(b)
    th.join()
    if role == "client":
        # let the server close first: closing here could drop bytes still queued in the tunnel
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
    sock.close()
    print("%s: sent %d (sha256 %s) received %d (sha256 %s)" % (role, n, sh.hexdigest()[:12], got, h.hexdigest()[:12]),
          flush=True)


def main():
    mode, host, port, n, want = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    rate = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    if mode == "serve":
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, port))
        ls.listen(1)
        print("server: listening on %s:%d" % (host, port), flush=True)
        s, _ = ls.accept()
        run(s, "server", n, want, rate)
    else:
        s = socket.create_connection((host, port), timeout=120)
        s.settimeout(120)
        run(s, "client", n, want, rate)


if __name__ == "__main__":
    main()
