"""A small cluster for the DNS and env-var tests: one of each kind of Service.

default/web      ClusterIP, 2 pods, named port http
default/db       headless, pods db-0 and db-1 (hostname + subdomain), db-2 not ready
default/ext      ExternalName -> internet.example
default/kubernetes, kube-system/kube-dns   as on a kind cluster
plus an "internet" record: internet.example A 203.0.113.10
"""
import random

from labkit.controllers.cluster import ClusterSettings, reconcile
from labkit.controllers.dns import Record
from labkit.model.objects import (
    Container,
    ContainerPort,
    Deployment,
    LabelSelector,
    ObjectMeta,
    Pod,
    PodCondition,
    PodTemplate,
    Service,
    ServicePort,
)

NODES = ("kind-control-plane", "kind-worker", "kind-worker2")
INTERNET = (Record("internet.example", "A", "203.0.113.10"),)


def _db_pod(name, ready=True):
    conds = (PodCondition("Ready", "True" if ready else "False"),)
    return Pod(ObjectMeta(name, "default", labels={"app": "db"}),
               containers=(Container("pg", "postgres", ports=(ContainerPort(5432, "pg"),)),),
               hostname=name, subdomain="db",
               **({} if ready else {"phase": "Running", "conditions": conds}))


def objects():
    web_labels = {"app": "web"}
    return [
        Service(ObjectMeta("kubernetes", "default"), ports=(ServicePort(443, name="https", target_port=6443),),
                selector=None, cluster_ip="10.96.0.1"),
        Service(ObjectMeta("kube-dns", "kube-system"),
                ports=(ServicePort(53, "UDP", "dns", 53), ServicePort(53, "TCP", "dns-tcp", 53),
                       ServicePort(9153, "TCP", "metrics", 9153)),
                selector={"k8s-app": "kube-dns"}, cluster_ip="10.96.0.10"),
        Deployment(ObjectMeta("web", "default"), LabelSelector(web_labels),
                   PodTemplate(ObjectMeta("", labels=web_labels),
                               containers=(Container("nginx", "nginx", ports=(ContainerPort(80, "http"),)),)),
                   replicas=2),
        Service(ObjectMeta("web", "default"), ports=(ServicePort(80, name="http", target_port="http"),),
                selector=web_labels, cluster_ip="10.96.0.20"),
        Service(ObjectMeta("db", "default"), ports=(ServicePort(5432, name="pg", target_port="pg"),),
                selector={"app": "db"}, cluster_ip="None"),
        Service(ObjectMeta("ext", "default"), type="ExternalName", external_name="internet.example"),
        _db_pod("db-0"), _db_pod("db-1"), _db_pod("db-2", ready=False),
    ]


def cluster(seed=7):
    return reconcile(objects(), ClusterSettings(), random.Random(seed), node_names=NODES)
