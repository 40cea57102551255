"""Label selectors: which pods a Deployment, Service or NetworkPolicy means.

Two kinds exist in the API and they differ on purpose:

- `LabelSelector` (Deployments, NetworkPolicies): matchLabels AND
  matchExpressions; an empty selector selects *everything*.
- A Service's `spec.selector` is a plain map of equalities. An absent selector
  means "endpoints are managed by hand"; an empty map `{}` does not survive a
  round trip through the API server (it is dropped, so it reads back as
  absent). `map_selector_matches` therefore treats an empty map as selecting
  *nothing*, and callers treat it like a missing selector.
"""
from __future__ import annotations

from typing import Mapping, Optional, Union

from labkit.errors import LabkitError
from labkit.model.objects import LabelSelector, LabelSelectorRequirement

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(LabkitError):
    """A selector that the API server would have refused (unknown operator)."""


def requirement_matches(req: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    """One matchExpressions entry, with Kubernetes' rules for absent keys.

    NotIn and DoesNotExist match a pod that lacks the key altogether; In and
    Exists need the key to be there.
    """
    present = req.key in labels
    if req.operator == "In":
        return present and labels[req.key] in req.values
    if req.operator == "NotIn":
        return not present or labels[req.key] not in req.values
    if req.operator == "Exists":
        return present
    if req.operator == "DoesNotExist":
        return not present
    raise SelectorError(
        f"label selector operator {req.operator!r} (key {req.key!r}) is not one of "
        f"{', '.join(OPERATORS)}"
    )


def selector_matches(sel: LabelSelector, labels: Mapping[str, str]) -> bool:
    """matchLabels AND every matchExpressions entry; empty selects everything."""
    for key, value in sel.match_labels.items():
        if labels.get(key) != value:
            return False
    return all(requirement_matches(req, labels) for req in sel.match_expressions)


def map_selector_matches(sel: Optional[Mapping[str, str]], labels: Mapping[str, str]) -> bool:
    """A Service selector: every key present with the same value.

    None and {} select nothing (see the module docstring): a Service without a
    selector gets its endpoints from hand-written EndpointSlices.
    """
    if not sel:
        return False
    return all(labels.get(k) == v for k, v in sel.items())


def _render_requirement(key: str, operator: str, values: tuple[str, ...]) -> str:
    vals = ",".join(sorted(values))
    if operator == "=":
        return f"{key}={values[0]}"
    if operator == "In":
        return f"{key} in ({vals})"
    if operator == "NotIn":
        return f"{key} notin ({vals})"
    if operator == "Exists":
        return key
    if operator == "DoesNotExist":
        return f"!{key}"
    raise SelectorError(
        f"label selector operator {operator!r} (key {key!r}) is not one of {', '.join(OPERATORS)}"
    )


def render_selector(sel: Union[LabelSelector, Mapping[str, str], None]) -> str:
    """kubectl's string form: "app=web,tier in (a,b)".

    Requirements are sorted by key (stable: matchLabels before expressions on
    the same key) and values inside `in (...)` are sorted, as labels.Selector's
    String() does. An empty or absent selector renders as "".
    """
    if sel is None:
        return ""
    if isinstance(sel, LabelSelector):
        reqs = [(k, "=", (v,)) for k, v in sel.match_labels.items()]
        reqs += [(r.key, r.operator, tuple(r.values)) for r in sel.match_expressions]
    else:
        reqs = [(k, "=", (v,)) for k, v in sel.items()]
    reqs.sort(key=lambda r: r[0])
    return ",".join(_render_requirement(*r) for r in reqs)
