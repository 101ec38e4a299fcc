#!/usr/bin/env python3
"""A small, fake but realistic DNS "internet" for the capture generator (scripts/make-pcaps.sh).

  world.py zones DIR   writes one NSD config + zone files per authoritative server group into DIR,
                       DIR/groups.tsv (group, ips) and DIR/root.hints for the resolver.
  world.py plan FILE   writes the benign query plan: offset_s, client_ip, proto, qtype, qname, opts.
  world.py plan-nat FILE   a second benign plan (evaluation set): busy NAT gateways + wildcard names.

Everything is derived from a fixed seed, so zone data and the query plan agree (listed DNSBL IPs,
known AV hashes...) and re-runs produce the same names. Only standard library. All server
addresses are 10.53.2.x inside the generator's network namespaces; the public-looking addresses
below appear only as answer data, nothing is ever sent to them.
"""
import base64
import hashlib
import os
import random
import sys

SEED = 5353
TUNNEL_SERVERS = {
    # tunnel zone -> address of the tunnel daemon (iodined / dns2tcpd) that is authoritative for it
    "t.iodine-lab.test": "10.53.2.53",
    "t.iodine-txt.test": "10.53.2.54",
    "t.iodine-cname.test": "10.53.2.55",
    "t.dns2tcp-lab.test": "10.53.2.56",
    "t.dns2tcp-key.test": "10.53.2.57",
}
# more tunnel zones (the evaluation captures): WORLD_EXTRA_TUNNELS="t.iod-null.test=10.53.2.60 ...".
# Added after the fixed ones, so the names and data of everything else stay the same.
for _item in os.environ.get("WORLD_EXTRA_TUNNELS", "").split():
    _z, _ip = _item.split("=")
    TUNNEL_SERVERS[_z] = _ip

# Authoritative server groups: one NSD instance each (an NSD instance answers for every zone it
# loads on every address, so a parent and its delegated child must live in different groups for
# the resolver to see real referrals).
GROUPS = {
    "root": ["10.53.2.10", "10.53.2.11"],
    "gtld": ["10.53.2.20", "10.53.2.21"],
    "tld-org": ["10.53.2.22"],
    "tld-io": ["10.53.2.23"],
    "tld-sk": ["10.53.2.24"],
    "tld-test": ["10.53.2.25"],
    "inaddr": ["10.53.2.26"],
    "google": ["10.53.2.30", "10.53.2.31"],
    "cloudflare": ["10.53.2.32", "10.53.2.33"],
    "awsdns": ["10.53.2.34", "10.53.2.35"],
    "akamai": ["10.53.2.36", "10.53.2.37"],
    "azure": ["10.53.2.38", "10.53.2.39"],
    "nsone": ["10.53.2.40", "10.53.2.41"],
    "rbl": ["10.53.2.42"],
    "avrep": ["10.53.2.43"],
    "hosting": ["10.53.2.44", "10.53.2.45"],
    "registrar": ["10.53.2.46"],
}
# zone -> (group, [ns names]); ns names get the group's addresses in order (cycled)
ZONES = {}
RECORDS = {}  # zone -> list of (owner, type, rdata)
NSIP = {}
REAL_ZONES = set()  # zones NSD serves


def zone(name, group, ns):
    ZONES[name] = (group, ns)
    RECORDS.setdefault(name, [])
    if group is not None:
        REAL_ZONES.add(name)
        ips = GROUPS[group]
        for i, n in enumerate(ns):
            NSIP.setdefault(n, ips[i % len(ips)])


def under(name, zname):
    return zname == "." or name == zname or name.endswith("." + zname)


def owner_zone(name, only_real=False):
    best = None
    for z in ZONES:
        if only_real and z not in REAL_ZONES:
            continue
        if under(name, z) and (best is None or len(z) > len(best)):
            best = z
    return best


def rr(name, typ, rdata):
    z = owner_zone(name, only_real=True)
    assert z is not None, name
    RECORDS[z].append((name, typ, rdata))


def txt(*strings):
    out = []
    for s in strings:
        while True:
            out.append('"%s"' % s[:255])
            s = s[255:]
            if not s:
                break
    return " ".join(out)


R = random.Random(SEED)


def hexs(n):
    return "".join(R.choice("0123456789abcdef") for _ in range(n))


def b32(nbytes):
    return base64.b32encode(R.randbytes(nbytes)).decode().rstrip("=").lower()


def pubip():
    first = R.choice([13, 18, 23, 34, 35, 52, 54, 63, 69, 72, 74, 104, 142, 151, 157, 162, 172, 185, 192, 199, 203, 208])
    return "%d.%d.%d.%d" % (first, R.randrange(0, 256), R.randrange(0, 256), R.randrange(1, 255))


def pub6():
    return "2%03x:%x:%x::%x" % (R.randrange(0x400, 0x800), R.randrange(0, 0xffff), R.randrange(0, 0xffff), R.randrange(1, 0xffff))


# ---------------------------------------------------------------------------------------------
# the hierarchy
zone(".", "root", ["a.root-servers.net", "b.root-servers.net"])
zone("arpa", "root", ["a.root-servers.net", "b.root-servers.net"])
zone("com", "gtld", ["a.gtld-servers.net", "b.gtld-servers.net"])
zone("net", "gtld", ["a.gtld-servers.net", "b.gtld-servers.net"])
zone("org", "tld-org", ["a0.org.afilias-nst.org"])
zone("io", "tld-io", ["a0.nic.io"])
zone("sk", "tld-sk", ["a.tld.sk"])
zone("test", "tld-test", ["a.nic.test"])
zone("in-addr.arpa", "inaddr", ["a.in-addr-servers.arpa"])

GOOGLE_NS = ["ns1.google.com", "ns2.google.com"]
CF_NS = ["kim.ns.cloudflare.com", "bob.ns.cloudflare.com"]
AWS_NS = ["ns-1234.awsdns-12.com", "ns-567.awsdns-07.net"]
AKAM_NS = ["a1-64.akam.net", "a7-67.akam.net"]
AZ_NS = ["ns1-01.azure-dns.com", "ns2-01.azure-dns.net"]
NS1_NS = ["dns1.p08.nsone.net", "dns2.p08.nsone.net"]
IANA_NS = ["a.iana-servers.net", "b.iana-servers.net"]

for z, g, ns in [
    ("google.com", "google", GOOGLE_NS), ("googleapis.com", "google", GOOGLE_NS), ("gstatic.com", "google", GOOGLE_NS),
    ("youtube.com", "google", GOOGLE_NS), ("ytimg.com", "google", GOOGLE_NS), ("gmail.com", "google", GOOGLE_NS),
    ("googlesyndication.com", "google", GOOGLE_NS), ("googletagmanager.com", "google", GOOGLE_NS),
    ("google-analytics.com", "google", GOOGLE_NS), ("doubleclick.net", "google", GOOGLE_NS),
    ("googleusercontent.com", "google", GOOGLE_NS),
    ("cloudflare.com", "cloudflare", CF_NS), ("awsdns-12.com", "awsdns", AWS_NS), ("awsdns-07.net", "awsdns", AWS_NS),
    ("akam.net", "akamai", AKAM_NS), ("azure-dns.com", "azure", AZ_NS), ("azure-dns.net", "azure", AZ_NS),
    ("nsone.net", "nsone", NS1_NS), ("iana-servers.net", "hosting", IANA_NS),
    ("amazonaws.com", "awsdns", AWS_NS), ("cloudfront.net", "awsdns", AWS_NS), ("amazon.com", "awsdns", AWS_NS),
    ("media-amazon.com", "awsdns", AWS_NS),
    ("akamaiedge.net", "akamai", AKAM_NS), ("edgekey.net", "akamai", AKAM_NS), ("akadns.net", "akamai", AKAM_NS),
    ("akamai.net", "akamai", AKAM_NS), ("edgesuite.net", "akamai", AKAM_NS), ("apple.com", "akamai", AKAM_NS),
    ("icloud.com", "akamai", AKAM_NS), ("mcafee.com", "akamai", AKAM_NS),
    ("microsoft.com", "azure", AZ_NS), ("microsoftonline.com", "azure", AZ_NS), ("msidentity.com", "azure", AZ_NS),
    ("office.com", "azure", AZ_NS), ("office.net", "azure", AZ_NS), ("live.com", "azure", AZ_NS), ("windows.net", "azure", AZ_NS),
    ("windowsupdate.com", "azure", AZ_NS), ("azure.com", "azure", AZ_NS), ("outlook.com", "azure", AZ_NS),
    ("msftconnecttest.com", "azure", AZ_NS), ("bing.com", "azure", AZ_NS), ("contoso.com", "azure", AZ_NS),
    ("onmicrosoft.com", "azure", AZ_NS), ("skype.com", "azure", AZ_NS),
    ("github.com", "nsone", NS1_NS), ("githubusercontent.com", "nsone", NS1_NS), ("github.io", "nsone", NS1_NS),
    ("example.com", "hosting", IANA_NS), ("example.org", "hosting", IANA_NS), ("example.net", "hosting", IANA_NS),
    ("216.184.93.in-addr.arpa", "hosting", IANA_NS),
    ("spamhaus.org", "cloudflare", CF_NS),
    ("zen.spamhaus.org", "rbl", ["a.gns.spamhaus.org", "b.gns.spamhaus.org"]),
    ("dbl.spamhaus.org", "rbl", ["a.gns.spamhaus.org", "b.gns.spamhaus.org"]),
    ("barracudacentral.org", "rbl", ["ns1.barracudacentral.org"]),
    ("surbl.org", "rbl", ["a.surbl-org.org"]),
    ("avqs.mcafee.com", "avrep", ["gti-ns1.mcafee.com", "gti-ns2.mcafee.com"]),
    ("e5.sk", "avrep", ["ns1.e5.sk"]), ("eset.com", "avrep", ["ns1.eset.com"]),
    ("sophosxl.net", "avrep", ["ns1.sophosxl.net"]),
    ("letsencrypt.org", "cloudflare", CF_NS), ("digicert.com", "cloudflare", CF_NS),
    ("use-application-dns.net", "cloudflare", CF_NS),
]:
    zone(z, g, ns)

# popular sites for the busy NAT client: (domain, provider)
SITES = [
    ("facebook.com", "nsone"), ("fbcdn.net", "nsone"), ("instagram.com", "nsone"), ("whatsapp.net", "nsone"),
    ("linkedin.com", "azure"), ("licdn.com", "azure"), ("netflix.com", "awsdns"), ("nflxvideo.net", "awsdns"),
    ("yahoo.com", "nsone"), ("zoom.us", "awsdns"), ("slack.com", "awsdns"), ("slack-edge.com", "awsdns"),
    ("dropbox.com", "nsone"), ("salesforce.com", "nsone"), ("adobe.com", "akamai"), ("paypal.com", "akamai"),
    ("ebay.com", "akamai"), ("wikipedia.org", "hosting"), ("wikimedia.org", "hosting"), ("reddit.com", "awsdns"),
    ("redditstatic.com", "awsdns"), ("stackoverflow.com", "cloudflare"), ("spotify.com", "google"),
    ("scdn.co", None), ("twitch.tv", None), ("discord.com", "cloudflare"), ("discordapp.com", "cloudflare"),
    ("pinterest.com", "nsone"), ("nytimes.com", "nsone"), ("cnn.com", "nsone"), ("bbc.com", "akamai"),
    ("weather.com", "akamai"), ("ubuntu.com", "hosting"), ("debian.org", "hosting"), ("python.org", "nsone"),
    ("pypi.org", "nsone"), ("npmjs.com", "cloudflare"), ("npmjs.org", "cloudflare"), ("docker.com", "awsdns"), ("docker.io", "awsdns"),
    ("atlassian.com", "awsdns"), ("atlassian.net", "awsdns"), ("okta.com", "awsdns"), ("duosecurity.com", "awsdns"),
    ("zscaler.net", "nsone"), ("crowdstrike.com", "awsdns"), ("splunk.com", "awsdns"), ("cisco.com", "akamai"),
    ("vmware.com", "akamai"), ("intel.com", "akamai"), ("nvidia.com", "akamai"), ("hp.com", "akamai"),
    ("dell.com", "akamai"), ("lenovo.com", "akamai"), ("samsung.com", "akamai"), ("shopify.com", "cloudflare"),
    ("stripe.com", "awsdns"), ("twilio.com", "awsdns"), ("sendgrid.net", "awsdns"), ("mailchimp.com", "akamai"),
    ("hubspot.com", "cloudflare"), ("zendesk.com", "cloudflare"), ("gitlab.com", "cloudflare"),
    ("bitbucket.org", "awsdns"), ("mozilla.org", "awsdns"), ("mozilla.net", "awsdns"), ("firefox.com", "awsdns"),
    ("wordpress.com", "nsone"), ("medium.com", "cloudflare"), ("quora.com", "nsone"), ("imdb.com", "awsdns"),
    ("etsy.com", "nsone"), ("walmart.com", "akamai"), ("target.com", "akamai"), ("bestbuy.com", "akamai"),
    ("booking.com", "nsone"), ("airbnb.com", "awsdns"), ("expedia.com", "akamai"), ("uber.com", "cloudflare"),
    ("vimeo.com", "cloudflare"), ("speedtest.net", "cloudflare"), ("ookla.com", "cloudflare"),
    ("criteo.com", "nsone"), ("outbrain.com", "nsone"), ("taboola.com", "nsone"), ("adnxs.com", "akamai"),
    ("rubiconproject.com", "nsone"), ("pubmatic.com", "nsone"), ("scorecardresearch.com", "akamai"),
    ("hotjar.com", "cloudflare"), ("segment.io", "awsdns"), ("sentry.io", "cloudflare"), ("intercom.io", "awsdns"),
    ("jsdelivr.net", "cloudflare"), ("cloudflareinsights.com", "cloudflare"), ("unpkg.com", "cloudflare"),
    ("typekit.net", "akamai"), ("x.com", "nsone"), ("twimg.com", "nsone"), ("tiktok.com", "akamai"),
    ("tiktokcdn.com", "akamai"), ("office365.com", "azure"), ("sharepoint.com", "azure"), ("teams.microsoft.com", None),
]
PROVIDER_NS = {"nsone": NS1_NS, "azure": AZ_NS, "awsdns": AWS_NS, "cloudflare": CF_NS, "akamai": AKAM_NS,
               "google": GOOGLE_NS, "hosting": IANA_NS}
zone("co", "tld-io", ["a0.nic.io"])
zone("tv", "tld-io", ["a0.nic.io"])
zone("us", "tld-io", ["a0.nic.io"])
zone("scdn.co", "akamai", AKAM_NS)
zone("twitch.tv", "awsdns", AWS_NS)
for d, p in SITES:
    if p is not None:
        zone(d, p, PROVIDER_NS[p])
SUBHOSTS = ["www", "api", "cdn", "static", "img", "login", "m", "app", "assets", "accounts", "auth", "media",
            "graph", "edge", "status", "help", "support", "blog", "docs", "news", "shop", "video", "i", "s"]

# tunnel parent zones at the "registrar", and the tunnel delegations themselves
for tz, ip in TUNNEL_SERVERS.items():
    parent = tz.split(".", 1)[1]
    zone(parent, "registrar", ["ns1." + parent, "ns2." + parent])
    zone(tz, None, ["tns." + parent])
    NSIP["tns." + parent] = ip

# ---------------------------------------------------------------------------------------------
# data; remembered names are used by the query plan
NAMES = {}  # category -> list of names


def remember(cat, name):
    NAMES.setdefault(cat, []).append(name)


def a_aaaa(name, v6=True):
    rr(name, "A", pubip())
    if v6:
        rr(name, "AAAA", pub6())


# google
for h in ["www.google.com", "google.com", "mail.google.com", "accounts.google.com", "apis.google.com",
          "play.google.com", "drive.google.com", "docs.google.com", "calendar.google.com", "clients1.google.com",
          "clients2.google.com", "update.googleapis.com", "fonts.googleapis.com", "www.googleapis.com",
          "safebrowsing.googleapis.com", "fonts.gstatic.com", "www.gstatic.com", "ssl.gstatic.com",
          "www.youtube.com", "i.ytimg.com", "www.googletagmanager.com", "www.google-analytics.com",
          "stats.g.doubleclick.net", "pagead2.googlesyndication.com", "lh3.googleusercontent.com",
          "smtp.google.com", "gmail-smtp-in.l.google.com", "alt1.gmail-smtp-in.l.google.com", "mtalk.google.com",
          "connectivitycheck.gstatic.com", "www.gmail.com"]:
    a_aaaa(h)
    remember("common", h)
rr("www.google.com", "HTTPS", "1 . alpn=h2,h3")
rr("google.com", "HTTPS", "1 . alpn=h2,h3")
rr("www.youtube.com", "HTTPS", "1 . alpn=h2,h3")
rr("google.com", "MX", "10 smtp.google.com.")
rr("gmail.com", "MX", "5 gmail-smtp-in.l.google.com.")
rr("gmail.com", "MX", "10 alt1.gmail-smtp-in.l.google.com.")
rr("google.com", "TXT", txt("v=spf1 include:_spf.google.com ~all"))
rr("google.com", "TXT", txt("google-site-verification=" + base64.urlsafe_b64encode(R.randbytes(32)).decode().rstrip("=")))
rr("google.com", "TXT", txt("facebook-domain-verification=" + hexs(30)))
rr("gmail.com", "TXT", txt("v=spf1 redirect=_spf.google.com"))
rr("_spf.google.com", "TXT", txt("v=spf1 include:_netblocks.google.com include:_netblocks2.google.com include:_netblocks3.google.com ~all"))
rr("_netblocks.google.com", "TXT", txt("v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ip4:66.102.0.0/20 ip4:66.249.80.0/20 ip4:72.14.192.0/18 ip4:74.125.0.0/16 ip4:108.177.8.0/21 ip4:173.194.0.0/16 ip4:209.85.128.0/17 ip4:216.58.192.0/19 ip4:216.239.32.0/19 ~all"))
rr("_netblocks2.google.com", "TXT", txt("v=spf1 ip6:2001:4860:4000::/36 ip6:2404:6800:4000::/36 ip6:2607:f8b0:4000::/36 ip6:2800:3f0:4000::/36 ip6:2a00:1450:4000::/36 ip6:2c0f:fb50:4000::/36 ~all"))
rr("_netblocks3.google.com", "TXT", txt("v=spf1 ip4:172.217.0.0/19 ip4:172.217.32.0/20 ip4:172.217.128.0/19 ip4:172.217.160.0/20 ip4:172.217.192.0/19 ip4:172.253.56.0/21 ip4:172.253.112.0/20 ip4:108.177.96.0/19 ip4:35.191.0.0/16 ip4:130.211.0.0/22 ~all"))
rr("_dmarc.gmail.com", "TXT", txt("v=DMARC1; p=none; sp=quarantine; rua=mailto:mailauth-reports@google.com"))
rr("_dmarc.google.com", "TXT", txt("v=DMARC1; p=reject; rua=mailto:mailauth-reports@google.com"))
# SRV in google
rr("_xmpp-server._tcp.gmail.com", "SRV", "5 0 5269 xmpp-server.l.google.com.")
a_aaaa("xmpp-server.l.google.com")
# wildcard zone with random-looking labels (safeframe: 32 hex chars per ad slot)
rr("*.safeframe.googlesyndication.com", "A", "142.250.74.97")
rr("*.safeframe.googlesyndication.com", "AAAA", "2a00:1450:4001:82f::2001")
rr("tpc.googlesyndication.com", "A", "142.250.74.98")

# microsoft / azure
def cname(name, target):
    rr(name, "CNAME", target + ".")


def akamai_chain(host, eid, sub="dscb"):
    cname(host, host + ".edgekey.net")
    cname(host + ".edgekey.net", "e%d.%s.akamaiedge.net" % (eid, sub))
    a_aaaa("e%d.%s.akamaiedge.net" % (eid, sub))
    remember("cdn", "e%d.%s.akamaiedge.net" % (eid, sub))


for h, eid, sub in [("www.microsoft.com", 13678, "dscd"), ("www.apple.com", 6858, "dscx"), ("www.paypal.com", 9428, "a"),
                    ("www.ebay.com", 1788, "b"), ("www.adobe.com", 12316, "dscb"), ("www.cisco.com", 2867, "dscb"),
                    ("www.intel.com", 4721, "dscx"), ("www.nvidia.com", 8510, "dscd"), ("www.dell.com", 11049, "a"),
                    ("www.samsung.com", 5530, "dscb"), ("www.bbc.com", 1234, "dscb"), ("www.walmart.com", 7773, "dscg"),
                    ("www.bestbuy.com", 3320, "dsca"), ("www.lenovo.com", 10112, "dscd"), ("images.apple.com", 2424, "dscx"),
                    ("gsp-ssl.ls.apple.com", 17312, "dscg")]:
    akamai_chain(h, eid, sub)
    remember("common", h)
for h in ["login.microsoftonline.com", "login.live.com", "graph.microsoft.com",
          "outlook.office365.com", "outlook.office.com", "www.office.com", "teams.microsoft.com",
          "settings-win.data.microsoft.com", "v10.events.data.microsoft.com", "ctldl.windowsupdate.com",
          "fe2.update.microsoft.com", "www.msftconnecttest.com", "www.bing.com", "time.windows.com",
          "substrate.office.com", "autodiscover.outlook.com", "edge.microsoft.com", "config.edge.skype.com"]:
    remember("common", h)
cname("login.microsoftonline.com", "login.mso.msidentity.com")
cname("login.mso.msidentity.com", "ak.privatelink.msidentity.com")
cname("ak.privatelink.msidentity.com", "www.tm.ak.prd.aadg.akadns.net")
a_aaaa("www.tm.ak.prd.aadg.akadns.net")
cname("login.live.com", "login.msa.msidentity.com")
cname("login.msa.msidentity.com", "www.tm.lg.prod.aadmsa.akadns.net")
a_aaaa("www.tm.lg.prod.aadmsa.akadns.net")
for h in ["graph.microsoft.com", "teams.microsoft.com", "settings-win.data.microsoft.com", "v10.events.data.microsoft.com",
          "fe2.update.microsoft.com", "edge.microsoft.com", "www.office.com", "outlook.office.com",
          "substrate.office.com", "www.bing.com", "time.windows.com", "www.msftconnecttest.com", "config.edge.skype.com",
          "outlook.office365.com", "autodiscover.outlook.com"]:
    a_aaaa(h)
cname("ctldl.windowsupdate.com", "ctldl.windowsupdate.com.edgesuite.net")
cname("ctldl.windowsupdate.com.edgesuite.net", "a767.dspw65.akamai.net")
a_aaaa("a767.dspw65.akamai.net")
rr("outlook.com", "MX", "5 outlook-com.olc.protection.outlook.com.")
a_aaaa("outlook-com.olc.protection.outlook.com")
rr("spf.protection.outlook.com", "TXT", txt("v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/14 ip4:104.47.0.0/17 ip6:2a01:111:f400::/48 ip6:2a01:111:f403::/49 include:spfd.protection.outlook.com -all"))
rr("spfd.protection.outlook.com", "TXT", txt("v=spf1 ip4:51.4.72.0/24 ip4:51.5.72.0/24 ip4:51.5.80.0/27 ip4:20.47.149.138/32 ip4:51.4.80.0/27 -all"))
for i in range(3):
    n = "%s-%s-%s-%s-%s.ods.opinsights.azure.com" % (hexs(8), hexs(4), hexs(4), hexs(4), hexs(12))
    a_aaaa(n)
    remember("guid", n)
for acct in ["contosoprodlogs", "stfabrikamwe01", "backupvault7731"]:
    n = acct + ".blob.core.windows.net"
    cname(n, "blob.ams23prdstr05a.store.core.windows.net")
    remember("cdn", n)
a_aaaa("blob.ams23prdstr05a.store.core.windows.net", v6=False)
# contoso: corporate domain with MX / SRV / DKIM / SPF
rr("contoso.com", "MX", "0 contoso-com.mail.protection.outlook.com.")
a_aaaa("contoso-com.mail.protection.outlook.com", v6=False)
rr("contoso.com", "TXT", txt("v=spf1 include:spf.protection.outlook.com include:sendgrid.net -all"))
rr("contoso.com", "TXT", txt("MS=ms%08d" % R.randrange(10**8)))
rr("_dmarc.contoso.com", "TXT", txt("v=DMARC1; p=quarantine; pct=100; rua=mailto:dmarc@contoso.com"))
cname("selector1._domainkey.contoso.com", "selector1-contoso-com._domainkey.contoso.onmicrosoft.com")
cname("selector2._domainkey.contoso.com", "selector2-contoso-com._domainkey.contoso.onmicrosoft.com")
for n in ["www.contoso.com", "contoso.com", "vpn.contoso.com", "intranet.contoso.com", "dc01.corp.contoso.com",
          "dc02.corp.contoso.com", "sip.contoso.com", "lyncdiscover.contoso.com", "enterpriseregistration.contoso.com"]:
    a_aaaa(n, v6=False)
for srv, target, port in [("_ldap._tcp.dc._msdcs.corp.contoso.com", "dc01.corp.contoso.com", 389),
                          ("_kerberos._udp.corp.contoso.com", "dc01.corp.contoso.com", 88),
                          ("_kerberos._tcp.dc._msdcs.corp.contoso.com", "dc02.corp.contoso.com", 88),
                          ("_ldap._tcp.default-first-site-name._sites.dc._msdcs.corp.contoso.com", "dc02.corp.contoso.com", 389),
                          ("_sip._tls.contoso.com", "sip.contoso.com", 443),
                          ("_sipfederationtls._tcp.contoso.com", "sip.contoso.com", 5061),
                          ("_autodiscover._tcp.contoso.com", "autodiscover.outlook.com", 443)]:
    rr(srv, "SRV", "0 100 %d %s." % (port, target))
    remember("srv", srv)

# github
for h in ["github.com", "api.github.com", "codeload.github.com", "raw.githubusercontent.com",
          "objects.githubusercontent.com", "avatars.githubusercontent.com", "collector.github.com",
          "alive.github.com", "octocat.github.io", "docs.github.com", "pages.github.io"]:
    a_aaaa(h)
    remember("common", h)
cname("www.github.com", "github.com")
remember("common", "www.github.com")
rr("github.com", "MX", "1 aspmx.l.google.com.")
a_aaaa("aspmx.l.google.com")
rr("github.com", "TXT", txt("v=spf1 ip4:192.30.252.0/22 include:_netblocks.google.com include:_spf.salesforce.com include:servers.mcsv.net include:mail.zendesk.com include:_spf.qualtrics.com ~all"))
rr("github.com", "HTTPS", "1 . alpn=h2")

# CDNs: cloudfront, s3, elb, akamai
CF_IDS = []
for i in range(14):
    d = "d" + "".join(R.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(13))
    a_aaaa(d + ".cloudfront.net")
    remember("cdn", d + ".cloudfront.net")
    CF_IDS.append(d)
rr("*.s3.amazonaws.com", "CNAME", "s3-1-w.amazonaws.com.")
a_aaaa("s3-1-w.amazonaws.com", v6=False)
a_aaaa("s3.amazonaws.com", v6=False)
for b in ["contoso-build-artifacts", "prod-assets-eu-7f3a", "my-company-logs-2024", "cdn.contoso.com", "terraform-state-5521"]:
    remember("cdn", b + ".s3.amazonaws.com")
for region in ["us-east-1", "eu-west-1", "eu-central-1"]:
    n = "s3.%s.amazonaws.com" % region
    a_aaaa(n, v6=False)
    remember("cdn", n)
    n = "k8s-ingress-%s-%d.%s.elb.amazonaws.com" % (hexs(10), R.randrange(10**9, 10**10), region)
    a_aaaa(n, v6=False)
    remember("cdn", n)
    n = "ec2-%d-%d-%d-%d.%s.compute.amazonaws.com" % (R.randrange(3, 54), R.randrange(256), R.randrange(256), R.randrange(256), region)
    a_aaaa(n, v6=False)
    remember("cdn", n)
    n = "sts.%s.amazonaws.com" % region
    a_aaaa(n, v6=False)
    remember("cdn", n)
for i in range(10):
    n = "e%d.%s.akamaiedge.net" % (R.randrange(1000, 20000), R.choice(["dscb", "dscx", "dsca", "a", "b", "g"]))
    a_aaaa(n)
    remember("cdn", n)
for i in range(6):
    n = "a%d.dscg%d.akamai.net" % (R.randrange(1, 2000), R.randrange(1, 10))
    a_aaaa(n)
    remember("cdn", n)
for h in ["www.amazon.com", "m.media-amazon.com",
          "fls-na.amazon.com", "completion.amazon.com", "aan.amazon.com"]:
    cname(h, R.choice(CF_IDS) + ".cloudfront.net")
    remember("common", h)
for h in ["www.icloud.com", "p42-caldav.icloud.com", "gateway.icloud.com", "mesu.apple.com", "configuration.apple.com",
          "init.itunes.apple.com", "captive.apple.com"]:
    a_aaaa(h)
    remember("common", h)

# popular sites, with some CNAMEs into CDNs
a_aaaa("cdn.jsdelivr.net")
for d, p in SITES:
    hosts = R.sample(SUBHOSTS, R.randrange(4, 10))
    if owner_zone(d, only_real=True) in (None, "."):
        continue
    if not (d.startswith("www.") or d == "teams.microsoft.com"):
        a_aaaa(d)
        remember("sites", d)
    for h in hosts:
        name = h + "." + d
        if name in ("www.apple.com",):
            continue
        if any(r[0] == name for r in RECORDS[owner_zone(name, only_real=True)]):
            remember("sites", name)
            continue
        k = R.random()
        if k < 0.15:
            cname(name, R.choice(CF_IDS) + ".cloudfront.net")
        elif k < 0.25:
            e = "e%d.dscb.akamaiedge.net" % R.randrange(1000, 20000)
            cname(name, name + ".edgekey.net")
            cname(name + ".edgekey.net", e)
            a_aaaa(e)
        elif k < 0.30:
            cname(name, "cdn.jsdelivr.net")
        else:
            a_aaaa(name, v6=R.random() < 0.7)
        remember("sites", name)
    if p is not None:
        rr(d, "MX", "10 mx%d.%s." % (1, d))
        a_aaaa("mx1." + d, v6=False)
        rr(d, "TXT", txt("v=spf1 include:spf.protection.outlook.com include:_spf.google.com ~all"))
        if R.random() < 0.5:
            rr(d, "HTTPS", "1 . alpn=h2,h3")
for h in ["scdn.co", "i.scdn.co", "www.twitch.tv", "usher.ttvnw.twitch.tv"]:
    a_aaaa(h)
    remember("sites", h)
# Firefox DoH canary: NXDOMAIN in networks that want to disable DoH
remember("misc", "use-application-dns.net")

# DKIM / SPF / DMARC / ACME at example.* (hosted at iana-servers)
def dkim_key(bits):
    body = R.randbytes(bits // 8 + 14)
    prefix = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" if bits == 2048 else "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"
    return prefix + base64.b64encode(body).decode()[: (392 if bits == 2048 else 216) - len(prefix)] + "IDAQAB"


DKIM = [("google._domainkey.example.com", 2048), ("s1._domainkey.example.org", 1024), ("20230601._domainkey.gmail.com", 2048),
        ("selector1-contoso-com._domainkey.contoso.onmicrosoft.com", 2048),
        ("selector2-contoso-com._domainkey.contoso.onmicrosoft.com", 2048),
        ("k1._domainkey.mailchimp.com", 1024), ("s1._domainkey.sendgrid.net", 2048), ("smtpapi._domainkey.sendgrid.net", 1024),
        ("dkim._domainkey.github.com", 2048), ("pf2014._domainkey.paypal.com", 2048), ("mail._domainkey.example.net", 2048)]
for n, bits in DKIM:
    rr(n, "TXT", txt("v=DKIM1; k=rsa; p=" + dkim_key(bits)))
    remember("dkim", n)
for d in ["example.com", "example.org", "example.net"]:
    a_aaaa(d)
    a_aaaa("www." + d)
    rr(d, "MX", "10 mail.%s." % d)
    a_aaaa("mail." + d, v6=False)
    rr(d, "TXT", txt("v=spf1 ip4:93.184.216.0/24 include:_spf.google.com -all"))
    rr("_dmarc." + d, "TXT", txt("v=DMARC1; p=reject; rua=mailto:dmarc-reports@%s; adkim=s; aspf=s" % d))
    rr("_mta-sts." + d, "TXT", txt("v=STSv1; id=2024%08d" % R.randrange(10**8)))
    rr(d, "CAA", '0 issue "letsencrypt.org"')
ACME = []
for h in ["www.example.org", "example.org", "shop.example.net", "api.example.com", "mail.example.com"]:
    n = "_acme-challenge." + h
    rr(n, "TXT", txt(base64.urlsafe_b64encode(R.randbytes(32)).decode().rstrip("=")))
    ACME.append(n)
for h in ["shop.example.net", "api.example.com"]:
    a_aaaa(h)
rr("sendgrid.net", "TXT", txt("v=spf1 ip4:167.89.0.0/17 ip4:208.117.48.0/20 ip4:50.31.32.0/19 ip4:198.37.144.0/20 ip4:198.21.0.0/21 ip4:192.254.112.0/20 ip4:168.245.0.0/17 ip4:149.72.0.0/16 ip4:159.183.0.0/16 ~all"))
rr("paypal.com", "TXT", txt("v=spf1 include:pp._spf.paypal.com include:3ph1._spf.paypal.com include:3ph2._spf.paypal.com include:3ph3._spf.paypal.com include:3ph4._spf.paypal.com include:c._spf.ebay.com ~all"))
rr("_dmarc.paypal.com", "TXT", txt("v=DMARC1; p=reject; rua=mailto:d@rua.agari.com; ruf=mailto:dk@bounce.paypal.com,mailto:d@ruf.agari.com"))

# reverse zone: a /24 half populated with PTRs (for a sweep)
PTR_NET = "93.184.216"
for i in range(1, 255):
    if R.random() < 0.45:
        rr("%d.216.184.93.in-addr.arpa" % i, "PTR", "host-%d.%s." % (i, R.choice(["edgecastcdn.net", "example.net", "example.com"])))

# DNSBL: reversed IPs, listed ones answer 127.0.0.x + TXT
DNSBL_IPS = [pubip() for _ in range(28)]
LISTED = set(R.sample(range(28), 8))
for i, ip in enumerate(DNSBL_IPS):
    rev = ".".join(reversed(ip.split(".")))
    if i in LISTED:
        code = R.choice(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.10", "127.0.0.11"])
        rr(rev + ".zen.spamhaus.org", "A", code)
        rr(rev + ".zen.spamhaus.org", "TXT", txt("Listed by SBL, see https://check.spamhaus.org/sbl/query/SBL%d" % R.randrange(100000, 700000)))
        if R.random() < 0.6:
            rr(rev + ".b.barracudacentral.org", "A", "127.0.0.2")
rr("2.0.0.127.b.barracudacentral.org", "A", "127.0.0.2")
rr("2.0.0.127.zen.spamhaus.org", "A", "127.0.0.2")
SPAM_DOMAINS = ["cheap-pharma-deals.biz", "login-verify-account.info", "a8f3kq.top"]
for d in SPAM_DOMAINS[:2]:
    rr(d + ".dbl.spamhaus.org", "A", "127.0.1.2")
    rr(d + ".multi.surbl.org", "A", "127.0.0.64")

# AV reputation: McAfee GTI (avqs), ESET (e5.sk TXT), Sophos (sophosxl.net)
MCAFEE = []
for i in range(35):
    h = b32(16)  # 26 base32 chars of an md5
    n = "0.0.0.0.1.0.0.4e.%s.avqs.mcafee.com" % h
    MCAFEE.append(n)
    if R.random() < 0.3:
        rr(n, "A", "127.0.%d.%d" % (R.choice([0, 1, 4]), R.choice([1, 64, 128, 129])))
a_aaaa("www.mcafee.com")
ESET = []
for i in range(25):
    n = "%s.%s.%d.e5.sk" % (hexs(40), hexs(8), R.randrange(1, 9))
    ESET.append(n)
    if R.random() < 0.5:
        rr(n, "TXT", txt("%s;%d;%d" % (b32(12), R.randrange(0, 3), R.randrange(1000, 99999))))
SOPHOS = []
for i in range(12):
    sha = hexs(64)
    n = "v1-%s.%s.%s.%s.%s.%s.sxl4.sophosxl.net" % (sha[:32], sha[32:], hexs(40), hexs(32), hexs(20), "4-" + hexs(16))
    SOPHOS.append(n)
    if R.random() < 0.15:
        rr(n, "A", "127.0.0.1")

# tunnel parent zones
for tz, ip in TUNNEL_SERVERS.items():
    parent = tz.split(".", 1)[1]
    a_aaaa("www." + parent, v6=False)
    rr(parent, "MX", "10 mail.%s." % parent)
    a_aaaa("mail." + parent, v6=False)


# ---------------------------------------------------------------------------------------------
def finish():
    """NS + glue for every delegation; SOA + apex NS for every served zone."""
    for z, (g, ns) in ZONES.items():
        if z in REAL_ZONES:
            soa_ns = ns[0]
            RECORDS[z].insert(0, (z, "SOA", "%s. hostmaster.%s. 2024061501 7200 3600 1209600 300"
                                  % (soa_ns, z if z != "." else "root-servers.net")))
            for n in ns:
                RECORDS[z].insert(1, (z, "NS", n + "."))
        for n in ns:
            oz = owner_zone(n, only_real=True)
            if oz is not None and under(n, z) and not any(r[0] == n and r[1] == "A" for r in RECORDS[oz]):
                RECORDS[oz].append((n, "A", NSIP[n]))
            elif oz is not None and not under(n, z) and not any(r[0] == n and r[1] == "A" for r in RECORDS[oz]):
                RECORDS[oz].append((n, "A", NSIP[n]))
        if z == ".":
            for n in ns:
                RECORDS[z].append((n, "A", NSIP[n]))
            continue
        parent = owner_zone(z.split(".", 1)[1] if "." in z else ".", only_real=True)
        for n in ns:
            RECORDS[parent].append((z, "NS", n + "."))
            if under(n, parent) or parent == ".":
                RECORDS[parent].append((n, "A", NSIP[n]))


def fqdn(n):
    return "." if n == "." else n + "."


def write_zones(out):
    finish()
    os.makedirs(out, exist_ok=True)
    groups = {}
    for z in REAL_ZONES:
        groups.setdefault(ZONES[z][0], []).append(z)
    with open(os.path.join(out, "groups.tsv"), "w") as gt:
        for g, zs in sorted(groups.items()):
            gd = os.path.join(out, g)
            os.makedirs(gd, exist_ok=True)
            ips = GROUPS[g]
            gt.write("%s\t%s\n" % (g, " ".join(ips)))
            conf = ["server:"]
            conf += ["  ip-address: %s" % ip for ip in ips]
            conf += ["  port: 53", "  do-ip6: no", '  username: ""', '  chroot: ""', '  database: ""',
                     "  server-count: 1", "  hide-version: yes", "  hide-identity: yes", "  refuse-any: yes",
                     "  verbosity: 1", "  zonesdir: \"%s\"" % gd, "  zonelistfile: \"%s/zone.list\"" % gd,
                     "  xfrdfile: \"%s/xfrd.state\"" % gd, "  xfrdir: \"%s\"" % gd, "  pidfile: \"%s/nsd.pid\"" % gd,
                     "  logfile: \"%s/nsd.log\"" % gd, "  round-robin: yes",
                     "remote-control:", "  control-enable: no"]
            for z in sorted(zs):
                fn = ("root" if z == "." else z) + ".zone"
                conf += ["zone:", '  name: "%s"' % fqdn(z), '  zonefile: "%s"' % fn]
                seen = set()
                with open(os.path.join(gd, fn), "w") as f:
                    f.write("$TTL 3600\n")
                    for owner, typ, rdata in RECORDS[z]:
                        key = (owner, typ, rdata)
                        if key in seen:
                            continue
                        seen.add(key)
                        ttl = 172800 if typ == "NS" and owner != z else (300 if typ in ("A", "AAAA", "CNAME") else 3600)
                        f.write("%s\t%d\tIN\t%s\t%s\n" % (fqdn(owner), ttl, typ, rdata))
            with open(os.path.join(gd, "nsd.conf"), "w") as f:
                f.write("\n".join(conf) + "\n")
    with open(os.path.join(out, "root.hints"), "w") as f:
        for n in ZONES["."][1]:
            f.write(".\t3600000\tNS\t%s.\n%s.\t3600000\tA\t%s\n" % (n, n, NSIP[n]))


# ---------------------------------------------------------------------------------------------
# the benign query plan
CLIENTS = {
    "ws1": "10.53.1.10", "ws2": "10.53.1.11", "ws3": "10.53.1.12",  # workstations (browsers, AV agents)
    "mail": "10.53.1.20",  # mail gateway: DNSBL, SPF, DKIM, DMARC, MX, PTR
    "nat": "10.53.1.30",  # NAT gateway of a guest network: one IP, many distinct names
    "mon": "10.53.1.40",  # monitoring server: PTR sweep, SRV
    "web": "10.53.1.50",  # web server renewing certificates: ACME, CAA
    "fwd": "10.53.1.60",  # a BIND forwarder behind this resolver: trust-anchor telemetry + forwarded queries
}
DURATION = 70.0


def plan(path):
    P = random.Random(SEED + 1)
    ev = []

    def q(t, client, qtype, name, proto="udp", opts=""):
        ev.append((max(0.0, min(t, DURATION)), CLIENTS[client], proto, qtype, name, opts))

    common = NAMES["common"]
    sites = NAMES["sites"]
    cdn = NAMES["cdn"]
    # Chrome-style random single-label probes (NXDOMAIN at the root) and captive-portal checks
    for c in ["ws1", "ws2", "ws3"]:
        t0 = P.uniform(0, 3)
        for i in range(3):
            lab = "".join(P.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(P.randrange(7, 16)))
            q(t0 + i * 0.01, c, "A", lab)
        q(t0 + 0.2, c, "A", "www.msftconnecttest.com")
        q(t0 + 0.3, c, "A", "connectivitycheck.gstatic.com")
        q(t0 + 0.4, c, "A", "use-application-dns.net")
        q(t0 + 0.5, c, "A", "wpad.corp.contoso.com")
    # workstations: page loads = A + AAAA (+ HTTPS) bursts of related names
    for c in ["ws1", "ws2", "ws3"]:
        t = P.uniform(1, 5)
        while t < DURATION - 2:
            page = [P.choice(common)] + P.sample(sites, P.randrange(2, 7)) + P.sample(cdn, P.randrange(0, 3))
            if P.random() < 0.4:
                page += ["%s.safeframe.googlesyndication.com" % "".join(P.choice("0123456789abcdef") for _ in range(32))
                         for _ in range(P.randrange(1, 3))]
            for n in page:
                dt = P.uniform(0, 0.6)
                q(t + dt, c, "A", n)
                q(t + dt + 0.001, c, "AAAA", n)
                if P.random() < 0.3:
                    q(t + dt + 0.002, c, "HTTPS", n)
            t += P.expovariate(1 / 10.0)
    # everyone logs in to Microsoft 365 / GitHub now and then
    for c in ["ws1", "ws2", "ws3", "nat"]:
        for n in ["login.microsoftonline.com", "github.com", "www.google.com", "api.github.com", "login.live.com"]:
            tt = P.uniform(0, DURATION)
            q(tt, c, "A", n)
            q(tt + 0.001, c, "AAAA", n)
    # AV agents: McAfee GTI (UDP), ESET LiveGrid TXT, Sophos SXL over TCP
    for i, n in enumerate(MCAFEE):
        q(P.uniform(0, DURATION), P.choice(["ws1", "ws2"]), "A", n)
    for n in ESET:
        q(P.uniform(0, DURATION), "ws3", "TXT", n)
    for n in SOPHOS:
        q(P.uniform(0, DURATION), P.choice(["ws2", "ws3"]), "A", n, proto="tcp")
    # busy NAT client: many distinct ordinary names, fast
    allnames = sorted(set(sites + common + cdn))
    t = 0.0
    while t < DURATION:
        n = P.choice(allnames)
        q(t, "nat", P.choice(["A", "A", "A", "AAAA", "AAAA", "HTTPS"]), n, opts="+noedns" if P.random() < 0.5 else "")
        if P.random() < 0.03:  # typos -> NXDOMAIN
            q(t + 0.01, "nat", "A", n.replace(".com", ".cmo").replace(".net", ".nte"))
        t += P.expovariate(3.0)
    # mail gateway: per incoming message: PTR + DNSBL(s) + SPF + DKIM + DMARC; outgoing: MX
    senders = ["gmail.com", "contoso.com", "example.com", "example.org", "example.net", "paypal.com", "sendgrid.net", "github.com"]
    dkim_by = {n.split("._domainkey.")[1]: n for n in NAMES["dkim"]}
    t = 0.5
    for i, ip in enumerate(DNSBL_IPS):
        rev = ".".join(reversed(ip.split(".")))
        q(t, "mail", "PTR", rev + ".in-addr.arpa")
        q(t + 0.05, "mail", "A", rev + ".zen.spamhaus.org")
        q(t + 0.06, "mail", "A", rev + ".b.barracudacentral.org")
        if P.random() < 0.3:
            q(t + 0.2, "mail", "TXT", rev + ".zen.spamhaus.org")
        d = P.choice(senders)
        q(t + 0.3, "mail", "TXT", d)
        if d in ("gmail.com",):
            q(t + 0.35, "mail", "TXT", "_spf.google.com")
            q(t + 0.36, "mail", "TXT", "_netblocks.google.com")
        if d == "contoso.com":
            q(t + 0.35, "mail", "TXT", "spf.protection.outlook.com")
            q(t + 0.4, "mail", "TXT", "selector1._domainkey.contoso.com")
        elif d in dkim_by or d == "gmail.com":
            q(t + 0.4, "mail", "TXT", dkim_by.get(d, "20230601._domainkey.gmail.com"))
        q(t + 0.45, "mail", "TXT", "_dmarc." + d)
        if P.random() < 0.3:
            bad = P.choice(SPAM_DOMAINS)
            q(t + 0.5, "mail", "A", bad + ".dbl.spamhaus.org")
            q(t + 0.51, "mail", "A", bad + ".multi.surbl.org")
        if P.random() < 0.4:
            out = P.choice(["gmail.com", "outlook.com", "contoso.com", "example.org", "github.com"] + [s for s, p in SITES[:20] if p])
            q(t + 0.7, "mail", "MX", out)
            q(t + 0.75, "mail", "TXT", "_mta-sts." + out)
        t += P.uniform(1.3, 3.2)
    for n in NAMES["dkim"]:
        q(P.uniform(0, DURATION), "mail", "TXT", n)
    q(1.0, "mail", "SRV", "_xmpp-server._tcp.gmail.com")
    # monitoring: PTR sweep of a /24 (~20/s) + SRV lookups
    t = 20.0
    for i in range(1, 255):
        q(t, "mon", "PTR", "%d.%s.in-addr.arpa" % (i, ".".join(reversed(PTR_NET.split(".")))), opts="+noedns")
        t += P.uniform(0.02, 0.08)
    for n in NAMES["srv"]:
        for k in range(2):
            q(P.uniform(0, DURATION), "mon", "SRV", n)
    for n in ["dc01.corp.contoso.com", "dc02.corp.contoso.com", "vpn.contoso.com", "intranet.contoso.com"]:
        q(P.uniform(0, DURATION), "mon", "A", n)
    # web server: certbot-style ACME DNS-01 polling + CAA checks
    t = 10.0
    for n in ACME:
        host = n[len("_acme-challenge."):]
        zone_apex = ".".join(host.split(".")[-2:])
        q(t, "web", "CAA", host)
        q(t + 0.01, "web", "CAA", zone_apex)
        for k in range(3):
            q(t + 0.5 + k * 2.0, "web", "TXT", n)
        t += 7.0
    # BIND forwarder: trust-anchor telemetry (RFC 8145 key tag query for the root KSKs, NULL type) +
    # a stream of forwarded lookups (guids, github, blob storage)
    for tt in (0.2, 40.0):
        q(tt, "fwd", "NULL", "_ta-4f66", opts="+dnssec")
        q(tt + 0.01, "fwd", "NULL", "_ta-4f66-9728", opts="+dnssec")
    for n in NAMES["guid"] + [x for x in cdn if "windows.net" in x or "amazonaws" in x]:
        for k in range(2):
            q(P.uniform(0, DURATION), "fwd", "A", n, opts="+dnssec")
    ev.sort()
    with open(path, "w") as f:
        for e in ev:
            f.write("%.3f\t%s\t%s\t%s\t%s\t%s\n" % e)
    return len(ev)


def plan_nat(path, duration=90.0):
    """A second benign plan: two busy NAT gateways (guest Wi-Fi, a branch office) querying many distinct
    ordinary names fast, random-label wildcard names (safeframe ad slots, 32 hex chars), CDN chains,
    and a few workstations. Separate seed: the first plan stays the same."""
    P = random.Random(SEED + 2)
    ev = []

    def q(t, src, qtype, name, opts=""):
        ev.append((max(0.0, min(t, duration)), src, "udp", qtype, name, opts))

    names = sorted(set(NAMES["sites"] + NAMES["common"] + NAMES["cdn"]))
    for src, rate in (("10.53.1.30", 5.0), ("10.53.1.60", 3.0)):  # the NAT gateways
        t = P.uniform(0, 0.5)
        while t < duration:
            n = P.choice(names)
            qt = P.choice(["A", "A", "A", "AAAA", "AAAA", "HTTPS"])
            q(t, src, qt, n, opts="+noedns" if P.random() < 0.4 else "")
            if qt == "A" and P.random() < 0.6:
                q(t + 0.001, src, "AAAA", n)
            if P.random() < 0.05:  # ad slots: a wildcard zone answering random labels
                for _ in range(P.randrange(1, 4)):
                    q(t + P.uniform(0, 0.3), src, "A", "%s.safeframe.googlesyndication.com" %
                      "".join(P.choice("0123456789abcdef") for _ in range(32)))
            if P.random() < 0.02:  # typos -> NXDOMAIN
                q(t + 0.01, src, "A", n.replace(".com", ".cmo").replace(".net", ".nte"))
            t += P.expovariate(rate)
    for src in ("10.53.1.10", "10.53.1.11", "10.53.1.12"):  # workstations with ad-heavy pages
        t = P.uniform(1, 5)
        while t < duration - 2:
            for n in P.sample(names, P.randrange(3, 8)) + ["%s.safeframe.googlesyndication.com" % "".join(
                    P.choice("0123456789abcdef") for _ in range(32)) for _ in range(P.randrange(1, 4))]:
                dt = P.uniform(0, 0.6)
                q(t + dt, src, "A", n)
                q(t + dt + 0.001, src, "AAAA", n)
            t += P.expovariate(1 / 8.0)
    ev.sort()
    with open(path, "w") as f:
        for e in ev:
            f.write("%.3f\t%s\t%s\t%s\t%s\t%s\n" % e)
    return len(ev)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("zones", "plan", "plan-nat"):
        sys.exit(__doc__)
    if sys.argv[1] == "zones":
        write_zones(sys.argv[2])
    elif sys.argv[1] == "plan-nat":
        print(plan_nat(sys.argv[2]))
    else:
        print(plan(sys.argv[2]))
