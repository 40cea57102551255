"""The kind cluster the recordings describe, as the API server would print it (used by make_recordings.py).

kind v0.24 (kindest/node v1.31.0), the default config (one control plane, two
workers), after `labkit up --backend kind -f tests/kind_recordings/manifests.yaml`:
three agnhost netexec pods behind Service default/web (10.96.0.80), a client
pod, labkit's probe DaemonSet, and kind's own kube-system pods.
"""
from __future__ import annotations

NODES = [("kind-control-plane", "172.18.0.2", "10.244.0.0/24"),
         ("kind-worker", "172.18.0.3", "10.244.1.0/24"),
         ("kind-worker2", "172.18.0.4", "10.244.2.0/24")]
T0 = "2024-10-01T09:12:03Z"
T1 = "2024-10-01T09:20:41Z"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"

# (namespace, name, node, ip, labels, owner kind, owner name, image, host network)
PODS = [
    ("default", "client", "kind-worker", "10.244.1.2", {"app": "client"}, "", "", AGNHOST, False),
    ("default", "web-5d9c7b8f6d-2xkqp", "kind-worker", "10.244.1.3",
     {"app": "web", "pod-template-hash": "5d9c7b8f6d"}, "ReplicaSet", "web-5d9c7b8f6d", AGNHOST, False),
    ("default", "web-5d9c7b8f6d-7fjlm", "kind-worker2", "10.244.2.2",
     {"app": "web", "pod-template-hash": "5d9c7b8f6d"}, "ReplicaSet", "web-5d9c7b8f6d", AGNHOST, False),
    ("default", "web-5d9c7b8f6d-q8vzn", "kind-worker2", "10.244.2.3",
     {"app": "web", "pod-template-hash": "5d9c7b8f6d"}, "ReplicaSet", "web-5d9c7b8f6d", AGNHOST, False),
    ("kube-system", "coredns-7c65d6cfc9-8mxvq", "kind-control-plane", "10.244.0.3",
     {"k8s-app": "kube-dns", "pod-template-hash": "7c65d6cfc9"}, "ReplicaSet", "coredns-7c65d6cfc9",
     "registry.k8s.io/coredns/coredns:v1.11.3", False),
    ("kube-system", "coredns-7c65d6cfc9-x9q2d", "kind-control-plane", "10.244.0.2",
     {"k8s-app": "kube-dns", "pod-template-hash": "7c65d6cfc9"}, "ReplicaSet", "coredns-7c65d6cfc9",
     "registry.k8s.io/coredns/coredns:v1.11.3", False),
    ("kube-system", "etcd-kind-control-plane", "kind-control-plane", "172.18.0.2",
     {"component": "etcd", "tier": "control-plane"}, "Node", "kind-control-plane",
     "registry.k8s.io/etcd:3.5.15-0", True),
    ("kube-system", "kube-proxy-4lq7w", "kind-worker", "172.18.0.3",
     {"k8s-app": "kube-proxy"}, "DaemonSet", "kube-proxy", "registry.k8s.io/kube-proxy:v1.31.0", True),
    ("kube-system", "kindnet-h2x8d", "kind-worker", "172.18.0.3",
     {"app": "kindnet", "k8s-app": "kindnet"}, "DaemonSet", "kindnet",
     "docker.io/kindest/kindnetd:v20240813-c6f155d6", True),
    ("local-path-storage", "local-path-provisioner-57c5987fd4-zq7d2", "kind-control-plane", "10.244.0.4",
     {"app": "local-path-provisioner"}, "ReplicaSet", "local-path-provisioner-57c5987fd4",
     "docker.io/kindest/local-path-provisioner:v20240813-c6f155d6", False),
    ("labkit", "labkit-probe-9tq4s", "kind-control-plane", "172.18.0.2", {"app": "labkit-probe"},
     "DaemonSet", "labkit-probe", "{PROBE_IMAGE}", True),
    ("labkit", "labkit-probe-b7kxm", "kind-worker", "172.18.0.3", {"app": "labkit-probe"},
     "DaemonSet", "labkit-probe", "{PROBE_IMAGE}", True),
    ("labkit", "labkit-probe-wr5fz", "kind-worker2", "172.18.0.4", {"app": "labkit-probe"},
     "DaemonSet", "labkit-probe", "{PROBE_IMAGE}", True),
]

# (namespace, name, cluster IP, [(port name, port, protocol, target port)], selector, labels)
SERVICES = [
    ("default", "kubernetes", "10.96.0.1", [("https", 443, "TCP", 6443)], None,
     {"component": "apiserver", "provider": "kubernetes"}),
    ("default", "web", "10.96.0.80", [("http", 80, "TCP", 80)], {"app": "web"}, {"app": "web"}),
    ("kube-system", "kube-dns", "10.96.0.10",
     [("dns", 53, "UDP", 53), ("dns-tcp", 53, "TCP", 53), ("metrics", 9153, "TCP", 9153)],
     {"k8s-app": "kube-dns"},
     {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}),
]

# (namespace, slice name, service, [(port name, port, protocol)], [(ip, node, pod name)])
SLICES = [
    ("default", "kubernetes", "kubernetes", [("https", 6443, "TCP")], [("172.18.0.2", "", "")]),
    ("default", "web-8hq4r", "web", [("http", 80, "TCP")],
     [("10.244.1.3", "kind-worker", "web-5d9c7b8f6d-2xkqp"), ("10.244.2.2", "kind-worker2", "web-5d9c7b8f6d-7fjlm"),
      ("10.244.2.3", "kind-worker2", "web-5d9c7b8f6d-q8vzn")]),
    ("kube-system", "kube-dns-vx2fl", "kube-dns",
     [("dns-tcp", 53, "TCP"), ("dns", 53, "UDP"), ("metrics", 9153, "TCP")],
     [("10.244.0.2", "kind-control-plane", "coredns-7c65d6cfc9-x9q2d"),
      ("10.244.0.3", "kind-control-plane", "coredns-7c65d6cfc9-8mxvq")]),
]


def _uid(n: int) -> str:
    return f"5f8c1a2e-8f3b-4f0e-9a51-{n:012x}"


def pod_json(i: int, pod, ready: bool = True, waiting: str = "") -> dict:
    ns, name, node, ip, labels, okind, oname, image, host = pod
    meta = {"creationTimestamp": T1, "labels": labels, "name": name, "namespace": ns,
            "resourceVersion": str(1400 + i), "uid": _uid(100 + i)}
    if okind:
        api = "apps/v1" if okind in ("ReplicaSet", "DaemonSet") else "v1"
        meta["ownerReferences"] = [{"apiVersion": api, "blockOwnerDeletion": True, "controller": True,
                                    "kind": okind, "name": oname, "uid": _uid(900 + i)}]
        if okind in ("ReplicaSet", "DaemonSet"):
            meta["generateName"] = name.rsplit("-", 1)[0] + "-"
    container = {"image": image, "imagePullPolicy": "IfNotPresent", "name": name.split("-")[0],
                 "resources": {}, "terminationMessagePath": "/dev/termination-log",
                 "terminationMessagePolicy": "File"}
    if image.endswith("agnhost:2.53"):
        container["args"] = ["netexec", "--http-port=80", "--udp-port=8081"]
        container["ports"] = [{"containerPort": 80, "name": "http", "protocol": "TCP"},
                              {"containerPort": 8081, "name": "udp", "protocol": "UDP"}]
    spec = {"containers": [container], "dnsPolicy": "ClusterFirst", "enableServiceLinks": True,
            "nodeName": node, "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
            "restartPolicy": "Always", "schedulerName": "default-scheduler", "securityContext": {},
            "serviceAccount": "default", "serviceAccountName": "default", "terminationGracePeriodSeconds": 30}
    if host:
        spec["hostNetwork"] = True
    status = "True" if ready else "False"
    state = {"running": {"startedAt": T1}} if ready else {"waiting": {"reason": waiting or "ContainerCreating"}}
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
        "status": {
            "conditions": [
                {"lastProbeTime": None, "lastTransitionTime": T1, "status": status,
                 "type": "PodReadyToStartContainers"},
                {"lastProbeTime": None, "lastTransitionTime": T1, "status": "True", "type": "Initialized"},
                {"lastProbeTime": None, "lastTransitionTime": T1, "status": status, "type": "Ready"},
                {"lastProbeTime": None, "lastTransitionTime": T1, "status": status, "type": "ContainersReady"},
                {"lastProbeTime": None, "lastTransitionTime": T1, "status": "True", "type": "PodScheduled"},
            ],
            "containerStatuses": [{"image": image, "imageID": "", "name": container["name"], "ready": ready,
                                   "restartCount": 0, "started": ready, "state": state,
                                   "containerID": "containerd://" + "%064x" % (i + 1) if ready else None}],
            "hostIP": dict((n, a) for n, a, _ in NODES)[node],
            "hostIPs": [{"ip": dict((n, a) for n, a, _ in NODES)[node]}],
            "phase": "Running" if ready else "Pending",
            "podIP": ip if (ready or host) else None,
            "podIPs": [{"ip": ip}] if (ready or host) else None,
            "qosClass": "BestEffort", "startTime": T1,
        },
    }


def strip_none(x):
    if isinstance(x, dict):
        return {k: strip_none(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [strip_none(v) for v in x]
    return x


def deployment_json(ready: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"annotations": {"deployment.kubernetes.io/revision": "1"}, "creationTimestamp": T1,
                         "generation": 1, "labels": {"app": "web"}, "name": "web", "namespace": "default",
                         "resourceVersion": "1511", "uid": _uid(50)},
            "spec": {"progressDeadlineSeconds": 600, "replicas": 3, "revisionHistoryLimit": 10,
                     "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                                  "type": "RollingUpdate"},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "agnhost", "image": AGNHOST,
                                                           "args": ["netexec", "--http-port=80",
                                                                    "--udp-port=8081"]}]}}},
            "status": {"availableReplicas": ready, "observedGeneration": 1, "readyReplicas": ready,
                       "replicas": 3, "updatedReplicas": 3}}


def service_json(i: int, svc) -> dict:
    ns, name, ip, ports, selector, labels = svc
    spec = {"clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": pn, "port": p, "protocol": proto, "targetPort": tp} for pn, p, proto, tp in ports],
            "sessionAffinity": "None", "type": "ClusterIP"}
    if selector:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"creationTimestamp": T0, "labels": labels, "name": name, "namespace": ns,
                         "resourceVersion": str(230 + i), "uid": _uid(200 + i)},
            "spec": spec, "status": {"loadBalancer": {}}}


def slice_json(i: int, sl) -> dict:
    ns, name, svc, ports, eps = sl
    labels = {"kubernetes.io/service-name": svc}
    if svc != "kubernetes":
        labels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io"
    else:
        labels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io"
    endpoints = []
    for ip, node, pod in eps:
        e = {"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False}}
        if node:
            e["nodeName"] = node
            e["targetRef"] = {"kind": "Pod", "name": pod, "namespace": ns, "uid": _uid(300 + len(endpoints))}
        endpoints.append(e)
    return {"addressType": "IPv4", "apiVersion": "discovery.k8s.io/v1", "endpoints": endpoints,
            "kind": "EndpointSlice",
            "metadata": {"creationTimestamp": T0, "generateName": f"{svc}-" if svc != "kubernetes" else None,
                         "generation": 1, "labels": labels, "name": name, "namespace": ns,
                         "resourceVersion": str(1500 + i), "uid": _uid(400 + i)},
            "ports": [{"name": pn, "port": p, "protocol": proto} for pn, p, proto in ports]}


def node_json(i: int, node) -> dict:
    name, ip, cidr = node
    labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    spec = {"podCIDR": cidr, "podCIDRs": [cidr], "providerID": f"kind://docker/kind/{name}"}
    if name.endswith("control-plane"):
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        spec["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"creationTimestamp": T0, "labels": labels, "name": name,
                         "resourceVersion": str(600 + i), "uid": _uid(500 + i)},
            "spec": spec,
            "status": {"addresses": [{"address": ip, "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
                       "conditions": [{"lastHeartbeatTime": T1, "lastTransitionTime": T0,
                                       "message": "kubelet is posting ready status", "reason": "KubeletReady",
                                       "status": "True", "type": "Ready"}],
                       "nodeInfo": {"architecture": "amd64", "containerRuntimeVersion": "containerd://1.7.18",
                                    "kernelVersion": "6.1.0-25-amd64", "kubeProxyVersion": "",
                                    "kubeletVersion": "v1.31.0", "operatingSystem": "linux",
                                    "osImage": "Debian GNU/Linux 12 (bookworm)"}}}


def as_list(items) -> dict:
    return {"apiVersion": "v1", "items": [strip_none(x) for x in items], "kind": "List",
            "metadata": {"resourceVersion": ""}}
