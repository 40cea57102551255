"""labkit's own objects on a kind cluster: the probe image's tag and the probe DaemonSet (pure).

One probe pod per node, in namespace "labkit": hostNetwork (it is the node,
for probes from a node), hostPID (to find a pod's network namespace by the
pod's address) and privileged (to join that namespace and use raw sockets).
It tolerates every taint, so the control-plane node gets one too.
"""
from __future__ import annotations

import hashlib
from typing import Mapping

from labkit.backends.kind.commands import PROBE_APP, PROBE_IMAGE_NAME, PROBE_NAMESPACE


def probe_image_tag(files: Mapping[str, bytes]) -> str:
    """"labkit-probe:<12 hex>" from the build context's contents: a changed script is a new image."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name] + b"\0")
    return f"{PROBE_IMAGE_NAME}:{h.hexdigest()[:12]}"


def render_probe_daemonset(image: str) -> str:
    """The Namespace and DaemonSet, as YAML for `kubectl apply -f -`."""
    return f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {PROBE_NAMESPACE}
  labels:
    app.kubernetes.io/managed-by: labkit
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {PROBE_APP}
  namespace: {PROBE_NAMESPACE}
  labels:
    app: {PROBE_APP}
    app.kubernetes.io/managed-by: labkit
spec:
  selector:
    matchLabels:
      app: {PROBE_APP}
  template:
    metadata:
      labels:
        app: {PROBE_APP}
    spec:
      hostNetwork: true
      hostPID: true
      terminationGracePeriodSeconds: 0
      tolerations:
      - operator: Exists
      containers:
      - name: probe
        image: {image}
        imagePullPolicy: Never
        command: ["sleep", "infinity"]
        securityContext:
          privileged: true
"""
