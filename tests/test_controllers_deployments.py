"""Deployment -> Pods: the real hash and name algorithms, driven by a seeded rng."""
import random

from labkit.controllers.deployments import (
    ALPHANUMS,
    compute_pod_template_hash,
    fnv1a_32,
    generate_name,
    pods_for_deployment,
    rand_string,
    safe_encode_string,
)
from labkit.model.objects import (
    Container,
    ContainerPort,
    Deployment,
    LabelSelector,
    ObjectMeta,
    Pod,
    PodTemplate,
)

TEMPLATE = PodTemplate(
    ObjectMeta("", labels={"app": "web"}),
    containers=(Container("nginx", "nginx:1.27", ports=(ContainerPort(80, "http"),)),),
)
WEB = Deployment(ObjectMeta("web", "default"), LabelSelector({"app": "web"}), TEMPLATE, replicas=3)


def test_fnv1a_32_reference_vectors():
    assert fnv1a_32(b"") == 0x811C9DC5
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968


def test_safe_encode_maps_digits_like_the_real_controller():
    assert safe_encode_string("0123456789") == "456789bcdf"


def test_template_hash_is_safe_encoded_decimal_fnv():
    h = compute_pod_template_hash(TEMPLATE)
    assert h == "64f7f6df4f"
    assert set(h) <= set("456789bcdf")


def test_template_hash_changes_with_template_and_collision_count():
    other = PodTemplate(TEMPLATE.meta, containers=(Container("nginx", "nginx:1.28"),))
    assert compute_pod_template_hash(other) != compute_pod_template_hash(TEMPLATE)
    assert compute_pod_template_hash(TEMPLATE, 1) != compute_pod_template_hash(TEMPLATE)
    assert compute_pod_template_hash(TEMPLATE, 1) == compute_pod_template_hash(TEMPLATE, 1)


def test_rand_string_uses_the_vowel_free_alphabet():
    assert ALPHANUMS == "bcdfghjklmnpqrstvwxz2456789"
    s = rand_string(5, random.Random(1))
    assert s == "gx87d"
    assert set(rand_string(200, random.Random(2))) <= set(ALPHANUMS)


def test_generate_name_truncates_base_to_58_and_redraws_taken_names():
    name = generate_name("x" * 70, random.Random(1))
    assert name == "x" * 58 + "gx87d" and len(name) == 63
    assert generate_name("web-", random.Random(1)) == "web-gx87d"
    second = generate_name("web-", random.Random(1), taken={"web-gx87d"})
    rng = random.Random(1)
    rand_string(5, rng)
    assert second == "web-" + rand_string(5, rng)


def test_pods_for_deployment_names_labels_and_uids():
    pods = pods_for_deployment(WEB, [], random.Random(1), taken_names=set())
    assert [p.meta.name for p in pods] == [
        "web-64f7f6df4f-gx87d",
        "web-64f7f6df4f-st2q8",
        "web-64f7f6df4f-9qrz7",
    ]
    assert all(p.meta.labels == {"app": "web", "pod-template-hash": "64f7f6df4f"} for p in pods)
    assert all(p.meta.namespace == "default" and p.node_name == "" and not p.pod_ip for p in pods)
    assert pods[0].meta.uid == "c2ce6f44-7ed4-457b-9e2f-eb89414c343c"
    assert len({p.meta.uid for p in pods}) == 3
    assert pods[0].containers == TEMPLATE.containers


def test_existing_pods_of_the_same_template_count_toward_replicas():
    existing = Pod(ObjectMeta("web-64f7f6df4f-aaaaa", "default",
                              labels={"app": "web", "pod-template-hash": "64f7f6df4f"}))
    other_ns = Pod(ObjectMeta("web-64f7f6df4f-bbbbb", "prod",
                              labels={"app": "web", "pod-template-hash": "64f7f6df4f"}))
    old_template = Pod(ObjectMeta("web-5d4f8b7c9-ccccc", "default",
                                  labels={"app": "web", "pod-template-hash": "5d4f8b7c9"}))
    pods = pods_for_deployment(WEB, [existing, other_ns, old_template], random.Random(1), set())
    assert len(pods) == 2


def test_zero_replicas_make_no_pods():
    zero = Deployment(WEB.meta, WEB.selector, TEMPLATE, replicas=0)
    assert pods_for_deployment(zero, [], random.Random(1), set()) == []
