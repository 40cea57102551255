"""Send a scapy packet through the lab: the thin adapter the notebooks use.

A learner writes the packet the way scapy spells it,

    pkt = IP(src="10.244.1.2", dst="10.96.0.80") / TCP(dport=80)
    result = labkit.probes.send(lab, pkt)

and the adapter turns it into the lab's probe call: the source address names
who sends (the pod, node or outside host holding it), the destination and
port say where to, the layer says tcp or udp. Like a real socket, the lab
chooses the source port itself, so a port given in `TCP(sport=...)` is not
used (result.client_address shows the one chosen). TCP packets go out as a
SYN, the first packet of a connection: the only kind kube-proxy's NAT rules
decide on.

Importing this module does not import scapy; only packets built with it are read.
"""
from __future__ import annotations

from dataclasses import dataclass

from labkit.errors import LabkitError


@dataclass(frozen=True)
class PacketFields:
    src: str
    dst: str
    protocol: str  # "tcp" or "udp"
    sport: int
    dport: int
    flags: str = ""  # scapy's letters for TCP ("S", "SA")

    @property
    def destination(self) -> str:
        return f"{self.dst}:{self.dport}"


def packet_fields(packet) -> PacketFields:
    """The fields the lab needs from a scapy IP/TCP or IP/UDP packet (or a labkit dataplane Packet)."""
    from labkit.dataplane.packet import Packet

    if isinstance(packet, Packet):
        return PacketFields(packet.src, packet.dst, packet.proto, packet.sport, packet.dport,
                            "S" if packet.flags == "SYN" else packet.flags)
    getlayer = getattr(packet, "getlayer", None)
    ip = getlayer("IP") if getlayer else None
    if ip is None:
        raise LabkitError("the packet has no IP layer: build it as IP(src=..., dst=...)/TCP(dport=...)")
    src = ip.fields.get("src")
    dst = ip.fields.get("dst")
    if not src:
        raise LabkitError("the packet has no source address: give IP(src=...) the address of a pod, "
                          "node or outside host of the lab (scapy would otherwise pick this computer's own)")
    if not dst:
        raise LabkitError("the packet has no destination: IP(dst=...)")
    for proto in ("TCP", "UDP"):
        layer = getlayer(proto)
        if layer is not None:
            if "dport" not in layer.fields:
                raise LabkitError(f"the packet's {proto} layer has no destination port: {proto}(dport=...)")
            flags = str(layer.flags) if proto == "TCP" else ""
            return PacketFields(str(src), str(dst), proto.lower(), int(layer.sport), int(layer.dport), flags)
    raise LabkitError("the packet has neither TCP nor UDP on top of IP: add /TCP(dport=...) or /UDP(dport=...)")


def source_for(lab, fields: PacketFields) -> str:
    """The lab's name for the sender of `fields.src` ("default/client", "kind-worker", "outside")."""
    from labkit.checks.facts import source_name

    return source_name(lab, fields.src)


def _check_flags(fields: PacketFields) -> None:
    if fields.protocol == "tcp" and fields.flags not in ("", "S"):
        raise LabkitError(f"the lab sends the first packet of a TCP connection, a SYN (TCP(flags='S'), "
                          f"scapy's default); this packet has flags {fields.flags!r}")


def send(lab, packet, count: int = 1):
    """Send `packet` from its source through the lab `count` times.

    Returns one ProbeResult for count=1, else the list of them.
    """
    fields = packet_fields(packet)
    _check_flags(fields)
    results = lab.probe(source_for(lab, fields), fields.destination, fields.protocol, count=count)
    return results[0] if count == 1 else results


def trace(lab, packet):
    """The chain-by-chain trace of `packet` through the first node it meets (a Trace)."""
    fields = packet_fields(packet)
    _check_flags(fields)
    return lab.trace(source_for(lab, fields), fields.destination, fields.protocol)


def render_result(result) -> str:
    """One line for a learner: who sent, where to, and what came back."""
    from labkit.backends.base import format_probe

    return format_probe(result)
