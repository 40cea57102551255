"""Starting and stopping the pod servers (labkit.workloads.netexec), one process per pod.

Measured here: a server is listening ~25 ms after it is spawned, and the
servers start in parallel, so six pods cost about as much as one; one
process per pod keeps scale/delete simple (kill the pod's process, delete
its namespace). Each server joins its pod's namespace itself and reports
"ok" (or the error) on a pipe; it exits on its own if the namespace goes.
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from labkit.backends.netns.registry import ProcessRecord, Registry
from labkit.backends.netns.runner import netns_path
from labkit.errors import LabkitError
from labkit.workloads import netexec

READY_DEADLINE = 20.0  # seconds: a loaded 2-core machine starts Python slowly


@dataclass(frozen=True)
class ServerSpec:
    pod: str  # "namespace/name"
    hostname: str  # the pod's name, what /hostname answers
    netns: str
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...]


def server_argv(lab: str, spec: ServerSpec, ready_fd: int) -> list[str]:
    argv = [sys.executable, "-I", "-S", netexec.__file__, "--lab", lab, "--hostname", spec.hostname,
            "--netns", netns_path(spec.netns), "--ready-fd", str(ready_fd)]
    for p in spec.tcp_ports:
        argv += ["--http-port", str(p)]
    for p in spec.udp_ports:
        argv += ["--udp-port", str(p)]
    return argv


@dataclass(frozen=True)
class HealthSpec:
    """kube-proxy's health check server of one node: (port, status, body) answers."""

    pod: str  # "health <node>": how the registry names the process
    netns: str
    answers: tuple[tuple[int, int, str], ...]


def health_argv(lab: str, spec: HealthSpec, ready_fd: int) -> list[str]:
    from labkit.backends.netns import health_server

    argv = [sys.executable, "-I", "-S", health_server.__file__, "--lab", lab,
            "--netns", netns_path(spec.netns), "--ready-fd", str(ready_fd)]
    for port, status, body in spec.answers:
        argv += ["--answer", str(port), str(status), body]
    return argv


def start_servers(lab: str, specs: Sequence, registry: Registry,
                  argv_of: Optional[Callable] = None) -> list[ProcessRecord]:
    """Spawn every server, wait until each listens, record their PIDs; LabkitError if one fails.

    argv_of(lab, spec, ready_fd): the command line (default: a pod's netexec server).
    """
    argv_of = argv_of or server_argv
    pending = {}
    records = []
    for spec in specs:
        r, w = os.pipe()
        try:
            proc = subprocess.Popen(
                argv_of(lab, spec, w), pass_fds=(w,), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            os.close(w)
        rec = ProcessRecord(proc.pid, spec.netns, spec.pod, f"--lab\0{lab}\0")
        records.append(rec)
        registry.processes.append(rec)
        pending[r] = (spec, proc)
    registry.save()
    failures = []
    end = time.monotonic() + READY_DEADLINE
    answers: dict[int, bytes] = {r: b"" for r in pending}
    while pending and time.monotonic() < end:
        ready, _, _ = select.select(list(pending), [], [], max(0.0, end - time.monotonic()))
        for r in ready:
            chunk = os.read(r, 512)
            answers[r] += chunk
            if not chunk or answers[r].endswith(b"\n"):
                spec, _ = pending.pop(r)
                os.close(r)
                text = answers[r].decode(errors="replace").strip()
                if text != "ok":
                    failures.append(f"pod {spec.pod}: its server did not start: {text or 'it exited'}")
    for r, (spec, _) in pending.items():
        os.close(r)
        failures.append(f"pod {spec.pod}: its server was not listening after {READY_DEADLINE:.0f} s")
    if failures:
        raise LabkitError("\n".join(failures))
    return records
