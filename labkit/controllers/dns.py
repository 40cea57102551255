"""Cluster DNS: the records a Kubernetes DNS server serves, and its answers.

The records follow the Kubernetes DNS specification (kubernetes/dns
docs/specification.md), with the choices CoreDNS's `kubernetes` plugin makes
where the specification leaves them open:

- ClusterIP Service: `<svc>.<ns>.svc.<zone>` A (AAAA) -> the ClusterIP(s);
  `_<port>._<proto>.<svc>.<ns>.svc.<zone>` SRV for every *named* port
  (priority 0, weight 100, the Service port, target the Service name).
- Headless Service: `<svc>.<ns>.svc.<zone>` A -> every ready endpoint address
  (none ready: no record, so NXDOMAIN, as the specification asks);
  `<hostname>.<svc>.<ns>.svc.<zone>` A per ready endpoint, where the hostname
  is the endpoint's `hostname` (set by the EndpointSlice controller for a pod
  with spec.hostname and spec.subdomain = the Service) or, as CoreDNS does,
  the address with dashes (`10-244-1-5`); one SRV per ready endpoint and
  named endpoint port, the weight split as CoreDNS splits it
  (floor(100 / number of records)). "Ready" is read as kube-proxy and CoreDNS
  read it: ready unset counts as ready.
- ExternalName Service: `<svc>.<ns>.svc.<zone>` CNAME -> externalName.
- Pods: the deprecated `<a>-<b>-<c>-<d>.<ns>.pod.<zone>` A record, for pods
  that exist (CoreDNS's `pods verified`; kind runs `pods insecure`, which
  answers any address: that set is infinite, so no server file can hold it).
- `dns-version.<zone>` TXT "1.1.0" (the schema version CoreDNS reports).
- PTR: for every address, pointing at the first name in record order that
  has it -- exactly the rule dnsmasq applies to its host records, and the
  order (ClusterIPs, endpoint hostnames, headless Service names, pods) makes
  that the specification's PTR wherever the specification defines one.

`answer` is how the server answers one question from those records: the
semantics the real server in the kernel lab (dnsmasq, see
labkit/dns/server_conf.py) was observed to have, so that the simulation and
the kernel tell the same story. Not modelled: CoreDNS's SRV answers for the
bare Service name, wildcard queries, and forwarding to an upstream server --
the lab has no internet DNS, so every other name is NXDOMAIN.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Optional

from labkit.errors import LabkitError
from labkit.model.objects import Endpoint, EndpointSlice, Pod, Service

DEFAULT_TTL = 5  # CoreDNS kubernetes plugin default
DNS_SCHEMA_VERSION = "1.1.0"  # what CoreDNS answers for dns-version.<zone>
RECORD_TYPES = ("A", "AAAA", "CNAME", "SRV", "PTR", "TXT")
_MAX_CNAME_CHAIN = 8


class DnsError(LabkitError):
    """A DNS question or record labkit cannot handle."""


@dataclass(frozen=True, order=True)
class Record:
    """One resource record, in zone-file (presentation) form.

    name: the owner, lower case, without the trailing dot.
    data: as `dig` prints it: "10.96.0.1"; "web.default.svc.cluster.local."
          for CNAME and PTR; "0 100 80 web.default.svc.cluster.local." for
          SRV (priority weight port target); '"1.1.0"' for TXT.
    """

    name: str
    type: str
    data: str
    ttl: int = DEFAULT_TTL

    def __str__(self) -> str:
        return f"{self.name}. {self.ttl} IN {self.type} {self.data}"

    def key(self) -> tuple[str, str, str, int]:
        """What two servers must agree on (case-insensitive names)."""
        return (self.name.lower(), self.type, self.data.lower(), self.ttl)

    @property
    def target(self) -> str:
        """The name a CNAME, PTR or SRV record points at (no trailing dot)."""
        if self.type in ("CNAME", "PTR"):
            return self.data.rstrip(".")
        if self.type == "SRV":
            return self.data.split()[3].rstrip(".")
        raise DnsError(f"a {self.type} record has no target name: {self}")

    @property
    def srv(self) -> tuple[int, int, int, str]:
        """(priority, weight, port, target) of an SRV record."""
        if self.type != "SRV":
            raise DnsError(f"not an SRV record: {self}")
        p, w, port, target = self.data.split()
        return int(p), int(w), int(port), target.rstrip(".")


@dataclass(frozen=True)
class Answer:
    """A server's answer to one question: rcode and the answer section.

    rcode "NOERROR" with no records is NODATA: the name exists, but has no
    record of the type asked for.
    """

    qname: str
    qtype: str
    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...
    records: tuple[Record, ...] = ()

    @property
    def status(self) -> str:
        """NOERROR, NODATA, NXDOMAIN, ...: the word a learner looks for."""
        if self.rcode == "NOERROR" and not self.records:
            return "NODATA"
        return self.rcode

    def addresses(self) -> tuple[str, ...]:
        return tuple(r.data for r in self.records if r.type in ("A", "AAAA"))

    def key(self) -> tuple:
        """Comparable form: rcode and the answer records as a sorted set."""
        return (self.rcode, tuple(sorted({r.key() for r in self.records})))


@dataclass(frozen=True)
class DnsRecords:
    """Every record cluster DNS serves, in the order a server file lists them."""

    zone: str
    records: tuple[Record, ...]

    def answer(self, qname: str, qtype: str) -> Answer:
        return answer(self, qname, qtype)

    def forward(self) -> tuple[Record, ...]:
        """Everything but PTR: what a server configuration spells out."""
        return tuple(r for r in self.records if r.type != "PTR")


# --- records from the cluster ---------------------------------------------------


def service_fqdn(name: str, namespace: str, zone: str = "cluster.local") -> str:
    return f"{name}.{namespace}.svc.{zone}".lower()


def endpoint_hostname(ep: Endpoint, address: str) -> str:
    """The endpoint's hostname, or CoreDNS's name for it: its address, dashed."""
    if ep.hostname:
        return ep.hostname.lower()
    return address.replace(".", "-").replace(":", "-")


def pod_record_name(ip: str, namespace: str, zone: str = "cluster.local") -> str:
    return f"{ip.replace('.', '-').replace(':', '-')}.{namespace}.pod.{zone}".lower()


def reverse_name(ip: str) -> str:
    """10.96.0.1 -> 1.0.96.10.in-addr.arpa (and the nibble form for IPv6)."""
    return ipaddress.ip_address(ip).reverse_pointer


def address_type(ip: str) -> str:
    return "AAAA" if ipaddress.ip_address(ip).version == 6 else "A"


def ready_endpoint(ep: Endpoint) -> bool:
    """Ready unset counts as ready (CoreDNS and kube-proxy read it so)."""
    return ep.conditions.ready is None or ep.conditions.ready


def _has_cluster_ip(svc: Service) -> bool:
    return svc.type != "ExternalName" and svc.cluster_ip not in ("", "None")


def _service_ips(svc: Service) -> tuple[str, ...]:
    ips = svc.cluster_ips or ((svc.cluster_ip,) if svc.cluster_ip else ())
    return tuple(ip for ip in ips if ip and ip != "None")


def _srv_records(name: str, targets: list[tuple[int, str]], ttl: int) -> list[Record]:
    """SRV records of one name, weighted as CoreDNS weights equal targets."""
    weight = 100 // len(targets)
    return [Record(name, "SRV", f"0 {weight} {port} {target}.", ttl) for port, target in targets]


def _headless_endpoints(slices: Iterable[EndpointSlice]) -> list[tuple[str, str, EndpointSlice]]:
    """(address, hostname, slice) of every ready endpoint, each address once."""
    out: list[tuple[str, str, EndpointSlice]] = []
    seen: set[str] = set()
    for sl in sorted(slices, key=lambda s: s.meta.name):
        if sl.address_type not in ("IPv4", "IPv6"):
            continue
        for ep in sl.endpoints:
            if not ready_endpoint(ep):
                continue
            for addr in ep.addresses:
                if addr in seen:
                    continue
                seen.add(addr)
                out.append((addr, endpoint_hostname(ep, addr), sl))
    return out


def dns_records(
    services: Iterable[Service],
    endpoint_slices: Iterable[EndpointSlice] = (),
    pods: Iterable[Pod] = (),
    zone: str = "cluster.local",
    ttl: int = DEFAULT_TTL,
    extra: Iterable[Record] = (),
) -> DnsRecords:
    """The records of the cluster: Services (+ their slices), pods, and `extra`.

    `extra` holds names outside the cluster the lab wants resolvable (an
    "internet" host); they are served like the cluster's own.
    """
    zone = zone.lower().rstrip(".")
    svcs = sorted(services, key=lambda s: (s.meta.namespace, s.meta.name))
    slices = list(endpoint_slices)
    cluster_ip: list[Record] = []
    srv: list[Record] = []
    cnames: list[Record] = []
    hostnames: list[Record] = []
    headless: list[Record] = []
    for svc in svcs:
        ns, name = svc.meta.namespace, svc.meta.name
        fqdn = service_fqdn(name, ns, zone)
        if svc.type == "ExternalName":
            if svc.external_name:
                cnames.append(Record(fqdn, "CNAME", svc.external_name.lower().rstrip(".") + ".", ttl))
            continue
        if _has_cluster_ip(svc):
            for ip in _service_ips(svc):
                cluster_ip.append(Record(fqdn, address_type(ip), ip, ttl))
            for sp in svc.ports:
                if sp.name:
                    srv += _srv_records(f"_{sp.name}._{sp.protocol.lower()}.{fqdn}".lower(),
                                        [(sp.port, fqdn)], ttl)
            continue
        if not svc.headless:
            continue  # no ClusterIP allocated yet: nothing to serve
        mine = [s for s in slices if s.meta.namespace == ns and s.service_name == name]
        endpoints = _headless_endpoints(mine)
        by_port: dict[str, list[tuple[int, str]]] = {}
        for addr, host, sl in endpoints:
            host_fqdn = f"{host}.{fqdn}"
            hostnames.append(Record(host_fqdn, address_type(addr), addr, ttl))
            headless.append(Record(fqdn, address_type(addr), addr, ttl))
            for ep_port in sl.ports:
                if ep_port.name and ep_port.port is not None:
                    srv_name = f"_{ep_port.name}._{ep_port.protocol.lower()}.{fqdn}".lower()
                    by_port.setdefault(srv_name, []).append((ep_port.port, host_fqdn))
        for srv_name, targets in by_port.items():
            srv += _srv_records(srv_name, targets, ttl)
    pod_records: list[Record] = []
    seen_pods: set[tuple[str, str]] = set()
    for pod in sorted(pods, key=lambda p: (p.meta.namespace, p.meta.name)):
        for ip in pod.pod_ips or ((pod.pod_ip,) if pod.pod_ip else ()):
            name = pod_record_name(ip, pod.meta.namespace, zone)
            if (name, ip) not in seen_pods:
                seen_pods.add((name, ip))
                pod_records.append(Record(name, address_type(ip), ip, ttl))
    version = [Record(f"dns-version.{zone}", "TXT", f'"{DNS_SCHEMA_VERSION}"', ttl)]
    extra_records = [_normalized(r) for r in extra]
    forward = cluster_ip + hostnames + headless + pod_records + extra_records + cnames + srv + version
    return DnsRecords(zone, tuple(_dedupe(forward)) + ptr_records(forward))


def cluster_dns_records(state, ttl: int = DEFAULT_TTL, extra: Iterable[Record] = ()) -> DnsRecords:
    """dns_records for a reconciled ClusterState (labkit.controllers.cluster)."""
    return dns_records(
        state.services, state.endpoint_slices, state.pods,
        zone=state.settings.cluster_domain, ttl=ttl, extra=extra,
    )


def _normalized(r: Record) -> Record:
    if r.type not in RECORD_TYPES:
        raise DnsError(f"record type {r.type!r} is not served here (use one of {', '.join(RECORD_TYPES)})")
    return Record(r.name.lower().rstrip("."), r.type, r.data, r.ttl)


def _dedupe(records: Iterable[Record]) -> list[Record]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for r in records:
        k = (r.name, r.type, r.data)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def ptr_records(forward: Iterable[Record]) -> tuple[Record, ...]:
    """One PTR per address: to the first name (in order) holding that address."""
    out: dict[str, Record] = {}
    for r in forward:
        if r.type in ("A", "AAAA") and r.data not in out:
            out[r.data] = Record(reverse_name(r.data), "PTR", r.name + ".", r.ttl)
    return tuple(out.values())


# --- answering a question -------------------------------------------------------


def normalize_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def answer(records: DnsRecords, qname: str, qtype: str) -> Answer:
    """How the lab's DNS server answers `qname` `qtype` from these records.

    Matching is case-insensitive. The type's records if there are any; a
    CNAME is returned for any other type and followed within the records; a
    name that exists with other types only -- or only as the parent of other
    names, like `default.svc.cluster.local` -- is NODATA; anything else is
    NXDOMAIN. Reverse (PTR) names do not make their parents exist.
    """
    qtype = qtype.upper()
    if qtype not in RECORD_TYPES:
        raise DnsError(f"query type {qtype!r} is not supported (use one of {', '.join(RECORD_TYPES)})")
    name = normalize_name(qname)
    chain: list[Record] = []
    for _ in range(_MAX_CNAME_CHAIN):
        hits = [r for r in records.records if r.name == name and r.type == qtype]
        if hits:
            return Answer(qname, qtype, "NOERROR", tuple(chain + hits))
        cname = next((r for r in records.records if r.name == name and r.type == "CNAME"), None)
        if cname is None or qtype == "CNAME":
            break
        chain.append(cname)
        name = cname.target
    if chain:
        return Answer(qname, qtype, "NOERROR", tuple(chain))
    if _name_exists(records, name):
        return Answer(qname, qtype, "NOERROR", ())
    return Answer(qname, qtype, "NXDOMAIN", ())


def _name_exists(records: DnsRecords, name: str) -> bool:
    suffix = "." + name
    for r in records.records:
        if r.name == name:
            return True
        if r.type != "PTR" and r.name.endswith(suffix):
            return True
    return False


def render_records(records: DnsRecords) -> str:
    """The records as zone-file lines, one a line: for a learner to read."""
    return "\n".join(str(r) for r in records.records) + ("\n" if records.records else "")


def find_records(records: DnsRecords, name: str, rtype: Optional[str] = None) -> tuple[Record, ...]:
    n = normalize_name(name)
    return tuple(r for r in records.records if r.name == n and (rtype is None or r.type == rtype.upper()))
