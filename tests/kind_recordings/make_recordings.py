"""Writes the recordings the kind backend's tests replay (run once; the output is kept in git).

    python tests/kind_recordings/make_recordings.py

Nothing here ran against a live cluster (no Docker engine on the project's
machines). The output of iptables-save, conntrack and xtables-monitor is real:
it is read from captured/, which capture_from_kernel_lab.py fills by running
those programs in labkit's kernel lab (real namespaces, real nf_tables and
conntrack) with the same workload (manifests.yaml), the same addresses and
the same client ports; see captured/README.md. The rest (kind, kubectl and
docker's own messages and JSON, labkit-probe's JSON) is written by hand in
the documented format of the real program (kind v0.24, kubectl v1.31, docker
27, agnhost netexec), from the objects in cluster.py, except the Services and
EndpointSlices the compare recordings serve: those are the kernel lab's own
(the same manifests under the same seed), so that the captured node rules
are their rendering. One conntrack line is still hand-written: the outside
client's (a container on kind's docker network talking to the API server on
6443 has no kernel-lab counterpart). `{PROBE_IMAGE}` and `{PROBE_DIR}` are
filled in by the tests (they depend on the probe files and on where labkit
is installed).
"""
from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import cluster as C  # noqa: E402

CTX = ["kubectl", "--context", "kind-kind"]
GET_PODS = CTX + ["get", "pods", "--all-namespaces", "-o", "json"]
GET_NODES = CTX + ["get", "nodes", "-o", "json"]
POLL = CTX + ["get", "pods,deployments", "--all-namespaces", "-o", "json"]
CONNTRACK_FOOTER = "conntrack v1.4.7 (conntrack-tools): {n} flow entries have been shown.\n"
CAPTURED = HERE / "captured"


def captured(name: str) -> str:
    """A file captured from the kernel lab (capture_from_kernel_lab.py)."""
    return (CAPTURED / name).read_text()


def sports(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(f"{seed}:probes")
    return [rng.randrange(32768, 61000) for _ in range(n)]


class Recording:
    def __init__(self, name: str):
        self.dir = HERE / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir()
        self.calls: list[dict] = []
        self.files = 0

    def call(self, argv, stdout="", stderr="", returncode=0, stdin_file="", name="") -> None:
        entry: dict = {"argv": list(argv)}
        if stdin_file:
            entry["stdin_file"] = stdin_file
        for key, text in (("stdout", stdout), ("stderr", stderr)):
            if not text:
                continue
            if len(text) > 200 or text.count("\n") > 2:
                self.files += 1
                fname = f"{self.files:02d}-{name or argv[0]}.{key}"
                (self.dir / fname).write_text(text)
                entry[f"{key}_file"] = fname
            else:
                entry[key] = text
        if returncode:
            entry["returncode"] = returncode
        self.calls.append(entry)

    def file(self, name: str, text: str) -> str:
        (self.dir / name).write_text(text)
        return name

    def save(self) -> None:
        (self.dir / "calls.yaml").write_text(yaml.safe_dump(self.calls, sort_keys=False, width=200))


def js(obj) -> str:
    return json.dumps(obj, indent=4) + "\n"


def pods_list(not_ready: tuple[str, ...] = ()) -> str:
    return js(C.as_list([C.pod_json(i, p, ready=p[1] not in not_ready) for i, p in enumerate(C.PODS)]))


def nodes_list() -> str:
    return js(C.as_list([C.node_json(i, n) for i, n in enumerate(C.NODES)]))


CREATE_LOG = """\
Creating cluster "kind" ...
 • Ensuring node image (kindest/node:v1.31.0) 🖼  ...
 ✓ Ensuring node image (kindest/node:v1.31.0) 🖼
 • Preparing nodes 📦 📦 📦   ...
 ✓ Preparing nodes 📦 📦 📦 
 • Writing configuration 📜  ...
 ✓ Writing configuration 📜
 • Starting control-plane 🕹️  ...
 ✓ Starting control-plane 🕹️
 • Installing CNI 🔌  ...
 ✓ Installing CNI 🔌
 • Installing StorageClass 💾  ...
 ✓ Installing StorageClass 💾
 • Joining worker nodes 🚜  ...
 ✓ Joining worker nodes 🚜
Set kubectl context to "kind-kind"
You can now use your cluster with:

kubectl cluster-info --context kind-kind

Have a nice day! 👋
"""

BUILD_LOG = """\
#0 building with "default" instance using docker driver

#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 512B done
#1 DONE 0.0s

#2 [internal] load metadata for docker.io/library/python:3.12-slim
#2 DONE 1.2s

#3 [1/4] FROM docker.io/library/python:3.12-slim@sha256:af4e85f1cac90dd3771e47292ea7c8a9830abfabbe4faa5c53f158854c2e819d
#3 DONE 4.1s

#4 [2/4] RUN pip install --no-cache-dir "scapy==2.6.1"
#4 DONE 6.3s

#5 [3/4] COPY labkit_probe.py /usr/local/bin/labkit-probe
#5 DONE 0.0s

#6 [4/4] RUN chmod 0755 /usr/local/bin/labkit-probe
#6 DONE 0.3s

#7 exporting to image
#7 exporting layers 0.4s done
#7 writing image sha256:3f9b2c8d7e6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c done
#7 naming to docker.io/library/{PROBE_IMAGE} done
#7 DONE 0.4s
"""

LOAD_LOG = "".join(
    f'Image: "{{PROBE_IMAGE}}" with ID "sha256:3f9b2c8d7e6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c" '
    f'not yet present on node "{n}", loading...\n' for n in ("kind-worker2", "kind-control-plane", "kind-worker"))


def poll(not_ready=(), deployment_ready=3) -> str:
    items = [C.pod_json(i, p, ready=p[1] not in not_ready) for i, p in enumerate(C.PODS)]
    return js(C.as_list(items + [C.deployment_json(deployment_ready)]))


def make_up() -> None:
    r = Recording("up")
    manifests = (HERE / "manifests.yaml").read_text()
    r.file("manifests.yaml", manifests)
    from labkit.backends.kind.lab import DEFAULT_KIND_CONFIG
    from labkit.backends.kind.probe_pods import render_probe_daemonset

    r.file("kind-config.yaml", DEFAULT_KIND_CONFIG)
    r.file("probe-daemonset.yaml", render_probe_daemonset("{PROBE_IMAGE}"))
    r.call(["docker", "info", "--format", "{{.ServerVersion}}"], stdout="27.3.1\n")
    r.call(["kind", "get", "clusters"], stderr="No kind clusters found.\n")
    r.call(["kind", "create", "cluster", "--name", "kind", "--config", "-"], stderr=CREATE_LOG,
           stdin_file="kind-config.yaml", name="kind-create")
    r.call(["docker", "image", "inspect", "--format", "{{.Id}}", "{PROBE_IMAGE}"],
           stderr="Error response from daemon: No such image: {PROBE_IMAGE}\n", returncode=1)
    r.call(["docker", "build", "--tag", "{PROBE_IMAGE}", "{PROBE_DIR}"], stderr=BUILD_LOG, name="docker-build")
    r.call(["kind", "load", "docker-image", "{PROBE_IMAGE}", "--name", "kind"], stderr=LOAD_LOG, name="kind-load")
    r.call(CTX + ["apply", "-f", "-", "-o", "name"], stdin_file="probe-daemonset.yaml",
           stdout="namespace/labkit\ndaemonset.apps/labkit-probe\n")
    r.call(CTX + ["apply", "-f", "-", "-o", "name"], stdin_file="manifests.yaml",
           stdout="deployment.apps/web\nservice/web\npod/client\n")
    r.call(CTX + ["wait", "--for=condition=Ready", "nodes", "--all", "--timeout=300s"],
           stdout="".join(f"node/{n} condition met\n" for n, _, _ in C.NODES))
    r.call(POLL, stdout=poll(("web-5d9c7b8f6d-7fjlm", "web-5d9c7b8f6d-q8vzn", "labkit-probe-wr5fz"), 1),
           name="poll-1")
    r.call(POLL, stdout=poll(("web-5d9c7b8f6d-q8vzn",), 2), name="poll-2")
    r.call(POLL, stdout=poll(), name="poll-3")
    r.save()


def make_up_failures() -> None:
    r = Recording("up_cluster_exists")
    r.call(["docker", "info", "--format", "{{.ServerVersion}}"], stdout="27.3.1\n")
    r.call(["kind", "get", "clusters"], stdout="kind\n")
    r.save()
    r = Recording("up_no_engine")
    r.call(["docker", "info", "--format", "{{.ServerVersion}}"], returncode=1,
           stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                  "Is the docker daemon running?\n")
    r.save()
    r = Recording("up_create_fails")
    r.file("kind-config.yaml", (HERE / "up" / "kind-config.yaml").read_text())
    r.call(["docker", "info", "--format", "{{.ServerVersion}}"], stdout="27.3.1\n")
    r.call(["kind", "get", "clusters"], stderr="No kind clusters found.\n")
    r.call(["kind", "create", "cluster", "--name", "kind", "--config", "-"], stdin_file="kind-config.yaml",
           returncode=1, stderr='Creating cluster "kind" ...\n ✓ Ensuring node image (kindest/node:v1.31.0) 🖼\n'
           ' ✗ Preparing nodes 📦 📦 📦 \nERROR: failed to create cluster: docker run error: command "docker run '
           '--name kind-control-plane ..." failed with error: exit status 125\n')
    r.call(["kind", "delete", "cluster", "--name", "kind"],
           stderr='Deleting cluster "kind" ...\n')
    r.save()


def make_probes() -> None:
    probe = CTX + ["--namespace", "labkit", "exec"]
    a, b = sports(2)
    r = Recording("probe_syn")
    r.call(GET_PODS, stdout=pods_list(), name="get-pods")
    r.call(probe + ["labkit-probe-b7kxm", "--", "labkit-probe", "syn", "--dst", "10.96.0.80", "--dport", "80",
                    "--sports", f"{a},{b}", "--timeout", "1.0", "--src-ip", "10.244.1.2"],
           stdout=json.dumps({"answer": "syn-ack", "reply_from": "10.96.0.80:80", "detail": "TCP flags SA",
                              "client": f"10.244.1.2:{a}"}) + "\n"
           + json.dumps({"answer": "syn-ack", "reply_from": "10.96.0.80:80", "detail": "TCP flags SA",
                         "client": f"10.244.1.2:{b}"}) + "\n", name="probe")
    r.call(["docker", "exec", "kind-worker", "conntrack", "-L"], stdout=captured("worker-syn.conntrack"),
           stderr=captured("worker-syn.conntrack.stderr"), name="conntrack")
    r.save()

    r = Recording("probe_no_endpoints")
    [c] = sports(1)
    r.call(GET_PODS, stdout=pods_list(), name="get-pods")
    r.call(probe + ["labkit-probe-b7kxm", "--", "labkit-probe", "syn", "--dst", "10.96.0.99", "--dport", "80",
                    "--sports", str(c), "--timeout", "1.0", "--src-ip", "10.244.1.2"],
           stdout=json.dumps({"answer": "icmp", "reply_from": "10.244.1.1",
                              "detail": "ICMP destination unreachable (code 3)", "client": f"10.244.1.2:{c}"}) + "\n")
    r.save()

    r = Recording("http")
    r.call(GET_PODS, stdout=pods_list(), name="get-pods")
    r.call(probe + ["labkit-probe-b7kxm", "--", "labkit-probe", "http", "--dst", "10.96.0.80", "--dport", "80",
                    "--path", "/hostname", "--timeout", "2.0", "--src-ip", "10.244.1.2"],
           stdout=json.dumps({"ok": True, "status": 200, "body": "web-5d9c7b8f6d-7fjlm",
                              "hostname": "web-5d9c7b8f6d-7fjlm", "client_seen_as": "10.244.1.2:41236",
                              "local": "10.244.1.2:41236", "peer": "10.96.0.80:80", "error": ""}) + "\n")
    r.save()

    r = Recording("udp")
    [u] = sports(1)
    r.call(GET_PODS, stdout=pods_list(), name="get-pods")
    r.call(probe + ["labkit-probe-wr5fz", "--", "labkit-probe", "udp", "--dst", "10.244.1.2", "--dport", "8081",
                    "--sport", str(u), "--timeout", "1.0", "--src-ip", "10.244.2.2"],
           stdout=json.dumps({"ok": True, "body": "client", "hostname": "client",
                              "client_seen_as": f"10.244.2.2:{u}", "local": f"10.244.2.2:{u}",
                              "reply_from": "10.244.1.2:8081", "error": ""}) + "\n")
    r.save()

    r = Recording("node_probe")
    [n] = sports(1)
    r.call(GET_PODS, stdout=pods_list(), name="get-pods")
    r.call(GET_NODES, stdout=nodes_list(), name="get-nodes")
    r.call(probe + ["labkit-probe-9tq4s", "--", "labkit-probe", "syn", "--dst", "10.96.0.80", "--dport", "80",
                    "--sports", str(n), "--timeout", "1.0"],
           stdout=json.dumps({"answer": "syn-ack", "reply_from": "10.96.0.80:80", "detail": "TCP flags SA",
                              "client": f"172.18.0.2:{n}"}) + "\n")
    r.call(["docker", "exec", "kind-control-plane", "conntrack", "-L"], stdout=captured("control-plane-syn.conntrack"),
           stderr=captured("control-plane-syn.conntrack.stderr"))
    r.save()

    r = Recording("outside")
    [o] = sports(1)
    r.call(GET_PODS, stdout=pods_list(), name="get-pods")
    r.call(["docker", "run", "--rm", "--network", "kind", "--cap-add", "NET_RAW", "--cap-add", "NET_ADMIN",
            "{PROBE_IMAGE}", "labkit-probe", "syn", "--dst", "172.18.0.2", "--dport", "6443", "--sports", str(o),
            "--timeout", "1.0"],
           stdout=json.dumps({"answer": "syn-ack", "reply_from": "172.18.0.2:6443", "detail": "TCP flags SA",
                              "client": f"172.18.0.5:{o}"}) + "\n")
    r.call(GET_NODES, stdout=nodes_list(), name="get-nodes")
    r.call(["docker", "exec", "kind-control-plane", "conntrack", "-L"], stdout=(
        f"tcp      6 9 CLOSE src=172.18.0.5 dst=172.18.0.2 sport={o} dport=6443 src=172.18.0.2 dst=172.18.0.5 "
        f"sport=6443 dport={o} mark=0 use=1\n"), stderr=CONNTRACK_FOOTER.format(n=1))
    r.save()


def proxy_objects() -> str:
    """The kernel lab's Services and EndpointSlices (manifests.yaml, seed 0), as the API prints them."""
    from labkit.backends.kind.api_json import render_api_list
    from labkit.backends.sim.lab import SimLab

    sim = SimLab("kcap")
    sim.up((HERE / "manifests.yaml").read_text(), "manifests.yaml")
    return render_api_list(list(sim.state.services) + list(sim.state.endpoint_slices))


def altered(text: str) -> str:
    """The same node text with two deliberate changes: a wrong probability, a missing NodePort dispatch rule."""
    out = []
    done_prob = False
    for line in text.splitlines():
        if not done_prob and "--probability 0.33333333349" in line:
            line = line.replace("0.33333333349", "0.50000000000")
            done_prob = True
        if line.startswith("-A KUBE-SERVICES") and "-j KUBE-NODEPORTS" in line:
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def make_rules() -> None:
    (HERE / "kube-proxy-config.conf").exists() or sys.exit("kube-proxy-config.conf is missing")
    save = captured("node-kind-worker.iptables-save")
    for name, text in (("compare", save), ("compare_altered", altered(save))):
        r = Recording(name)
        r.call(CTX + ["get", "services,endpointslices.discovery.k8s.io", "--all-namespaces", "-o", "json"],
               stdout=proxy_objects(), name="get-proxy-objects")
        r.call(CTX + ["--namespace", "kube-system", "get", "configmap", "kube-proxy", "-o",
                      "jsonpath={.data.config\\.conf}"],
               stdout=(HERE / "kube-proxy-config.conf").read_text(), name="get-configmap")
        r.call(GET_NODES, stdout=nodes_list(), name="get-nodes")
        r.call(["docker", "exec", "kind-worker", "iptables-save"], stdout=text, name="iptables-save")
        r.save()
    r = Recording("rules_conntrack")
    r.call(["docker", "exec", "kind-worker", "iptables-save", "-t", "nat"],
           stdout=captured("node-kind-worker-nat.iptables-save"), name="iptables-save")
    r.call(["docker", "exec", "kind-worker2", "conntrack", "-L"], stdout=captured("empty.conntrack"),
           stderr=captured("empty.conntrack.stderr"))
    r.call(["docker", "exec", "kind-worker2", "conntrack", "-L"], stdout=captured("unprivileged.conntrack"),
           stderr=captured("unprivileged.conntrack.stderr"),
           returncode=int(captured("unprivileged.conntrack.returncode")))
    r.save()


def make_trace() -> None:
    r = Recording("trace")
    [t] = sports(1)
    r.call(GET_PODS, stdout=pods_list(), name="get-pods")
    match = ["-p", "tcp", "--sport", str(t), "--dport", "80", "-j", "TRACE"]
    r.call(["docker", "exec", "kind-worker", "xtables-monitor", "--trace"],
           stdout=captured("worker-trace.xtables-monitor"), name="xtables-monitor")
    r.call(["docker", "exec", "kind-worker", "iptables", "-t", "raw", "-I", "PREROUTING", "1"] + match)
    r.call(CTX + ["--namespace", "labkit", "exec", "labkit-probe-b7kxm", "--", "labkit-probe", "syn", "--dst",
                  "10.96.0.80", "--dport", "80", "--sports", str(t), "--timeout", "1.0", "--src-ip", "10.244.1.2"],
           stdout=json.dumps({"answer": "syn-ack", "reply_from": "10.96.0.80:80", "detail": "TCP flags SA",
                              "client": f"10.244.1.2:{t}"}) + "\n")
    r.call(["docker", "exec", "kind-worker", "iptables", "-t", "raw", "-D", "PREROUTING"] + match)
    r.call(["docker", "exec", "kind-worker", "iptables-save"], stdout=captured("worker-trace.iptables-save"),
           name="iptables-save")
    r.save()


def make_changes() -> None:
    r = Recording("changes")
    scaled = (HERE / "manifests.yaml").read_text().replace("replicas: 3", "replicas: 3")
    r.file("more.yaml", """\
apiVersion: v1
kind: Service
metadata: {name: web-lb, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80}]
""")
    del scaled
    lb = C.service_json(9, ("default", "web-lb", "10.96.211.7", [("http", 80, "TCP", 80)], {"app": "web"}, {}))
    lb["spec"]["type"] = "LoadBalancer"
    lb["spec"]["ports"][0]["nodePort"] = 31482
    lb["spec"]["externalTrafficPolicy"] = "Cluster"
    lb["spec"]["allocateLoadBalancerNodePorts"] = True
    services = [C.service_json(i, s) for i, s in enumerate(C.SERVICES)] + [lb]
    r.call(CTX + ["apply", "-f", "-", "-o", "name"], stdin_file="more.yaml", stdout="service/web-lb\n")
    r.call(POLL, stdout=poll(), name="poll")
    r.call(CTX + ["get", "services", "--all-namespaces", "-o", "json"], stdout=js(C.as_list(services)),
           name="get-services")
    r.call(CTX + ["--namespace", "default", "scale", "deployment/web", "--replicas=1"],
           stdout="deployment.apps/web scaled\n")
    terminating = json.loads(poll(deployment_ready=1))
    for item in terminating["items"]:
        if item["metadata"]["name"] in ("web-5d9c7b8f6d-7fjlm", "web-5d9c7b8f6d-q8vzn"):
            item["metadata"]["deletionTimestamp"] = "2024-10-01T09:30:02Z"
            item["metadata"]["deletionGracePeriodSeconds"] = 30
        if item["kind"] == "Deployment":
            item["spec"]["replicas"] = 1
            item["metadata"]["generation"] = 2
            item["status"].update({"observedGeneration": 2, "readyReplicas": 1, "replicas": 3,
                                   "updatedReplicas": 1})
    r.call(POLL, stdout=js(terminating), name="poll-terminating")
    done = json.loads(poll(deployment_ready=1))
    done["items"] = [i for i in done["items"] if i["metadata"]["name"] not in ("web-5d9c7b8f6d-7fjlm",
                                                                                "web-5d9c7b8f6d-q8vzn")]
    for item in done["items"]:
        if item["kind"] == "Deployment":
            item["spec"]["replicas"] = 1
            item["metadata"]["generation"] = 2
            item["status"].update({"observedGeneration": 2, "readyReplicas": 1, "replicas": 1,
                                   "updatedReplicas": 1, "availableReplicas": 1})
    r.call(POLL, stdout=js(done), name="poll-scaled")
    r.call(CTX + ["delete", "-f", "-", "--ignore-not-found", "-o", "name"], stdin_file="more.yaml",
           stdout="service/web-lb\n")
    r.call(POLL, stdout=js(done), name="poll-deleted")
    r.save()

    r = Recording("down")
    r.call(["kind", "delete", "cluster", "--name", "kind"],
           stderr='Deleting cluster "kind" ...\nDeleted nodes: ["kind-worker2" "kind-control-plane" "kind-worker"]\n')
    r.save()


if __name__ == "__main__":
    make_up()
    make_up_failures()
    make_probes()
    make_rules()
    make_trace()
    make_changes()
