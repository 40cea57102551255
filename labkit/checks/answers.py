"""Reading a learner's answer: addresses, "ip:port", numbers, packets, manifests.

Each reader accepts the forms a learner is likely to write and raises
AnswerError with a sentence saying what form was expected.
"""
from __future__ import annotations

import ipaddress
from fractions import Fraction
from typing import Iterable

from labkit.checks.core import AnswerError


def as_ip(answer, what: str = "an IPv4 address") -> str:
    """ "10.96.0.80", an ipaddress object, or "10.96.0.80:80" (the port is dropped) -> "10.96.0.80"."""
    if isinstance(answer, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(answer)
    if not isinstance(answer, str):
        raise AnswerError(f"expected {what} as a string such as '10.96.0.1', got {type(answer).__name__}")
    text = answer.strip()
    if text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise AnswerError(f"{answer!r} is not {what} (write it like '10.96.0.1')") from None


def as_ip_port(answer, what: str = "an address and port") -> tuple[str, int]:
    """ "10.244.1.2:80" or ("10.244.1.2", 80) -> ("10.244.1.2", 80)."""
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        host, port = answer
    elif isinstance(answer, str) and answer.strip().count(":") == 1:
        host, port = answer.strip().split(":")
    else:
        raise AnswerError(f"expected {what} written as 'ADDRESS:PORT', e.g. '10.244.1.2:80', got {answer!r}")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise AnswerError(f"the port in {answer!r} is not a number") from None
    return as_ip(host, what), port


def as_int(answer, what: str = "a whole number") -> int:
    if isinstance(answer, bool) or not isinstance(answer, (int, float, str)):
        raise AnswerError(f"expected {what}, got {answer!r}")
    try:
        value = float(answer)
    except ValueError:
        raise AnswerError(f"expected {what}, got {answer!r}") from None
    if value != int(value):
        raise AnswerError(f"expected {what}, got {answer!r}")
    return int(value)


def as_probability(answer) -> Fraction:
    """0.5, "0.5", "1/2" or Fraction(1, 2) -> Fraction; AnswerError outside [0, 1]."""
    if isinstance(answer, bool):
        raise AnswerError(f"expected a probability between 0 and 1, got {answer!r}")
    try:
        if isinstance(answer, Fraction):
            value = answer
        elif isinstance(answer, str):
            value = Fraction(answer.strip())
        elif isinstance(answer, (int, float)):
            value = Fraction(answer).limit_denominator(10_000)
        else:
            raise ValueError
    except (ValueError, ZeroDivisionError):
        raise AnswerError(f"expected a probability such as 0.5 or '1/2', got {answer!r}") from None
    if not 0 <= value <= 1:
        raise AnswerError(f"a probability lies between 0 and 1; {answer!r} does not")
    return value


def close_to(value: Fraction, exact: Fraction, tolerance: float = 0.001) -> bool:
    return abs(float(value) - float(exact)) <= tolerance


def as_ip_set(answer, what: str = "a list of IPv4 addresses") -> frozenset[str]:
    if isinstance(answer, str) or not isinstance(answer, Iterable):
        raise AnswerError(f"expected {what}, e.g. ['10.244.1.2', '10.244.2.3'], got {answer!r}")
    return frozenset(as_ip(a) for a in answer)


def as_bool(answer, what: str = "True or False") -> bool:
    if isinstance(answer, bool):
        return answer
    if isinstance(answer, str) and answer.strip().lower() in ("yes", "no", "true", "false"):
        return answer.strip().lower() in ("yes", "true")
    raise AnswerError(f"expected {what}, got {answer!r}")


def as_word(answer, choices: Iterable[str], what: str = "one of") -> str:
    """A word from `choices`, compared without case or surrounding blanks."""
    choices = tuple(choices)
    if isinstance(answer, str):
        word = answer.strip().lower()
        for c in choices:
            if word == c.lower():
                return c
    raise AnswerError(f"expected {what} {', '.join(repr(c) for c in choices)}, got {answer!r}")
