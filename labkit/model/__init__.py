"""Kubernetes objects from real manifests (see objects.py for the data)."""
