"""Service environment variables exist in pods created after the Service, not in those created before.

The lab records each apply; kubelet's rule (labkit.controllers.envvars) reads
the creation order from it. Both backends give the same variables.
"""
import pytest

from outside_scenario import BACKENDS, make_lab, pod, service

EARLY = service("early", "  clusterIP: 10.96.0.60\n  selector: {app: web}\n  ports: [{name: http, port: 80}]\n")
LATE = service("late-web", "  clusterIP: 10.96.0.61\n  selector: {app: web}\n  ports: [{port: 8080}]\n")


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request):
    lab = make_lab(request.param, "---\n".join([EARLY, pod("before", "x", "kind-worker")]))
    try:
        lab.apply(LATE)
        lab.apply(pod("after", "x", "kind-worker2"))
        yield lab
    finally:
        lab.down()


def test_a_pod_made_before_a_service_lacks_its_variables(lab):
    env = lab.env("default/before")
    assert env["EARLY_SERVICE_HOST"] == "10.96.0.60" and env["EARLY_SERVICE_PORT_HTTP"] == "80"
    assert not any(k.startswith("LATE_WEB_") for k in env)


def test_a_pod_made_after_it_has_them(lab):
    env = lab.env("default/after")
    assert {k: v for k, v in env.items() if k.startswith("LATE_WEB_")} == {
        "LATE_WEB_PORT": "tcp://10.96.0.61:8080",
        "LATE_WEB_PORT_8080_TCP": "tcp://10.96.0.61:8080",
        "LATE_WEB_PORT_8080_TCP_ADDR": "10.96.0.61",
        "LATE_WEB_PORT_8080_TCP_PORT": "8080",
        "LATE_WEB_PORT_8080_TCP_PROTO": "tcp",
        "LATE_WEB_SERVICE_HOST": "10.96.0.61",
        "LATE_WEB_SERVICE_PORT": "8080",
    }
    assert env["EARLY_SERVICE_HOST"] == "10.96.0.60"
