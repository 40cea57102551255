"""Service environment variables: kubelet's FromServices and getServiceEnvVarMap, and creation order."""
import pytest

import dns_scenario
from labkit.controllers.envvars import (
    CreationOrderError,
    env_var_name,
    existed_before,
    from_services,
    pod_env_vars,
    render_env,
    service_env_vars,
    visible_services,
)
from labkit.model.objects import ObjectMeta, Pod, Service, ServicePort


def svc(name, ip, ports, ns="default"):
    return Service(ObjectMeta(name, ns), ports=tuple(ports), cluster_ip=ip, selector={"bar": "baz"})


def pod(name="client", ns="default"):
    return Pod(ObjectMeta(name, ns))


def test_from_services_equals_kubelets_own_test():
    """pkg/kubelet/envvars/envvars_test.go TestFromServices, value for value, in order."""
    services = [
        svc("foo-bar", "1.2.3.4", [ServicePort(8080, "TCP")]),
        svc("abc-123", "5.6.7.8", [ServicePort(8081, "UDP", "u-d-p"), ServicePort(8081, "TCP", "t-c-p")]),
        svc("q-u-u-x", "9.8.7.6", [ServicePort(8082, "TCP"), ServicePort(8083, "TCP", "8083")]),
        svc("svrc-clusterip-none", "None", [ServicePort(8082, "TCP")]),
        svc("svrc-clusterip-empty", "", [ServicePort(8082, "TCP")]),
    ]
    assert from_services(services) == [
        ("FOO_BAR_SERVICE_HOST", "1.2.3.4"),
        ("FOO_BAR_SERVICE_PORT", "8080"),
        ("FOO_BAR_PORT", "tcp://1.2.3.4:8080"),
        ("FOO_BAR_PORT_8080_TCP", "tcp://1.2.3.4:8080"),
        ("FOO_BAR_PORT_8080_TCP_PROTO", "tcp"),
        ("FOO_BAR_PORT_8080_TCP_PORT", "8080"),
        ("FOO_BAR_PORT_8080_TCP_ADDR", "1.2.3.4"),
        ("ABC_123_SERVICE_HOST", "5.6.7.8"),
        ("ABC_123_SERVICE_PORT", "8081"),
        ("ABC_123_SERVICE_PORT_U_D_P", "8081"),
        ("ABC_123_SERVICE_PORT_T_C_P", "8081"),
        ("ABC_123_PORT", "udp://5.6.7.8:8081"),
        ("ABC_123_PORT_8081_UDP", "udp://5.6.7.8:8081"),
        ("ABC_123_PORT_8081_UDP_PROTO", "udp"),
        ("ABC_123_PORT_8081_UDP_PORT", "8081"),
        ("ABC_123_PORT_8081_UDP_ADDR", "5.6.7.8"),
        ("ABC_123_PORT_8081_TCP", "tcp://5.6.7.8:8081"),
        ("ABC_123_PORT_8081_TCP_PROTO", "tcp"),
        ("ABC_123_PORT_8081_TCP_PORT", "8081"),
        ("ABC_123_PORT_8081_TCP_ADDR", "5.6.7.8"),
        ("Q_U_U_X_SERVICE_HOST", "9.8.7.6"),
        ("Q_U_U_X_SERVICE_PORT", "8082"),
        ("Q_U_U_X_SERVICE_PORT_8083", "8083"),
        ("Q_U_U_X_PORT", "tcp://9.8.7.6:8082"),
        ("Q_U_U_X_PORT_8082_TCP", "tcp://9.8.7.6:8082"),
        ("Q_U_U_X_PORT_8082_TCP_PROTO", "tcp"),
        ("Q_U_U_X_PORT_8082_TCP_PORT", "8082"),
        ("Q_U_U_X_PORT_8082_TCP_ADDR", "9.8.7.6"),
        ("Q_U_U_X_PORT_8083_TCP", "tcp://9.8.7.6:8083"),
        ("Q_U_U_X_PORT_8083_TCP_PROTO", "tcp"),
        ("Q_U_U_X_PORT_8083_TCP_PORT", "8083"),
        ("Q_U_U_X_PORT_8083_TCP_ADDR", "9.8.7.6"),
    ]


def test_ipv6_cluster_ip_gets_brackets_in_urls_only():
    env = dict(from_services([svc("v6", "fd00:10:96::a", [ServicePort(80)])]))
    assert env["V6_PORT"] == "tcp://[fd00:10:96::a]:80"
    assert env["V6_PORT_80_TCP_ADDR"] == "fd00:10:96::a"
    assert env["V6_SERVICE_HOST"] == "fd00:10:96::a"


def test_env_var_name():
    assert env_var_name("my-web-2") == "MY_WEB_2"


def test_external_name_service_gives_nothing():
    ext = Service(ObjectMeta("ext", "default"), type="ExternalName", external_name="example.com")
    assert from_services([ext]) == []


KUBERNETES = svc("kubernetes", "10.96.0.1", [ServicePort(443, name="https")])
WEB = svc("web", "10.96.0.20", [ServicePort(80, name="http")])
OTHER_NS = svc("api", "10.96.0.30", [ServicePort(8080)], ns="shop")


def test_pod_sees_its_namespace_and_the_master_service():
    env = service_env_vars(pod(ns="shop"), [KUBERNETES, WEB, OTHER_NS])
    assert sorted({k.split("_")[0] for k in env}) == ["API", "KUBERNETES"]
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"


def test_enable_service_links_false_keeps_only_the_master_service():
    env = service_env_vars(pod(), [KUBERNETES, WEB], enable_service_links=False)
    assert render_env(env) == (
        "KUBERNETES_PORT=tcp://10.96.0.1:443\n"
        "KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443\n"
        "KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1\n"
        "KUBERNETES_PORT_443_TCP_PORT=443\n"
        "KUBERNETES_PORT_443_TCP_PROTO=tcp\n"
        "KUBERNETES_SERVICE_HOST=10.96.0.1\n"
        "KUBERNETES_SERVICE_PORT=443\n"
        "KUBERNETES_SERVICE_PORT_HTTPS=443\n"
    )


@pytest.mark.parametrize("ns", ["a-first", "zz-last"])
def test_a_local_service_named_kubernetes_wins_over_the_master(ns):
    local = svc("kubernetes", "10.96.0.99", [ServicePort(8443)], ns=ns)
    env = service_env_vars(pod(ns=ns), [KUBERNETES, local])
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.99"


def test_headless_service_gives_no_variables():
    headless = svc("db", "None", [ServicePort(5432)])
    assert service_env_vars(pod(), [headless]) == {}


# --- creation order --------------------------------------------------------------


def test_pod_created_before_the_service_lacks_its_variables():
    before, after = pod("before"), pod("after")
    order = ["Pod default/before", "Service default/web", "Pod default/after"]
    services = [KUBERNETES, WEB]
    env_before = service_env_vars(before, services, order)
    env_after = service_env_vars(after, services, order)
    assert "WEB_SERVICE_HOST" not in env_before
    assert env_before["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"  # unlisted: there from the start
    assert env_after["WEB_SERVICE_HOST"] == "10.96.0.20"
    assert env_after["WEB_SERVICE_PORT"] == "80"
    assert env_after["WEB_PORT"] == "tcp://10.96.0.20:80"
    assert set(env_after) - set(env_before) == {
        "WEB_SERVICE_HOST", "WEB_SERVICE_PORT", "WEB_SERVICE_PORT_HTTP", "WEB_PORT",
        "WEB_PORT_80_TCP", "WEB_PORT_80_TCP_PROTO", "WEB_PORT_80_TCP_PORT", "WEB_PORT_80_TCP_ADDR",
    }


def test_existed_before_rules():
    p = pod("p")
    assert existed_before(WEB, p, [])  # nothing listed: all at once
    assert existed_before(WEB, p, ["Pod default/p"])  # Service unlisted: from the start
    assert not existed_before(WEB, p, ["Service default/web"])  # pod unlisted, Service later
    assert existed_before(WEB, p, ["Service default/web", "Pod default/p"])
    assert not existed_before(WEB, p, ["Pod default/p", "Service default/web"])


def test_an_object_listed_twice_is_an_error():
    with pytest.raises(CreationOrderError, match=r"lists 'Pod default/p' twice \(positions 0 and 2\)"):
        visible_services(pod("p"), [WEB], ["Pod default/p", "Service default/web", "Pod default/p"])


def test_pod_env_vars_from_a_reconciled_cluster():
    state = dns_scenario.cluster()
    env = pod_env_vars(state, "default", "db-0")
    assert sorted({k.split("_")[0] for k in env}) == ["KUBERNETES", "WEB"]  # db headless, ext ExternalName
    assert env["WEB_SERVICE_PORT_HTTP"] == "80"
    late = pod_env_vars(state, "default", "db-0", ["Pod default/db-0", "Service default/web"])
    assert "WEB_SERVICE_HOST" not in late and "KUBERNETES_SERVICE_HOST" in late
