"""Kubernetes objects from real manifests (see objects.py for the data).

load_manifests(text, source) reads YAML into validated, defaulted objects;
parse_object(doc) does the same for one decoded document.
"""
from labkit.model.load import load_manifests, parse_object
from labkit.model.objects import KubeObject, ref

__all__ = ["load_manifests", "parse_object", "KubeObject", "ref"]
