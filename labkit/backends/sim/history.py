"""The order in which a lab's objects were created, from its recorded operations (pure).

Kubelet gives a container the variables of the Services that existed when
the container started (labkit.controllers.envvars), so `lab.env(pod)` needs
the creation order. Both backends record the same operations; replaying them
step by step tells when each object first appeared: the objects a manifest
names, in the manifest's order (`kubectl apply` creates them one by one),
then the pods the controllers made for that step (a Deployment's pods start
after the apply has finished). An object deleted and made again moves to the
end, as a new object would.
"""
from __future__ import annotations

from typing import Sequence

from labkit.backends import operations as ops
from labkit.model.objects import ref


def creation_order(operations: Sequence[dict], settings, seed: int, node_names: Sequence[str]) -> list[str]:
    """Refs ("Service default/web", "Pod default/web-5d8f-x2") in the order they were created."""
    from labkit.model.load import load_manifests

    state = ops.settle([], settings, seed, 0, node_names)
    order: list[str] = [ref(o) for o in state.objects()]
    for step, op in enumerate(operations, start=1):
        named: list[str] = []
        if op["op"] == "apply":
            objs = load_manifests(op["text"], op.get("source", "<manifest>"))
            named = [ref(o) for o in objs]
            state = ops.apply_objects(state, objs, seed, step, node_names)
        elif op["op"] == "delete":
            objs = load_manifests(op["text"], op.get("source", "<manifest>"))
            state = ops.delete_objects(state, objs, seed, step, node_names)
        elif op["op"] == "scale":
            state = ops.scale_deployment(state, op["namespace"], op["name"], op["replicas"], seed, step,
                                         node_names)
        else:
            continue
        present = [ref(o) for o in state.objects()]
        here = set(present)
        order = [r for r in order if r in here]
        known = set(order)
        for r in named + sorted(present):
            if r in here and r not in known:
                order.append(r)
                known.add(r)
    return order
