"""Can the kind backend run here? Each missing piece becomes one sentence with its fix.

`labkit.lab()` never picks kind on its own; these sentences are what a
learner sees when they ask for it on a machine without Docker, kind or
kubectl, or with a Docker engine that does not answer.
"""
from __future__ import annotations

from typing import Callable, Optional

from labkit.backends.kind import commands as cmd
from labkit.errors import MissingToolError
from labkit.tools import find_tool, install_hint

KIND_TOOLS = ("docker", "kind", "kubectl")


def missing_tool_sentences(find: Callable[[str], Optional[str]] = find_tool) -> list[str]:
    """One sentence per program the kind backend needs and cannot find."""
    return [f"{t} is not installed: {install_hint(t)}" for t in KIND_TOOLS if find(t) is None]


def docker_engine_sentence(returncode: int, stderr: str) -> str:
    """What `docker info` failing means for a learner ("" when it answered)."""
    if returncode == 0:
        return ""
    said = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {returncode}"
    if "permission denied" in stderr.lower():
        fix = ("add yourself to the docker group (`sudo usermod -aG docker $USER`), then log out and in "
               "again")
    else:
        fix = "start Docker (Docker Desktop, or `sudo systemctl start docker`) and try again"
    return f"docker is installed but its engine does not answer (docker info: {said}): {fix}"


def preflight(runner, find: Callable[[str], Optional[str]] = find_tool) -> list[str]:
    """Every reason the kind backend cannot run here (empty: it can)."""
    missing = missing_tool_sentences(find)
    if "docker" not in " ".join(missing):
        r = runner.run(cmd.docker_info(), check=False)
        engine = docker_engine_sentence(r.returncode, r.stderr)
        if engine:
            missing.append(engine)
    return missing


def check_can_run(runner, find: Callable[[str], Optional[str]] = find_tool) -> None:
    """MissingToolError listing every reason, or nothing."""
    reasons = preflight(runner, find)
    if reasons:
        raise MissingToolError("the kind backend cannot run here:\n" + "\n".join(f"  - {r}" for r in reasons)
                               + "\n(the course runs without Docker too: backend='sim' or 'netns')")
