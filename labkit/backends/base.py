"""The one backend interface (sim, netns, later kind) and the results it returns.

A notebook writes `lab.http("default/client", "10.96.0.10:80")` and gets the
same ProbeResult whichever backend runs the lab; the conformance suite
compares those results field by field across backends. So the results are
plain, comparable data, and addresses are strings ("10.244.1.3" or
"10.244.1.3:8080").
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from labkit.errors import LabkitError

# Verdicts of a probe, the same words on every backend.
ANSWERED = "answered"  # SYN-ACK / an HTTP response / a UDP reply
REFUSED = "refused"  # TCP RST (nothing listening, or a REJECT with tcp-reset)
UNREACHABLE = "unreachable"  # ICMP destination unreachable (e.g. a service with no endpoints)
NO_REPLY = "no-reply"  # nothing came back before the deadline (dropped somewhere)
VERDICTS = (ANSWERED, REFUSED, UNREACHABLE, NO_REPLY)


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw, from the client's side and (where known) the server's.

    answered_by:    the pod that answered, "namespace/name" ("" if none or unknown)
    reply_from:     "address:port" the client saw the reply come from (after un-DNAT)
    client_seen_as: "address:port" the server saw the client as (after any SNAT),
                    from /clientip or the node's conntrack ("" if unknown)
    client_address: the source address the client used
    """

    source: str
    destination: str  # "address:port" as asked
    protocol: str  # "tcp" or "udp"
    verdict: str
    answered_by: str = ""
    reply_from: str = ""
    client_seen_as: str = ""
    client_address: str = ""
    kind: str = "syn"  # "syn" (a scapy TCP SYN), "http", "udp"
    status: int = 0  # HTTP status code (http probes)
    body: str = ""  # the reply's text (http and udp probes)
    detail: str = ""  # one sentence for a learner: what happened
    # through the ingress controller: the request headers nginx sent the backend pod,
    # (name, value) sorted by name (X-Forwarded-For, X-Real-IP, ...); () otherwise
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.verdict == ANSWERED


@dataclass(frozen=True)
class Tuple4:
    """One direction of a connection: source and destination address and port."""

    src: str
    dst: str
    sport: int = 0
    dport: int = 0

    def __str__(self) -> str:
        return f"{self.src}:{self.sport} -> {self.dst}:{self.dport}"


@dataclass(frozen=True)
class ConntrackEntry:
    """One conntrack entry as `conntrack -L` shows it.

    orig is the tuple as the first packet arrived; reply is what the reply
    will look like (after NAT, reply.src is the real backend). A DNAT shows
    as orig.dst != reply.src; an SNAT as orig.src != reply.dst.
    """

    proto: str  # "tcp", "udp", "icmp"
    orig: Tuple4
    reply: Tuple4
    state: str = ""  # TCP state (SYN_SENT, ESTABLISHED, TIME_WAIT ...); "" for udp/icmp
    timeout: int = 0
    mark: int = 0
    zone: int = 0
    flags: tuple[str, ...] = ()  # ASSURED, UNREPLIED, ...

    @property
    def dnat(self) -> bool:
        return self.orig.dst != self.reply.src or self.orig.dport != self.reply.sport

    @property
    def snat(self) -> bool:
        return self.orig.src != self.reply.dst or self.orig.sport != self.reply.dport


@dataclass(frozen=True)
class TraceStep:
    """One rule (or chain policy) a packet met: where, what, and what it decided."""

    table: str
    chain: str
    rule_number: int  # 0 for the chain's policy
    rule: str  # the rule as iptables-save prints it ("" for a policy)
    verdict: str  # the target taken: "ACCEPT", "DNAT", "KUBE-SVC-...", "RETURN", "continue"
    packet: str = ""  # the packet as it was at this step, one line
    # the namespace whose chain this is (a trace may cross the LB, a node, the NAT gateway);
    # not compared: two traces agree when their steps do, wherever they were recorded
    netns: str = field(default="", compare=False)


@dataclass(frozen=True)
class Trace:
    source: str
    destination: str
    protocol: str
    steps: tuple[TraceStep, ...]
    verdict: str  # one of VERDICTS


@dataclass(frozen=True)
class LabStatus:
    """What `labkit status` shows for one lab."""

    name: str
    backend: str
    nodes: tuple[str, ...] = ()
    pods: int = 0
    services: int = 0
    created: str = ""
    healthy: bool = True
    problems: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ProbeRequest:
    """One probe of a batch (Backend.probe_many): from a pod, to "address:port", "tcp", "udp" or "sctp"."""

    source: str
    destination: str
    protocol: str = "tcp"


NETPOL_PROBE_TIMEOUT = 0.5  # seconds a NetworkPolicy probe waits before calling it dropped


def _probe_protocol(protocol: str) -> None:
    """TCP and UDP are answered by the pods' servers; SCTP is an INIT on a raw socket, which
    the destination pod's kernel (no SCTP here) answers with ICMP protocol unreachable."""
    if protocol.upper() not in ("TCP", "UDP", "SCTP"):
        raise LabkitError(f"{protocol} cannot be probed in the lab (fix: use TCP, UDP or SCTP)")


class LabNotFound(LabkitError):
    """The lab named does not exist (or is not up)."""


class Backend(abc.ABC):
    """One lab, whatever runs it. Use it as a context manager: `down()` runs on exit."""

    name: str = ""

    @abc.abstractmethod
    def up(self, manifests: str = "", source: str = "") -> None:
        """Make the lab, then apply `manifests` (YAML text) if given."""

    @abc.abstractmethod
    def apply(self, manifests: str, source: str = "") -> list[str]:
        """Create or update objects; returns the refs ("Service default/web") that changed."""

    @abc.abstractmethod
    def delete(self, manifests: str, source: str = "") -> list[str]:
        """Delete the objects named in `manifests`; returns the refs deleted."""

    @abc.abstractmethod
    def scale(self, deployment: str, replicas: int, namespace: str = "default") -> None:
        """Set a Deployment's replicas; pods come and go, rules re-sync."""

    @abc.abstractmethod
    def pods(self) -> list:
        """The lab's pods (model Pod objects, with node and IP)."""

    @abc.abstractmethod
    def services(self) -> list:
        """The lab's Services (model Service objects, with cluster IPs)."""

    @abc.abstractmethod
    def probe(self, source: str, destination: str, protocol: str = "tcp", count: int = 1) -> list[ProbeResult]:
        """Send `count` packets (TCP SYN or UDP) from `source` to "address:port"."""

    @abc.abstractmethod
    def http(self, source: str, destination: str, path: str = "/hostname", *, host=None,
             headers=None) -> ProbeResult:
        """One real TCP connection and HTTP GET from `source` to "address:port".

        host: the Host header (default "address:port"); headers: more request headers.
        A request that reaches the lab's ingress controller is answered by it (nginx):
        answered_by is the backend pod nginx proxied to (the controller pod when nginx
        answered itself), client_seen_as the client as nginx saw it, and `headers` what
        nginx sent the backend."""

    @abc.abstractmethod
    def conntrack(self, node: str) -> list[ConntrackEntry]:
        """The node's conntrack table."""

    @abc.abstractmethod
    def rules(self, node: str, table: str = "nat") -> str:
        """The node's rules in `table`, as iptables-save prints them."""

    @abc.abstractmethod
    def trace(self, source: str, destination: str, protocol: str = "tcp") -> Trace:
        """One packet's path through the node's chains."""

    @abc.abstractmethod
    def down(self) -> None:
        """Remove everything the lab made; safe to call twice."""

    # --- NetworkPolicy: the evaluator's answer, and real packets to check it -----------
    # Both rest on two hooks each backend provides (not defined here, so a lab held in
    # another process, RootlessLab, forwards them like any other method):
    #   netpol_objects() -> the lab's Namespaces, Pods and NetworkPolicies (model objects)
    #   probe_many(requests: list[ProbeRequest], timeout) -> list[ProbeResult], same order

    def _netpol_hook(self, name: str):
        hook = getattr(self, name, None)
        if hook is None:
            raise LabkitError(f"the {self.name or type(self).__name__} backend cannot answer NetworkPolicy "
                              "questions yet (fix: use the sim or netns backend)")
        return hook

    def netpol_check(self, source: str, destination: str, port: int, protocol: str = "TCP",
                     probe: bool = False, timeout: float = NETPOL_PROBE_TIMEOUT):
        """The evaluator's Verdict for `source` -> `destination` ("ns/pod" or an IP) in this lab;
        with probe=True, also one real probe between the two pods: (Verdict, ProbeResult or None)."""
        from labkit.controllers.netpol import build_cluster, check_connection, resolve_endpoint

        cluster = build_cluster(self._netpol_hook("netpol_objects")())
        src, dst = resolve_endpoint(cluster, source), resolve_endpoint(cluster, destination)
        verdict = check_connection(cluster, src, dst, port, protocol)
        if not probe:
            return verdict, None
        if src.pod is None or dst.pod is None:
            raise LabkitError(f"--probe sends from a pod to a pod; {source if src.pod is None else destination} "
                              "is not a pod of the lab (fix: give both as NAMESPACE/POD)")
        _probe_protocol(verdict.protocol)
        [result] = self._netpol_hook("probe_many")(
            [ProbeRequest(src.name, f"{dst.ip}:{verdict.port}", verdict.protocol.lower())], timeout)
        return verdict, result

    def netpol_matrix(self, port: int = 80, protocol: str = "TCP", probe: bool = False,
                      pods=None, timeout: float = NETPOL_PROBE_TIMEOUT):
        """The pod-by-pod NetworkPolicy matrix (labkit.controllers.netpol.probed.ProbedMatrix);
        with probe=True every ordered pair of pods is probed with a real packet (TCP SYN or UDP
        datagram to the pod's IP), all at once, a dropped one given `timeout` seconds."""
        from labkit.controllers.netpol import build_cluster
        from labkit.controllers.netpol.matrix import compute_matrix
        from labkit.controllers.netpol.probed import ProbedMatrix, probe_pairs

        cluster = build_cluster(self._netpol_hook("netpol_objects")())
        matrix = compute_matrix(cluster, port, protocol, pods)
        if not probe:
            return ProbedMatrix(matrix, {})
        _probe_protocol(matrix.protocol)
        ips = {f"{p.meta.namespace}/{p.meta.name}": p.pod_ip for p in cluster.pods}
        probe_many = self._netpol_hook("probe_many")

        def run(pairs, deadline):
            results = probe_many([ProbeRequest(a, f"{ips[b]}:{matrix.port}", matrix.protocol.lower())
                                  for a, b in pairs], deadline)
            return {pair: r.verdict for pair, r in zip(pairs, results)}

        verdicts = run(probe_pairs(matrix.names), timeout)
        # A second chance, with a longer deadline, for an allowed pair whose answer was late (a busy
        # machine): a dropped packet stays dropped however long one waits, so this hides no drop.
        late = [k for k, v in verdicts.items() if v == NO_REPLY and matrix.allowed(*k)]
        if late:
            verdicts.update(run(late, timeout * 4))
        return ProbedMatrix(matrix, verdicts, self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.down()


def parse_destination(text: str) -> tuple[str, int]:
    """"10.96.0.10:80" -> ("10.96.0.10", 80); LabkitError naming the fix otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LabkitError(f"destination {text!r} must be ADDRESS:PORT, e.g. 10.96.0.10:80")
    return host, int(port)


def check_sport(sport) -> int:
    """A client port given to a probe (`sport=`), 0 for none; LabkitError naming the fix otherwise."""
    if sport is None or sport == 0:
        return 0
    if isinstance(sport, bool) or not isinstance(sport, int) or not 0 < sport < 65536:
        raise LabkitError(f"sport={sport!r} is not a port (fix: give a number from 1 to 65535, "
                          "or leave it out for a random client port)")
    return sport


def format_probe(result: ProbeResult) -> str:
    """One line for a learner: "default/client -> 10.96.0.10:80 tcp: answered by default/web-1 ..."."""
    words = [f"{result.source} -> {result.destination} {result.protocol}: {result.verdict}"]
    if result.answered_by:
        words.append(f"by {result.answered_by}")
    if result.reply_from:
        words.append(f"(reply from {result.reply_from})")
    if result.client_seen_as:
        words.append(f"client seen as {result.client_seen_as}")
    return " ".join(words)

