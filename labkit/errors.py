"""The one error family of labkit, written for a learner.

Every error names what was wrong (the object, the field) and how to fix it.
Validation collects every problem before it raises, so a learner fixes a
manifest once rather than once per mistake.
"""
from __future__ import annotations

from dataclasses import dataclass


class LabkitError(Exception):
    """Base of every error labkit raises on purpose.

    The CLI turns these into a message on stderr and exit code 2; anything
    else escaping is a bug in labkit.
    """


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one object.

    obj:   "Service default/web" (kind, then namespace/name or just name)
    field: the JSON path, e.g. "spec.ports[0].port" ("" for the whole object)
    message: what is wrong
    fix:   what to do about it ("" when the message already says it)
    """

    obj: str
    field: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.obj}: {self.field}" if self.field else self.obj
        text = f"{where}: {self.message}"
        if self.fix:
            text += f" (fix: {self.fix})"
        return text


class ManifestError(LabkitError):
    """One or more problems found in manifests or configuration."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], source: str = ""):
        self.problems = tuple(problems)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.source}: " if self.source else ""
        n = len(self.problems)
        lines = [f"{head}{n} problem{'s' if n != 1 else ''} found:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class MissingToolError(LabkitError):
    """A program labkit needs is not installed; the message says how to get it."""


class RuleError(LabkitError):
    """Rule text that labkit cannot parse or refuses to interpret.

    Carries the 1-based line number and the line, so the learner sees exactly
    which rule was refused.
    """

    def __init__(self, message: str, line_no: int = 0, line: str = "", context: str = ""):
        self.line_no = line_no
        self.line = line
        self.reason = message
        text = message
        if line_no:
            text = f"line {line_no}: {message}\n    {line}"
        if context:
            text += "\n" + context
        super().__init__(text)
