"""DNS packets for probes: build a query with scapy, read an answer back.

A probe asks cluster DNS the way a pod's resolver does: one UDP datagram to
the kube-dns ClusterIP, port 53, which kube-proxy's DNAT sends on to a DNS
pod. `build_dns_query` makes that packet (give `src` explicitly: scapy in a
namespace with an onlink default route would pick 0.0.0.0);
`parse_dns_response` turns the reply -- raw bytes, a DNS layer or a whole
IP/UDP/DNS packet -- into the same `Answer` the pure record store returns,
so the simulation and the kernel can be compared record for record.
Pure: nothing here sends anything.
"""
from __future__ import annotations

from typing import Union

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, UDP
from scapy.packet import Packet

from labkit.controllers.dns import RECORD_TYPES, Answer, DnsError, Record

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPE_NUMBERS = {"A": 1, "CNAME": 5, "PTR": 12, "TXT": 16, "AAAA": 28, "SRV": 33}
TYPE_NAMES = {v: k for k, v in TYPE_NUMBERS.items()}
DEFAULT_QID = 0x4C4B  # "LK"
DEFAULT_SPORT = 40053


def _qtype_number(qtype: str) -> int:
    q = qtype.upper()
    if q not in TYPE_NUMBERS:
        raise DnsError(f"query type {qtype!r} is not supported (use one of {', '.join(RECORD_TYPES)})")
    return TYPE_NUMBERS[q]


def build_dns_message(name: str, qtype: str = "A", qid: int = DEFAULT_QID, rd: bool = True) -> DNS:
    """The DNS layer of a query: one question, recursion desired (as glibc sends)."""
    qname = name if name.endswith(".") else name + "."
    return DNS(id=qid, rd=int(rd), qd=DNSQR(qname=qname, qtype=_qtype_number(qtype)))


def build_dns_query(
    name: str,
    qtype: str,
    src: str,
    dst: str = "10.96.0.10",
    sport: int = DEFAULT_SPORT,
    dport: int = 53,
    qid: int = DEFAULT_QID,
) -> Packet:
    """IP/UDP/DNS: a pod at `src` asking `dst` (the kube-dns ClusterIP) for name/qtype."""
    return IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / build_dns_message(name, qtype, qid)


def _name(value) -> str:
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.rstrip(".").lower()


def record_from_rr(rr) -> Record:
    """One scapy resource record as a labkit Record (presentation form)."""
    rtype = TYPE_NAMES.get(rr.type)
    if rtype is None:
        raise DnsError(f"record type {rr.type} in the answer is not one labkit reads")
    name = _name(rr.rrname)
    if rtype in ("A", "AAAA"):
        data = str(rr.rdata)
    elif rtype in ("CNAME", "PTR"):
        data = _name(rr.rdata) + "."
    elif rtype == "SRV":
        data = f"{rr.priority} {rr.weight} {rr.port} {_name(rr.target)}."
    else:  # TXT: a list of character strings
        parts = rr.rdata if isinstance(rr.rdata, list) else [rr.rdata]
        data = " ".join('"' + (p.decode() if isinstance(p, bytes) else str(p)) + '"' for p in parts)
    return Record(name, rtype, data, int(rr.ttl))


def _dns_layer(msg: Union[bytes, Packet]) -> DNS:
    if isinstance(msg, (bytes, bytearray)):
        return DNS(bytes(msg))
    if msg.haslayer(DNS):
        return msg[DNS]
    raise DnsError(f"not a DNS message: {msg.summary()}")


def parse_dns_response(msg: Union[bytes, Packet]) -> Answer:
    """The answer section and rcode of a reply, as an `Answer`."""
    dns = _dns_layer(msg)
    if not dns.qr:
        raise DnsError("this is a query, not a response (qr=0)")
    if not dns.qd:
        raise DnsError("the response has no question section")
    q = dns.qd[0] if isinstance(dns.qd, list) else dns.qd
    qtype = TYPE_NAMES.get(q.qtype, str(q.qtype))
    rcode = RCODES.get(dns.rcode, str(dns.rcode))
    answers = dns.an if isinstance(dns.an, list) else ([dns.an] if dns.an else [])
    records = tuple(record_from_rr(rr) for rr in answers)
    return Answer(_name(q.qname), qtype, rcode, records)


def response_for(query: Packet, reply: Packet) -> bool:
    """Whether `reply` answers `query`: same id and question, ports swapped."""
    q, r = query[DNS], reply[DNS]
    if not r.qr or q.id != r.id:
        return False
    if query.haslayer(UDP) and reply.haslayer(UDP):
        if (query[UDP].sport, query[UDP].dport) != (reply[UDP].dport, reply[UDP].sport):
            return False
    qq = q.qd[0] if isinstance(q.qd, list) else q.qd
    rq = r.qd[0] if isinstance(r.qd, list) else r.qd
    return rq is not None and _name(qq.qname) == _name(rq.qname) and qq.qtype == rq.qtype
