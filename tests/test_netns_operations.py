"""apply / delete / scale as pure steps on the cluster state, replayable from the record."""
from labkit.backends import operations as ops
from labkit.controllers.cluster import ClusterSettings
from labkit.model.load import load_manifests

NODES = ("kind-control-plane", "kind-worker", "kind-worker2")
WEB = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: agnhost}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
"""


def _pods(state):
    return sorted((p.meta.name, p.node_name, p.pod_ip) for p in state.pods)


def test_apply_then_scale_keeps_surviving_pods_where_they_were():
    s0 = ops.settle([], ClusterSettings(), 0, 0, NODES)
    s1 = ops.apply_objects(s0, load_manifests(WEB), 0, 1, NODES)
    assert len(s1.pods) == 3
    s2 = ops.scale_deployment(s1, "default", "web", 1, 0, 2, NODES)
    assert len(s2.pods) == 1
    assert _pods(s2)[0] in _pods(s1)
    endpoints = [a for sl in s2.endpoint_slices for e in sl.endpoints for a in e.addresses]
    assert endpoints == [s2.pods[0].pod_ip]
    s3 = ops.scale_deployment(s2, "default", "web", 4, 0, 3, NODES)
    assert len(s3.pods) == 4 and set(_pods(s2)) <= set(_pods(s3))


def test_delete_a_deployment_takes_its_pods():
    s1 = ops.apply_objects(ops.settle([], ClusterSettings(), 0, 0, NODES), load_manifests(WEB), 0, 1, NODES)
    s2 = ops.delete_objects(s1, load_manifests(WEB.split("---")[0]), 0, 2, NODES)
    assert s2.pods == () and [s.meta.name for s in s2.services] == ["web"]


def test_replay_rebuilds_the_same_cluster():
    record = [{"op": "apply", "text": WEB}, {"op": "scale", "namespace": "default", "name": "web", "replicas": 2}]
    a = ops.replay(record, ClusterSettings(), 7, NODES)
    b = ops.replay(record, ClusterSettings(), 7, NODES)
    assert _pods(a) == _pods(b) and len(a.pods) == 2
    assert [s.cluster_ip for s in a.services] == [s.cluster_ip for s in b.services]


LB = """apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: alt, port: 81, targetPort: 8080}]
"""


def test_applying_a_service_again_keeps_what_the_api_server_allocated():
    """patchAllocatedValues: ClusterIP, NodePorts by port name and healthCheckNodePort survive."""
    s0 = ops.settle([], ClusterSettings(), 0, 0, NODES)
    s1 = ops.apply_objects(s0, load_manifests(WEB + "---\n" + LB), 0, 1, NODES)
    before = {s.meta.name: s for s in s1.services}
    fixed = WEB.replace("selector: {app: web}, ports", "selector: {app: web, tier: x}, ports")
    s2 = ops.apply_objects(s1, load_manifests(fixed + "---\n" + LB), 0, 2, NODES)
    after = {s.meta.name: s for s in s2.services}
    assert after["web"].cluster_ip == before["web"].cluster_ip
    assert after["web"].selector == {"app": "web", "tier": "x"}
    assert after["lb"].cluster_ip == before["lb"].cluster_ip
    assert [p.node_port for p in after["lb"].ports] == [p.node_port for p in before["lb"].ports]
    assert after["lb"].health_check_node_port == before["lb"].health_check_node_port != 0


def test_a_node_port_taken_by_another_port_is_not_patched_back():
    old = load_manifests(LB)[0]
    from dataclasses import replace

    old = replace(old, ports=tuple(replace(p, node_port=30100 + i) for i, p in enumerate(old.ports)))
    new = load_manifests(LB.replace("{name: alt, port: 81, targetPort: 8080}",
                                    "{name: alt, port: 81, targetPort: 8080, nodePort: 30100}"))[0]
    patched = ops.patch_allocated_values(new, old)
    assert [p.node_port for p in patched.ports] == [0, 30100]
