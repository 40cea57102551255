"""The lab's registry: a JSON file recording every namespace and process the lab makes.

/run/labkit/<lab>/state.json is rewritten (atomically: a temporary file,
then rename) BEFORE each batch of objects is created, so a process killed at
any moment leaves a record that `labkit down` can finish from. It also keeps
what the lab was asked to do (the kind config, every apply/delete/scale), so
a later `labkit apply` in another process can rebuild the cluster state.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

STATE_ROOT = "/run/labkit"
STATE_FILE = "state.json"


@dataclass
class ProcessRecord:
    pid: int
    netns: str
    pod: str  # "namespace/name"
    marker: str  # a string its /proc/<pid>/cmdline must contain before we kill it


@dataclass
class Registry:
    lab: str
    prefix: str
    backend: str = "netns"
    created: float = 0.0
    creator_pid: int = 0
    phase: str = "creating"  # "creating", "up", "removing"
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    kind_config: str = ""  # the config's text ("" for the default topology)
    seed: int = 0
    operations: list[dict] = field(default_factory=list)  # {"op": "apply"|"delete"|"scale", ...}
    root: str = STATE_ROOT

    @property
    def dir(self) -> str:
        return os.path.join(self.root, self.lab)

    @property
    def path(self) -> str:
        return os.path.join(self.dir, STATE_FILE)

    def save(self) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        data = asdict(self)
        data.pop("root")
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def record_namespaces(self, names) -> None:
        """Note namespaces about to be created (then save)."""
        for n in names:
            if n not in self.namespaces:
                self.namespaces.append(n)
        self.save()

    def forget_namespaces(self, names) -> None:
        gone = set(names)
        self.namespaces = [n for n in self.namespaces if n not in gone]
        self.processes = [p for p in self.processes if p.netns not in gone]
        self.save()

    def record_process(self, record: ProcessRecord) -> None:
        self.processes.append(record)
        self.save()


def new_registry(lab: str, prefix: str, root: str = STATE_ROOT, **kw) -> Registry:
    return Registry(lab=lab, prefix=prefix, created=time.time(), creator_pid=os.getpid(), root=root, **kw)


def load_registry(lab: str, root: str = STATE_ROOT) -> Optional[Registry]:
    """The lab's registry, or None if there is none (or it cannot be read: then `down` sweeps by name)."""
    path = os.path.join(root, lab, STATE_FILE)
    try:
        with open(path) as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError, OSError):
        return None
    procs = [ProcessRecord(**p) for p in data.pop("processes", [])]
    known = set(Registry.__dataclass_fields__) - {"root", "processes"}
    reg = Registry(**{k: v for k, v in data.items() if k in known}, root=root)
    reg.processes = procs
    return reg


def list_state_dirs(root: str = STATE_ROOT) -> list[str]:
    """Names of labs with a state directory (complete or not)."""
    try:
        return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    except FileNotFoundError:
        return []


def remove_state(lab: str, root: str = STATE_ROOT) -> None:
    """Remove the lab's state directory and everything in it."""
    import shutil

    shutil.rmtree(os.path.join(root, lab), ignore_errors=True)
