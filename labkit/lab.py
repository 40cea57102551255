"""`labkit.lab()`: one call gives a notebook a running lab, on the kernel where it can.

    with labkit.lab(manifests="web.yaml") as lab:
        lab.http("default/client", "10.96.0.80:80")

"auto" picks the netns backend (real namespaces, the kernel's own rules and
conntrack) when the tools are there and this process is root, or may make a
user namespace (then a holder process runs the lab inside one: "netns-rootless"),
else the simulation, and prints one line saying which and why. Both answer
through the same Backend interface, so the notebook does not change.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

from labkit.errors import LabkitError

BACKENDS = ("auto", "netns", "netns-rootless", "sim", "kind")  # "auto" never picks kind


def choose_backend(requested: str, root: bool, missing: Sequence[str], userns: bool = False) -> tuple[str, str]:
    """(backend, why) for `requested` on a machine where `root` holds, `missing` lists
    what the netns backend lacks (one sentence each; "needs root" is judged from `root`
    and `userns` instead), and `userns` says whether unprivileged user namespaces work.
    Pure, so its wording is tested."""
    from labkit.tools import NOT_ROOT

    if requested not in BACKENDS:
        raise LabkitError(f"backend {requested!r} is not one of {', '.join(BACKENDS)} "
                          "(fix: labkit.lab(backend='auto'))")
    if requested == "sim":
        return "sim", "asked for"
    if requested == "kind":  # its own preflight (docker, kind, kubectl) runs in KindLab.up
        return "kind", "asked for"
    missing = [m for m in missing if m != NOT_ROOT]
    if missing:
        if requested != "auto":
            raise LabkitError("the netns backend cannot run here: " + "; ".join(missing)
                              + " (fix: see `labkit doctor`, or use backend='sim')")
        return "sim", "; ".join(missing) + ": see `labkit doctor`"
    if root and requested != "netns-rootless":
        return "netns", ("asked for" if requested == "netns"
                         else "running as root with the lab's tools installed")
    if userns:
        if requested == "auto":
            return "netns-rootless", "not root, but user namespaces work: the lab runs inside one"
        return "netns-rootless", "asked for" if requested == "netns-rootless" else "asked for; not root"
    if requested != "auto":
        raise LabkitError("the netns backend cannot run here: not root, and this machine does not allow "
                          "unprivileged user namespaces (fix: see `labkit doctor`, or use backend='sim')")
    return "sim", "not root, and this machine does not allow unprivileged user namespaces: see `labkit doctor`"


def render_choice(backend: str, why: str) -> str:
    """The one line `lab()` prints."""
    words = {"sim": "the simulation backend", "netns": "the netns backend (the kernel)",
             "netns-rootless": "the netns backend (the kernel, in a user namespace)",
             "kind": "the kind backend (a real Kubernetes cluster)"}[backend]
    return f"labkit: running on {words} ({why})"


def _text(value: Union[str, Path, Sequence[Union[str, Path]], None], what: str) -> str:
    """YAML given as text, as a path, or as several of either (joined as documents)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "\n---\n".join(_text(v, what) for v in value)
    if isinstance(value, Path) or ("\n" not in str(value) and str(value).endswith((".yaml", ".yml"))):
        try:
            return Path(value).read_text()
        except OSError as e:
            raise LabkitError(f"cannot read {what} {value}: {e.strerror} (fix: give a path that exists, "
                              "or the YAML text itself)") from None
    return str(value)


def lab(backend: str = "auto", name: Optional[str] = None, seed: int = 0,
        config: Union[str, Path, None] = None,
        manifests: Union[str, Path, Sequence[Union[str, Path]], None] = None,
        replace: bool = True):
    """A lab that is up, with `manifests` applied: a labkit.backends.base.Backend.

    backend:   "auto" (netns where possible, else sim), "netns" (as root, or else
               in a user namespace), "netns-rootless" (always in a user namespace) or "sim";
               with "auto", the environment variable LABKIT_BACKEND (sim or
               netns) decides instead: CI uses it to run the notebooks on the
               simulation, whose outputs are the ones stored in them
    name:      the lab's name (1-6 of a-z0-9; default "lab")
    seed:      every random choice of the control plane (and of the simulation)
    config:    a kind cluster config (text or path); default: 1 control plane + 2 workers
    manifests: Kubernetes YAML (text, a path, or a list of them)
    replace:   a kernel lab of the same name left by an earlier run (a learner
               re-running the set-up cell) is taken down first
    """
    from labkit.topology.plan import DEFAULT_LAB_NAME

    name = name or DEFAULT_LAB_NAME
    config_text = _text(config, "kind config")
    manifest_text = _text(manifests, "manifests")
    source = ", ".join(map(str, manifests)) if isinstance(manifests, (list, tuple)) else (
        str(manifests) if manifests is not None and "\n" not in str(manifests) else "<manifests>")
    env_choice = os.environ.get("LABKIT_BACKEND", "").strip()
    if backend == "auto" and env_choice:
        if env_choice not in BACKENDS:
            raise LabkitError(f"LABKIT_BACKEND={env_choice!r} is not one of {', '.join(BACKENDS)} "
                              "(fix: unset it, or set it to sim or netns)")
        backend = env_choice
    missing: list[str] = []
    root = os.geteuid() == 0
    userns = False
    if backend not in ("sim", "kind"):
        from labkit.backends.netns import rootless
        from labkit.backends.netns.lab import REQUIRED_TOOLS
        from labkit.tools import missing_requirements

        tools = REQUIRED_TOOLS if root and backend != "netns-rootless" else rootless.REQUIRED_TOOLS
        missing = [m.reason for m in missing_requirements(tools=tools)]
        if not missing and (not root or backend == "netns-rootless"):
            userns = rootless.check_user_namespaces()[0]
    chosen, why = choose_backend(backend, root, missing, userns)
    if env_choice and why.startswith("asked for"):
        why = why.replace("asked for", f"LABKIT_BACKEND={env_choice}", 1)
    print(render_choice(chosen, why))
    if chosen == "netns":
        from labkit.backends.netns import cleanup, registry
        from labkit.backends.netns.lab import NetnsLab

        if replace and (registry.load_registry(name) or name in cleanup.find_labs()):
            cleanup.down_lab(name)
            print(f"labkit: took down the earlier lab {name!r} first")
        the_lab = NetnsLab(name, config_text, seed)
    elif chosen == "netns-rootless":
        from labkit.backends.netns.rootless import RootlessLab

        the_lab = RootlessLab(name, config_text, seed)  # replaces this process's earlier lab itself
    elif chosen == "kind":
        from labkit.backends.kind.lab import KindLab

        the_lab = KindLab(name, config_text, seed)
    else:
        from labkit.backends.sim.lab import SimLab

        the_lab = SimLab(name, config_text, seed)
    the_lab.up(manifest_text, source if manifest_text else "")
    return the_lab


class _CallableModule(type(os)):
    """`labkit.lab(...)` must work even after `import labkit.lab` made the package's
    attribute this module rather than the function of the same name."""

    def __call__(self, *args, **kwargs):
        return lab(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
