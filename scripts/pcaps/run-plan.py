#!/usr/bin/env python3
"""Play a benign query plan (from world.py plan) with the real `dig`, at the planned times.

usage: run-plan.py PLAN RESOLVER_IP
Each plan line: offset_s, client_ip, proto (udp|tcp), qtype, qname, extra dig options. Queries are
started at their offsets (several may be in flight at once, like real clients); prints a summary of
the response codes dig saw. Standard library only.
"""
import collections
import re
import subprocess
import sys
import time

MAX_INFLIGHT = 24


def main():
    plan, resolver = sys.argv[1], sys.argv[2]
    events = []
    with open(plan) as f:
        for line in f:
            t, src, proto, qtype, name, opts = line.rstrip("\n").split("\t")
            events.append((float(t), src, proto, qtype, name, opts.split()))
    start = time.monotonic()
    running = []
    status = collections.Counter()

    def reap(block=False):
        for p in list(running):
            if block or p.poll() is not None:
                out = p.communicate()[0]
                m = re.search(r"status: (\w+)", out)
                status[m.group(1) if m else "no-answer"] += 1
                running.remove(p)

    for t, src, proto, qtype, name, opts in events:
        while True:
            reap()
            delay = start + t - time.monotonic()
            if delay <= 0 and len(running) < MAX_INFLIGHT:
                break
            time.sleep(min(max(delay, 0.005), 0.05))
        cmd = ["dig", "@" + resolver, "-b", src, "+tries=1", "+time=4", "+noall", "+comments"]
        if proto == "tcp":
            cmd.append("+tcp")
        cmd += opts + ["-t", qtype, name]
        running.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    while running:
        time.sleep(0.05)
        reap()
    print("plan: %d queries in %.1f s; %s" % (len(events), time.monotonic() - start,
          ", ".join("%s=%d" % kv for kv in status.most_common())))


if __name__ == "__main__":
    main()
