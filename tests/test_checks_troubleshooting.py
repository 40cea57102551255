"""Checks of 09.00-troubleshooting: each fix check with the right fix and a typical wrong one.

A wrong fix must leave the lab as it was (the check tries it in a copy first);
a right one is applied, and the lab answers again.
"""
from pathlib import Path

import pytest

from labkit.backends.sim.lab import SimLab
from labkit.checks import sandbox, troubleshooting as ts

COURSE = Path(__file__).resolve().parent.parent / "course" / "manifests" / "course.yaml"


def service(name, spec):
    return f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec:\n{spec}"


def deployment(name, replicas=2):
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: {name}
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
        ports: [{{name: http, containerPort: 8080}}]
"""


def pod(name, app, node, args="[netexec, --http-port=8080]"):
    return f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default, labels: {{app: {app}}}}}
spec:
  nodeName: {node}
  containers:
  - name: c
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: {args}
"""


SHOP_BROKEN = service("shop", "  selector: {app: shpo}\n  ports: [{name: http, port: 80, targetPort: http}]\n")
SHOP_FIXED = service("shop", "  selector: {app: shop}\n  ports: [{name: http, port: 80, targetPort: http}]\n")
API_BROKEN = service("api", "  selector: {app: api}\n  ports: [{port: 80, targetPort: 80}]\n")
API_FIXED = service("api", "  selector: {app: api}\n  ports: [{port: 80, targetPort: 8080}]\n")
LOCKDOWN = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-egress, namespace: default}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to:
    - podSelector: {matchLabels: {app: web}}
    ports: [{protocol: TCP, port: 8080}]
"""
DNS_FIX = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-dns, namespace: default}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
      podSelector: {matchLabels: {k8s-app: kube-dns}}
    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
"""
ECHO = "  type: NodePort\n  externalTrafficPolicy: {}\n  selector: {{app: echo}}\n" \
       "  ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 30080}}]\n"
STATSD = pod("statsd-1", "statsd", "kind-worker2", "[netexec, --udp-port=8125]")
METRICS = service("metrics", "  selector: {app: statsd}\n  ports: [{protocol: UDP, port: 8125, targetPort: 8125}]\n")


@pytest.fixture
def lab():
    lab = SimLab("lab", "", 0)
    lab.up(COURSE.read_text(), "course.yaml")
    lab.enable_cloud()
    yield lab
    lab.down()


def verdict(lab, name, source="default/client"):
    svc = next(s for s in lab.services() if s.meta.name == name)
    return lab.probe(source, f"{svc.cluster_ip}:{svc.ports[0].port}")[0].verdict


def test_fix_selector(lab):
    lab.apply(deployment("shop") + "---\n" + SHOP_BROKEN, "shop")
    assert verdict(lab, "shop") == "unreachable"
    wrong = ts.fix_selector(SHOP_BROKEN, lab)
    assert wrong.message.startswith("Not quite: with your fix, the client's request to default/shop (")
    assert wrong.message.split("\n")[0].endswith(") still gets 'unreachable'")
    assert verdict(lab, "shop") == "unreachable"  # the lab is as it was
    right = ts.fix_selector(SHOP_FIXED, lab)
    assert right.correct and right.message.endswith(
        "The selector matches the pods again, so they are endpoints and kube-proxy DNATs to them.")
    assert verdict(lab, "shop") == "answered"


def test_fix_selector_needs_yaml(lab):
    lab.apply(deployment("shop") + "---\n" + SHOP_BROKEN, "shop")
    assert ts.fix_selector({"app": "shop"}, lab).message.startswith(
        "Not quite: expected the fixed manifest as YAML text (a string with apiVersion, kind, metadata and "
        "spec), as you would give kubectl apply\n")
    assert ts.fix_selector(SHOP_FIXED.replace("port: 80,", "port: 99999,"), lab).message.startswith(
        "Not quite: the lab refuses this fix: ")


def test_fix_target_port(lab):
    lab.apply(deployment("api") + "---\n" + API_BROKEN, "api")
    assert verdict(lab, "api") == "refused"
    assert ts.fix_target_port(API_BROKEN, lab).message.split("\n")[0].endswith(") still gets 'refused'")
    assert ts.fix_target_port(API_FIXED, lab).correct
    assert verdict(lab, "api") == "answered"


def test_fix_masquerade(lab):
    lab.set_masquerade(True, ["10.244.0.0/16", "0.0.0.0/0"])
    assert ts.fix_masquerade(["0.0.0.0/0"], lab).message.startswith(
        "Not quite: with your fix, the client's request to the internet host 203.0.113.10 still gets 'no-reply'\n")
    assert ts.fix_masquerade([], lab).message.startswith(
        "Not quite: with your fix, the internet answers, but pod web-7466c97f8c-6x2xw now sees the client as 10.244.2.1, not "
        "10.244.1.2: the pod network must stay in the list\n")
    assert ts.fix_masquerade("10.244.0.0/16", lab).message.startswith(
        "Not quite: expected a list of CIDRs such as ['10.244.0.0/16'], got '10.244.0.0/16'\n")
    assert ts.fix_masquerade(["10.244.0.0/16"], lab).message.startswith(
        "Correct: the internet host answered and saw 198.51.100.3:")
    assert lab.network.masquerade.non_masquerade_cidrs == ("10.244.0.0/16",)


def test_fix_dns_policy(lab):
    lab.enable_dns()
    lab.apply(LOCKDOWN, "lockdown")
    assert lab.dns("default/client", "web").status == "TIMEOUT"
    assert ts.fix_dns_policy(LOCKDOWN, lab).message.startswith(
        "Not quite: with your fix, the client's lookup of 'web' still ends in TIMEOUT\n")
    assert ts.fix_dns_policy(DNS_FIX, lab).message == (
        "Correct: 'web' resolves to 10.96.146.191 and web answers. Egress policies must allow DNS explicitly: "
        "nothing is allowed by default once a policy selects the pod for egress.")
    assert lab.dns("default/client", "web").status == "NOERROR"


def test_fix_local_policy(lab):
    lab.apply(pod("echo-a", "echo", "kind-worker2") + "---\n" + service("echo", ECHO.format("Local")), "echo")
    assert lab.http("outside", "172.18.0.3:30080").verdict == "no-reply"
    assert ts.fix_local_policy(service("echo", ECHO.format("Local")), lab).message.startswith(
        "Not quite: with your fix, the outside client's request to kind-worker (172.18.0.3:30080) still gets "
        "'no-reply'\n")
    assert ts.fix_local_policy(service("echo", ECHO.format("Cluster")), lab).message.startswith(
        "Correct: kind-worker:30080 answered the outside client (default/echo-a).")
    # the other fix: an echo pod on kind-worker keeps Local (and the client's address)
    lab.apply(service("echo", ECHO.format("Local")), "echo")
    assert ts.fix_local_policy(pod("echo-b", "echo", "kind-worker"), lab).correct


@pytest.fixture
def agent(lab):
    agent = sandbox.sim_copy(lab)
    agent.conntrack_cleanup = False  # a kube-proxy that cannot delete conntrack entries (as in 09)
    agent.apply(STATSD + "---\n" + METRICS, "metrics")
    target = f"{next(s for s in agent.services() if s.meta.name == 'metrics').cluster_ip}:8125"
    assert agent.probe("default/client", target, "udp", sport=40000)[0].answered_by == "default/statsd-1"
    agent.delete(STATSD, "metrics")
    agent.apply(STATSD.replace("statsd-1", "statsd-2"), "statsd-2")
    assert agent.probe("default/client", target, "udp", sport=40000)[0].verdict == "no-reply"
    return agent


def test_stale_endpoint(agent):
    pods = {p.meta.name: p.pod_ip for p in agent.pods() if p.meta.name.startswith("statsd")}
    assert pods == {"statsd-2": "10.244.2.5"}
    assert ts.stale_endpoint("10.244.2.4", agent).message.startswith(
        "Correct: the flow is still bound to 10.244.2.4, a pod that no longer exists")
    assert ts.stale_endpoint("10.244.2.5", agent).message.startswith(
        "Not quite: 10.244.2.5 is the endpoint the rules would choose now; the entry was written before it existed\n")


def test_stale_wait(agent):
    [e] = [e for e in agent.conntrack("kind-worker") if e.proto == "udp"]
    assert (e.timeout, e.flags) == (30, ())  # answered once, less than 2 s before: not ASSURED yet
    assert ts.stale_wait(10, agent).message.startswith(
        "Not quite: after 10 s the entry still had 20 s to live, and the datagram you sent then matched it again "
        "(which restarted its timer to 30 s)\n")
    assert ts.stale_wait(30, agent).message.startswith(
        "Correct: after 30 s of silence the entry expired; the next datagram from port 40000 was new to "
        "conntrack, went through kube-proxy's rules and reached default/statsd-2.")
