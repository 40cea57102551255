"""The simulated lab: the netns lab's plan and rules, walked by the pure dataplane.

Everything the kernel lab decides, this lab decides the same way and from
the same functions: the cluster from labkit.backends.operations (so pods get
the same names, nodes and addresses under the same seed), the namespaces
from the same LabPlan, each namespace's rules from the same restore text
(labkit.backends.netns.rules.render_lab_rules). Only the packets differ:
here they are walked through labkit.dataplane, with conntrack kept between
probes, and each pod's agnhost netexec answers with netexec's own pure
functions.

Deterministic: one random.Random(seed) decides every coin (`-m statistic`),
every client port and every port remapping; the clock is a counter that
moves one second per probe. To replay a kernel run, pin the pod that
answered (`pin=` on a probe, or `lab.pin(pod)` for all probes) and give the
client port the kernel used (`sport=`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional, Sequence

from labkit.backends import operations as ops
from labkit.backends.base import (
    ANSWERED,
    NO_REPLY,
    REFUSED,
    UNREACHABLE,
    Backend,
    ConntrackEntry,
    LabNotFound,
    ProbeResult,
    Trace,
    parse_destination,
)
from labkit.backends.netns.rules import render_lab_rules
from labkit.backends.sim.results import conntrack_entry, render_table, trace_steps
from labkit.backends.sim.topology import build_topology
from labkit.controllers.cluster import ClusterSettings, ClusterState
from labkit.dataplane.packet import Packet
from labkit.dataplane.topology import LabState, Topology
from labkit.dataplane.walk import BranchChooser, RandomChooser, Walk, walk_all_branches, walk_packet
from labkit.errors import LabkitError
from labkit.topology.kind_config import ClusterTopology, default_topology, parse_kind_config_text
from labkit.topology.plan import DEFAULT_LAB_NAME, LabPlan, build_plan, check_lab_name, placements_from_pods
from labkit.workloads.netexec import answer_http, answer_udp, pod_server_ports

EPHEMERAL_PORTS = (32768, 61000)  # net.ipv4.ip_local_port_range's default (end exclusive)
PROBE_TICK = 1.0  # seconds the lab's clock moves per probe


@dataclass(frozen=True)
class Endpoint:
    """A probe's source: the namespace it sends from, and its address."""

    label: str
    netns: str
    ip: str
    node: str  # the node whose chains see the packet first ("" outside the cluster)


@dataclass(frozen=True)
class _Exchange:
    """How one connection attempt went, before it becomes a ProbeResult."""

    verdict: str
    server_ns: str = ""
    seen_as: str = ""  # "address:port" the server saw
    reply_from: str = ""
    sport: int = 0
    walk: Optional[Walk] = None  # the first packet's walk
    detail: str = ""


class SimLab(Backend):
    name = "sim"

    def __init__(self, lab: str = DEFAULT_LAB_NAME, kind_config: str = "", seed: int = 0):
        check_lab_name(lab)
        self.lab = lab
        self.kind_config = kind_config
        self.topology: ClusterTopology = (
            parse_kind_config_text(kind_config) if kind_config else default_topology()
        )
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = 0.0
        self.operations: list[dict] = []
        self.state: Optional[ClusterState] = None
        self.plan: Optional[LabPlan] = None
        self.dataplane: Optional[Topology] = None
        self.packets = LabState()
        self.pinned = ""
        self._up = False

    # --- life cycle -------------------------------------------------------

    @property
    def settings(self) -> ClusterSettings:
        return ClusterSettings(pod_cidr=self.topology.pod_subnet, service_cidr=self.topology.service_subnet)

    def up(self, manifests: str = "", source: str = "") -> None:
        if self._up:
            raise LabkitError(f"lab {self.lab!r} is already up (fix: call down() first, or make another lab)")
        operations = []
        if manifests:
            operations.append({"op": "apply", "text": manifests, "source": source or "<manifest>"})
        state = ops.replay(operations, self.settings, self.seed, self.topology.node_names)
        self.operations = operations
        self._sync(state)
        self._up = True

    def down(self) -> None:
        self._up = False
        self.state = self.plan = self.dataplane = None
        self.packets = LabState()
        self.operations = []

    # --- changes ------------------------------------------------------------

    def _step(self) -> int:
        self._require()
        return len(self.operations) + 1

    def apply(self, manifests: str, source: str = "") -> list[str]:
        from labkit.model.load import load_manifests

        objs = load_manifests(manifests, source or "<manifest>")
        state = ops.apply_objects(self._state(), objs, self.seed, self._step(), self.topology.node_names)
        self._record({"op": "apply", "text": manifests, "source": source or "<manifest>"}, state)
        return [_ref(o) for o in objs]

    def delete(self, manifests: str, source: str = "") -> list[str]:
        from labkit.model.load import load_manifests

        objs = load_manifests(manifests, source or "<manifest>")
        state = ops.delete_objects(self._state(), objs, self.seed, self._step(), self.topology.node_names)
        self._record({"op": "delete", "text": manifests, "source": source or "<manifest>"}, state)
        return [_ref(o) for o in objs]

    def scale(self, deployment: str, replicas: int, namespace: str = "default") -> None:
        name = deployment.split("/", 1)[1] if deployment.startswith("deployment/") else deployment
        state = ops.scale_deployment(self._state(), namespace, name, replicas, self.seed, self._step(),
                                     self.topology.node_names)
        self._record({"op": "scale", "namespace": namespace, "name": name, "replicas": replicas}, state)

    def _record(self, op: dict, state: ClusterState) -> None:
        self._sync(state)
        self.operations.append(op)

    def _sync(self, state: ClusterState) -> None:
        """Re-plan, re-render every namespace's rules and reload them, as the netns lab re-syncs.

        Conntrack survives (the kernel keeps it across iptables-restore); the
        namespaces of pods that are gone take their state with them.
        """
        cidrs = {n.meta.name: n.pod_cidr for n in state.nodes if n.pod_cidr}
        plan = build_plan(self.lab, self.topology, placements_from_pods(state.pods), cidrs)
        model = {f"{p.meta.namespace}/{p.meta.name}": p for p in state.pods}
        listeners = {}
        for p in plan.pods:
            tcp, udp = pod_server_ports(model[p.key])
            listeners[p.netns] = {("tcp", n) for n in tcp} | {("udp", n) for n in udp}
        old = {p.key: p for p in self.plan.pods} if self.plan else {}
        dataplane = build_topology(plan, render_lab_rules(plan, state), listeners)
        for key, p in old.items():
            if key not in {q.key for q in plan.pods} or plan.pod(p.namespace, p.name) != p:
                self.packets.netns.pop(p.netns, None)
        self.state, self.plan, self.dataplane = state, plan, dataplane

    # --- reading ----------------------------------------------------------

    def pods(self) -> list:
        return list(self._state().pods)

    def services(self) -> list:
        return list(self._state().services)

    def rules(self, node: str, table: str = "nat") -> str:
        ns = self.dataplane.ns(self._node(node).netns)
        return render_table(ns.rules.ruleset.render(), table) if ns.rules else ""

    def conntrack(self, node: str) -> list[ConntrackEntry]:
        ct = self.packets.of(self._node(node).netns).conntrack
        ct.expire(self.now)
        return [conntrack_entry(e, self.now) for e in ct.entries.values()]

    # --- sources and pins ---------------------------------------------------

    def endpoint(self, source: str) -> Endpoint:
        """Resolve "namespace/pod", a node name ("kind-worker" or "worker"), "outside" or "internet"."""
        plan = self._plan()
        if source in ("outside", "internet"):
            h = plan.outside if source == "outside" else plan.internet
            return Endpoint(source, h.netns, h.ip, "")
        if "/" in source:
            ns, name = source.split("/", 1)
            for p in plan.pods:
                if p.namespace == ns and p.name == name:
                    return Endpoint(p.key, p.netns, p.ip, p.node)
            raise LabkitError(f"no pod {source} in lab {self.lab} (pods: "
                              + ", ".join(p.key for p in plan.pods) + ")")
        n = self._node(source)
        return Endpoint(n.name, n.netns, n.ip, n.name)

    def pin(self, pod: Optional[str]) -> None:
        """Make every later probe reach `pod` ("namespace/name" or its address) where
        the rules give it a chance; None goes back to the seeded coins."""
        self.pinned = self._pod_key(pod) if pod else ""

    def _pod_key(self, pod: str) -> str:
        plan = self._plan()
        for p in plan.pods:
            if pod in (p.key, p.ip):
                return p.key
        raise LabkitError(f"cannot pin {pod!r}: no such pod in lab {self.lab} (pods: "
                          + ", ".join(p.key for p in plan.pods) + ")")

    def _node(self, name: str):
        plan = self._plan()
        for n in plan.nodes:
            if name in (n.name, n.netns[len(plan.prefix) + 1:]):
                return n
        raise LabkitError(f"no node {name!r} in lab {self.lab} (nodes: "
                          + ", ".join(n.name for n in plan.nodes) + ")")

    def _owner_pod(self, netns: str) -> str:
        for p in self._plan().pods:
            if p.netns == netns:
                return p.key
        return ""

    def _nat_node(self, src: Endpoint, dst: str) -> str:
        if src.node:
            return src.node
        for n in self._plan().nodes:
            if n.ip == dst:
                return n.name
        return ""

    # --- probes -----------------------------------------------------------

    def probe(self, source: str, destination: str, protocol: str = "tcp", count: int = 1,
              timeout: float = 1.0, *, pin: Optional[str] = None,
              sport: Optional[int] = None) -> list[ProbeResult]:
        """TCP SYNs (the client's kernel answers a SYN-ACK with RST, as with scapy) or UDP."""
        src = self.endpoint(source)
        host, port = parse_destination(destination)
        if protocol not in ("tcp", "udp"):
            raise LabkitError(f"--protocol must be tcp or udp, not {protocol!r}")
        results = []
        for _ in range(count):
            if protocol == "udp":
                results.append(self._udp(src, destination, host, port, "hostname", pin, sport))
                continue
            x = self._tcp(src, host, port, pin, sport, "syn")
            answered_by = self._owner_pod(x.server_ns) if x.verdict == ANSWERED else ""
            if x.verdict == ANSWERED and not answered_by:
                answered_by = self._plan().owner_of(host)
            results.append(ProbeResult(src.label, destination, "tcp", x.verdict, answered_by=answered_by,
                                       reply_from=x.reply_from,
                                       client_seen_as=x.seen_as if x.verdict == ANSWERED else "",
                                       client_address=f"{src.ip}:{x.sport}", kind="syn", detail=x.detail))
        return results

    def http(self, source: str, destination: str, path: str = "/hostname", timeout: float = 2.0, *,
             pin: Optional[str] = None, sport: Optional[int] = None) -> ProbeResult:
        """One TCP connection: handshake, GET `path` (then /hostname, /clientip), close."""
        src = self.endpoint(source)
        host, port = parse_destination(destination)
        x = self._tcp(src, host, port, pin, sport, "http")
        local = f"{src.ip}:{x.sport}"
        if x.verdict != ANSWERED:
            verdict = NO_REPLY if x.verdict == NO_REPLY else REFUSED
            error = "timeout" if verdict == NO_REPLY else "refused"
            return ProbeResult(src.label, destination, "tcp", verdict, client_address="", kind="http",
                               detail=error)
        pod = self._owner_pod(x.server_ns)
        hostname = pod.split("/", 1)[1] if pod else ""
        status, body = answer_http(path, hostname, x.seen_as)
        return ProbeResult(src.label, destination, "tcp", ANSWERED, answered_by=pod, reply_from=x.reply_from,
                           client_seen_as=x.seen_as, client_address=local, kind="http", status=status,
                           body=body)

    def trace(self, source: str, destination: str, protocol: str = "tcp", timeout: float = 1.0, *,
              pin: Optional[str] = None, sport: Optional[int] = None) -> Trace:
        """One TCP SYN (and its answers, as a probe) with the first node's chains recorded."""
        if protocol != "tcp":
            raise LabkitError("the trace sends a TCP SYN; --protocol udp is not traced yet")
        src = self.endpoint(source)
        host, port = parse_destination(destination)
        node = self._nat_node(src, host)
        if not node:
            raise LabkitError(f"{destination} is not a node of the lab, so no node's chains see a packet "
                              f"from {source} to it")
        x = self._tcp(src, host, port, pin, sport, "syn")
        steps = trace_steps(x.walk.trace, self._plan().node(node).netns) if x.walk else ()
        return Trace(src.label, destination, "tcp", steps, x.verdict)

    def reachable_pods(self, source: str, destination: str, protocol: str = "tcp") -> list[str]:
        """Every pod that can answer a first packet from `source` to `destination`, whatever
        the coins decide (the lab's state is left unchanged)."""
        src = self.endpoint(source)
        host, port = parse_destination(destination)
        packet = Packet(protocol, src.ip, host, EPHEMERAL_PORTS[0], port,
                        flags="SYN" if protocol == "tcp" else "")
        walks = walk_all_branches(self.dataplane, self.packets, src.netns, packet, now=self.now,
                                  seed=self.seed)
        return sorted({self._owner_pod(w.ns) for w in walks if w.verdict == "delivered"} - {""})

    # --- the exchanges ------------------------------------------------------

    def _walk(self, ns: str, packet: Packet, pin: str = "", strict: bool = True) -> Walk:
        """Walk one packet; with `pin`, along the coins that deliver it to that pod.

        strict=False (the lab-wide pin): a packet that cannot reach the pod
        at all (to another Service, pod to pod) flips its coins as usual."""
        dp = self.dataplane
        if pin:
            target = self._plan().pod(*pin.split("/", 1)).netns
            for w in walk_all_branches(dp, self.packets, ns, packet, now=self.now, seed=self.seed):
                if w.verdict in ("delivered", "refused") and w.ns == target:
                    chooser = BranchChooser(w.decisions, default=False)
                    return walk_packet(dp, self.packets, ns, packet, now=self.now, rng=self.rng,
                                       chooser=chooser)
            if not strict:
                return self._walk(ns, packet)
            raise LabkitError(f"no path of this packet ({packet.summary()}) reaches pod {pin}: the rules "
                              "never send it there (fix: pin one of the Service's ready endpoints)")
        return walk_packet(dp, self.packets, ns, packet, now=self.now, rng=self.rng,
                           chooser=RandomChooser(self.rng))

    def _back(self, ns: str, packet: Packet) -> Walk:
        return walk_packet(self.dataplane, self.packets, ns, packet, now=self.now, rng=self.rng,
                           chooser=RandomChooser(self.rng))

    def _client_port(self, sport: Optional[int]) -> int:
        return sport if sport else self.rng.randrange(*EPHEMERAL_PORTS)

    def _tcp(self, src: Endpoint, host: str, port: int, pin: Optional[str], sport: Optional[int],
             kind: str) -> _Exchange:
        """A SYN and what follows it: for "syn" the client's RST (no socket holds the port),
        for "http" the rest of a short connection, closed by the client."""
        self._require()
        self.now += PROBE_TICK
        pin_key = self._pod_key(pin) if pin else self.pinned
        sport = self._client_port(sport)
        syn = Packet("tcp", src.ip, host, sport, port, flags="SYN")
        w = self._walk(src.netns, syn, pin_key, strict=bool(pin))
        if w.verdict == "delivered":
            seen = w.packet
            server = w.ns
            back = self._back(server, Packet("tcp", seen.dst, seen.src, seen.dport, seen.sport, flags="SYN,ACK"))
            if not _arrived(back, src.netns):
                return _Exchange(NO_REPLY, server, sport=sport, walk=w,
                                 detail=f"the SYN-ACK did not come back ({back.verdict}: {back.reason})")
            answer = back.packet
            reply_from = f"{answer.src}:{answer.sport}"
            seen_as = f"{seen.src}:{seen.sport}"
            fwd = Packet("tcp", src.ip, answer.src, sport, answer.sport, flags="RST" if kind == "syn" else "ACK")
            rev = Packet("tcp", seen.dst, seen.src, seen.dport, seen.sport, flags="ACK")
            if kind == "syn":
                self._back(src.netns, fwd)
            else:
                self._back(src.netns, fwd)  # the handshake's last ACK, then the request
                self._back(server, rev)  # the responses
                self._back(src.netns, fwd.replace(flags="FIN,ACK"))
                self._back(server, rev.replace(flags="FIN,ACK"))
                self._back(src.netns, fwd)
            return _Exchange(ANSWERED, server, seen_as, reply_from, sport, w, "TCP flags SA")
        if w.verdict == "refused":
            seen = w.packet
            back = self._back(w.ns, Packet("tcp", seen.dst, seen.src, seen.dport, seen.sport, flags="RST,ACK"))
            reply_from = f"{back.packet.src}:{back.packet.sport}" if _arrived(back, src.netns) else ""
            return _Exchange(REFUSED, w.ns, sport=sport, reply_from=reply_from, walk=w, detail="TCP flags RA")
        if w.verdict == "rejected":
            return self._rejected(src, w, sport)
        return _Exchange(NO_REPLY, sport=sport, walk=w, detail=f"{w.verdict}: {w.reason}" if w.reason else w.verdict)

    def _rejected(self, src: Endpoint, w: Walk, sport: int) -> _Exchange:
        """A REJECT: an ICMP error (or a TCP reset) from the namespace whose rule rejected."""
        with_ = ""
        for ev in reversed(w.trace):
            if ev.ns == w.ns and ev.verdict == "REJECT" and ev.rule is not None:
                with_ = getattr(ev.rule.target, "with_", "")
                break
        # the error leaves from the address the namespace would use toward the client
        origin = self.dataplane.ns(w.ns).route(w.original.src if w.original else src.ip).src
        if with_ == "tcp-reset":
            return _Exchange(REFUSED, sport=sport, reply_from=f"{w.packet.dst}:{w.packet.dport}", walk=w,
                             detail="TCP flags RA")
        code = {"icmp-net-unreachable": 0, "icmp-host-unreachable": 1, "icmp-port-unreachable": 3,
                "icmp-proto-unreachable": 2, "icmp-net-prohibited": 9, "icmp-host-prohibited": 10,
                "icmp-admin-prohibited": 13}.get(with_ or "icmp-port-unreachable", 3)
        return _Exchange(UNREACHABLE, sport=sport, reply_from=origin, walk=w,
                         detail=f"ICMP destination unreachable (code {code})")

    def _udp(self, src: Endpoint, destination: str, host: str, port: int, message: str,
             pin: Optional[str], sport: Optional[int]) -> ProbeResult:
        """`message`, then "hostname" and "clientip", from one socket (one conntrack entry)."""
        self._require()
        self.now += PROBE_TICK
        pin_key = self._pod_key(pin) if pin else self.pinned
        sport = self._client_port(sport)
        local = f"{src.ip}:{sport}"
        replies: list[tuple[str, str, str]] = []
        answered_by = ""
        for i, m in enumerate(dict.fromkeys([message, "hostname", "clientip"])):
            w = self._walk(src.netns, Packet("udp", src.ip, host, sport, port), pin_key if i == 0 else "",
                           strict=bool(pin))
            if w.verdict in ("refused", "rejected"):
                if not replies:
                    return ProbeResult(src.label, destination, "udp", REFUSED, client_address=local,
                                       kind="udp", detail="refused")
                break
            if w.verdict != "delivered":
                if not replies:
                    return ProbeResult(src.label, destination, "udp", NO_REPLY, client_address=local,
                                       kind="udp", detail="timeout")
                break
            seen = w.packet
            pod = self._owner_pod(w.ns)
            answered_by = pod
            text = answer_udp(m, pod.split("/", 1)[1] if pod else "", f"{seen.src}:{seen.sport}")
            if text is None:
                break
            back = self._back(w.ns, Packet("udp", seen.dst, seen.src, seen.dport, seen.sport))
            if not _arrived(back, src.netns):
                break
            replies.append((m, text, f"{back.packet.src}:{back.packet.sport}"))
        if not replies:
            return ProbeResult(src.label, destination, "udp", NO_REPLY, client_address=local, kind="udp",
                               detail="timeout")
        got = {m: text for m, text, _ in replies}
        return ProbeResult(src.label, destination, "udp", ANSWERED, answered_by=answered_by,
                           reply_from=replies[0][2], client_seen_as=got.get("clientip", ""),
                           client_address=local, kind="udp", body=got.get(message, ""))

    # --- internals ----------------------------------------------------------

    def _require(self) -> None:
        if not self._up:
            raise LabNotFound(f"lab {self.lab!r} is not up (fix: call up() first)")

    def _state(self) -> ClusterState:
        self._require()
        assert self.state is not None
        return self.state

    def _plan(self) -> LabPlan:
        self._require()
        assert self.plan is not None
        return self.plan


def _arrived(w: Walk, ns: str) -> bool:
    """A reply reached the client's namespace (its port is a client's, not a listener's)."""
    return w.verdict in ("delivered", "refused") and w.ns == ns


def _ref(o) -> str:
    return f"{o.kind} {o.meta.namespace}/{o.meta.name}" if o.meta.namespace else f"{o.kind} {o.meta.name}"


def replay_lab(lab: str, operations: Sequence[dict], seed: int = 0, kind_config: str = "") -> SimLab:
    """A sim lab in the state a recorded list of operations leaves (as `labkit apply` continues one)."""
    sim = SimLab(lab, kind_config, seed)
    sim.up()
    state = ops.replay(operations, sim.settings, seed, sim.topology.node_names)
    sim.operations = list(operations)
    sim._sync(state)
    return sim
