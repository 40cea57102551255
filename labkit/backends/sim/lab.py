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
from dataclasses import dataclass, replace
from typing import Optional, Sequence

from labkit.backends import operations as ops
from labkit.backends.lab_common import Endpoint, PlannedLab
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
    check_sport,
    parse_destination,
)
from labkit.backends.netns.rules import render_lab_rules
from labkit.backends.sim.results import conntrack_entry, render_table, trace_steps
from labkit.backends.sim.topology import build_topology
from labkit.controllers.cluster import ClusterSettings, ClusterState
from labkit.dataplane.packet import Packet
from labkit.dataplane.topology import LabState, Topology
from labkit.dataplane.walk import BranchChooser, RandomChooser, Walk, walk_all_branches, walk_packet
from labkit.controllers.loadbalancer import with_load_balancer_status
from labkit.errors import LabkitError
from labkit.topology.masquerade import MasqueradeSettings
from labkit.topology.outside import (  # noqa: F401 (trace_namespaces: the trace's hops)
    INTERNET_HOSTNAME,
    INTERNET_HTTP_PORT,
    INTERNET_UDP_PORT,
    KUBE_DNS_MANIFEST,
    LabNetworkSettings,
    check_cidrs,
    health_servers,
    needs_cloud,
    require_cluster_dns,
    trace_namespaces,
)
from labkit.topology.kind_config import ClusterTopology, default_topology, parse_kind_config_text
from labkit.topology.plan import DEFAULT_LAB_NAME, LabPlan, build_plan, check_lab_name, placements_from_pods
from labkit.workloads.netexec import answer_http, answer_udp, pod_server_ports, render_go_time

EPHEMERAL_PORTS = (32768, 61000)  # net.ipv4.ip_local_port_range's default (end exclusive)
PROBE_TICK = 1.0  # seconds the lab's clock moves per probe
# the wall clock the pods' servers read at lab time 0 (2026-01-01 00:00:00 UTC): a fixed date,
# so "NOW: ..." answers, like everything else here, are the same on every run
WALL_CLOCK_EPOCH_NS = 1767225600 * 10**9


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


class SimLab(PlannedLab, Backend):
    name = "sim"
    # kube-proxy's UDP conntrack cleanup after each sync (labkit.controllers.kube_proxy.conntrack_cleanup);
    # False plays a kube-proxy that cannot delete entries (as one without the conntrack tool once could
    # not), so a stale UDP entry outlives its endpoint until it expires
    conntrack_cleanup = True

    def __init__(self, lab: str = DEFAULT_LAB_NAME, kind_config: str = "", seed: int = 0,
                 network: Optional[LabNetworkSettings] = None):
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
        self.started: dict[str, float] = {}  # netns -> the lab time its server started
        self.network = network or LabNetworkSettings()
        self._health: dict = {}  # node netns -> HealthServer
        self._up = False
        self._init_ingress()

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
        self._init_ingress()

    # --- changes ------------------------------------------------------------

    def _step(self) -> int:
        self._require()
        return len(self.operations) + 1

    def _record(self, op: dict, state: ClusterState) -> None:
        self._sync(state)
        self.operations.append(op)

    def _sync(self, state: ClusterState) -> None:
        """Re-plan, re-render every namespace's rules and reload them, as the netns lab re-syncs.

        Conntrack survives (the kernel keeps it across iptables-restore); the
        namespaces of pods that are gone take their state with them.
        """
        state = with_load_balancer_status(state)
        if not self.network.cloud and needs_cloud(state):
            self.network = replace(self.network, cloud=True)
        cidrs = {n.meta.name: n.pod_cidr for n in state.nodes if n.pod_cidr}
        plan = build_plan(self.lab, self.topology, placements_from_pods(state.pods), cidrs,
                          cloud=self.network.cloud)
        model = {f"{p.meta.namespace}/{p.meta.name}": p for p in state.pods}
        listeners = {}
        for p in plan.pods:
            tcp, udp = pod_server_ports(model[p.key])
            listeners[p.netns] = {("tcp", n) for n in tcp} | {("udp", n) for n in udp}
        if plan.cloud is not None:  # the internet host's netexec
            listeners[plan.internet.netns] = {("tcp", INTERNET_HTTP_PORT), ("udp", INTERNET_UDP_PORT)}
        self._health = {h.netns: h for h in health_servers(plan, state)}
        for h in self._health.values():
            listeners[h.netns] = {("tcp", port) for port, _, _ in h.answers}
        old = {p.key: p for p in self.plan.pods} if self.plan else {}
        dataplane = build_topology(plan, render_lab_rules(plan, state, self.network.masquerade), listeners)
        for key, p in old.items():
            if key not in {q.key for q in plan.pods} or plan.pod(p.namespace, p.name) != p:
                self.packets.netns.pop(p.netns, None)
        before = self.state
        servers = {p.netns for p in plan.pods} | ({plan.internet.netns} if plan.cloud is not None else set())
        fresh = {p.netns for p in plan.pods if old.get(p.key) != p}
        self.started = {ns: self.now if ns in fresh else self.started.get(ns, self.now) for ns in servers}
        self.state, self.plan, self.dataplane = state, plan, dataplane
        self._clean_conntrack(before, state)
        self._sync_ingress(state)

    def _clean_conntrack(self, before: Optional[ClusterState], after: ClusterState) -> None:
        """kube-proxy's UDP conntrack cleanup after the sync, on every node
        (labkit.controllers.kube_proxy.conntrack_cleanup), as the kernel lab does it."""
        from labkit.controllers.kube_proxy.conntrack_cleanup import check_cleanup_required, serving_endpoints, is_stale

        if not self.conntrack_cleanup or not check_cleanup_required(before, after):
            return
        by_ip_port, by_node_port = serving_endpoints(after)
        for n in self.plan.nodes:
            ct = self.packets.of(n.netns).conntrack
            for e in [e for e in ct.entries.values() if e.expires > self.now]:
                if is_stale(conntrack_entry(e, self.now), by_ip_port, by_node_port):
                    ct.remove(e)

    # --- reading ----------------------------------------------------------

    def rules(self, node: str, table: str = "nat") -> str:
        ns = self.dataplane.ns(self._router(node))
        return render_table(ns.rules.ruleset.render(), table) if ns.rules else ""

    def conntrack(self, node: str) -> list[ConntrackEntry]:
        """A node's conntrack table; also "natgw", "lb" (the cloud's) and "net"."""
        ct = self.packets.of(self._router(node)).conntrack
        ct.expire(self.now)
        return [conntrack_entry(e, self.now) for e in ct.entries.values()]

    # --- sources and pins ---------------------------------------------------

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

    def _owner_pod(self, netns: str) -> str:
        for p in self._plan().pods:
            if p.netns == netns:
                return p.key
        return ""

    # --- probes -----------------------------------------------------------

    def probe(self, source: str, destination: str, protocol: str = "tcp", count: int = 1,
              timeout: float = 1.0, *, pin: Optional[str] = None,
              sport: Optional[int] = None) -> list[ProbeResult]:
        """TCP SYNs (the client's kernel answers a SYN-ACK with RST, as with scapy) or UDP."""
        check_sport(sport)
        host, port = parse_destination(destination)
        self._ensure_cloud(source, host)
        src = self.endpoint(source)
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
             pin: Optional[str] = None, sport: Optional[int] = None, host: Optional[str] = None,
             headers: Optional[dict] = None) -> ProbeResult:
        """One TCP connection: handshake, GET `path` (then /hostname, /clientip), close.
        At the ingress controller pod: one GET with `host` and `headers`, answered as nginx does."""
        check_sport(sport)
        request_host = host
        host, port = parse_destination(destination)
        self._ensure_cloud(source, host)
        src = self.endpoint(source)
        x = self._tcp(src, host, port, pin, sport, "http")
        local = f"{src.ip}:{x.sport}"
        if x.verdict == ANSWERED and x.server_ns in self._ingress_netns():
            return self._ingress_http(src, destination, x, path, request_host, headers or {})
        if x.verdict != ANSWERED:
            verdict = NO_REPLY if x.verdict == NO_REPLY else REFUSED
            error = "timeout" if verdict == NO_REPLY else "refused"
            return ProbeResult(src.label, destination, "tcp", verdict, client_address="", kind="http",
                               detail=error)
        pod = self._owner_pod(x.server_ns)
        hostname = pod.split("/", 1)[1] if pod else ""
        health = self._health.get(x.server_ns)
        if not pod and x.server_ns == self._plan().internet.netns:
            pod = INTERNET_HOSTNAME
            status, body = answer_http(path, INTERNET_HOSTNAME, x.seen_as, self.go_now(x.server_ns))
        elif not pod and health is not None and health.answer(port) is not None:
            pod = health.node  # kube-proxy's health check server answers any path (no /clientip)
            status, body = health.answer(port)
            x = replace(x, seen_as="")
        else:
            status, body = answer_http(path, hostname, x.seen_as, self.go_now(x.server_ns))
        return ProbeResult(src.label, destination, "tcp", ANSWERED, answered_by=pod, reply_from=x.reply_from,
                           client_seen_as=x.seen_as, client_address=local, kind="http", status=status,
                           body=body)

    def trace(self, source: str, destination: str, protocol: str = "tcp", timeout: float = 1.0, *,
              pin: Optional[str] = None, sport: Optional[int] = None) -> Trace:
        """One TCP SYN (and its answers, as a probe) with the first node's chains recorded."""
        if protocol != "tcp":
            raise LabkitError("the trace sends a TCP SYN; --protocol udp is not traced yet")
        check_sport(sport)
        host, port = parse_destination(destination)
        self._ensure_cloud(source, host)
        src = self.endpoint(source)
        node = self._nat_node(src, host)
        names = trace_namespaces(self._plan(), node, host)
        if not names:
            raise LabkitError(f"{destination} is not a node of the lab, so no node's chains see a packet "
                              f"from {source} to it")
        x = self._tcp(src, host, port, pin, sport, "syn")
        steps = tuple(replace(step, netns=ns) for ns in names
                      for step in (trace_steps(x.walk.trace, ns) if x.walk else ()))
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

    # --- the world outside the pod network -----------------------------------------

    def enable_cloud(self) -> None:
        """Put the cluster in its cloud: the NAT gateway and the load balancer (kept from now on)."""
        if not self.network.cloud:
            self.network = replace(self.network, cloud=True)
            self._sync(self._state())

    def _ensure_cloud(self, source: str, host: str) -> None:
        if not self.network.cloud and needs_cloud(self._state(), source, host):
            self.enable_cloud()

    def set_masquerade(self, enabled: bool, non_masquerade_cidrs: Optional[Sequence[str]] = None) -> None:
        """Turn the pod network's masquerade (kindnet's KIND-MASQ-AGENT) on or off on every node.

        non_masquerade_cidrs: destinations pods reach with their own address
        (None: kindnet's default, the pod subnet). The cloud comes with it:
        the NAT gateway is what a pod's unmasqueraded packet runs into.
        """
        cidrs = check_cidrs(non_masquerade_cidrs) if non_masquerade_cidrs is not None else None
        self.network = replace(self.network, cloud=True, masquerade=MasqueradeSettings(bool(enabled), cidrs))
        self._sync(self._state())

    def enable_dns(self) -> list[str]:
        """Apply the kube-dns add-on (a Service at 10.96.0.10 and two DNS pods in kube-system)."""
        return self.apply(KUBE_DNS_MANIFEST, "kube-dns add-on")

    def dns(self, from_pod: str, name: str, qtype: str = "A"):
        """Look `name` up from `from_pod` as its resolver does (search list, ndots:5): every query
        a UDP packet to the kube-dns ClusterIP, DNATed to a DNS pod, answered from the cluster's
        records. Returns labkit.dns.resolver.Resolution (the answer and every query sent)."""
        from labkit.controllers.dns import Answer, answer, cluster_dns_records
        from labkit.dns.resolver import KUBE_DNS_IP, pod_resolv_conf, resolve

        state = self._state()
        require_cluster_dns(state)
        src = self.endpoint(from_pod)
        if "/" not in from_pod:
            raise LabkitError(f"dns --from must be a pod (namespace/name), not {from_pod!r}")
        records = cluster_dns_records(state)
        conf = pod_resolv_conf(from_pod.split("/", 1)[0])

        def ask(qname: str, qt: str) -> Answer:
            self.now += PROBE_TICK / 10
            sport = self._client_port(None)
            w = self._walk(src.netns, Packet("udp", src.ip, KUBE_DNS_IP, sport, 53), self.pinned, strict=False)
            if w.verdict != "delivered":
                return Answer(qname, qt, "TIMEOUT")
            got = answer(records, qname, qt)
            seen = w.packet
            back = self._back(w.ns, Packet("udp", seen.dst, seen.src, seen.dport, seen.sport))
            return got if _arrived(back, src.netns) else Answer(qname, qt, "TIMEOUT")

        return resolve(name, qtype, conf, ask)

    def env(self, pod: str) -> dict[str, str]:
        """The Service environment variables `pod` ("namespace/name") has: those of the Services
        that existed when it was created (kubelet's rule)."""
        from labkit.backends.sim.history import creation_order
        from labkit.controllers.envvars import pod_env_vars

        if "/" not in pod:
            raise LabkitError(f"env needs a pod as namespace/name, not {pod!r}")
        ns, name = pod.split("/", 1)
        order = creation_order(self.operations, self.settings, self.seed, self.topology.node_names)
        return pod_env_vars(self._state(), ns, name, order)

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass on the lab's clock (conntrack timeouts, session affinity)."""
        self._require()
        self.now += float(seconds)

    # --- NetworkPolicy (Backend.netpol_matrix / netpol_check) ----------------------------

    def netpol_objects(self) -> list:
        """The lab's Namespaces, Pods and NetworkPolicies, as the evaluator reads them."""
        state = self._state()
        return [*state.namespaces, *state.pods, *state.network_policies]

    def probe_many(self, requests, timeout: float = 0.5) -> list[ProbeResult]:
        """One probe per request (labkit.backends.base.ProbeRequest), in order; each from a client
        port of its own, taken in turn from the ephemeral range, so no probe meets the conntrack
        entry of an earlier one (as the kernel lab does)."""
        out = []
        for r in requests:
            low, high = EPHEMERAL_PORTS
            self._batch_port = getattr(self, "_batch_port", 0) % (high - low)
            sport = low + self._batch_port
            self._batch_port += 1
            if r.protocol == "sctp":
                out.append(self._sctp_init(r.source, r.destination, sport))
                continue
            [result] = self.probe(r.source, r.destination, r.protocol, sport=sport)
            out.append(result)
        return out

    def _sctp_init(self, source: str, destination: str, sport: int) -> ProbeResult:
        """An SCTP INIT, as the kernel lab sends it on a raw socket: the lab's pods have no SCTP
        (nor has this kernel), so one that reaches its pod is answered by ICMP protocol
        unreachable (refused); one the rules drop gets nothing back (no-reply)."""
        host, port = parse_destination(destination)
        src = self.endpoint(source)
        self.now += PROBE_TICK
        w = self._walk(src.netns, Packet("sctp", src.ip, host, sport, port))
        common = dict(client_address=f"{src.ip}:{sport}", kind="sctp-init")
        if w.verdict in ("delivered", "refused"):
            return ProbeResult(src.label, destination, "sctp", REFUSED, reply_from=f"{w.packet.dst}:{port}",
                               detail=f"ICMP protocol unreachable from {w.packet.dst}: the INIT reached the "
                                      "pod, whose kernel has no SCTP", **common)
        if w.verdict == "rejected":
            return ProbeResult(src.label, destination, "sctp", UNREACHABLE, detail="rejected", **common)
        return ProbeResult(src.label, destination, "sctp", NO_REPLY, detail=f"{w.verdict}: {w.reason}", **common)

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

    def go_now(self, netns: str) -> str:
        """time.Now() as the server in `netns` prints it: the lab's wall clock (a fixed date plus
        the lab's time) and, as Go's monotonic reading, the seconds since that server started."""
        nanos = round(self.now * 10**9)
        return render_go_time(WALL_CLOCK_EPOCH_NS + nanos,
                              nanos - round(self.started.get(netns, 0.0) * 10**9))

    def _client_port(self, sport: Optional[int]) -> int:
        return check_sport(sport) or self.rng.randrange(*EPHEMERAL_PORTS)

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
            if not pod and w.ns == self._plan().internet.netns:
                pod = INTERNET_HOSTNAME
            answered_by = pod
            text = answer_udp(m, pod.split("/", 1)[1] if "/" in pod else pod, f"{seen.src}:{seen.sport}")
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

    # --- the ingress controller (labkit.backends.sim.ingress) ----------------------------

    def _init_ingress(self) -> None:
        from labkit.backends.sim.ingress import SimController

        self._ingress = SimController()
        self._ingress_rng = random.Random(f"{self.seed}:ingress")  # request ids, as the kernel lab's

    def _sync_ingress(self, state: ClusterState) -> None:
        from labkit.controllers.ingress.controller import controller_pods

        if controller_pods(state) or self._ingress.conf is not None:
            self._ingress.sync(state)

    def _ingress_netns(self) -> set:
        from labkit.controllers.ingress.controller import is_controller_pod

        keys = {f"{p.meta.namespace}/{p.meta.name}" for p in self._state().pods if is_controller_pod(p)}
        return {p.netns for p in self._plan().pods if p.key in keys}

    def _ingress_http(self, src, destination, x, path, host, headers) -> ProbeResult:
        from labkit.backends.sim.ingress import ingress_http, new_request_id

        rid = next((v for k, v in headers.items() if k.lower() == "x-request-id"), "") or \
            new_request_id(self._ingress_rng)
        return ingress_http(self, src, destination, x, path, host, headers, rid)

    def enable_ingress(self) -> list[str]:
        """Apply the lab's ingress controller (labkit.controllers.ingress.controller): a pod
        answering as nginx does, behind a LoadBalancer Service on port 80."""
        from labkit.controllers.ingress.controller import INGRESS_NGINX_MANIFEST

        return self.apply(INGRESS_NGINX_MANIFEST, "ingress-nginx controller")

    def ingress_conf(self) -> str:
        """The nginx.conf the controller runs (the kernel lab's nginx runs the same text)."""
        self._require()
        if self._ingress.conf is None:
            raise LabkitError("this lab has no ingress controller yet (fix: lab.enable_ingress())")
        return self._ingress.conf.text

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


def replay_lab(lab: str, operations: Sequence[dict], seed: int = 0, kind_config: str = "") -> SimLab:
    """A sim lab in the state a recorded list of operations leaves (as `labkit apply` continues one)."""
    sim = SimLab(lab, kind_config, seed)
    sim.up()
    state = ops.replay(operations, sim.settings, seed, sim.topology.node_names)
    sim.operations = list(operations)
    sim._sync(state)
    return sim
