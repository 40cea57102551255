"""Waiting for a kind cluster to be ready: a deadline, and a progress line a learner can read.

`pod_progress` reads `kubectl get pods,deployments -A -o json` (pure); `wait_ready`
polls it until every Deployment has its replicas ready and every pod is
Ready (or finished), printing a line each time the picture changes, and
raises a LabkitError naming what is still waiting when the deadline passes.
The clock and the sleep are passed in, so tests run it without waiting.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from labkit.errors import LabkitError


@dataclass(frozen=True)
class Progress:
    ready: int  # pods ready
    total: int  # pods that should become ready
    waiting: tuple[str, ...]  # "default/web-7d4b9-x2k4p (ContainerCreating)", "deployment default/web 1/3"

    @property
    def done(self) -> bool:
        return not self.waiting


def _pod_reason(item: dict) -> str:
    meta, status = item.get("metadata", {}), item.get("status", {})
    if meta.get("deletionTimestamp"):
        return "Terminating"
    for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return waiting["reason"]
    if status.get("phase") == "Pending":
        for c in status.get("conditions", []):
            if c.get("type") == "PodScheduled" and c.get("status") == "False":
                return f"Unschedulable: {c.get('message', '')}".rstrip(": ")
        return "Pending"
    return "not ready"


def pod_progress(list_json: str) -> Progress:
    """How far the cluster is: pods Ready (Succeeded pods need nothing) and Deployments complete."""
    items = json.loads(list_json).get("items", [])
    ready, total, waiting = 0, 0, []
    for item in items:
        kind, meta = item.get("kind"), item.get("metadata", {})
        where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        if kind == "Deployment":
            want = item.get("spec", {}).get("replicas", 1)
            st = item.get("status", {})
            have = st.get("readyReplicas", 0)
            stale = st.get("observedGeneration", 0) < meta.get("generation", 0)
            if stale or have != want or st.get("updatedReplicas", 0) != want or st.get("replicas", 0) != want:
                waiting.append(f"deployment {where} {have}/{want}")
        elif kind == "Pod":
            if item.get("status", {}).get("phase") == "Succeeded":
                continue
            total += 1
            conds = item.get("status", {}).get("conditions", [])
            is_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
            if is_ready and not meta.get("deletionTimestamp"):
                ready += 1
            else:
                waiting.append(f"{where} ({_pod_reason(item)})")
    return Progress(ready, total, tuple(waiting))


def render_progress(p: Progress, elapsed: float) -> str:
    """One line: "labkit: 4/6 pods ready after 12 s; waiting for default/web-x (ContainerCreating), ..."."""
    head = f"labkit: {p.ready}/{p.total} pods ready after {elapsed:.0f} s"
    if p.done:
        return head
    shown = ", ".join(p.waiting[:4]) + (f" and {len(p.waiting) - 4} more" if len(p.waiting) > 4 else "")
    return f"{head}; waiting for {shown}"


def wait_ready(poll: Callable[[], Progress], timeout: float, clock: Callable[[], float],
               sleep: Callable[[float], None], show: Callable[[str], None], context: str,
               interval: float = 2.0) -> Progress:
    """Poll until done or `timeout` seconds have passed; show each new progress line."""
    start = clock()
    last_line = ""
    while True:
        p = poll()
        elapsed = clock() - start
        line = render_progress(p, elapsed)
        if line.split(" after ")[0] + line.partition(";")[2] != last_line:
            show(line)
            last_line = line.split(" after ")[0] + line.partition(";")[2]
        if p.done:
            return p
        if elapsed >= timeout:
            raise LabkitError(
                f"the cluster is not ready after {timeout:.0f} s: " + ", ".join(p.waiting)
                + f" (fix: `kubectl --context {context} get pods -A` and `kubectl --context {context} describe pod "
                "NAME` say why; images may still be downloading: try again with a longer timeout)")
        sleep(min(interval, max(0.0, timeout - elapsed)))
