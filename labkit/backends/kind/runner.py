"""The seam between the kind backend and the programs it drives: docker, kind, kubectl.

The backend never calls subprocess itself: it hands argv (and stdin) to a
CommandRunner. Tests replace it with a FakeCommandRunner holding the exact
calls expected, in order, each with its recorded stdout, stderr and exit
code; any other call fails the test at once, and `assert_done()` fails it if
an expected call never came (the knftables-style lower seam).

Recordings live on disk as a directory with `calls.yaml`:

    - argv: [kind, get, clusters]
      stderr: "No kind clusters found.\n"
    - argv: [kubectl, --context, kind-kind, apply, -f, -, -o, name]
      stdin_file: web.yaml          # the file's text is the expected stdin
      stdout_file: apply.out
      returncode: 0

`load_recording(dir)` reads one into a list of Call.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from labkit.errors import LabkitError
from labkit.tools import require_tool


class KindCommandError(LabkitError):
    """A docker/kind/kubectl command failed; the message shows it and what it said."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, hint: str = ""):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        text = f"command failed ({returncode}): {' '.join(self.argv)}"
        if stderr.strip():
            text += "\n" + "\n".join("    " + line for line in stderr.strip().splitlines()[-12:])
        if hint:
            text += f"\n(fix: {hint})"
        super().__init__(text)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Call:
    """One expected command and what it printed."""

    argv: tuple[str, ...]
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0


class Background:
    """A program left running (e.g. `xtables-monitor --trace`); `stop()` ends it and returns its output."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def stop(self, timeout: float = 5.0) -> Result:
        self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return Result(self.proc.returncode, out, err)


class CommandRunner:
    """Runs programs for real. `check=True` turns a non-zero exit into KindCommandError."""

    def __init__(self, timeout: float = 600.0):
        self.timeout = timeout

    def _argv(self, argv: Sequence[str]) -> list[str]:
        argv = list(argv)
        argv[0] = require_tool(argv[0]) if "/" not in argv[0] else argv[0]
        return argv

    def run(self, argv: Sequence[str], stdin: str = "", check: bool = True) -> Result:
        real = self._argv(argv)
        try:
            p = subprocess.run(real, input=stdin, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise KindCommandError(argv, -1, f"no answer within {self.timeout:.0f} s") from None
        if check and p.returncode != 0:
            raise KindCommandError(argv, p.returncode, p.stderr)
        return Result(p.returncode, p.stdout, p.stderr)

    def start(self, argv: Sequence[str]) -> Background:
        """Start a long-running program; its output is collected when it is stopped."""
        return Background(subprocess.Popen(self._argv(argv), stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True))


class _FakeBackground(Background):
    def __init__(self, call: Call):
        self.call = call

    def stop(self, timeout: float = 5.0) -> Result:
        return Result(self.call.returncode, self.call.stdout, self.call.stderr)


@dataclass
class FakeCommandRunner(CommandRunner):
    """Replays `calls` in order: the argv and stdin must match exactly, or the test fails."""

    calls: list[Call] = field(default_factory=list)
    seen: list[tuple[tuple[str, ...], str]] = field(default_factory=list)

    def _next(self, argv: Sequence[str], stdin: str) -> Call:
        got = tuple(argv)
        self.seen.append((got, stdin))
        if not self.calls:
            raise AssertionError(f"unexpected command (no more were recorded): {list(got)}")
        want = self.calls[0]
        if want.argv != got:
            raise AssertionError(f"unexpected command:\n  got:      {list(got)}\n  expected: {list(want.argv)}")
        if want.stdin != stdin:
            import difflib

            diff = "\n".join(difflib.unified_diff(want.stdin.splitlines(), stdin.splitlines(),
                                                  "recorded stdin", "stdin given", lineterm=""))
            raise AssertionError(f"command {list(got)}: stdin differs from the recording\n{diff}")
        return self.calls.pop(0)

    def run(self, argv: Sequence[str], stdin: str = "", check: bool = True) -> Result:
        call = self._next(argv, stdin)
        if check and call.returncode != 0:
            raise KindCommandError(argv, call.returncode, call.stderr)
        return Result(call.returncode, call.stdout, call.stderr)

    def start(self, argv: Sequence[str]) -> Background:
        return _FakeBackground(self._next(argv, ""))

    def assert_done(self) -> None:
        if self.calls:
            left = "\n".join("  " + " ".join(c.argv) for c in self.calls)
            raise AssertionError(f"{len(self.calls)} recorded command(s) never ran:\n{left}")


def load_recording(directory: str | os.PathLike, substitutions: Optional[dict[str, str]] = None) -> list[Call]:
    """The calls of a recording directory (see the module docstring).

    `substitutions` replaces "{KEY}" in argv words and in the texts (e.g. the
    probe image's directory, which depends on where labkit is installed).
    """
    import yaml

    base = Path(directory)
    subs = substitutions or {}

    def text(entry: dict, key: str) -> str:
        if f"{key}_file" in entry:
            return word((base / entry[f"{key}_file"]).read_text())
        return word(entry.get(key, ""))

    def word(w) -> str:
        w = str(w)
        for k, v in subs.items():
            w = w.replace("{" + k + "}", v)
        return w

    entries = yaml.safe_load((base / "calls.yaml").read_text()) or []
    return [Call(tuple(word(w) for w in e["argv"]), text(e, "stdin"), text(e, "stdout"), text(e, "stderr"),
                 int(e.get("returncode", 0))) for e in entries]
