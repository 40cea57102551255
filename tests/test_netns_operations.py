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
