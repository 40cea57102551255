"""Deployment -> Pods, named the way the real controllers name them.

A Deployment owns a ReplicaSet named `<deployment>-<pod-template-hash>`; the
ReplicaSet creates pods with generateName `<replicaset>-`, and the API server
appends five random characters. So a pod of Deployment `web` looks like
`web-7c5ddbdf54-x2xk9`, and its `pod-template-hash` label says which version
of the template it came from.

The hash is the real algorithm (pkg/controller/controller_utils.go
ComputeHash): FNV-1a 32 over a dump of the template, written in decimal and
"safe-encoded" digit by digit into the alphabet of rand.String. The real
controller dumps the full, defaulted Go struct with spew; we dump our own
template data, so the *value* differs from a real cluster's for the same
YAML, while its form (up to 10 characters of "456789bcdf") is the same.
"""
from __future__ import annotations

import json
import random
import uuid
from dataclasses import asdict
from typing import Collection, Mapping

from labkit.model.objects import Deployment, ObjectMeta, Pod, PodTemplate
from labkit.model.selectors import selector_matches

# k8s.io/apimachinery/pkg/util/rand: vowels are left out so that random
# names never spell words.
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
# k8s.io/apiserver/pkg/storage/names: 63 - 5 random characters.
MAX_GENERATED_NAME_BASE = 58
GENERATED_SUFFIX_LENGTH = 5
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"


def rand_string(n: int, rng: random.Random) -> str:
    """rand.String: n characters from ALPHANUMS."""
    return "".join(ALPHANUMS[rng.randrange(len(ALPHANUMS))] for _ in range(n))


def safe_encode_string(s: str) -> str:
    """rand.SafeEncodeString: each character mapped into ALPHANUMS by code point."""
    return "".join(ALPHANUMS[ord(c) % len(ALPHANUMS)] for c in s)


def fnv1a_32(data: bytes) -> int:
    """hash/fnv New32a."""
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def generate_name(base: str, rng: random.Random, taken: Collection[str] = ()) -> str:
    """metadata.generateName as the API server fills it in.

    The base is cut to 58 characters, five random characters are appended;
    a name already taken is drawn again (the real client retries on 409).
    """
    base = base[:MAX_GENERATED_NAME_BASE]
    while True:
        name = base + rand_string(GENERATED_SUFFIX_LENGTH, rng)
        if name not in taken:
            return name


def random_uid(rng: random.Random) -> str:
    """A version-4 UUID drawn from rng, as the API server gives every object."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def render_template_for_hash(template: PodTemplate) -> str:
    """The canonical text the template hash is computed over (sorted keys)."""
    return json.dumps(asdict(template), sort_keys=True, separators=(",", ":"), default=str)


def compute_pod_template_hash(template: PodTemplate, collision_count: int | None = None) -> str:
    """ComputeHash: safe-encoded decimal FNV-1a 32 of the template.

    With a collision count, its little-endian uint32 in 8 bytes is hashed in
    too (as the Deployment controller does after a hash collision).
    """
    data = render_template_for_hash(template).encode()
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0"
    return safe_encode_string(str(fnv1a_32(data)))


def replicaset_name(deploy: Deployment) -> str:
    return f"{deploy.meta.name}-{compute_pod_template_hash(deploy.template)}"


def owned_pods(deploy: Deployment, pods: Collection[Pod]) -> list[Pod]:
    """Pods the current ReplicaSet of this Deployment already counts as its own."""
    h = compute_pod_template_hash(deploy.template)
    return [
        p
        for p in pods
        if p.meta.namespace == deploy.meta.namespace
        and p.meta.labels.get(POD_TEMPLATE_HASH_LABEL) == h
        and selector_matches(deploy.selector, p.meta.labels)
    ]


def pod_from_template(deploy: Deployment, name: str, uid: str) -> Pod:
    """A new, unscheduled pod of this Deployment's current template."""
    t = deploy.template
    labels: Mapping[str, str] = {
        **t.meta.labels,
        POD_TEMPLATE_HASH_LABEL: compute_pod_template_hash(t),
    }
    return Pod(
        meta=ObjectMeta(
            name=name,
            namespace=deploy.meta.namespace,
            labels=labels,
            annotations=dict(t.meta.annotations),
            uid=uid,
        ),
        containers=t.containers,
        host_network=t.host_network,
    )


def pods_for_deployment(
    deploy: Deployment, existing: Collection[Pod], rng: random.Random, taken_names: Collection[str]
) -> list[Pod]:
    """The pods the ReplicaSet creates so that `replicas` of them exist.

    Pods already present with this template's hash count toward the replicas
    (a cluster dump read back in); surplus pods are not deleted here.
    """
    missing = deploy.replicas - len(owned_pods(deploy, existing))
    base = replicaset_name(deploy) + "-"
    taken = set(taken_names)
    out: list[Pod] = []
    for _ in range(max(0, missing)):
        name = generate_name(base, rng, taken)
        taken.add(name)
        out.append(pod_from_template(deploy, name, random_uid(rng)))
    return out

