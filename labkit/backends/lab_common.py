"""What the kernel lab and the simulation do alike: the control plane's changes, and names.

Both backends settle the cluster with the same pure operations
(labkit.backends.operations) and find pods, nodes and routers in the same
LabPlan. They differ only in how a change reaches the dataplane (`_record`:
reload the kernel's rules, or the simulation's) and in how packets move.
"""
from __future__ import annotations

from dataclasses import dataclass

from labkit.backends import operations as ops
from labkit.errors import LabkitError
from labkit.model.objects import ref
from labkit.topology.outside import router_netns


@dataclass(frozen=True)
class Endpoint:
    """A probe's source: the namespace it sends from, and its address."""

    label: str
    netns: str
    ip: str
    node: str  # the node whose chains see the packet first ("" outside the cluster)


class PlannedLab:
    """Mixin for a Backend built on a LabPlan.

    The backend provides: `lab`, `seed`, `topology`, `_state()` (the settled
    ClusterState), `_plan()` (the LabPlan), `_step()` (the next operation's
    number) and `_record(op, state)` (make the dataplane follow `state`, and
    remember `op` so the lab can be replayed).
    """

    # --- changes --------------------------------------------------------------

    def apply(self, manifests: str, source: str = "") -> list[str]:
        from labkit.model.load import load_manifests

        objs = load_manifests(manifests, source or "<manifest>")
        state = ops.apply_objects(self._state(), objs, self.seed, self._step(), self.topology.node_names)
        self._record({"op": "apply", "text": manifests, "source": source or "<manifest>"}, state)
        return [ref(o) for o in objs]

    def delete(self, manifests: str, source: str = "") -> list[str]:
        from labkit.model.load import load_manifests

        objs = load_manifests(manifests, source or "<manifest>")
        state = ops.delete_objects(self._state(), objs, self.seed, self._step(), self.topology.node_names)
        self._record({"op": "delete", "text": manifests, "source": source or "<manifest>"}, state)
        return [ref(o) for o in objs]

    def scale(self, deployment: str, replicas: int, namespace: str = "default") -> None:
        name = deployment.split("/", 1)[1] if deployment.startswith("deployment/") else deployment
        state = ops.scale_deployment(self._state(), namespace, name, replicas, self.seed, self._step(),
                                     self.topology.node_names)
        self._record({"op": "scale", "namespace": namespace, "name": name, "replicas": replicas}, state)

    # --- reading ----------------------------------------------------------------

    def pods(self) -> list:
        return list(self._state().pods)

    def services(self) -> list:
        return list(self._state().services)

    # --- names ------------------------------------------------------------------

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

    def _router(self, name: str) -> str:
        """The namespace of a node, or of "net", "natgw" (the NAT gateway), "lb" (the load balancer)."""
        return router_netns(self._plan(), name) or self._node(name).netns

    def _node(self, name: str):
        plan = self._plan()
        for n in plan.nodes:
            if name in (n.name, n.netns[len(plan.prefix) + 1:]):
                return n
        raise LabkitError(f"no node {name!r} in lab {self.lab} (nodes: "
                          + ", ".join(n.name for n in plan.nodes) + ")")

    def _nat_node(self, src: Endpoint, dst: str) -> str:
        """The node whose conntrack holds a connection: the client's, else the one it was sent to."""
        if src.node:
            return src.node
        for n in self._plan().nodes:
            if n.ip == dst:
                return n.name
        return ""
