"""Hostile and malformed manifests: load_manifests answers, it never crashes or hangs.

Every outcome must be a list of objects or a ManifestError whose problems all
name an object and say what is wrong -- never another exception, never a hang
(each example has a deadline).
"""
import copy
import os
from datetime import timedelta
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.errors import ManifestError
from labkit.model import load_manifests, parse_object
from labkit.model.objects import (
    Deployment, EndpointSlice, Ingress, Namespace, NetworkPolicy, Node, Pod, Service,
)

MANIFESTS = Path(__file__).parent / "manifests"
FIXTURES = {p.name: p.read_text() for p in sorted(MANIFESTS.glob("*.yaml"))}
KINDS = (Namespace, Node, Pod, Deployment, Service, EndpointSlice, NetworkPolicy, Ingress)

# LABKIT_FUZZ_EXAMPLES=2000 for a longer hunt than the everyday run
FUZZ = settings(deadline=timedelta(seconds=5), max_examples=int(os.environ.get("LABKIT_FUZZ_EXAMPLES", "150")),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def documents() -> list:
    """Every object of the example manifests, as decoded YAML."""
    docs = []
    for text in FIXTURES.values():
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "List":
                docs.extend(doc["items"])
            elif doc is not None:
                docs.append(doc)
    return docs


DOCS = documents()


def assert_outcome(call) -> None:
    """The contract: objects, or a ManifestError of well-formed problems."""
    try:
        result = call()
    except ManifestError as e:
        assert e.problems, "a ManifestError must carry at least one problem"
        for p in e.problems:
            assert isinstance(p.obj, str) and p.obj, p
            assert isinstance(p.message, str) and p.message, p
            assert isinstance(p.field, str) and isinstance(p.fix, str), p
        assert e.render().count("\n") == len(e.problems)
        return
    for obj in result if isinstance(result, list) else [result]:
        assert isinstance(obj, KINDS), obj


# --- values of every type and size ---------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**31, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-1), st.floats(allow_nan=True),
    st.text(max_size=20), st.text(min_size=300, max_size=2000),
    st.sampled_from(["", "0", "80", "http", "None", "TCP", "10.96.0.1", "10.0.0.0/8", "::1",
                     "*.example.com", "-", "a" * 64, "Exists", "In", "ClientIP", "LoadBalancer"]),
    st.binary(max_size=20),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=10), st.integers()),
                                                 inner, max_size=4)), max_leaves=12)


def paths(doc, prefix=()):
    """Every (container, key) position in a decoded document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield prefix + (k,)
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield prefix + (i,)
            yield from paths(v, prefix + (i,))


def set_at(doc, path, value):
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def delete_at(doc, path):
    node = doc
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]


def deep(levels: int, kind: str):
    value: object = "bottom"
    for _ in range(levels):
        value = [value] if kind == "list" else {"k": value}
    return value


@st.composite
def mutated_documents(draw):
    doc = copy.deepcopy(draw(st.sampled_from(DOCS)))
    for _ in range(draw(st.integers(1, 4))):
        where = list(paths(doc))
        if not where:
            break
        path = draw(st.sampled_from(where))
        action = draw(st.sampled_from(["replace", "delete", "deep", "add"]))
        if action == "replace":
            set_at(doc, path, draw(values))
        elif action == "delete":
            delete_at(doc, path)
        elif action == "deep":
            set_at(doc, path, deep(draw(st.integers(100, 1000)), draw(st.sampled_from(["list", "map"]))))
        else:
            node = doc
            for step in path[:-1]:
                node = node[step]
            if isinstance(node, dict):
                node[draw(st.text(max_size=12))] = draw(values)
    return doc


@FUZZ
@given(mutated_documents())
def test_parse_object_on_mutated_documents(doc):
    assert_outcome(lambda: parse_object(doc))


@FUZZ
@given(mutated_documents())
def test_load_manifests_on_mutated_documents_as_yaml(doc):
    try:
        text = yaml.safe_dump(doc)
    except (yaml.YAMLError, RecursionError, ValueError):
        return  # PyYAML's own emitter gave up: nothing to feed in
    assert_outcome(lambda: load_manifests(text))


@FUZZ
@given(st.sampled_from(list(FIXTURES.values())), st.data())
def test_line_edits_of_real_manifests(text, data):
    lines = text.split("\n")
    for _ in range(data.draw(st.integers(1, 5))):
        i = data.draw(st.integers(0, len(lines) - 1))
        edit = data.draw(st.sampled_from(["drop", "dup", "indent", "dedent", "tab", "junk", "cut"]))
        if edit == "drop":
            del lines[i]
        elif edit == "dup":
            lines.insert(i, lines[i])
        elif edit == "indent":
            lines[i] = "  " + lines[i]
        elif edit == "dedent":
            lines[i] = lines[i][2:]
        elif edit == "tab":
            lines[i] = "\t" + lines[i]
        elif edit == "junk":
            lines[i] += data.draw(st.text(max_size=8))
        else:
            lines[i] = lines[i][: len(lines[i]) // 2]
        if not lines:
            lines = [""]
    assert_outcome(lambda: load_manifests("\n".join(lines)))


@FUZZ
@given(st.text(max_size=400))
def test_random_text(text):
    assert_outcome(lambda: load_manifests(text))


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("{}[]:,-?&*!|>'\"#%@` \n\tab0")), max_size=300))
def test_random_yaml_punctuation(text):
    assert_outcome(lambda: load_manifests(text))


@FUZZ
@given(st.binary(max_size=400))
def test_binary_junk(data):
    assert_outcome(lambda: load_manifests(data))
    assert_outcome(lambda: load_manifests(data.decode("latin-1")))


@FUZZ
@given(st.integers(2, 12), st.integers(2, 12))
def test_alias_bombs(width, depth):
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, depth):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  annotations:\n" + "\n".join(
        "    " + line for line in lines) + "\n"
    assert_outcome(lambda: load_manifests(text))
    # the same bomb aimed at fields labkit walks
    bomb = "\n".join(lines) + "\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n" + \
        f"spec: {{ports: [*l{depth - 1}], selector: {{a: *l{depth - 1}}}}}\n"
    assert_outcome(lambda: load_manifests(bomb))


@FUZZ
@given(st.integers(1, 3000), st.sampled_from(["[", "{a: ", "- ", "a:\n"]))
def test_deep_nesting_text(levels, opener):
    if opener == "a:\n":
        text = "".join(" " * i + "a:\n" for i in range(min(levels, 400)))
    else:
        closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
        text = opener * levels + "x" + closer * levels
    assert_outcome(lambda: load_manifests(text))


@FUZZ
@given(st.sampled_from(DOCS), st.integers(0, 10_000))
def test_very_long_strings_everywhere(doc, n):
    doc = copy.deepcopy(doc)
    for path in list(paths(doc)):
        node = doc
        for step in path[:-1]:
            node = node[step]
        if isinstance(node[path[-1]], str):
            node[path[-1]] = "x" * n
    assert_outcome(lambda: parse_object(doc))


def test_a_structure_that_contains_itself():
    doc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    doc["spec"] = doc
    doc["metadata"]["labels"] = doc
    assert_outcome(lambda: parse_object(doc))


def test_every_example_manifest_loads():
    for name, text in FIXTURES.items():
        assert load_manifests(text, name), name


WRONG = (None, True, 0, -1, 2**64, 1.5, "", "x" * 300, [], [None], {}, {"k": {}}, b"\x00")


EXTRA_DOCS = list(yaml.safe_load_all("""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  selector:
    matchLabels: {app: api}
    matchExpressions: [{key: tier, operator: NotIn, values: [db]}, {key: app, operator: Exists}]
  template:
    metadata: {labels: {app: api, tier: backend}}
    spec: {containers: [{name: api, image: api, ports: [{containerPort: 80, name: http}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: aff}
spec:
  type: LoadBalancer
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  externalIPs: [203.0.113.9]
  clusterIPs: [10.96.0.9, "fd00::9"]
  ipFamilies: [IPv4, IPv6]
  ports: [{name: a, port: 80, targetPort: 0}, {name: b, port: 81, appProtocol: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: res}
spec:
  defaultBackend: {resource: {apiGroup: example.com, kind: Bucket, name: b}}
"""))


def test_every_key_of_every_example_deleted():
    """Exhaustive: each field removed in turn (required ones must be reported, not crash)."""
    for doc in DOCS + EXTRA_DOCS:
        for path in list(paths(doc)):
            mutated = copy.deepcopy(doc)
            delete_at(mutated, path)
            assert_outcome(lambda: parse_object(mutated))


def test_wrong_types_at_every_position_of_every_example():
    """Exhaustive, not random: each position of each example, each kind of wrong value."""
    tried = 0
    for doc in DOCS + EXTRA_DOCS:
        for path in list(paths(doc)):
            for value in WRONG:
                mutated = copy.deepcopy(doc)
                set_at(mutated, path, value)
                assert_outcome(lambda: parse_object(mutated))
                tried += 1
    assert tried > 5000
