"""The cluster behind the tests/test_outside_*.py stories, and a lab of it on either backend.

Pods are pinned to nodes (spec.nodeName), so both backends place them alike:
  default/client       on kind-worker (the egress and DNS client)
  default/web-a        on kind-worker2, default/web-b on kind-worker2 (app: web)
  default/local-a      on kind-worker  (app: local)
Services:
  web-np     NodePort 30080, Cluster policy          -> web-a, web-b (both on kind-worker2)
  web-local  NodePort 30081, externalTrafficPolicy Local -> web-a, web-b
  web-lb     LoadBalancer, Local, healthCheckNodePort 32100, sourceRanges 192.0.2.0/24
  web-shut   LoadBalancer, Cluster, sourceRanges 198.51.100.0/24 (the outside client is refused)
  sticky     ClusterIP, sessionAffinity ClientIP (2 s)
  itp        ClusterIP, internalTrafficPolicy Local -> web-a, web-b (kind-worker2 only)
"""
import secrets

from conftest import labkit_requires

TOOLS = ("ip", "iptables", "iptables-restore", "iptables-save", "conntrack", "xtables-monitor")
BACKENDS = ["sim", "netns"]


def pod(name, app, node, port=8080):
    return f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default, labels: {{app: {app}}}}}
spec:
  nodeName: {node}
  containers:
  - name: agnhost
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port={port}", "--udp-port=8081"]
"""


def service(name, spec):
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
{spec}"""


PODS = [pod("client", "client", "kind-worker", 80), pod("web-a", "web", "kind-worker2"),
        pod("web-b", "web", "kind-worker2"), pod("local-a", "local", "kind-worker")]
SERVICES = [
    service("web-np", "  type: NodePort\n  selector: {app: web}\n"
                      "  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]\n"),
    service("web-local", "  type: NodePort\n  externalTrafficPolicy: Local\n  selector: {app: web}\n"
                         "  ports: [{port: 80, targetPort: 8080, nodePort: 30081}]\n"),
    service("web-lb", "  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 32100\n"
                      "  loadBalancerSourceRanges: [192.0.2.0/24]\n  selector: {app: web}\n"
                      "  ports: [{port: 80, targetPort: 8080, nodePort: 30082}]\n"),
    service("web-shut", "  type: LoadBalancer\n  loadBalancerSourceRanges: [198.51.100.0/24]\n"
                        "  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080, nodePort: 30083}]\n"),
    service("sticky", "  clusterIP: 10.96.0.50\n  selector: {app: web}\n  sessionAffinity: ClientIP\n"
                      "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 2}}\n"
                      "  ports: [{port: 80, targetPort: 8080}]\n"),
    service("itp", "  clusterIP: 10.96.0.51\n  internalTrafficPolicy: Local\n  selector: {app: web}\n"
                   "  ports: [{port: 80, targetPort: 8080}]\n"),
]
MANIFESTS = "---\n".join(PODS + SERVICES)


def make_lab(backend: str, manifests: str = MANIFESTS, tools=TOOLS):
    """A lab that is up (the caller takes it down)."""
    if backend == "sim":
        from labkit.backends.sim.lab import SimLab

        lab = SimLab("out")
    else:
        labkit_requires(root=True, tools=tools)
        from labkit.backends.netns.lab import NetnsLab

        lab = NetnsLab("o" + secrets.token_hex(2))
    try:
        lab.up(manifests, "outside stories")
    except BaseException:
        lab.down()
        raise
    return lab


def svc(lab, name):
    return next(s for s in lab.services() if s.meta.name == name)


def node_ip(lab, node):
    return lab.plan.node(node).ip


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def entry(lab, router, sport, proto="tcp"):
    hits = [e for e in lab.conntrack(router) if e.proto == proto and e.orig.sport == sport]
    return hits[-1] if hits else None


def tuples(e) -> tuple:
    """A conntrack entry's original and reply tuples, as text."""
    return (str(e.orig), str(e.reply)) if e is not None else None
