#!/usr/bin/env python3
"""A minimal DNS hierarchy for sensor/tests/live_e2e.rs (the mirror deployment test).

  world.py DIR   writes DIR/{root,tld,hosting}/nsd.conf + zone files and DIR/root.hints

Three NSD instances (a parent and its child must be served by different instances for a resolver
to see real referrals), all listening on addresses inside the test's resolver namespace:

  10.66.2.10  root   "."        delegates test. to a.nic.test
  10.66.2.20  tld    "test."    delegates the zones below to ns1.<zone> (10.66.2.30)
  10.66.2.30  hosting example-shop.test, example-news.test (benign names: A, AAAA, MX, TXT...)
              and tunnel-e2e.test, which delegates t.tunnel-e2e.test to tns.tunnel-e2e.test:
  10.66.2.53  iodined, authoritative for t.tunnel-e2e.test (started by the test, not here)

Standard library only; nothing here is ever sent anywhere.
"""
import os
import sys

ROOT_IP, TLD_IP, HOST_IP, TUNNEL_IP = "10.66.2.10", "10.66.2.20", "10.66.2.30", "10.66.2.53"
BENIGN_ZONES = ["example-shop.test", "example-news.test"]
TUNNEL_PARENT = "tunnel-e2e.test"
TUNNEL_ZONE = "t." + TUNNEL_PARENT


def soa(zone, ns):
    return [
        "$TTL 300",
        "%s. 3600 IN SOA %s. hostmaster.%s. 2024061501 7200 3600 1209600 300" % (zone, ns, zone),
        "%s. 3600 IN NS %s." % (zone, ns),
    ]


def zones():
    z = {}
    z[("root", ".")] = [
        "$TTL 300",
        ". 3600 IN SOA a.root-servers.test. hostmaster.root-servers.test. 2024061501 7200 3600 1209600 300",
        ". 3600 IN NS a.root-servers.test.",
        "test. 172800 IN NS a.nic.test.",
        "a.nic.test. 172800 IN A %s" % TLD_IP,
        "a.root-servers.test. 172800 IN A %s" % ROOT_IP,
    ]
    t = soa("test", "a.nic.test") + [
        "a.nic.test. 300 IN A %s" % TLD_IP,
        "a.root-servers.test. 300 IN A %s" % ROOT_IP,
    ]
    for child in BENIGN_ZONES + [TUNNEL_PARENT]:
        t += ["%s. 172800 IN NS ns1.%s." % (child, child), "ns1.%s. 172800 IN A %s" % (child, HOST_IP)]
    z[("tld", "test")] = t
    for child in BENIGN_ZONES + [TUNNEL_PARENT]:
        r = soa(child, "ns1." + child) + [
            "ns1.%s. IN A %s" % (child, HOST_IP),
            "%s. IN A 192.0.2.10" % child,
            "www.%s. IN A 192.0.2.11" % child,
            "www.%s. IN AAAA 2001:db8::11" % child,
            "mail.%s. IN A 192.0.2.12" % child,
            "%s. IN MX 10 mail.%s." % (child, child),
            '%s. IN TXT "v=spf1 mx -all"' % child,
            '_dmarc.%s. IN TXT "v=DMARC1; p=reject"' % child,
            "api.%s. IN CNAME www.%s." % (child, child),
            "static.%s. IN A 192.0.2.13" % child,
        ]
        if child == TUNNEL_PARENT:
            r += ["%s. IN NS tns.%s." % (TUNNEL_ZONE, TUNNEL_PARENT), "tns.%s. IN A %s" % (TUNNEL_PARENT, TUNNEL_IP)]
        z[("hosting", child)] = r
    return z


def write(out):
    ips = {"root": ROOT_IP, "tld": TLD_IP, "hosting": HOST_IP}
    confs = {}
    for (group, zone), lines in zones().items():
        gd = os.path.join(out, group)
        os.makedirs(gd, exist_ok=True)
        fn = ("root" if zone == "." else zone) + ".zone"
        with open(os.path.join(gd, fn), "w") as f:
            f.write("\n".join(lines) + "\n")
        confs.setdefault(group, []).append(
            'zone:\n  name: "%s"\n  zonefile: "%s"' % ("." if zone == "." else zone + ".", fn))
    for group, zs in confs.items():
        gd = os.path.join(out, group)
        conf = [
            "server:", "  ip-address: %s" % ips[group], "  port: 53", "  do-ip6: no", '  username: ""',
            '  chroot: ""', '  database: ""', "  server-count: 1", "  verbosity: 1", '  zonesdir: "%s"' % gd,
            '  zonelistfile: "%s/zone.list"' % gd, '  xfrdfile: "%s/xfrd.state"' % gd, '  xfrdir: "%s"' % gd,
            '  pidfile: "%s/nsd.pid"' % gd, '  logfile: "%s/nsd.log"' % gd,
            "remote-control:", "  control-enable: no",
        ] + zs
        with open(os.path.join(gd, "nsd.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
    with open(os.path.join(out, "root.hints"), "w") as f:
        f.write(".\t3600000\tNS\ta.root-servers.test.\na.root-servers.test.\t3600000\tA\t%s\n" % ROOT_IP)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    write(sys.argv[1])
