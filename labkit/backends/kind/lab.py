"""The kind lab: the course on a real cluster made by `kind`, through the same Backend interface.

`up` runs, in order (every command through the runner seam, see commands.py):
  preflight (docker, kind, kubectl, a Docker engine that answers) and the
  manifests validated by labkit's loader, before anything is made;
  `kind get clusters` (a cluster of that name that labkit did not make is
  never touched); the lab's state file, written BEFORE the cluster exists so
  `labkit down` can always finish; `kind create cluster --config -` with the
  same kind config the kernel lab reads; the probe image built (once) and
  `kind load docker-image`d; the probe DaemonSet and the manifests applied
  with `kubectl apply -f -`; `kubectl wait` for the nodes, then polling for
  pods and Deployments with a deadline and a progress line.
Anything failing during `up` deletes the cluster it made, then re-raises.

Reading goes to the nodes: rules and conntrack with `docker exec NODE
iptables-save` / `conntrack -L`, parsed by the same parsers as the kernel
lab; probes run labkit-probe (scapy) in the probe pod on the source's node,
inside the source pod's network namespace.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

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
from labkit.backends.kind import commands as cmd
from labkit.backends.kind.preflight import check_can_run
from labkit.backends.kind.probe_pods import probe_image_tag, render_probe_daemonset
from labkit.backends.kind.runner import CommandRunner, KindCommandError
from labkit.backends.kind.wait import pod_progress, wait_ready
from labkit.backends.netns.conntrack_text import parse_conntrack
from labkit.backends.netns.probes import HttpOutcome, SynOutcome, UdpOutcome
from labkit.errors import LabkitError
from labkit.tools import find_tool
from labkit.topology.kind_config import ClusterTopology, default_topology, parse_kind_config_text
from labkit.topology.plan import DEFAULT_LAB_NAME, check_lab_name

PROBE_DIR = Path(__file__).parent / "probe_image"
PROBE_FILES = ("Dockerfile", "labkit_probe.py")
SUPPORTED_PROXY_MODES = ("iptables", "nftables")
DEFAULT_TIMEOUT = 300.0  # seconds for nodes and pods to become ready (first run pulls images)
EPHEMERAL_PORTS = (32768, 61000)

DEFAULT_KIND_CONFIG = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
- role: worker
"""


def default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "labkit", "kind")


@dataclass
class KindState:
    """What `labkit down` and later commands need to find the lab's cluster: saved as JSON."""

    lab: str
    cluster: str
    kind_config: str = ""
    seed: int = 0
    probe_image: str = ""
    phase: str = "creating"  # "creating", "up"

    @staticmethod
    def path(state_dir: str, lab: str) -> str:
        return os.path.join(state_dir, f"{lab}.json")

    def save(self, state_dir: str) -> None:
        os.makedirs(state_dir, exist_ok=True)
        tmp = self.path(state_dir, self.lab) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(asdict(self), f, indent=1)
        os.replace(tmp, self.path(state_dir, self.lab))

    @classmethod
    def load(cls, state_dir: str, lab: str) -> Optional["KindState"]:
        try:
            with open(cls.path(state_dir, lab)) as f:
                return cls(**json.load(f))
        except FileNotFoundError:
            return None


@dataclass(frozen=True)
class Source:
    """A probe's sender: a pod, a node, or a container outside the cluster on kind's network."""

    label: str
    kind: str  # "pod", "node", "outside"
    ip: str  # "" for outside (the container's address is known only once it runs)
    node: str  # whose conntrack sees the connection first ("" outside)


def render_external_notes(services: Sequence, ingresses: Sequence, have_cloud_provider: bool) -> list[str]:
    """Sentences for objects a bare kind cluster cannot serve: LoadBalancer addresses, Ingress."""
    notes = []
    for s in services:
        if s.type == "LoadBalancer" and not s.load_balancer_ingress:
            where = f"Service {s.meta.namespace}/{s.meta.name}"
            if have_cloud_provider:
                notes.append(f"{where} is type LoadBalancer and has no external address yet: is "
                             "cloud-provider-kind running? (fix: run `cloud-provider-kind` in another terminal)")
            else:
                notes.append(f"{where} is type LoadBalancer but nothing on a kind cluster gives it an external "
                             "address; it still works as a NodePort Service (fix: install and run "
                             "cloud-provider-kind: https://github.com/kubernetes-sigs/cloud-provider-kind)")
    for i in ingresses:
        notes.append(f"Ingress {i.meta.namespace}/{i.meta.name} needs an ingress controller, which kind does not "
                     "install (fix: run cloud-provider-kind v0.7 or later, or install ingress-nginx: "
                     "https://kind.sigs.k8s.io/docs/user/ingress/)")
    return notes


def _ref(o) -> str:
    return f"{o.kind} {o.meta.namespace}/{o.meta.name}" if o.meta.namespace else f"{o.kind} {o.meta.name}"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class KindLab(Backend):
    name = "kind"

    def __init__(self, lab: str = DEFAULT_LAB_NAME, kind_config: str = "", seed: int = 0,
                 runner: Optional[CommandRunner] = None, state_dir: Optional[str] = None, *,
                 timeout: float = DEFAULT_TIMEOUT, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, show: Callable[[str], None] = _stderr,
                 find: Callable[[str], Optional[str]] = find_tool, probe_dir: Path = PROBE_DIR):
        check_lab_name(lab)
        self.lab = lab
        self.kind_config = kind_config
        self.topology: ClusterTopology = (
            parse_kind_config_text(kind_config) if kind_config else default_topology()
        )
        self.cluster = self.topology.name
        self.context = cmd.context(self.cluster)
        self.seed = seed
        self.runner = runner or CommandRunner()
        self.state_dir = state_dir or default_state_dir()
        self.timeout, self.clock, self.sleep, self.show, self.find = timeout, clock, sleep, show, find
        self.probe_dir = Path(probe_dir)
        self.state: Optional[KindState] = None
        self._rng = random.Random(f"{seed}:probes")
        self._node_ips: dict[str, str] = {}

    # --- life cycle -------------------------------------------------------

    def up(self, manifests: str = "", source: str = "") -> None:
        from labkit.model.load import load_manifests

        mode = self.topology.kube_proxy_mode
        if mode not in SUPPORTED_PROXY_MODES:
            raise LabkitError(f"Cluster {self.cluster}: networking.kubeProxyMode is {mode!r}; the course's labs "
                              "use iptables or nftables (fix: set networking.kubeProxyMode: iptables)")
        objs = load_manifests(manifests, source or "<manifest>") if manifests else []
        check_can_run(self.runner, self.find)
        if KindState.load(self.state_dir, self.lab):
            raise LabkitError(f"lab {self.lab!r} already exists (fix: `labkit down --name {self.lab}` first, "
                              "or pick another --name)")
        existing = cmd.parse_kind_clusters(self.runner.run(cmd.kind_get_clusters()).stdout)
        if self.cluster in existing:
            raise LabkitError(f"a kind cluster named {self.cluster!r} already exists and labkit did not make it, so "
                              f"labkit leaves it alone (fix: `kind delete cluster --name {self.cluster}` if you no "
                              "longer need it, or give the kind config another `name:`)")
        self.state = KindState(self.lab, self.cluster, self.kind_config, self.seed)
        self.state.save(self.state_dir)
        try:
            self.show(f"labkit: creating kind cluster {self.cluster!r} (kind create cluster; a few minutes "
                      "the first time)")
            self.runner.run(cmd.kind_create_cluster(self.cluster), stdin=self.kind_config or DEFAULT_KIND_CONFIG)
            image = self._ensure_probe_image()
            self.state.probe_image = image
            self.state.save(self.state_dir)
            self.runner.run(cmd.kind_load_image(self.cluster, image))
            self.runner.run(cmd.kubectl_apply(self.cluster), stdin=render_probe_daemonset(image))
            if manifests:
                self.runner.run(cmd.kubectl_apply(self.cluster), stdin=manifests)
            self.runner.run(cmd.kubectl_wait_nodes(self.cluster, int(self.timeout)))
            self._wait()
            self._notes(objs)
            self.state.phase = "up"
            self.state.save(self.state_dir)
        except BaseException:
            self.down()
            raise

    @classmethod
    def attach(cls, lab: str, runner: Optional[CommandRunner] = None, state_dir: Optional[str] = None,
               **kwargs) -> "KindLab":
        """The kind lab `lab` made earlier (by this process or another), from its state file."""
        state = KindState.load(state_dir or default_state_dir(), lab)
        if state is None or state.phase != "up":
            raise LabNotFound(f"no kind lab named {lab!r} is up (fix: `labkit up --backend kind --name {lab}`)")
        self = cls(lab, state.kind_config, state.seed, runner, state_dir, **kwargs)
        self.state = state
        return self

    def down(self) -> None:
        """Delete exactly the cluster this lab made (`kind delete cluster --name`), then its state."""
        state = self.state or KindState.load(self.state_dir, self.lab)
        if state is None:
            return
        r = self.runner.run(cmd.kind_delete_cluster(state.cluster), check=False)
        if r.returncode != 0:
            raise KindCommandError(cmd.kind_delete_cluster(state.cluster), r.returncode, r.stderr,
                                   f"run `kind delete cluster --name {state.cluster}` yourself, then "
                                   f"`labkit down --name {self.lab}` again")
        try:
            os.remove(KindState.path(self.state_dir, self.lab))
        except FileNotFoundError:
            pass
        self.state = None

    def _require(self) -> KindState:
        if self.state is None or self.state.phase != "up":
            raise LabNotFound(f"lab {self.lab!r} is not up (fix: call up() or KindLab.attach({self.lab!r}))")
        return self.state

    def _ensure_probe_image(self) -> str:
        files = {name: (self.probe_dir / name).read_bytes() for name in PROBE_FILES}
        image = probe_image_tag(files)
        if self.runner.run(cmd.docker_image_inspect(image), check=False).returncode != 0:
            self.show(f"labkit: building the probe image {image} (once; pulls python:3.12-slim and scapy)")
            self.runner.run(cmd.docker_build(image, str(self.probe_dir)))
        return image

    def _wait(self) -> None:
        def poll():
            return pod_progress(self.runner.run(cmd.kubectl_get_pods_and_deployments(self.cluster)).stdout)

        wait_ready(poll, self.timeout, self.clock, self.sleep, self.show, self.context)

    def _notes(self, objs: Sequence) -> None:
        services = [o for o in objs if o.kind == "Service"]
        ingresses = [o for o in objs if o.kind == "Ingress"]
        if any(s.type == "LoadBalancer" for s in services):
            services = self.services()
        for note in render_external_notes(services, ingresses, self.find("cloud-provider-kind") is not None):
            self.show("labkit: " + note)

    # --- changes ------------------------------------------------------------

    def apply(self, manifests: str, source: str = "") -> list[str]:
        from labkit.model.load import load_manifests

        self._require()
        objs = load_manifests(manifests, source or "<manifest>")
        self.runner.run(cmd.kubectl_apply(self.cluster), stdin=manifests)
        self._wait()
        self._notes(objs)
        return [_ref(o) for o in objs]

    def delete(self, manifests: str, source: str = "") -> list[str]:
        from labkit.model.load import load_manifests

        self._require()
        objs = load_manifests(manifests, source or "<manifest>")
        self.runner.run(cmd.kubectl_delete(self.cluster), stdin=manifests)
        self._wait()
        return [_ref(o) for o in objs]

    def scale(self, deployment: str, replicas: int, namespace: str = "default") -> None:
        self._require()
        if replicas < 0:
            raise LabkitError(f"--replicas must be 0 or more, not {replicas}")
        name = deployment.split("/", 1)[1] if deployment.startswith("deployment/") else deployment
        self.runner.run(cmd.kubectl_scale(self.cluster, namespace, name, replicas))
        self._wait()

    # --- reading ----------------------------------------------------------

    def _all_pods(self) -> list:
        self._require()
        return cmd.parse_objects(self.runner.run(cmd.kubectl_get_pods(self.cluster)).stdout,
                                 f"kubectl get pods ({self.context})")

    def pods(self) -> list:
        return cmd.lab_pods(self._all_pods())

    def services(self) -> list:
        self._require()
        objs = cmd.parse_objects(self.runner.run(cmd.kubectl_get_services(self.cluster)).stdout,
                                 f"kubectl get services ({self.context})")
        return [s for s in objs if s.meta.namespace != cmd.PROBE_NAMESPACE]

    def node_ips(self) -> dict[str, str]:
        """{node: InternalIP}, read once: a kind node keeps its address."""
        if not self._node_ips:
            self._require()
            nodes = cmd.parse_objects(self.runner.run(cmd.kubectl_get_nodes(self.cluster)).stdout,
                                      f"kubectl get nodes ({self.context})")
            self._node_ips = cmd.node_internal_ips(nodes)
        return self._node_ips

    def node_name(self, name: str) -> str:
        """A node's container name from "kind-worker" or "worker"."""
        for n in self.topology.node_names:
            if name in (n, n[len(self.cluster) + 1:]):
                return n
        raise LabkitError(f"no node {name!r} in lab {self.lab} (nodes: {', '.join(self.topology.node_names)})")

    def rules(self, node: str, table: str = "nat") -> str:
        self._require()
        return self.runner.run(cmd.iptables_save(self.node_name(node), table)).stdout

    def conntrack(self, node: str) -> list[ConntrackEntry]:
        self._require()
        argv = cmd.conntrack_list(self.node_name(node))
        out = self.runner.run(argv, check=False)
        if out.returncode != 0 and "0 flow entries" not in out.stderr:
            raise KindCommandError(argv, out.returncode, out.stderr)
        return parse_conntrack(out.stdout)

    # --- probes -----------------------------------------------------------

    @staticmethod
    def _check_source(name: str) -> None:
        if name == "internet":
            raise LabkitError("a kind cluster has no 'internet' host (fix: send from 'outside', a container on "
                              "kind's docker network, or from a pod or node)")

    def source(self, name: str, pods: Sequence) -> Source:
        """"namespace/pod", a node ("kind-worker" or "worker") or "outside"."""
        self._check_source(name)
        if name == "outside":
            return Source("outside", "outside", "", "")
        if "/" in name:
            for p in pods:
                if f"{p.meta.namespace}/{p.meta.name}" == name:
                    if not p.pod_ip:
                        raise LabkitError(f"pod {name} has no address yet (fix: wait until it runs)")
                    return Source(name, "pod", p.pod_ip, p.node_name)
            raise LabkitError(f"no pod {name} in lab {self.lab} (pods: "
                              + ", ".join(f"{p.meta.namespace}/{p.meta.name}" for p in cmd.lab_pods(pods)) + ")")
        node = self.node_name(name)
        return Source(node, "node", self.node_ips()[node], node)

    def endpoint(self, source: str) -> Source:
        """A probe's sender by name, as on the other backends (its .ip, and its .node whose conntrack sees it)."""
        return self.source(source, self._all_pods() if "/" in source else [])

    def _probe_argv(self, src: Source, pods: Sequence, args: list[str]) -> list[str]:
        """labkit-probe run where `src` sends from: its node's probe pod, or a container outside."""
        if src.kind == "outside":
            return cmd.docker_run_outside(self._require().probe_image, *args)
        by_node = cmd.probe_pods_by_node(pods)
        if src.node not in by_node:
            raise LabkitError(f"no labkit probe pod runs on node {src.node} (fix: `kubectl --context {self.context} "
                              f"-n {cmd.PROBE_NAMESPACE} get pods -o wide` says why)")
        return cmd.kubectl_probe(self.cluster, by_node[src.node], args, src.ip if src.kind == "pod" else "")

    def _run_probe(self, argv: list[str]) -> list[dict]:
        out = self.runner.run(argv).stdout
        try:
            return [json.loads(line) for line in out.splitlines() if line.strip()]
        except ValueError:
            raise LabkitError(f"labkit-probe printed something that is not JSON: {out[:200]!r} "
                              "(fix: `labkit down`, then `labkit up --backend kind` to rebuild the probe image)") from None

    def _nat_node(self, src: Source, host: str) -> str:
        if src.node:
            return src.node
        for node, ip in self.node_ips().items():
            if ip == host:
                return node
        return ""

    @staticmethod
    def _pod_at(pods: Sequence, ip: str) -> str:
        hits = [f"{p.meta.namespace}/{p.meta.name}" for p in pods if p.pod_ip == ip and not p.host_network]
        return hits[0] if len(hits) == 1 else ""

    def _owner(self, pods: Sequence, ip: str) -> str:
        """The pod with address `ip`, else the node (by the node addresses read so far), else the address."""
        nodes = [n for n, a in self._node_ips.items() if a == ip]
        return self._pod_at(pods, ip) or (nodes[0] if nodes else ip)

    @staticmethod
    def _pod_named(pods: Sequence, hostname: str) -> str:
        hits = [f"{p.meta.namespace}/{p.meta.name}" for p in cmd.lab_pods(pods) if p.meta.name == hostname]
        return hits[0] if len(hits) == 1 else ""

    def probe(self, source: str, destination: str, protocol: str = "tcp", count: int = 1,
              timeout: float = 1.0) -> list[ProbeResult]:
        host, port = parse_destination(destination)
        if protocol not in ("tcp", "udp"):
            raise LabkitError(f"--protocol must be tcp or udp, not {protocol!r}")
        self._check_source(source)
        pods = self._all_pods()
        src = self.source(source, pods)
        sports = [self._rng.randrange(*EPHEMERAL_PORTS) for _ in range(count)]
        if protocol == "udp":
            results = []
            for sport in sports:
                [raw] = self._run_probe(self._probe_argv(src, pods, cmd.probe_udp_args(host, port, sport, timeout)))
                u = UdpOutcome(**raw)
                verdict = ANSWERED if u.ok else REFUSED if u.error == "refused" else NO_REPLY
                results.append(ProbeResult(src.label, destination, "udp", verdict,
                                           answered_by=self._pod_named(pods, u.hostname), reply_from=u.reply_from,
                                           client_seen_as=u.client_seen_as, client_address=u.local, kind="udp",
                                           body=u.body, detail=u.error))
            return results
        raws = self._run_probe(self._probe_argv(src, pods, cmd.probe_syn_args(host, port, sports, timeout)))
        node = self._nat_node(src, host)
        entries = self.conntrack(node) if node and any(r["answer"] == "syn-ack" for r in raws) else []
        results = []
        for raw in raws:
            client = raw.pop("client")
            o = SynOutcome(**raw)
            sport = int(client.rsplit(":", 1)[1])
            verdict = {"syn-ack": ANSWERED, "rst": REFUSED, "icmp": UNREACHABLE}.get(o.answer, NO_REPLY)
            answered_by, seen_as = "", ""
            if verdict == ANSWERED:
                answered_by = self._owner(pods, host)
                for e in entries:
                    if e.proto == "tcp" and e.orig.sport == sport and e.orig.dst == host and e.orig.dport == port:
                        answered_by = self._owner(pods, e.reply.src)
                        seen_as = f"{e.reply.dst}:{e.reply.dport}"
            results.append(ProbeResult(src.label, destination, "tcp", verdict, answered_by=answered_by,
                                       reply_from=o.reply_from, client_seen_as=seen_as, client_address=client,
                                       kind="syn", detail=o.detail))
        return results

    def http(self, source: str, destination: str, path: str = "/hostname", timeout: float = 2.0) -> ProbeResult:
        host, port = parse_destination(destination)
        self._check_source(source)
        pods = self._all_pods()
        src = self.source(source, pods)
        [raw] = self._run_probe(self._probe_argv(src, pods, cmd.probe_http_args(host, port, path, timeout)))
        o = HttpOutcome(**raw)
        verdict = ANSWERED if o.ok else {"refused": REFUSED, "timeout": NO_REPLY}.get(o.error, UNREACHABLE)
        return ProbeResult(src.label, destination, "tcp", verdict, answered_by=self._pod_named(pods, o.hostname),
                           reply_from=o.peer, client_seen_as=o.client_seen_as, client_address=o.local,
                           kind="http", status=o.status, body=o.body, detail=o.error)

    def trace(self, source: str, destination: str, protocol: str = "tcp", timeout: float = 1.0) -> Trace:
        """One TCP SYN traced by the node's kernel: a TRACE rule in raw, `xtables-monitor --trace` in the node."""
        from labkit.backends.netns.trace_text import parse_xtables_trace, rule_positions

        if protocol != "tcp":
            raise LabkitError("the kernel trace sends a TCP SYN; --protocol udp is not traced yet")
        host, port = parse_destination(destination)
        self._check_source(source)
        pods = self._all_pods()
        src = self.source(source, pods)
        node = self._nat_node(src, host)
        if not node:
            raise LabkitError(f"{destination} is not a node of the lab, so no node's chains see a packet "
                              f"from {source} to it")
        sport = self._rng.randrange(*EPHEMERAL_PORTS)
        hook = "OUTPUT" if src.kind == "node" and src.node == node else "PREROUTING"
        monitor = self.runner.start(cmd.xtables_monitor(node))
        try:
            self.runner.run(cmd.iptables_trace_insert(node, hook, sport, port))
            self.sleep(0.2)  # xtables-monitor subscribes to the trace events
            [raw] = self._run_probe(self._probe_argv(src, pods, cmd.probe_syn_args(host, port, [sport], timeout)))
            self.sleep(0.2)
        finally:
            self.runner.run(cmd.iptables_trace_delete(node, hook, sport, port), check=False)
            out = monitor.stop()
        save = self.runner.run(cmd.iptables_save(node)).stdout
        positions = {t: rule_positions(save, t) for t in ("raw", "mangle", "nat", "filter")}
        steps = parse_xtables_trace(out.stdout, positions)
        if not steps:
            raise LabkitError(f"node {node} reported no trace of the packet ({out.stderr.strip() or 'no output'}): "
                              "xtables-monitor sees only iptables in nf_tables mode, and this node may run "
                              "iptables-legacy (fix: `docker exec " + node + " iptables --version` says which)")
        verdict = {"syn-ack": ANSWERED, "rst": REFUSED, "icmp": UNREACHABLE}.get(raw["answer"], NO_REPLY)
        return Trace(src.label, destination, "tcp", tuple(steps), verdict)

    # --- kube-proxy's rules against labkit's ------------------------------------

    def render_kube_proxy(self, node: str) -> str:
        """labkit's rendering of kube-proxy's rules for `node`, from the cluster's own objects and config."""
        from labkit.controllers.kube_proxy.config import KubeProxyConfig, parse_kube_proxy_config
        from labkit.controllers.kube_proxy.iptables import render_iptables

        self._require()
        node = self.node_name(node)
        if self.topology.kube_proxy_mode != "iptables":
            raise LabkitError(f"kube-proxy runs in {self.topology.kube_proxy_mode} mode on this cluster; labkit "
                              "compares iptables-mode rules only (fix: a kind config with "
                              "networking.kubeProxyMode: iptables)")
        objs = cmd.parse_objects(self.runner.run(cmd.kubectl_get_proxy_objects(self.cluster)).stdout,
                                 f"kubectl get services,endpointslices ({self.context})")
        conf = self.runner.run(cmd.kubectl_get_kube_proxy_config(self.cluster)).stdout
        config = (parse_kube_proxy_config(conf, f"configmap kube-system/kube-proxy ({self.context})")
                  if conf.strip() else KubeProxyConfig(cluster_cidr=self.topology.pod_subnet))
        ruleset = render_iptables([o for o in objs if o.kind == "Service"],
                                  [o for o in objs if o.kind == "EndpointSlice"],
                                  node_name=node, node_ips=[self.node_ips()[node]], config=config)
        return ruleset.full_text

    def compare_rules(self, node: str):
        """The node's live kube-proxy rules against labkit's rendering (a compare.RulesComparison)."""
        from labkit.backends.kind.compare import compare_rules

        node = self.node_name(node)
        rendered = self.render_kube_proxy(node)
        live = self.runner.run(cmd.iptables_save(node)).stdout
        return compare_rules(live, rendered, node)
