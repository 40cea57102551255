"""Every command the kind backend runs, as argv, and the parsers of what they print (pure).

One function per command, so each command is written once, tested once, and
matches a recording word for word. kubectl always gets `--context
kind-CLUSTER`: the lab never talks to whatever cluster the learner's
kubeconfig happens to point at. The node containers are reached with
`docker exec NODE ...`; kind names them after the nodes.

Parsers take the programs' own output formats:
  kind get clusters            one name a line ("No kind clusters found." goes to stderr)
  kubectl apply/delete -o name "service/web", "deployment.apps/web", one a line
  kubectl get ... -o json      a v1 List, read by labkit's own manifest loader
"""
from __future__ import annotations

import json
import re
from typing import Sequence

from labkit.errors import LabkitError

PROBE_NAMESPACE = "labkit"  # the probe DaemonSet's namespace (made and removed by labkit)
PROBE_APP = "labkit-probe"
PROBE_IMAGE_NAME = "labkit-probe"
AGNHOST_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.53"
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "local-path-storage", PROBE_NAMESPACE)
DOCKER_NETWORK = "kind"  # the docker network kind puts its nodes on


def context(cluster: str) -> str:
    """The kubeconfig context `kind create cluster` writes: "kind-" + the cluster's name."""
    return f"kind-{cluster}"


def kubectl(cluster: str, *args: str) -> list[str]:
    return ["kubectl", "--context", context(cluster), *args]


# --- docker -------------------------------------------------------------------------


def docker_info() -> list[str]:
    """Answers only when the Docker engine runs and this user may use it."""
    return ["docker", "info", "--format", "{{.ServerVersion}}"]


def docker_image_inspect(image: str) -> list[str]:
    return ["docker", "image", "inspect", "--format", "{{.Id}}", image]


def docker_build(image: str, directory: str) -> list[str]:
    return ["docker", "build", "--tag", image, directory]


def docker_exec(node: str, *argv: str) -> list[str]:
    """A command inside a node container (the node's own network namespace)."""
    return ["docker", "exec", node, *argv]


def docker_run_outside(image: str, *argv: str) -> list[str]:
    """A throw-away container on kind's docker network: an outside client of the nodes."""
    return ["docker", "run", "--rm", "--network", DOCKER_NETWORK, "--cap-add", "NET_RAW",
            "--cap-add", "NET_ADMIN", image, *argv]


# --- kind ---------------------------------------------------------------------------


def kind_get_clusters() -> list[str]:
    return ["kind", "get", "clusters"]


def kind_create_cluster(cluster: str) -> list[str]:
    """The config comes on stdin (`--config -`): the same text the kernel lab reads."""
    return ["kind", "create", "cluster", "--name", cluster, "--config", "-"]


def kind_delete_cluster(cluster: str) -> list[str]:
    return ["kind", "delete", "cluster", "--name", cluster]


def kind_load_image(cluster: str, image: str) -> list[str]:
    return ["kind", "load", "docker-image", image, "--name", cluster]


def parse_kind_clusters(stdout: str) -> list[str]:
    """`kind get clusters` -> the names (its "No kind clusters found." is on stderr)."""
    return [line.strip() for line in stdout.splitlines()
            if line.strip() and not line.startswith("No kind clusters")]


# --- kubectl --------------------------------------------------------------------------


def kubectl_apply(cluster: str) -> list[str]:
    return kubectl(cluster, "apply", "-f", "-", "-o", "name")


def kubectl_delete(cluster: str) -> list[str]:
    return kubectl(cluster, "delete", "-f", "-", "--ignore-not-found", "-o", "name")


def kubectl_scale(cluster: str, namespace: str, deployment: str, replicas: int) -> list[str]:
    return kubectl(cluster, "--namespace", namespace, "scale", f"deployment/{deployment}",
                   f"--replicas={replicas}")


def kubectl_wait_nodes(cluster: str, timeout: int) -> list[str]:
    return kubectl(cluster, "wait", "--for=condition=Ready", "nodes", "--all", f"--timeout={timeout}s")


def kubectl_get_pods(cluster: str) -> list[str]:
    return kubectl(cluster, "get", "pods", "--all-namespaces", "-o", "json")


def kubectl_get_services(cluster: str) -> list[str]:
    return kubectl(cluster, "get", "services", "--all-namespaces", "-o", "json")


def kubectl_get_nodes(cluster: str) -> list[str]:
    return kubectl(cluster, "get", "nodes", "-o", "json")


def kubectl_get_proxy_objects(cluster: str) -> list[str]:
    """What kube-proxy watches: Services and EndpointSlices (one List, both kinds)."""
    return kubectl(cluster, "get", "services,endpointslices.discovery.k8s.io", "--all-namespaces", "-o", "json")


def kubectl_get_kube_proxy_config(cluster: str) -> list[str]:
    """kube-proxy's KubeProxyConfiguration, as kubeadm stored it for kind."""
    return kubectl(cluster, "--namespace", "kube-system", "get", "configmap", "kube-proxy",
                   "-o", "jsonpath={.data.config\\.conf}")


def kubectl_exec(cluster: str, namespace: str, pod: str, *argv: str) -> list[str]:
    return kubectl(cluster, "--namespace", namespace, "exec", pod, "--", *argv)


def kubectl_get_pods_and_deployments(cluster: str) -> list[str]:
    """What the readiness wait polls."""
    return kubectl(cluster, "get", "pods,deployments", "--all-namespaces", "-o", "json")


# --- labkit-probe (in the probe pod, or in a container outside) -------------------------


def probe_syn_args(host: str, port: int, sports: Sequence[int], timeout: float) -> list[str]:
    return ["labkit-probe", "syn", "--dst", host, "--dport", str(port), "--sports", ",".join(map(str, sports)),
            "--timeout", str(timeout)]


def probe_http_args(host: str, port: int, path: str, timeout: float) -> list[str]:
    return ["labkit-probe", "http", "--dst", host, "--dport", str(port), "--path", path, "--timeout", str(timeout)]


def probe_udp_args(host: str, port: int, sport: int, timeout: float) -> list[str]:
    return ["labkit-probe", "udp", "--dst", host, "--dport", str(port), "--sport", str(sport),
            "--timeout", str(timeout)]


def kubectl_probe(cluster: str, pod: str, args: Sequence[str], src_ip: str = "") -> list[str]:
    """labkit-probe in the probe pod `pod`: from the node itself, or (--src-ip) from the pod with that address."""
    return kubectl_exec(cluster, PROBE_NAMESPACE, pod, *args, *(["--src-ip", src_ip] if src_ip else []))


# --- a kernel trace in a node ---------------------------------------------------------------


def trace_match(sport: int, dport: int) -> list[str]:
    return ["-p", "tcp", "--sport", str(sport), "--dport", str(dport), "-j", "TRACE"]


def iptables_trace_insert(node: str, hook: str, sport: int, dport: int) -> list[str]:
    return docker_exec(node, "iptables", "-t", "raw", "-I", hook, "1", *trace_match(sport, dport))


def iptables_trace_delete(node: str, hook: str, sport: int, dport: int) -> list[str]:
    return docker_exec(node, "iptables", "-t", "raw", "-D", hook, *trace_match(sport, dport))


def xtables_monitor(node: str) -> list[str]:
    return docker_exec(node, "xtables-monitor", "--trace")


def iptables_save(node: str, table: str = "") -> list[str]:
    return docker_exec(node, "iptables-save", *(["-t", table] if table else []))


def conntrack_list(node: str) -> list[str]:
    return docker_exec(node, "conntrack", "-L")


# --- every command, in one place ----------------------------------------------------------


def command_shapes() -> dict[str, list[str]]:
    """Every command the kind backend can run, by name, with its variable words as {PLACEHOLDERS}.

    tests/test_kind_coverage.py checks that the commands the backend ran in
    the tests are exactly these: a command added to the backend without a
    line here (and a test that runs it) fails there.
    """
    c, node, ip, port = "{CLUSTER}", "{NODE}", "{ADDRESS}", "{PORT}"
    syn = probe_syn_args(ip, port, ["{PORTS}"], "{SECONDS}")  # type: ignore[list-item]
    http = probe_http_args(ip, port, "{PATH}", "{SECONDS}")  # type: ignore[arg-type]
    udp = probe_udp_args(ip, port, port, "{SECONDS}")  # type: ignore[arg-type]
    return {
        "docker info": docker_info(),
        "docker image inspect": docker_image_inspect("{IMAGE}"),
        "docker build": docker_build("{IMAGE}", "{DIR}"),
        "kind get clusters": kind_get_clusters(),
        "kind create cluster": kind_create_cluster(c),
        "kind delete cluster": kind_delete_cluster(c),
        "kind load image": kind_load_image(c, "{IMAGE}"),
        "kubectl apply": kubectl_apply(c),
        "kubectl delete": kubectl_delete(c),
        "kubectl scale": kubectl_scale(c, "{NAMESPACE}", "{DEPLOYMENT}", "{N}"),  # type: ignore[arg-type]
        "kubectl wait nodes": kubectl_wait_nodes(c, "{N}"),  # type: ignore[arg-type]
        "kubectl poll": kubectl_get_pods_and_deployments(c),
        "kubectl get pods": kubectl_get_pods(c),
        "kubectl get services": kubectl_get_services(c),
        "kubectl get nodes": kubectl_get_nodes(c),
        "kubectl get proxy objects": kubectl_get_proxy_objects(c),
        "kubectl get kube-proxy config": kubectl_get_kube_proxy_config(c),
        "probe syn": kubectl_probe(c, "{POD}", syn, "{IP}"),
        "probe http": kubectl_probe(c, "{POD}", http, "{IP}"),
        "probe udp": kubectl_probe(c, "{POD}", udp, "{IP}"),
        "probe syn from node": kubectl_probe(c, "{POD}", syn),
        "probe http from node": kubectl_probe(c, "{POD}", http),
        "probe udp from node": kubectl_probe(c, "{POD}", udp),
        "outside syn": docker_run_outside("{IMAGE}", *syn),
        "outside http": docker_run_outside("{IMAGE}", *http),
        "outside udp": docker_run_outside("{IMAGE}", *udp),
        "iptables-save": iptables_save(node),
        "iptables-save table": iptables_save(node, "{TABLE}"),
        "conntrack list": conntrack_list(node),
        "xtables-monitor": xtables_monitor(node),
        "trace insert": iptables_trace_insert(node, "{HOOK}", port, port),  # type: ignore[arg-type]
        "trace delete": iptables_trace_delete(node, "{HOOK}", port, port),  # type: ignore[arg-type]
    }


def _word_pattern(word: str) -> "re.Pattern[str]":
    return re.compile("".join(".+" if part.startswith("{") else re.escape(part)
                              for part in re.split(r"(\{[A-Z]+\})", word) if part))


_SHAPES: list[tuple[str, list["re.Pattern[str]"]]] = []


def command_shape(argv: Sequence[str]) -> str:
    """The name in command_shapes() of the command `argv` ("unknown: ..." for none)."""
    if not _SHAPES:
        _SHAPES.extend((name, [_word_pattern(w) for w in words]) for name, words in command_shapes().items())
    for name, patterns in _SHAPES:
        if len(patterns) == len(argv) and all(p.fullmatch(w) for p, w in zip(patterns, argv)):
            return name
    return "unknown: " + " ".join(argv)


def parse_names(stdout: str) -> list[str]:
    """`kubectl ... -o name` -> ["service/web", "deployment.apps/web"]."""
    return [line.strip() for line in stdout.splitlines() if line.strip()]


def parse_objects(stdout: str, what: str) -> list:
    """`kubectl get ... -o json` -> model objects, through labkit's own loader.

    The API server's output is a valid manifest (a v1 List); reading it with
    the same loader as the learner's files means the kind lab and the other
    labs see objects with the same defaults.
    """
    from labkit.model.load import load_manifests

    try:
        json.loads(stdout)
    except ValueError as e:
        raise LabkitError(f"{what}: kubectl did not print JSON ({e}); is kubectl older than the cluster? "
                          "(fix: install a kubectl within one minor version of the cluster)") from None
    return load_manifests(stdout, what)


def lab_pods(pods: Sequence) -> list:
    """The learner's pods: everything outside the system namespaces and labkit's own."""
    return [p for p in pods if p.meta.namespace not in SYSTEM_NAMESPACES]


def probe_pods_by_node(pods: Sequence) -> dict[str, str]:
    """{node: probe pod name} for the probe DaemonSet's pods that are running."""
    return {p.node_name: p.meta.name for p in pods
            if p.meta.namespace == PROBE_NAMESPACE and p.meta.labels.get("app") == PROBE_APP
            and p.node_name and not p.terminating}


def node_internal_ips(nodes: Sequence) -> dict[str, str]:
    """{node name: InternalIP} from model Node objects."""
    out = {}
    for n in nodes:
        for a in n.addresses:
            if a.type == "InternalIP":
                out.setdefault(n.meta.name, a.address)
    return out
