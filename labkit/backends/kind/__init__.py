"""The kind backend: the course on a real Kubernetes cluster made by `kind`.

Every command it runs goes through labkit.backends.kind.runner (docker, kind,
kubectl), so the tests replay recorded output through a fake runner that
expects the exact argv and stdin, and the conformance suite runs it on
fake_cluster.KindFake (a kind cluster whose dataplane is the simulation).
The top-level README ("Running the course on kind") says what has run
against a live cluster (nothing yet) and what only through the seam.
"""
