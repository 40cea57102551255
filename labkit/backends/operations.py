"""What `apply`, `delete` and `scale` do to a cluster's objects (pure).

Each operation takes the settled ClusterState and returns the next one,
through `reconcile` like the real controllers: existing pods keep their
names, nodes and IPs; new ones are placed; EndpointSlices are recomputed.
Step n draws its randomness from Random(f"{seed}:{n}"), so replaying the
recorded operations in another process rebuilds exactly the same cluster
(that is how `labkit apply` continues a lab made by `labkit up`).
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from typing import Iterable, Mapping, Sequence

from labkit.controllers.cluster import ClusterSettings, ClusterState, reconcile
from labkit.controllers.deployments import owned_pods
from labkit.errors import LabkitError
from labkit.model.objects import Deployment, EndpointSlice, KubeObject, MANAGED_BY_LABEL, Pod, Service
from labkit.model.selectors import selector_matches

_CONTROLLER = "endpointslice-controller.k8s.io"


def _key(obj: KubeObject) -> tuple[str, str, str]:
    return (obj.kind, obj.meta.namespace, obj.meta.name)


def _given(state: ClusterState) -> list[KubeObject]:
    """The state's objects minus what the controllers will recompute (managed EndpointSlices)."""
    return [
        o for o in state.objects()
        if not (isinstance(o, EndpointSlice) and o.meta.labels.get(MANAGED_BY_LABEL) == _CONTROLLER)
    ]


def settle(objects: Sequence[KubeObject], settings: ClusterSettings, seed: int, step: int,
           node_names: Sequence[str], last_pod_ips: Mapping[str, str] = {}) -> ClusterState:
    objects = _drop_surplus_pods(list(objects))
    return reconcile(objects, settings, random.Random(f"{seed}:{step}"), node_names=node_names,
                     admit=True, last_pod_ips=last_pod_ips)


def apply_objects(state: ClusterState, new: Iterable[KubeObject], seed: int, step: int,
                  node_names: Sequence[str]) -> ClusterState:
    """`kubectl apply`: create or replace objects by kind, namespace and name."""
    objs = {_key(o): o for o in _given(state)}
    for o in new:
        old = objs.get(_key(o))
        if isinstance(o, Pod) and isinstance(old, Pod) and not o.pod_ip:
            o = replace(o, node_name=o.node_name or old.node_name, pod_ip=old.pod_ip)
        if isinstance(o, Service) and isinstance(old, Service):
            o = patch_allocated_values(o, old)
        objs[_key(o)] = o
    return settle(list(objs.values()), state.settings, seed, step, node_names, state.last_pod_ips)


def patch_allocated_values(new: Service, old: Service) -> Service:
    """The API server keeps what it allocated when a Service is applied again without it.

    As patchAllocatedValues in kubernetes/kubernetes pkg/registry/core/service/storage:
    the ClusterIP(s), NodePorts matched by port name (unless that nodePort is now taken by
    another port of the new spec), and the healthCheckNodePort -- so re-applying the same
    YAML, or fixing a selector, does not move the Service to a new address.
    """
    changes: dict = {}
    if new.type != "ExternalName" and old.type != "ExternalName":
        if not new.cluster_ip:
            changes["cluster_ip"] = old.cluster_ip
        if not new.cluster_ips and old.cluster_ips:
            changes["cluster_ips"] = old.cluster_ips
    node_port_types = ("NodePort", "LoadBalancer")
    if new.type in node_port_types and old.type in node_port_types:
        used = ({p.node_port for p in old.ports if p.node_port}
                & {p.node_port for p in new.ports if p.node_port})
        by_name = {p.name: p.node_port for p in old.ports}
        ports = tuple(
            replace(p, node_port=by_name[p.name])
            if not p.node_port and by_name.get(p.name) and by_name[p.name] not in used else p
            for p in new.ports)
        if ports != new.ports:
            changes["ports"] = ports

    def needs_hc(s: Service) -> bool:
        return s.type == "LoadBalancer" and s.external_traffic_policy == "Local"

    if needs_hc(new) and needs_hc(old) and not new.health_check_node_port:
        changes["health_check_node_port"] = old.health_check_node_port
    return replace(new, **changes) if changes else new


def delete_objects(state: ClusterState, gone: Iterable[KubeObject], seed: int, step: int,
                   node_names: Sequence[str]) -> ClusterState:
    """`kubectl delete`: remove objects; a Deployment takes its pods with it."""
    keys = {_key(o) for o in gone}
    objs = [o for o in _given(state) if _key(o) not in keys]
    deleted = [d for d in state.deployments if _key(d) in keys]
    objs = [o for o in objs if not (isinstance(o, Pod) and any(_owned_by(d, o) for d in deleted))]
    return settle(objs, state.settings, seed, step, node_names, state.last_pod_ips)


def scale_deployment(state: ClusterState, namespace: str, name: str, replicas: int, seed: int,
                     step: int, node_names: Sequence[str]) -> ClusterState:
    """`kubectl scale deployment/NAME --replicas N`."""
    if replicas < 0:
        raise LabkitError(f"--replicas must be 0 or more, not {replicas}")
    try:
        d = state.deployment(namespace, name)
    except LabkitError:
        have = ", ".join(f"{x.meta.namespace}/{x.meta.name}" for x in state.deployments) or "none"
        raise LabkitError(f"no Deployment {namespace}/{name} in the lab (Deployments: {have})") from None
    objs = [replace(d, replicas=replicas) if _key(o) == _key(d) else o for o in _given(state)]
    return settle(objs, state.settings, seed, step, node_names, state.last_pod_ips)


def _owned_by(d: Deployment, p: Pod) -> bool:
    return (p.meta.namespace == d.meta.namespace and p.meta.name.startswith(d.meta.name + "-")
            and selector_matches(d.selector, p.meta.labels))


def _drop_surplus_pods(objs: list[KubeObject]) -> list[KubeObject]:
    """The ReplicaSet's part `reconcile` leaves out: delete pods beyond `replicas`,
    and pods of an older template. Like the ReplicaSet controller, it removes
    pods from the most crowded node first, then the newest (last made)."""
    pods = [o for o in objs if isinstance(o, Pod)]
    remove: set[tuple[str, str]] = set()
    for d in (o for o in objs if isinstance(o, Deployment)):
        current = owned_pods(d, pods)
        stale = [p for p in pods if _owned_by(d, p) and p not in current]
        remove.update((p.meta.namespace, p.meta.name) for p in stale)
        surplus = len(current) - d.replicas
        if surplus > 0:
            load = Counter(p.node_name for p in pods)
            ranked = sorted(enumerate(current), key=lambda ip: (-load[ip[1].node_name], -ip[0]))
            remove.update((p.meta.namespace, p.meta.name) for _, p in ranked[:surplus])
    return [o for o in objs if not (isinstance(o, Pod) and (o.meta.namespace, o.meta.name) in remove)]


def replay(operations: Sequence[dict], settings: ClusterSettings, seed: int,
           node_names: Sequence[str]) -> ClusterState:
    """The cluster after the recorded operations, from an empty one."""
    from labkit.model.load import load_manifests

    state = settle([], settings, seed, 0, node_names)
    for step, op in enumerate(operations, start=1):
        if op["op"] == "apply":
            state = apply_objects(state, load_manifests(op["text"], op.get("source", "<manifest>")),
                                  seed, step, node_names)
        elif op["op"] == "delete":
            state = delete_objects(state, load_manifests(op["text"], op.get("source", "<manifest>")),
                                   seed, step, node_names)
        elif op["op"] == "scale":
            state = scale_deployment(state, op["namespace"], op["name"], op["replicas"], seed, step,
                                     node_names)
        else:
            raise LabkitError(f"unknown recorded operation {op['op']!r}")
    return state
