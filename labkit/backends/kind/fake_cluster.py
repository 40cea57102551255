"""A fake kind cluster behind the command-runner seam, with the simulation as its dataplane.

KindFake is a CommandRunner that answers the exact docker/kind/kubectl argv
the kind backend issues (commands.py) the way the real programs would, in
their own output formats, by running the same lab on the sim backend
underneath: the sim is the reference the kernel agrees with
(tests/test_conformance.py), so the kind backend run on this fake must give
what the sim gives. That is how the kind backend passes the conformance
suite without Docker.

  kind create cluster --config -      a SimLab made from the same kind config
  kubectl apply/delete/scale          SimLab.apply/delete/scale; labkit's probe DaemonSet is
                                      the fake's own (one hostNetwork pod per node)
  kubectl get ... -o json             the sim's objects as the API prints them (api_json.py)
  docker exec NODE iptables-save      the node's rules, with iptables-save's header and footer lines
  docker exec NODE conntrack -L       the node's entries in conntrack's text format (stdout) and its
                                      "N flow entries have been shown." line (stderr)
  kubectl exec PROBE -- labkit-probe  the sim's probe from the pod holding --src-ip (or the node), printed
                                      as labkit_probe.py prints its result
  docker run ... labkit-probe         the same from the sim's "outside" host
  xtables-monitor --trace             the sim's trace of the SYN that matched the TRACE rule, in
                                      xtables-monitor's line format

Any other command fails the test at once (AssertionError), like
FakeCommandRunner. `shapes_seen()` names every kind of command it answered
(commands.command_shape), so a test can check that the backend's whole
command set was exercised.

What the fake does not reproduce: time (a batch of SYNs from one `kubectl
exec` takes one tick of the sim's clock, as it takes milliseconds on a
node), image pulls, kubectl's own errors beyond "not found", and the MAC and
interface fields of xtables-monitor's PACKET lines (written as IN=eth0).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
from typing import Optional, Sequence

import yaml

from labkit.backends.base import ANSWERED, REFUSED, UNREACHABLE, ConntrackEntry, Trace
from labkit.backends.kind import commands as cmd
from labkit.backends.kind.api_json import api_deployment, api_node, api_pod, render_api_list
from labkit.backends.kind.runner import Background, CommandRunner, KindCommandError, Result
from labkit.errors import LabkitError
from labkit.model.objects import Container, ObjectMeta, Pod, PodCondition

IPTABLES_VERSION = "v1.8.9 (nf_tables)"
CONNTRACK_VERSION = "v1.4.7"
SAVE_STAMP = "Tue Oct  1 09:25:14 2024"
SAVE_TABLES = ("mangle", "raw", "filter", "nat")  # the order iptables-save (nf_tables) prints them in
BUILTIN_TARGETS = {"ACCEPT", "DROP", "RETURN", "REJECT", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "MARK",
                   "LOG", "CONNMARK", "TRACE", "NOTRACK", "CT"}
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's generateName suffix letters
API_NAMES = {"Deployment": "deployment.apps", "Service": "service", "Pod": "pod", "Namespace": "namespace",
             "EndpointSlice": "endpointslice.discovery.k8s.io", "NetworkPolicy": "networkpolicy.networking.k8s.io",
             "Ingress": "ingress.networking.k8s.io", "DaemonSet": "daemonset.apps"}


# --- the programs' output formats (pure) ------------------------------------------------------


def render_conntrack(entries: Sequence[ConntrackEntry]) -> str:
    """`conntrack -L` lines: "tcp      6 9 CLOSE src=.. dst=.. sport=.. dport=.. [UNREPLIED] src=.. mark=0 use=1"."""
    numbers = {"tcp": 6, "udp": 17, "icmp": 1, "sctp": 132}
    lines = []
    for e in entries:
        words = [f"{e.proto:<8} {numbers.get(e.proto, 0)} {e.timeout}"]
        if e.state:
            words.append(e.state)

        def tup(t, reply: bool) -> str:
            if e.proto == "icmp":
                return f"src={t.src} dst={t.dst} type={0 if reply else 8} code=0 id={t.sport}"
            return f"src={t.src} dst={t.dst} sport={t.sport} dport={t.dport}"

        words.append(tup(e.orig, False))
        if "UNREPLIED" in e.flags:
            words.append("[UNREPLIED]")
        words.append(tup(e.reply, True))
        words += [f"[{f}]" for f in e.flags if f != "UNREPLIED"]
        words.append(f"mark={e.mark}")
        if e.zone:
            words.append(f"zone={e.zone}")
        words.append("use=1")
        lines.append(" ".join(words) + "\n")
    return "".join(lines)


def conntrack_footer(n: int) -> str:
    """What `conntrack -L` prints on stderr after the entries."""
    return f"conntrack {CONNTRACK_VERSION} (conntrack-tools): {n} flow entries have been shown.\n"


def render_iptables_save(blocks: Sequence[str], stamp: str = SAVE_STAMP) -> str:
    """Table blocks ("*nat ... COMMIT") with iptables-save's "# Generated by" and "# Completed on" lines."""
    out = []
    for block in blocks:
        if block.strip():
            out.append(f"# Generated by iptables-save {IPTABLES_VERSION} on {stamp}\n{block.rstrip()}\n"
                       f"# Completed on {stamp}\n")
    return "".join(out)


def _nft_verdict(step) -> str:
    """How xtables-monitor prints a step's verdict: JUMP:X, ACCEPT for NAT targets, 0xfffffffb for RETURN."""
    m = re.search(r" -([jg]) (\S+)", step.rule)
    target = m.group(2) if m else ""
    if m and target not in BUILTIN_TARGETS and step.verdict == target:
        return ("JUMP:" if m.group(1) == "j" else "GOTO:") + target
    if step.verdict == "RETURN":
        return "0xfffffffb"
    if step.verdict in ("ACCEPT", "DNAT", "SNAT", "MASQUERADE", "REDIRECT"):
        return "ACCEPT"
    if step.verdict in ("DROP", "REJECT"):
        return "DROP"
    return "CONTINUE"


def render_xtables_trace(trace: Trace, src: str, hook: str, trace_rule: str, sport: int,
                         packet_id: str = "6c1f0e2a") -> str:
    """The lines `xtables-monitor --trace` prints for one SYN: the TRACE rule in raw, then each step.

    A PACKET line opens each hook's tables, as the kernel prints it; after a
    DNAT step it shows the new destination.
    """
    dst, port = trace.destination.rsplit(":", 1)

    def packet() -> str:
        return (f"PACKET: 2 {packet_id} IN=eth0 SRC={src} DST={dst} LEN=40 TOS=0x0 TTL=64 ID=1 "
                f"SPORT={sport} DPORT={port} SYN ")

    lines = [packet(), f" TRACE: 2 {packet_id} raw:{hook}:rule:0x2:CONTINUE  -4 -t raw {trace_rule}",
             f" TRACE: 2 {packet_id} raw:{hook}:policy:ACCEPT "]
    handle = 0x10
    where = ("raw", hook)
    for step in trace.steps:
        builtin = step.chain in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
        if builtin and (step.table, step.chain) != where:
            where = (step.table, step.chain)
            lines.append(packet())
        if not step.rule:
            lines.append(f" TRACE: 2 {packet_id} {step.table}:{step.chain}:policy:{step.verdict} ")
            continue
        handle += 1
        lines.append(f" TRACE: 2 {packet_id} {step.table}:{step.chain}:rule:0x{handle:x}:{_nft_verdict(step)}  "
                     f"-4 -t {step.table} {step.rule}")
        if step.verdict == "DNAT" and "--to-destination " in step.rule:
            dst = step.rule.split("--to-destination ", 1)[1].split()[0].rsplit(":", 1)[0]
    return "\n".join(lines) + "\n"


def probe_pod_name(node: str) -> str:
    """The probe DaemonSet's pod on `node`: "labkit-probe-" and five letters, as the apiserver names them."""
    digest = hashlib.sha256(node.encode()).digest()
    return "labkit-probe-" + "".join(NAME_ALPHABET[b % len(NAME_ALPHABET)] for b in digest[:5])


def parse_probe_args(argv: Sequence[str]) -> argparse.Namespace:
    """labkit-probe's own command line (labkit_probe.main's), so the fake refuses what the script would."""
    from labkit.backends.kind.probe_image.labkit_probe import parse_args

    return parse_args(list(argv))


# --- the fake cluster ---------------------------------------------------------------------


class _Monitor(Background):
    """`xtables-monitor --trace` left running in a node: its output is rendered when it stops."""

    def __init__(self, fake: "KindFake", node: str):
        self.fake, self.node = fake, node
        self.fake.monitors[node] = []

    def stop(self, timeout: float = 5.0) -> Result:
        return Result(0, "".join(self.fake.monitors.pop(self.node, [])), "")


class KindFake(CommandRunner):
    """A kind cluster (or none) that answers the kind backend's commands; see the module docstring."""

    def __init__(self, seed: int = 0, docker_version: str = "27.3.1"):
        self.seed = seed
        self.docker_version = docker_version
        self.clusters: dict[str, object] = {}  # name -> SimLab
        self.images: set[str] = set()
        self.loaded: dict[str, set[str]] = {}
        self.probe_image = ""
        self.traces: dict[str, tuple[str, str, int, int]] = {}  # node -> (hook, rule, sport, dport)
        self.monitors: dict[str, list[str]] = {}
        self.raw_used: set[str] = set()
        self.seen: list[tuple[tuple[str, ...], str]] = []

    # --- the seam -----------------------------------------------------------------------

    def run(self, argv: Sequence[str], stdin: str = "", check: bool = True) -> Result:
        argv = tuple(argv)
        self.seen.append((argv, stdin))
        result = self._answer(argv, stdin)
        if check and result.returncode != 0:
            raise KindCommandError(argv, result.returncode, result.stderr)
        return result

    def start(self, argv: Sequence[str]) -> Background:
        argv = tuple(argv)
        self.seen.append((argv, ""))
        if argv[:2] == ("docker", "exec") and argv[3:] == ("xtables-monitor", "--trace"):
            self._node_lab(argv[2])
            return _Monitor(self, argv[2])
        raise AssertionError(f"the fake kind cluster cannot start {list(argv)}")

    def shapes_seen(self) -> set[str]:
        return {cmd.command_shape(argv) for argv, _ in self.seen}

    # --- answers ------------------------------------------------------------------------

    def _answer(self, argv: tuple[str, ...], stdin: str) -> Result:
        shape = cmd.command_shape(argv)
        handler = getattr(self, "_" + shape.replace(" ", "_").replace("-", "_"), None)
        if handler is None:
            raise AssertionError(f"the fake kind cluster does not know this command: {list(argv)}")
        return handler(argv, stdin)

    def _docker_info(self, argv, stdin) -> Result:
        return Result(0, self.docker_version + "\n", "")

    def _docker_image_inspect(self, argv, stdin) -> Result:
        image = argv[-1]
        if image not in self.images:
            return Result(1, "", f"Error response from daemon: No such image: {image}\n")
        return Result(0, "sha256:" + hashlib.sha256(image.encode()).hexdigest() + "\n", "")

    def _docker_build(self, argv, stdin) -> Result:
        self.images.add(argv[3])
        return Result(0, "", f"#7 naming to docker.io/library/{argv[3]} done\n#7 DONE 0.4s\n")

    def _kind_get_clusters(self, argv, stdin) -> Result:
        if not self.clusters:
            return Result(0, "", "No kind clusters found.\n")
        return Result(0, "".join(f"{c}\n" for c in sorted(self.clusters)), "")

    def _kind_create_cluster(self, argv, stdin) -> Result:
        from labkit.backends.sim.lab import SimLab
        from labkit.topology.kind_config import parse_kind_config_text

        name = argv[4]
        if name in self.clusters:
            return Result(1, "", f'ERROR: failed to create cluster: node(s) already exist for a cluster with the '
                                 f'name "{name}"\n')
        topology = parse_kind_config_text(stdin)
        if topology.name != name:
            raise AssertionError(f"kind create cluster --name {name} with a config naming {topology.name!r}")
        sim = SimLab("kind", stdin, self.seed)
        sim.up()
        self.clusters[name] = sim
        self.loaded[name] = set()
        return Result(0, "", f'Creating cluster "{name}" ...\nSet kubectl context to "kind-{name}"\n')

    def _kind_delete_cluster(self, argv, stdin) -> Result:
        name = argv[4]
        sim = self.clusters.pop(name, None)
        if sim is not None:
            sim.down()
        return Result(0, "", f'Deleting cluster "{name}" ...\n')

    def _kind_load_image(self, argv, stdin) -> Result:
        image, name = argv[3], argv[5]
        if image not in self.images:
            return Result(1, "", f'ERROR: image: "{image}" not present locally\n')
        self._cluster(name)
        self.loaded[name].add(image)
        return Result(0, "", "".join(f'Image: "{image}" with ID "sha256:..." not yet present on node "{n}", '
                                     "loading...\n" for n in self._cluster(name).topology.node_names))

    # kubectl

    def _kubectl_apply(self, argv, stdin) -> Result:
        sim = self._ctx(argv)
        docs = [d for d in yaml.safe_load_all(stdin) if d]
        if any(d.get("kind") == "DaemonSet" for d in docs):
            return self._apply_probe_daemonset(argv, docs)
        try:
            refs = sim.apply(stdin, "<stdin>")
        except LabkitError as e:
            return Result(1, "", f"error: {e}\n")
        return Result(0, "".join(self._api_name(r) + "\n" for r in refs), "")

    def _kubectl_delete(self, argv, stdin) -> Result:
        sim = self._ctx(argv)
        try:
            refs = sim.delete(stdin, "<stdin>")
        except LabkitError as e:
            return Result(1, "", f"error: {e}\n")
        return Result(0, "".join(self._api_name(r) + "\n" for r in refs), "")

    def _kubectl_scale(self, argv, stdin) -> Result:
        sim = self._ctx(argv)
        namespace, name, replicas = argv[4], argv[6].split("/", 1)[1], int(argv[7].split("=", 1)[1])
        try:
            sim.scale(name, replicas, namespace)
        except LabkitError as e:
            return Result(1, "", f'Error from server (NotFound): deployments.apps "{name}" not found ({e})\n')
        return Result(0, f"deployment.apps/{name} scaled\n", "")

    def _kubectl_wait_nodes(self, argv, stdin) -> Result:
        sim = self._ctx(argv)
        return Result(0, "".join(f"node/{n} condition met\n" for n in sim.topology.node_names), "")

    def _kubectl_poll(self, argv, stdin) -> Result:
        sim = self._ctx(argv)
        items = [api_pod(p) for p in self._all_pods(argv)] + [api_deployment(d) for d in sim.state.deployments]
        return Result(0, render_api_list(items), "")

    def _kubectl_get_pods(self, argv, stdin) -> Result:
        return Result(0, render_api_list(self._all_pods(argv)), "")

    def _kubectl_get_services(self, argv, stdin) -> Result:
        return Result(0, render_api_list(self._ctx(argv).services()), "")

    def _kubectl_get_nodes(self, argv, stdin) -> Result:
        return Result(0, render_api_list([api_node(n) for n in self._ctx(argv).state.nodes]), "")

    def _kubectl_get_proxy_objects(self, argv, stdin) -> Result:
        sim = self._ctx(argv)
        return Result(0, render_api_list(list(sim.state.services) + list(sim.state.endpoint_slices)), "")

    def _kubectl_get_kube_proxy_config(self, argv, stdin) -> Result:
        sim = self._ctx(argv)
        return Result(0, "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
                         f"clusterCIDR: {sim.topology.pod_subnet}\nmode: iptables\n", "")

    def _probe_syn(self, argv, stdin) -> Result:
        return self._probe(argv)

    _probe_http = _probe_udp = _probe_syn_from_node = _probe_http_from_node = _probe_udp_from_node = _probe_syn

    def _outside_syn(self, argv, stdin) -> Result:
        image = argv[9]
        if image not in self.images:
            return Result(125, "", f"Unable to find image '{image}' locally\n")
        return self._run_probe(self._only_cluster(), "outside", argv[11:])

    _outside_http = _outside_udp = _outside_syn

    # docker exec NODE ...

    def _iptables_save(self, argv, stdin) -> Result:
        sim, node = self._node_lab(argv[2])
        tables = [t for t in SAVE_TABLES if t != "raw" or node in self.raw_used]
        blocks = [sim.rules(node, t) or (f"*{t}\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
                                         if t == "raw" else "") for t in tables]
        return Result(0, render_iptables_save(blocks), "")

    def _iptables_save_table(self, argv, stdin) -> Result:
        sim, node = self._node_lab(argv[2])
        return Result(0, render_iptables_save([sim.rules(node, argv[5])]), "")

    def _conntrack_list(self, argv, stdin) -> Result:
        sim, node = self._node_lab(argv[2])
        entries = sim.conntrack(node)
        return Result(0, render_conntrack(entries), conntrack_footer(len(entries)))

    def _trace_insert(self, argv, stdin) -> Result:
        sim, node = self._node_lab(argv[2])
        hook, match = argv[7], argv[9:]
        rule = f"-A {hook} -p tcp -m tcp --sport {match[3]} --dport {match[5]} -j TRACE"
        self.traces[node] = (hook, rule, int(match[3]), int(match[5]))
        self.raw_used.add(node)
        return Result(0, "", "")

    def _trace_delete(self, argv, stdin) -> Result:
        sim, node = self._node_lab(argv[2])
        if self.traces.pop(node, None) is None:
            return Result(1, "", "iptables: Bad rule (does a matching rule exist in that chain?).\n")
        return Result(0, "", "")

    # --- helpers ------------------------------------------------------------------------

    def _cluster(self, name: str):
        if name not in self.clusters:
            raise AssertionError(f"a command for kind cluster {name!r}, which does not exist")
        return self.clusters[name]

    def _ctx(self, argv):
        return self._cluster(argv[2][len("kind-"):])

    def _only_cluster(self):
        if len(self.clusters) != 1:
            raise AssertionError("`docker run --network kind` with other than one cluster on kind's network")
        return next(iter(self.clusters.values()))

    def _node_lab(self, node: str):
        for sim in self.clusters.values():
            if node in sim.topology.node_names:
                return sim, node
        raise AssertionError(f"docker exec into {node!r}: no such node container")

    @staticmethod
    def _api_name(ref: str) -> str:
        kind, name = ref.split(" ", 1)
        return f"{API_NAMES.get(kind, kind.lower())}/{name.rsplit('/', 1)[-1]}"

    def _apply_probe_daemonset(self, argv, docs) -> Result:
        ds = next(d for d in docs if d.get("kind") == "DaemonSet")
        if (ds["metadata"].get("namespace"), ds["metadata"]["name"]) != (cmd.PROBE_NAMESPACE, cmd.PROBE_APP):
            raise AssertionError(f"the fake kind cluster runs no DaemonSet but labkit's probe, not {ds['metadata']}")
        image = ds["spec"]["template"]["spec"]["containers"][0]["image"]
        if image not in self.loaded[argv[2][len("kind-"):]]:
            raise AssertionError(f"the probe DaemonSet's image {image} was never `kind load`ed: its pods "
                                 "would stay in ErrImageNeverPull")
        self.probe_image = image
        return Result(0, "".join(f"{API_NAMES[d['kind']]}/{d['metadata']['name']}\n" for d in docs), "")

    def _all_pods(self, argv) -> list:
        sim = self._ctx(argv)
        pods = list(sim.pods())
        if self.probe_image:
            for n in sim.state.nodes:
                ip = next(a.address for a in n.addresses if a.type == "InternalIP")
                pods.append(Pod(ObjectMeta(probe_pod_name(n.meta.name), cmd.PROBE_NAMESPACE,
                                           {"app": cmd.PROBE_APP}),
                                containers=(Container("probe", self.probe_image, command=("sleep", "infinity")),),
                                node_name=n.meta.name, host_network=True, phase="Running", pod_ip=ip,
                                pod_ips=(ip,), host_ip=ip,
                                conditions=(PodCondition("Ready", "True"),)))
        return pods

    def _probe(self, argv) -> Result:
        sim = self._ctx(argv)
        pod = argv[6]
        nodes = {probe_pod_name(n): n for n in sim.topology.node_names}
        if pod not in nodes or not self.probe_image:
            return Result(1, "", f'Error from server (NotFound): pods "{pod}" not found\n')
        return self._run_probe(sim, nodes[pod], argv[9:])

    def _run_probe(self, sim, node: str, words: Sequence[str]) -> Result:
        """What labkit-probe prints, sent from the pod holding --src-ip on `node` (or from `node` itself)."""
        args = parse_probe_args(words)
        source = node
        if args.src_ip:
            hits = [f"{p.meta.namespace}/{p.meta.name}" for p in sim.pods()
                    if p.pod_ip == args.src_ip and p.node_name == node]
            if not hits:
                return Result(1, "", f"labkit-probe: no network namespace on this node holds {args.src_ip}\n")
            source = hits[0]
        destination = f"{args.dst}:{args.dport}"
        if args.kind == "http":
            r = sim.http(source, destination, args.path)
            pod = r.answered_by.split("/", 1)[1] if "/" in r.answered_by else ""
            out = {"ok": r.verdict == ANSWERED, "status": r.status, "body": r.body, "hostname": pod,
                   "client_seen_as": r.client_seen_as, "local": r.client_address, "peer": r.reply_from,
                   "error": "" if r.verdict == ANSWERED else r.detail}
            return Result(0, json.dumps(out) + "\n", "")
        if args.kind == "udp":
            [r] = sim.probe(source, destination, "udp", sport=args.sport or None)
            pod = r.answered_by.split("/", 1)[1] if "/" in r.answered_by else r.answered_by
            out = {"ok": r.verdict == ANSWERED, "body": r.body, "hostname": pod if r.verdict == ANSWERED else "",
                   "client_seen_as": r.client_seen_as, "local": r.client_address,
                   "reply_from": r.reply_from, "error": "" if r.verdict == ANSWERED else r.detail}
            return Result(0, json.dumps(out) + "\n", "")
        lines = []
        start = sim.now  # one exec's SYNs take milliseconds: one tick of the sim's clock for all of them
        for sport in (int(x) for x in args.sports.split(",") if x):
            sim.now = start
            traced = self.traces.get(node) if source == node or "/" in source else None
            if node and traced and traced[2] == sport and traced[3] == args.dport:
                lines.append(self._traced_syn(sim, node, source, destination, sport))
                continue
            [r] = sim.probe(source, destination, sport=sport)
            lines.append(json.dumps(_syn_json(r.verdict, r.reply_from, r.detail, r.client_address)))
        return Result(0, "".join(line + "\n" for line in lines), "")

    def _traced_syn(self, sim, node: str, source: str, destination: str, sport: int) -> str:
        hook, rule, _, _ = self.traces[node]
        t = sim.trace(source, destination, sport=sport)
        node_ns = sim.endpoint(node).netns
        src_ip = sim.endpoint(source).ip
        trace = Trace(t.source, t.destination, t.protocol, tuple(s for s in t.steps if s.netns == node_ns),
                      t.verdict)
        if node in self.monitors:
            self.monitors[node].append(render_xtables_trace(trace, src_ip, hook, rule, sport))
        reply_from, detail = "", {ANSWERED: "TCP flags SA", REFUSED: "TCP flags RA"}.get(t.verdict, "")
        if t.verdict == ANSWERED:
            e = [e for e in sim.conntrack(node) if e.proto == "tcp" and e.orig.sport == sport]
            reply_from = f"{e[-1].orig.dst}:{e[-1].orig.dport}" if e else destination
        if t.verdict == UNREACHABLE:
            detail = "ICMP destination unreachable (code 3)"
        return json.dumps(_syn_json(t.verdict, reply_from, detail, f"{src_ip}:{sport}"))


def _syn_json(verdict: str, reply_from: str, detail: str, client: str) -> dict:
    """labkit_probe.syn's result for a verdict: {"answer", "reply_from", "detail", "client"}."""
    answer = {ANSWERED: "syn-ack", REFUSED: "rst", UNREACHABLE: "icmp"}.get(verdict, "")
    if not answer:
        return {"answer": "", "reply_from": "", "detail": "no answer before the deadline", "client": client}
    return {"answer": answer, "reply_from": reply_from, "detail": detail, "client": client}


def fake_find(tool: str) -> Optional[str]:
    """A `find` for KindLab on the fake: docker, kind and kubectl are "installed", cloud-provider-kind is not."""
    return None if tool == "cloud-provider-kind" else f"/usr/bin/{tool}"
