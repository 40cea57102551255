"""The kind backend: the course on a real Kubernetes cluster made by `kind`.

Every command it runs goes through labkit.backends.kind.runner (docker, kind,
kubectl), so the tests replay recorded output through a fake runner that
expects the exact argv and stdin. See README.md in this directory for what
has run against a live cluster and what only through the seam.
"""
