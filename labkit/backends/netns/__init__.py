"""The kernel lab: nodes, pods and outside hosts as network namespaces (root only)."""
