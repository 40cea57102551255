"""The exercise-check machinery: one call, "Correct" or the next hint, never an exception.

A check is a function `check(answer, lab, **context)` made with the `@checker`
decorator from a judge (answer, lab, **context) -> Right | Wrong and a list of
hints, weakest first. `context` carries what the notebook asked about (e.g.
old_ips=..., the addresses seen before a change).
The judge computes the expected answer from the live lab every time; nothing
here stores an answer.

What the learner sees, printed (the call also returns a CheckResult, which a
notebook does not echo, so the message appears once):
  - "Correct: <why>"                                        the answer matches the lab
  - "Not quite: <what is off>\nHint 2 of 3: <hint>"         a wrong answer
  - "Not answered yet: replace the ... with your answer.\nHint 1 of 3: <hint>"
                                                            the stub (`...` or None)

Hint counter: each wrong answer moves to the next hint (the last one then
repeats). The counter is kept per lab, in a dict attribute
`_labkit_check_attempts` on the lab object ({check name: wrong attempts}), so a
fresh lab starts the hints afresh; with no lab (lab=None) a module-level dict
stands in. An unanswered stub always shows hint 1 and does not count. A
correct answer does not reset the counter.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

from labkit.errors import LabkitError

ATTEMPTS_ATTRIBUTE = "_labkit_check_attempts"
_NO_LAB_ATTEMPTS: dict[str, int] = {}

Hint = Union[str, Callable[[object], str]]


@dataclass(frozen=True)
class Right:
    """The judge's verdict for a correct answer; `why` is one sentence of explanation."""

    why: str


@dataclass(frozen=True)
class Wrong:
    """The judge's verdict for a wrong answer; `feedback` says what is off ("" for nothing specific)."""

    feedback: str = ""


class AnswerError(LabkitError):
    """The answer cannot be read as what the exercise asks for (raised by judges, caught here)."""


@dataclass(frozen=True)
class CheckResult:
    """What one check said. `hint` is the hint number shown (0 when correct)."""

    name: str
    correct: bool
    message: str
    hint: int = 0

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        """Already printed by the check: show nothing more as the cell's result."""


def attempts(lab) -> dict[str, int]:
    """The wrong-attempt counters for `lab` ({check name: count}), created on first use."""
    if lab is None:
        return _NO_LAB_ATTEMPTS
    table = getattr(lab, ATTEMPTS_ATTRIBUTE, None)
    if not isinstance(table, dict):
        table = {}
        try:
            setattr(lab, ATTEMPTS_ATTRIBUTE, table)
        except (AttributeError, TypeError):
            return _NO_LAB_ATTEMPTS
    return table


def reset_hints(lab=None) -> None:
    """Start every check's hints from the first again."""
    attempts(lab).clear()


def is_unanswered(answer) -> bool:
    """The learner copy's stub: `...` (Ellipsis) or None, or a container holding one."""
    if answer is ... or answer is None:
        return True
    if isinstance(answer, (list, tuple)) and answer and all(a is ... or a is None for a in answer):
        return True
    if isinstance(answer, dict) and any(v is ... for v in answer.values()):
        return True
    return False


def _hint_text(hint: Hint, lab) -> str:
    if callable(hint):
        try:
            return hint(lab)
        except Exception:  # a hint must never break the check
            return "look again at what the lab shows for this object."
    return hint


def _emit(result: CheckResult) -> CheckResult:
    print(result.message)
    return result


def checker(name: str, hints: Sequence[Hint]):
    """Make `judge(answer, lab) -> Right | Wrong` into a learner-facing check named `name`."""
    if not hints:
        raise ValueError(f"check {name} needs at least one hint")

    def decorate(judge: Callable[..., Union[Right, Wrong]]):
        @functools.wraps(judge)
        def check(answer, lab=None, **context) -> CheckResult:
            total = len(hints)
            if is_unanswered(answer):
                return _emit(CheckResult(
                    name, False,
                    "Not answered yet: replace the ... with your answer and run the cell again.\n"
                    f"Hint 1 of {total}: {_hint_text(hints[0], lab)}", 1))
            try:
                verdict = judge(answer, lab, **context)
            except (AnswerError, LabkitError, ValueError, TypeError, KeyError) as e:
                verdict = Wrong(str(e).strip() or type(e).__name__)
            except Exception as e:  # never raise at a learner: say it is our fault
                verdict = Wrong(f"the check itself failed ({type(e).__name__}: {e}); "
                                "this is a labkit bug, please report it")
            if isinstance(verdict, Right):
                return _emit(CheckResult(name, True, f"Correct: {verdict.why}", 0))
            table = attempts(lab)
            table[name] = table.get(name, 0) + 1
            k = min(table[name], total)
            head = f"Not quite: {verdict.feedback}" if verdict.feedback else "Not quite."
            return _emit(CheckResult(name, False, f"{head}\nHint {k} of {total}: {_hint_text(hints[k - 1], lab)}",
                                     k))

        check.check_name = name
        check.hints = tuple(hints)
        return check

    return decorate


def need_lab(lab) -> None:
    """AnswerError (shown as feedback) when a check that needs the lab got none."""
    if lab is None:
        raise AnswerError("this check needs the lab: run the setup cell (lab = labkit.lab(seed=0)) first, "
                          "then pass `lab` as the second argument")

