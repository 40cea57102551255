"""Label selectors: Kubernetes' matching rules and kubectl's string form."""
import pytest

from labkit.model.objects import LabelSelector, LabelSelectorRequirement as Req
from labkit.model.selectors import (
    SelectorError,
    map_selector_matches,
    render_selector,
    selector_matches,
)

WEB = {"app": "web", "tier": "front"}
NO_TIER = {"app": "web"}


@pytest.mark.parametrize(
    "req, labels, expected",
    [
        (Req("tier", "In", ("front", "back")), WEB, True),
        (Req("tier", "In", ("back",)), WEB, False),
        (Req("tier", "In", ("front",)), NO_TIER, False),  # In needs the key
        (Req("tier", "NotIn", ("front",)), WEB, False),
        (Req("tier", "NotIn", ("back",)), WEB, True),
        (Req("tier", "NotIn", ("front",)), NO_TIER, True),  # absent key: NotIn matches
        (Req("tier", "Exists"), WEB, True),
        (Req("tier", "Exists"), NO_TIER, False),
        (Req("tier", "DoesNotExist"), WEB, False),
        (Req("tier", "DoesNotExist"), NO_TIER, True),  # absent key: DoesNotExist matches
    ],
)
def test_match_expressions_follow_kubernetes_rules_on_absent_keys(req, labels, expected):
    assert selector_matches(LabelSelector(match_expressions=(req,)), labels) is expected


def test_match_labels_and_expressions_must_all_hold():
    sel = LabelSelector({"app": "web"}, (Req("tier", "In", ("front",)),))
    assert selector_matches(sel, WEB) is True
    assert selector_matches(sel, {"app": "api", "tier": "front"}) is False
    assert selector_matches(sel, NO_TIER) is False


def test_empty_label_selector_selects_everything():
    assert selector_matches(LabelSelector(), {}) is True
    assert selector_matches(LabelSelector(), WEB) is True


def test_unknown_operator_is_a_learner_error():
    sel = LabelSelector(match_expressions=(Req("tier", "Equals", ("a",)),))
    with pytest.raises(SelectorError) as e:
        selector_matches(sel, WEB)
    assert str(e.value) == (
        "label selector operator 'Equals' (key 'tier') is not one of In, NotIn, Exists, DoesNotExist"
    )


def test_service_selector_is_plain_equality():
    assert map_selector_matches({"app": "web"}, WEB) is True
    assert map_selector_matches({"app": "web", "tier": "back"}, WEB) is False
    assert map_selector_matches({"version": "v1"}, WEB) is False


def test_empty_or_absent_service_selector_selects_nothing():
    assert map_selector_matches({}, WEB) is False
    assert map_selector_matches(None, WEB) is False


def test_render_selector_in_kubectl_form_sorted_by_key_with_sorted_values():
    sel = LabelSelector(
        {"tier": "front", "app": "web"},
        (
            Req("env", "NotIn", ("prod", "dev")),
            Req("zone", "In", ("b", "a")),
            Req("canary", "DoesNotExist"),
            Req("owner", "Exists"),
        ),
    )
    assert render_selector(sel) == (
        "app=web,!canary,env notin (dev,prod),owner,tier=front,zone in (a,b)"
    )


def test_render_selector_of_service_map_and_empty():
    assert render_selector({"tier": "front", "app": "web"}) == "app=web,tier=front"
    assert render_selector(LabelSelector()) == ""
    assert render_selector(None) == ""
    assert render_selector({}) == ""
