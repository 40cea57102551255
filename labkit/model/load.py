"""Manifests in, validated objects out: the public face of labkit.model.

load_manifests() reads YAML the way `kubectl apply --validate=strict` does:
every document, `kind: List` flattened, unknown fields refused, the API
server's defaults applied. It never lets a traceback reach the learner:
whatever is wrong -- YAML syntax, a hostile alias bomb, a wrong type, a
typo -- becomes a Problem naming the object and the field, and all of them
are raised together as one ManifestError.

The YAML is read from the parser's event stream by a small builder of our own
(not yaml.load), so that nesting depth, alias expansion and size are
budgeted before any data is built, and duplicate keys are caught.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import yaml

from labkit.errors import ManifestError, Problem
from labkit.model.objects import KubeObject
from labkit.model.schema import (
    KINDS, Walker, build, clean_path, describe, printable, supported_kinds,
)

MAX_TEXT_CHARS = 16 * 1024 * 1024  # a kind cluster's full dump is well under this
MAX_DEPTH = 100  # real objects nest about 15 deep (managedFields)
MAX_NODES = 500_000  # per document, after expanding aliases
MAX_SKIP_DEPTH = 1000  # past this, a refused document ends the reading
MAX_LIST_DEPTH = 10  # List inside List inside ...

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_MERGE = object()  # the key "<<"
_HUGE = 10**4400  # stands for an integer too long to convert


@dataclass
class Document:
    """One YAML document: its data, or the reason it was refused."""

    number: int
    line: int
    data: Any = None
    issues: list[tuple[str, str, str]] = field(default_factory=list)  # (field, message, fix)
    refused: Optional[tuple[str, str]] = None  # (message, fix): no data


class _Refuse(Exception):
    """A document over a budget: stop building it."""


@dataclass
class _Frame:
    container: Any  # dict or list
    path: str
    anchor: Optional[str]
    start: int  # node count when it opened
    key: Any = None
    has_key: bool = False
    key_line: int = 0
    lines: dict = field(default_factory=dict)  # key -> line, for duplicates
    merges: list = field(default_factory=list)


class _Builder:
    """Builds one document from parser events, within the budgets."""

    def __init__(self, loader: Any, doc: Document):
        self.loader = loader
        self.doc = doc
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.nodes = 0
        self.result: Any = None

    def _count(self, n: int) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise _Refuse(f"is too large: more than {MAX_NODES} values once YAML aliases are expanded",
                          "remove repeated aliases (*name); a Kubernetes object is never this big")

    def _child_path(self) -> str:
        if not self.stack:
            return ""
        top = self.stack[-1]
        if isinstance(top.container, list):
            return f"{top.path}[{len(top.container)}]"
        key = top.key if isinstance(top.key, str) else "<<" if top.key is _MERGE else str(top.key)
        return f"{top.path}.{key}" if top.path else key

    def event(self, ev: Any) -> None:
        if isinstance(ev, yaml.ScalarEvent):
            self._count(1)
            self._add(self._scalar(ev), 1, ev.anchor, ev.start_mark)
        elif isinstance(ev, yaml.AliasEvent):
            if ev.anchor not in self.anchors:
                self.doc.issues.append((self._child_path(), f"the alias *{ev.anchor} refers to an anchor "
                                        f"that is not defined before it (or that contains it)",
                                        f"define &{ev.anchor} earlier in the same document"))
                self._add(None, 1, None, ev.start_mark)
                return
            value, size = self.anchors[ev.anchor]
            self._count(size)
            self._add(value, size, None, ev.start_mark)
        elif isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            self._count(1)
            if len(self.stack) >= MAX_DEPTH:
                raise _Refuse(f"nests deeper than {MAX_DEPTH} levels", _DEPTH_FIX)
            self._check_tag(ev.tag, ("map", "omap") if isinstance(ev, yaml.MappingStartEvent) else ("seq",))
            container: Any = {} if isinstance(ev, yaml.MappingStartEvent) else []
            self.stack.append(_Frame(container, self._child_path(), ev.anchor, self.nodes))
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frame = self.stack.pop()
            value = frame.container
            if frame.merges:
                merged: dict = {}
                for source in frame.merges:
                    for k, item in source.items():
                        merged.setdefault(k, item)
                merged.update(value)
                value = merged
            size = self.nodes - frame.start + 1
            if frame.anchor:
                self.anchors[frame.anchor] = (value, size)
            self._add(value, 0, None, ev.start_mark, anchored=True)

    def _check_tag(self, tag: Optional[str], allowed: tuple[str, ...]) -> None:
        if tag and tag != "!" and tag not in tuple(_TAG + a for a in allowed):
            self.doc.issues.append((self._child_path(), f"uses the YAML tag {printable(tag)}, which "
                                    "Kubernetes manifests do not use", "remove the tag"))

    def _scalar(self, ev: Any) -> Any:
        tag = ev.tag
        if not tag or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, ev.value, ev.implicit) if tag != "!" else _TAG + "str"
        name = tag[len(_TAG):] if tag.startswith(_TAG) else None
        node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style)
        try:
            if name in ("str", "timestamp", "value"):
                return ev.value  # timestamps stay text, as in the API's JSON
            if name == "merge":
                return _MERGE
            if name in ("null", "bool", "int", "float", "binary"):
                return getattr(self.loader, f"construct_yaml_{name}")(node)
        except ValueError:
            if name == "int":  # more digits than Python converts: certainly out of range
                return -_HUGE if ev.value.lstrip().startswith("-") else _HUGE
            raise
        except (yaml.YAMLError, TypeError):
            self.doc.issues.append((self._child_path(), f"{printable(ev.value)} cannot be read as a "
                                    f"YAML {name}", "check the value; put text in quotes"))
            return ev.value
        self.doc.issues.append((self._child_path(), f"uses the YAML tag {printable(tag)}, which "
                                "Kubernetes manifests do not use", "remove the tag"))
        return ev.value

    def _add(self, value: Any, size: int, anchor: Optional[str], mark: Any, anchored: bool = False) -> None:
        if anchor and not anchored:
            self.anchors[anchor] = (value, size)
        if not self.stack:
            self.result = value
            return
        top = self.stack[-1]
        line = mark.line + 1 if mark is not None else 0
        if isinstance(top.container, list):
            top.container.append(value)
        elif not top.has_key:
            if isinstance(value, (dict, list)):
                self.doc.issues.append((top.path, f"has a key at line {line} that is a "
                                        f"{'mapping' if isinstance(value, dict) else 'list'}; keys "
                                        "must be plain names", "write the key as a plain name"))
                value = f"<key at line {line}>"
            top.key, top.has_key, top.key_line = value, True, line
        else:
            key = top.key
            top.has_key = False
            if key is _MERGE:
                sources = value if isinstance(value, list) else [value]
                if not all(isinstance(s, dict) for s in sources):
                    self.doc.issues.append((top.path, "a merge key << must be followed by a mapping "
                                            "or a list of mappings", "merge an anchored mapping: <<: *base"))
                    return
                top.merges.extend(sources)
                return
            try:
                hash(key)
            except TypeError:
                key = str(key)
            if key in top.lines:
                where = f"{top.path}.{key}" if top.path else str(key)
                self.doc.issues.append((where, f"is given twice (lines {top.lines[key]} and "
                                        f"{top.key_line}); YAML would silently keep only the last one",
                                        "remove one of them"))
            top.lines[key] = top.key_line
            top.container[key] = value


def _syntax_problem(err: Exception, text: str) -> tuple[str, str]:
    mark = getattr(err, "problem_mark", None)
    if mark is None and isinstance(err, yaml.reader.ReaderError):
        pos = err.position if isinstance(err.position, int) and 0 <= err.position <= len(text) else 0
        line, col = text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1
        char = err.character
        shown = f"U+{char:04X}" if isinstance(char, int) else f"U+{ord(char):04X}" if \
            isinstance(char, str) and len(char) == 1 else repr(char)
        return (f"YAML cannot be read at line {line}, column {col}: {err.reason} ({shown})",
                "remove control characters and binary data; a manifest is plain text")
    what = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    where, line = "", ""
    if mark is not None:
        where = f" at line {mark.line + 1}, column {mark.column + 1}"
        lines = text.split("\n", mark.line + 1)
        line = lines[mark.line] if mark.line < len(lines) else ""
    message = f"YAML syntax error{where}: {what}" + (f" ({context})" if context else "")
    if line.strip():
        message += f": {printable(line, 80)}"
    fix = "check the indentation and quoting on that line and the one before it"
    if mark is not None and "\t" in line[: mark.column + 1]:
        fix = "indent with spaces: YAML does not allow tabs for indentation"
    return message, fix


_DEPTH_FIX = "a Kubernetes object is never this deep: check for runaway brackets or indentation"


def parse_yaml_documents(text: str) -> list[Document]:
    """Every document of a YAML stream, built within the budgets.

    A syntax error ends the stream: the documents before it are kept, and the
    broken one carries the error as its `refused` reason.
    """
    docs: list[Document] = []
    if len(text) > MAX_TEXT_CHARS:
        return [Document(1, 1, refused=(f"the text is {len(text)} characters long; labkit reads at "
                                        f"most {MAX_TEXT_CHARS}", "split it into several files"))]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return [Document(1, 1, refused=(f"the text is not valid Unicode (at character {e.start})",
                                        "save the file as UTF-8 text"))]
    loader = _Loader(text)
    builder: Optional[_Builder] = None
    skipped_depth = -1  # >= 0 while skipping the rest of a refused document
    try:
        while loader.check_event():
            ev = loader.get_event()
            if isinstance(ev, yaml.DocumentStartEvent):
                doc = Document(len(docs) + 1, ev.start_mark.line + 1)
                docs.append(doc)
                builder, skipped_depth = _Builder(loader, doc), -1
            elif isinstance(ev, yaml.DocumentEndEvent):
                if builder is not None and skipped_depth < 0:
                    builder.doc.data = builder.result
                builder = None
            elif skipped_depth >= 0:
                skipped_depth += isinstance(ev, yaml.CollectionStartEvent)
                skipped_depth -= isinstance(ev, yaml.CollectionEndEvent)
                if skipped_depth > MAX_SKIP_DEPTH:  # the parser slows down with depth: stop
                    message, fix = docs[-1].refused or ("", "")
                    docs[-1].refused = (message + "; the rest of the text was not read", fix)
                    break
            elif builder is not None:
                try:
                    builder.event(ev)
                except _Refuse as refusal:
                    builder.doc.refused = (str(refusal.args[0]), str(refusal.args[1]))
                    skipped_depth = len(builder.stack)
    except yaml.YAMLError as err:
        if skipped_depth >= 0 and docs and docs[-1].refused:
            # Already refused and skipping its rest: the parser's own limits
            # (libyaml stops at 1000 levels in newer releases) end the reading.
            message, fix = docs[-1].refused
            if not message.endswith("not read"):
                docs[-1].refused = (message + "; the rest of the text was not read", fix)
        else:
            if builder is None:
                docs.append(Document(len(docs) + 1, 0))
            docs[-1].data = None
            if "maximum nesting depth" in str(getattr(err, "problem", "")):
                # libyaml (0.2.5+) refuses 1000 levels while scanning ahead, before
                # our own depth check sees an event: report it as that check would.
                docs[-1].refused = (
                    f"nests deeper than {MAX_DEPTH} levels; the rest of the text was not read",
                    _DEPTH_FIX)
            else:
                docs[-1].refused = _syntax_problem(err, text)
    finally:
        loader.dispose()
    return docs


# --- documents to objects ---------------------------------------------------------


def _kind_fix(kind: str) -> str:
    close = difflib.get_close_matches(kind, list(KINDS), n=1, cutoff=0.6)
    same = [k for k in KINDS if k.lower() == kind.lower()]
    guess = same or close
    head = f'did you mean "{guess[0]}"? ' if guess else ""
    return f"{head}labkit reads these kinds: {supported_kinds()}"


def name_object(doc: Mapping, label: str) -> str:
    """How problems name this document: "Service default/web", else the label."""
    kind, meta = doc.get("kind"), doc.get("metadata")
    if not (isinstance(kind, str) and kind in KINDS and isinstance(meta, dict)):
        return label
    name, ns = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not name or len(name) > 253 or not name.isprintable():
        return label
    if not KINDS[kind].namespaced:
        return f"{kind} {name}"
    if not isinstance(ns, str) or not ns or len(ns) > 63 or not ns.isprintable():
        ns = "default"
    return f"{kind} {ns}/{name}"


def _parse_list(doc: dict, label: str, kind: str, depth: int,
                out: list, problems: list[Problem]) -> None:
    """kind: List (or ServiceList, ...): each item is an object of its own."""
    for key in doc:
        if key not in ("apiVersion", "kind", "metadata", "items"):
            problems.append(Problem(label, clean_path(str(key)),
                                    f"unknown field {printable(str(key))} in a {kind}",
                                    "the fields of a List are: apiVersion, kind, metadata, items"))
    items = doc.get("items")
    if items is None:
        return
    if not isinstance(items, list):
        problems.append(Problem(label, "items", f"expected a list, got {describe(items)}",
                                'write items as a list: each object starting with "- "'))
        return
    if depth >= MAX_LIST_DEPTH:
        problems.append(Problem(label, "items", f"Lists nest more than {MAX_LIST_DEPTH} deep",
                                "put the objects directly into one List"))
        return
    typed = kind[:-4] if kind != "List" else ""
    for i, item in enumerate(items):
        if typed and isinstance(item, dict):
            item = {"apiVersion": doc.get("apiVersion"), "kind": typed, **item}
        _parse_any(item, f"{label}, items[{i}]", [], depth + 1, out, problems)


def _parse_any(doc: Any, label: str, issues: list, depth: int,
               out: list, problems: list[Problem]) -> None:
    """One decoded document (or List item): append its objects or its problems."""
    if not isinstance(doc, dict):
        problems.append(Problem(label, "", f"expected a Kubernetes object (a mapping with apiVersion, "
                                f"kind and metadata), got {describe(doc)}",
                                "start each document with apiVersion: and kind:"))
        return
    obj = name_object(doc, label)
    before = len(problems)
    problems.extend(Problem(obj, clean_path(f), m, x) for f, m, x in issues)
    api, kind = doc.get("apiVersion"), doc.get("kind")
    for key, value in (("apiVersion", api), ("kind", kind)):
        if value is None:
            problems.append(Problem(obj, key, "required field is missing",
                                    f"add {key}: every Kubernetes object starts with apiVersion and kind"))
        elif not isinstance(value, str):
            example = "apiVersion: v1" if key == "apiVersion" else "kind: Service"
            problems.append(Problem(obj, key, f"expected a string, got {describe(value)}",
                                    f"write {key} as text, e.g. {example}"))
    if not isinstance(kind, str):
        return
    if kind == "List" or (kind.endswith("List") and kind[:-4] in KINDS):
        _parse_list(doc, label, kind, depth, out, problems)
        return
    spec = KINDS.get(kind)
    if spec is None:
        problems.append(Problem(obj, "kind", f"unsupported kind {printable(kind)}"
                                + (f" (apiVersion {printable(api)})" if isinstance(api, str) else ""),
                                _kind_fix(kind)))
        return
    if isinstance(api, str) and api != spec.api_version:
        older = api.startswith("extensions/") or "beta" in api or "alpha" in api
        problems.append(Problem(obj, "apiVersion", f"{kind} is served as apiVersion "
                                f"{spec.api_version}, not {printable(api)}",
                                f"set apiVersion: {spec.api_version}"
                                + (" (and move to its field names)" if older else "")))
    meta = doc.get("metadata")
    if not spec.namespaced and isinstance(meta, dict) and meta.get("namespace"):
        problems.append(Problem(obj, "metadata.namespace", f"a {kind} is cluster-scoped and has no namespace",
                                "remove metadata.namespace"))
    walker = Walker(obj)
    data = walker.walk(spec.schema, doc, "")
    problems.extend(walker.problems)
    if len(problems) == before:
        out.append(build(spec.schema, data))


def load_manifests(text: str, source: str = "<manifest>") -> list[KubeObject]:
    """Every object in a YAML stream, validated and defaulted, in document order.

    Raises ManifestError with every problem of every document.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ManifestError([Problem("document 1", "", f"the file is not UTF-8 text (byte {e.start})",
                                         "save it as UTF-8 text")], source) from None
    if not isinstance(text, str):
        raise ManifestError([Problem("document 1", "", f"expected YAML text, got {describe(text)}",
                                     "pass the file's contents as a string")], source)
    out: list = []
    problems: list[Problem] = []
    for doc in parse_yaml_documents(text):
        label = f"document {doc.number}"
        if doc.refused:
            problems.append(Problem(label, "", *doc.refused))
        elif doc.data is not None:
            _parse_any(doc.data, label, doc.issues, 0, out, problems)
        elif doc.issues:
            problems.extend(Problem(label, clean_path(f), m, x) for f, m, x in doc.issues)
    if problems:
        raise ManifestError(problems, source)
    return out


def parse_object(doc: Mapping, source: str = "<manifest>") -> KubeObject:
    """One decoded document (a dict, as from yaml.safe_load) as one object."""
    out: list = []
    problems: list[Problem] = []
    if isinstance(doc, Mapping) and not isinstance(doc, dict):
        doc = dict(doc)
    if isinstance(doc, dict) and isinstance(doc.get("kind"), str) and doc["kind"].endswith("List"):
        problems.append(Problem("document 1", "kind", f"a {doc['kind']} holds several objects",
                                "use load_manifests() for Lists"))
    else:
        _parse_any(doc, "document 1", [], 0, out, problems)
    if problems:
        raise ManifestError(problems, source)
    return out[0]
