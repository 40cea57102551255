"""The kernel lab: a LabPlan made real with `ip`, kube-proxy's rules, and a server per pod.

Needs root (the rootless path through `unshare -Urnm` is not built yet).
The sequence of `up`, and of every re-sync after apply/delete/scale:
  1. the registry notes the namespaces about to exist (before they do);
  2. one `ip -batch -` adds the namespaces; `ip -n NS -batch -` per namespace,
     in phases (net -> nodes and hosts -> pods), makes links, addresses, routes;
  3. sysctls are written from a thread inside each namespace;
  4. one `iptables-restore` per node (kube-proxy's rules + kindnet's masquerade);
  5. the new pods' servers start; their PIDs are recorded.
Anything failing during `up` removes what was made, then re-raises.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Optional

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
from labkit.backends.netns import cleanup, commands, registry as reg, servers
from labkit.backends.netns.conntrack_text import parse_conntrack
from labkit.backends.netns.probes import http_probe, syn_probe, udp_probe
from labkit.backends.netns.rules import render_lab_rules
from labkit.backends.netns.runner import Runner, write_sysctls
from labkit.controllers.cluster import ClusterSettings, ClusterState
from labkit.errors import LabkitError
from labkit.tools import missing_requirements
from labkit.topology.kind_config import ClusterTopology, default_topology, parse_kind_config_text
from labkit.topology.plan import DEFAULT_LAB_NAME, LabPlan, build_plan, check_lab_name, placements_from_pods
from labkit.workloads.netexec import pod_server_ports

REQUIRED_TOOLS = ("ip", "iptables-restore", "iptables-save")


@dataclass(frozen=True)
class Endpoint:
    """A probe's source: the namespace to send from, and its address."""

    label: str
    netns: str
    ip: str
    node: str  # the node whose conntrack sees the connection first ("" outside the cluster)


def check_can_run() -> None:
    """LabkitError saying what is missing for the netns backend on this machine."""
    missing = missing_requirements(root=True, tools=REQUIRED_TOOLS)
    if missing:
        raise LabkitError("the netns backend cannot run here:\n" + "\n".join(f"  - {m.reason}" for m in missing))


def _guard(plan: LabPlan, namespaces) -> None:
    """Refuse to touch any namespace that is not the lab's own (never the host's)."""
    bad = sorted({n for n in namespaces if not n.startswith(plan.prefix + "-")})
    if bad:
        raise LabkitError(f"refusing to configure namespaces outside lab {plan.lab}: {', '.join(bad)} (a labkit bug)")


class NetnsLab(Backend):
    name = "netns"

    def __init__(self, lab: str = DEFAULT_LAB_NAME, kind_config: str = "", seed: int = 0,
                 runner: Optional[Runner] = None, root: str = reg.STATE_ROOT):
        check_lab_name(lab)
        self.lab = lab
        self.kind_config = kind_config
        self.topology: ClusterTopology = (
            parse_kind_config_text(kind_config) if kind_config else default_topology()
        )
        self.seed = seed
        self.runner = runner or Runner()
        self.root = root
        self.registry: Optional[reg.Registry] = None
        self.state: Optional[ClusterState] = None
        self.plan: Optional[LabPlan] = None
        self._rng = random.Random(f"{seed}:probes")

    # --- life cycle -------------------------------------------------------

    @property
    def settings(self) -> ClusterSettings:
        return ClusterSettings(pod_cidr=self.topology.pod_subnet, service_cidr=self.topology.service_subnet)

    def up(self, manifests: str = "", source: str = "") -> None:
        check_can_run()
        if reg.load_registry(self.lab, self.root) or os.path.isdir(os.path.join(self.root, self.lab)):
            raise LabkitError(f"lab {self.lab!r} already exists (fix: `labkit down --name {self.lab}` first, "
                              "or pick another --name)")
        self.registry = reg.new_registry(self.lab, f"lk{self.lab}", self.root,
                                         kind_config=self.kind_config, seed=self.seed)
        self.registry.save()
        try:
            state = ops.settle([], self.settings, self.seed, 0, self.topology.node_names)
            operations = []
            if manifests:
                operations.append({"op": "apply", "text": manifests, "source": source or "<manifest>"})
                state = ops.replay(operations, self.settings, self.seed, self.topology.node_names)
            self._sync(state, first=True)
            self.registry.operations = operations
            self.registry.phase = "up"
            self.registry.save()
        except BaseException:
            cleanup.down_lab(self.lab, self.runner, self.root)
            raise

    @classmethod
    def attach(cls, lab: str, runner: Optional[Runner] = None, root: str = reg.STATE_ROOT) -> "NetnsLab":
        """The lab `lab` made earlier (by this process or another), rebuilt from its registry."""
        registry = reg.load_registry(lab, root)
        if registry is None or registry.phase != "up":
            raise LabNotFound(f"no lab named {lab!r} is up (fix: `labkit up --name {lab}`; "
                              "`labkit status` lists the labs)")
        self = cls(lab, registry.kind_config, registry.seed, runner, root)
        self.registry = registry
        self.state = ops.replay(registry.operations, self.settings, self.seed, self.topology.node_names)
        self.plan = self._plan_for(self.state)
        return self

    def down(self) -> None:
        cleanup.down_lab(self.lab, self.runner, self.root)
        self.registry = None

    # --- changes ------------------------------------------------------------

    def _step(self) -> int:
        return len(self._require().operations) + 1

    def apply(self, manifests: str, source: str = "") -> list[str]:
        from labkit.model.load import load_manifests

        objs = load_manifests(manifests, source or "<manifest>")
        state = ops.apply_objects(self._state(), objs, self.seed, self._step(), self.topology.node_names)
        self._record({"op": "apply", "text": manifests, "source": source or "<manifest>"}, state)
        return [f"{o.kind} {o.meta.namespace}/{o.meta.name}" if o.meta.namespace else f"{o.kind} {o.meta.name}"
                for o in objs]

    def delete(self, manifests: str, source: str = "") -> list[str]:
        from labkit.model.load import load_manifests

        objs = load_manifests(manifests, source or "<manifest>")
        state = ops.delete_objects(self._state(), objs, self.seed, self._step(), self.topology.node_names)
        self._record({"op": "delete", "text": manifests, "source": source or "<manifest>"}, state)
        return [f"{o.kind} {o.meta.namespace}/{o.meta.name}" for o in objs]

    def scale(self, deployment: str, replicas: int, namespace: str = "default") -> None:
        name = deployment.split("/", 1)[1] if deployment.startswith("deployment/") else deployment
        state = ops.scale_deployment(self._state(), namespace, name, replicas, self.seed, self._step(),
                                     self.topology.node_names)
        self._record({"op": "scale", "namespace": namespace, "name": name, "replicas": replicas}, state)

    def _record(self, op: dict, state: ClusterState) -> None:
        registry = self._require()
        self._sync(state)
        registry.operations.append(op)
        registry.save()

    # --- reading ----------------------------------------------------------

    def pods(self) -> list:
        return list(self._state().pods)

    def services(self) -> list:
        return list(self._state().services)

    def rules(self, node: str, table: str = "nat") -> str:
        ns = self._node(node).netns
        return self.runner.run(["ip", "netns", "exec", ns, "iptables-save", "-t", table]).stdout

    def conntrack(self, node: str) -> list[ConntrackEntry]:
        ns = self._node(node).netns
        out = self.runner.run(["ip", "netns", "exec", ns, "conntrack", "-L"], check=False)
        if out.returncode != 0 and "0 flow entries" not in out.stderr:
            raise LabkitError(f"conntrack -L failed in {ns}: {out.stderr.strip()}")
        return parse_conntrack(out.stdout)

    # --- probes -----------------------------------------------------------

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

    def _node(self, name: str):
        plan = self._plan()
        for n in plan.nodes:
            if name in (n.name, n.netns[len(plan.prefix) + 1:]):
                return n
        raise LabkitError(f"no node {name!r} in lab {self.lab} (nodes: " + ", ".join(n.name for n in plan.nodes) + ")")

    def _pod_by_hostname(self, hostname: str) -> str:
        keys = [p.key for p in self._plan().pods if p.name == hostname]
        return keys[0] if len(keys) == 1 else ""

    def _nat_node(self, src: Endpoint, dst: str) -> str:
        if src.node:
            return src.node
        for n in self._plan().nodes:
            if n.ip == dst:
                return n.name
        return ""

    def probe(self, source: str, destination: str, protocol: str = "tcp", count: int = 1,
              timeout: float = 1.0) -> list[ProbeResult]:
        src = self.endpoint(source)
        host, port = parse_destination(destination)
        results = []
        for _ in range(count):
            sport = self._rng.randrange(32768, 61000)
            if protocol == "udp":
                u = udp_probe(src.netns, host, port, "hostname", timeout, sport)
                verdict = ANSWERED if u.ok else REFUSED if u.error == "refused" else NO_REPLY
                results.append(ProbeResult(src.label, destination, "udp", verdict,
                                           answered_by=self._pod_by_hostname(u.hostname),
                                           reply_from=u.reply_from, client_seen_as=u.client_seen_as,
                                           client_address=u.local, kind="udp", body=u.body,
                                           detail=u.error))
                continue
            if protocol != "tcp":
                raise LabkitError(f"--protocol must be tcp or udp, not {protocol!r}")
            o = syn_probe(src.netns, src.ip, host, port, sport, timeout)
            verdict = {"syn-ack": ANSWERED, "rst": REFUSED, "icmp": UNREACHABLE}.get(o.answer, NO_REPLY)
            answered_by, seen_as = "", ""
            if verdict == ANSWERED:
                answered_by, seen_as = self._who_answered(src, host, port, sport)
            results.append(ProbeResult(src.label, destination, "tcp", verdict, answered_by=answered_by,
                                       reply_from=o.reply_from, client_seen_as=seen_as,
                                       client_address=f"{src.ip}:{sport}", kind="syn", detail=o.detail))
        return results

    def _who_answered(self, src: Endpoint, host: str, port: int, sport: int) -> tuple[str, str]:
        """(pod, "address:port" the pod saw) from the conntrack entry of this connection."""
        node = self._nat_node(src, host)
        plan = self._plan()
        if node:
            try:
                for e in self.conntrack(node):
                    if e.proto == "tcp" and e.orig.sport == sport and e.orig.dst == host and e.orig.dport == port:
                        owner = plan.owner_of(e.reply.src)
                        return (owner[4:] if owner.startswith("pod ") else owner,
                                f"{e.reply.dst}:{e.reply.dport}")
            except LabkitError:
                pass
        owner = plan.owner_of(host)
        return (owner[4:] if owner.startswith("pod ") else owner), ""

    def http(self, source: str, destination: str, path: str = "/hostname", timeout: float = 2.0) -> ProbeResult:
        src = self.endpoint(source)
        host, port = parse_destination(destination)
        o = http_probe(src.netns, host, port, path, timeout)
        if o.ok:
            verdict = ANSWERED
        else:
            verdict = {"refused": REFUSED, "timeout": NO_REPLY}.get(o.error, UNREACHABLE)
        return ProbeResult(src.label, destination, "tcp", verdict,
                           answered_by=self._pod_by_hostname(o.hostname), reply_from=o.peer,
                           client_seen_as=o.client_seen_as, client_address=o.local, kind="http",
                           status=o.status, body=o.body, detail=o.error)

    def trace(self, source: str, destination: str, protocol: str = "tcp", timeout: float = 1.0) -> Trace:
        """One TCP SYN traced by the kernel through the first node's chains (TRACE + xtables-monitor)."""
        import subprocess
        import time

        from labkit.backends.netns.trace_text import parse_xtables_trace, rule_positions
        from labkit.tools import require_tool

        if protocol != "tcp":
            raise LabkitError("the kernel trace sends a TCP SYN; --protocol udp is not traced yet")
        src = self.endpoint(source)
        host, port = parse_destination(destination)
        node_name = self._nat_node(src, host)
        if not node_name:
            raise LabkitError(f"{destination} is not a node of the lab, so no node's chains see a packet "
                              f"from {source} to it")
        ns = self._plan().node(node_name).netns
        sport = self._rng.randrange(32768, 61000)
        hook = "OUTPUT" if src.netns == ns else "PREROUTING"
        match = ["-s", src.ip, "-p", "tcp", "--sport", str(sport), "-j", "TRACE"]
        monitor = subprocess.Popen(["ip", "netns", "exec", ns, require_tool("xtables-monitor"), "--trace"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            self.runner.run(["ip", "netns", "exec", ns, "iptables", "-t", "raw", "-I", hook, "1"] + match)
            time.sleep(0.1)  # xtables-monitor subscribes to the trace events
            o = syn_probe(src.netns, src.ip, host, port, sport, timeout)
            time.sleep(0.1)
        finally:
            self.runner.run(["ip", "netns", "exec", ns, "iptables", "-t", "raw", "-D", hook] + match, check=False)
            monitor.terminate()
            out = monitor.communicate(timeout=5)[0]
        save = self.runner.run(["ip", "netns", "exec", ns, "iptables-save"]).stdout
        positions = {t: rule_positions(save, t) for t in ("raw", "mangle", "nat", "filter")}
        verdict = {"syn-ack": ANSWERED, "rst": REFUSED, "icmp": UNREACHABLE}.get(o.answer, NO_REPLY)
        return Trace(src.label, destination, "tcp", tuple(parse_xtables_trace(out, positions)), verdict)

    # --- internals ----------------------------------------------------------

    def _require(self) -> reg.Registry:
        if self.registry is None:
            raise LabNotFound(f"lab {self.lab!r} is not up (fix: call up() or NetnsLab.attach({self.lab!r}))")
        return self.registry

    def _state(self) -> ClusterState:
        self._require()
        assert self.state is not None
        return self.state

    def _plan(self) -> LabPlan:
        self._require()
        assert self.plan is not None
        return self.plan

    def _plan_for(self, state: ClusterState) -> LabPlan:
        cidrs = {n.meta.name: n.pod_cidr for n in state.nodes if n.pod_cidr}
        return build_plan(self.lab, self.topology, placements_from_pods(state.pods), cidrs)

    def _sync(self, state: ClusterState, first: bool = False) -> None:
        """Make the kernel match `state`: pods added/removed, every node's rules reloaded."""
        registry = self._require()
        new_plan = self._plan_for(state)
        old_plan = None if first else self.plan
        old_pods = {p.key: p for p in old_plan.pods} if old_plan else {}
        new_pods = {p.key: p for p in new_plan.pods}
        gone = [p for k, p in old_pods.items() if k not in new_pods or new_pods[k] != p]
        if gone:
            self._remove_pods(gone)
        if first:
            fresh = set(new_plan.netns_names())
        else:
            fresh = {p.netns for k, p in new_pods.items() if k not in old_pods or old_pods[k] != p}
        phases = commands.render_batches(new_plan, fresh) if fresh else []
        _guard(new_plan, list(fresh) + [b.netns for phase in phases for b in phase])
        if fresh:
            ordered = [n for n in new_plan.netns_names() if n in fresh]
            registry.record_namespaces(ordered)
            self.runner.run(["ip", "-batch", "-"], stdin=commands.render_netns_add(ordered))
            for phase in phases:
                self.runner.run_all([(["ip", "-n", b.netns, "-batch", "-"], b.text) for b in phase])
            for ns in new_plan.namespaces:
                if ns.name in fresh and ns.sysctls:
                    write_sysctls(ns.name, ns.sysctls)
        texts = render_lab_rules(new_plan, state)
        _guard(new_plan, texts)
        self.runner.run_all([(["ip", "netns", "exec", ns, "iptables-restore"], text)
                             for ns, text in texts.items()])
        model_pods = {f"{p.meta.namespace}/{p.meta.name}": p for p in state.pods}
        specs = []
        for key, p in new_pods.items():
            if p.netns in fresh:
                tcp, udp = pod_server_ports(model_pods[key])
                specs.append(servers.ServerSpec(key, p.name, p.netns, tcp, udp))
        self.state, self.plan = state, new_plan
        if specs:
            servers.start_servers(self.lab, specs, registry)

    def _remove_pods(self, pods) -> None:
        registry = self._require()
        names = [p.netns for p in pods]
        pids = cleanup.lab_processes(self.lab, names, by_cmdline=False)
        cleanup.kill_and_wait(pids)
        self.runner.run(["ip", "-force", "-batch", "-"], stdin=commands.render_netns_del(names), check=False)
        registry.forget_namespaces(names)
