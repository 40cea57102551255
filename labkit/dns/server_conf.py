"""Configuration of the real DNS server behind kube-dns in the kernel lab.

The kernel lab runs dnsmasq (Debian dnsmasq-base) where a kind cluster runs
CoreDNS: in the kube-dns pods' namespace, listening on the pod address, port
53; pods reach it through the kube-dns ClusterIP (10.96.0.10) and
kube-proxy's DNAT like any other UDP flow.

The configuration holds exactly the records labkit.controllers.dns computes,
nothing read from the host: no /etc/resolv.conf (`no-resolv`), no /etc/hosts
(`no-hosts`), no upstream server, no DHCP (none without a dhcp-range), and
`local=` for the cluster zone and for every other name, so a name the
records do not hold is NXDOMAIN -- the lab has no internet DNS to forward to.
The pid file and the query log live in the lab's own state directory.

What each record becomes:

    A / AAAA   host-record=<name>,<address>,<ttl>  (one line per address;
               dnsmasq derives the PTR from the first line holding an address,
               which is how controllers/dns.py derives its PTR records)
    CNAME      cname=<name>,<target>,<ttl>
    SRV        srv-host=<name>,<target>,<port>,<priority>,<weight>
    TXT        txt-record=<name>,<text>
    PTR        (derived, see above)

SRV and TXT lines take no TTL: they get `local-ttl`, so all of them must
share one TTL (they do: the controller uses one TTL for everything).
"""
from __future__ import annotations

import posixpath
from typing import Optional

from labkit.controllers.dns import DnsError, DnsRecords, Record, ptr_records

DNSMASQ_PID_FILE = "dnsmasq.pid"
DNSMASQ_LOG_FILE = "dnsmasq.log"
DNSMASQ_CONF_FILE = "dnsmasq.conf"


def _local_ttl(records: DnsRecords) -> int:
    ttls = {r.ttl for r in records.records if r.type in ("SRV", "TXT")}
    if len(ttls) > 1:
        raise DnsError(
            "dnsmasq gives SRV and TXT records one TTL (local-ttl), but these records use "
            f"{sorted(ttls)} (fix: build the records with a single ttl)"
        )
    if ttls:
        return ttls.pop()
    return max((r.ttl for r in records.records), default=5)


def _txt_value(data: str) -> str:
    text = data[1:-1] if len(data) >= 2 and data[0] == data[-1] == '"' else data
    if "," in text or '"' in text:
        return '"' + text.replace('"', '\\"') + '"'
    return text


def render_record(r: Record) -> str:
    """One record as a dnsmasq configuration line."""
    if r.type in ("A", "AAAA"):
        return f"host-record={r.name},{r.data},{r.ttl}"
    if r.type == "CNAME":
        return f"cname={r.name},{r.target},{r.ttl}"
    if r.type == "SRV":
        priority, weight, port, target = r.srv
        return f"srv-host={r.name},{target},{port},{priority},{weight}"
    if r.type == "TXT":
        return f"txt-record={r.name},{_txt_value(r.data)}"
    raise DnsError(f"dnsmasq derives PTR records itself; cannot write {r}")


def render_dnsmasq_conf(
    records: DnsRecords,
    listen_address: str = "10.96.0.10",
    port: int = 53,
    state_dir: str = "/run/labkit",
    log_queries: bool = True,
    user: Optional[str] = "root",
    user_namespace: bool = False,
) -> str:
    """dnsmasq.conf serving `records` on listen_address:port.

    state_dir: the lab's own directory; the pid file and query log go there.
    log_queries: one log line per query, so the lab can count the queries a
    pod sent (the search-list expansion) from the server's side too.
    user: the user dnsmasq switches to after start-up ("root": stay root in
    the lab's own namespace; None: dnsmasq's default, nobody).
    user_namespace: dnsmasq runs in an unprivileged user namespace
    (`unshare -Urn`), where its privilege drop fails (setgroups is denied):
    `no-daemon` skips that step -- and writes no pid file; the lab holds the
    process it started.
    """
    derived = ptr_records(records.forward())
    if set(derived) != {r for r in records.records if r.type == "PTR"}:
        raise DnsError(
            "the PTR records are not the ones dnsmasq would derive from the A/AAAA records "
            "(fix: build DnsRecords with labkit.controllers.dns.dns_records)"
        )
    zone = records.zone
    lines = [
        f"# Cluster DNS for the zone {zone}, written by labkit: serves exactly the records",
        "# below; every other name is NXDOMAIN.",
        "no-resolv",
        "no-hosts",
        "no-poll",
    ]
    if user_namespace:
        lines += ["# unprivileged user namespace: no privilege drop (setgroups is denied), no pid file",
                  "no-daemon"]
    else:
        lines.append("keep-in-foreground")
    lines += ["bind-interfaces", f"listen-address={listen_address}", f"port={port}"]
    if not user_namespace:
        lines.append(f"pid-file={posixpath.join(state_dir, DNSMASQ_PID_FILE)}")
        if user:
            lines.append(f"user={user}")
    if log_queries:
        lines += ["log-queries", f"log-facility={posixpath.join(state_dir, DNSMASQ_LOG_FILE)}"]
    lines += [
        f"local=/{zone}/",
        "# no upstream server in the lab: answer every other name from local data (NXDOMAIN)",
        "local=/#/",
        f"local-ttl={_local_ttl(records)}",
    ]
    lines += [render_record(r) for r in records.forward()]
    return "\n".join(lines) + "\n"


def dnsmasq_argv(conf_path: str, dnsmasq: str = "dnsmasq") -> tuple[str, ...]:
    """The command line: only our file is read (-C skips /etc/dnsmasq.conf)."""
    return (dnsmasq, f"--conf-file={conf_path}")


def parse_query_log(log_text: str) -> list[tuple[str, str]]:
    """(qtype, name) of every query in a dnsmasq log written with log-queries.

    A line reads "... dnsmasq[42]: query[A] web.default.svc.cluster.local from 10.244.1.3".
    """
    out = []
    for line in log_text.splitlines():
        at = line.find(" query[")
        if at < 0:
            continue
        rest = line[at + len(" query["):]
        qtype, _, tail = rest.partition("] ")
        out.append((qtype, tail.split(" ", 1)[0]))
    return out
