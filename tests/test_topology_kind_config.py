"""A kind cluster config -> ClusterTopology: kind's names and defaults, and every problem at once."""
import pytest

from labkit.errors import ManifestError
from labkit.topology.kind_config import (
    NodeSpec,
    default_topology,
    node_names_for,
    parse_kind_config,
    parse_kind_config_text,
)

HEAD = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"


def test_default_topology_is_one_control_plane_and_two_workers_named_like_kind():
    t = default_topology()
    assert t.nodes == (
        NodeSpec("kind-control-plane", "control-plane"),
        NodeSpec("kind-worker", "worker"),
        NodeSpec("kind-worker2", "worker"),
    )
    assert (t.pod_subnet, t.service_subnet, t.kube_proxy_mode) == ("10.244.0.0/16", "10.96.0.0/16", "iptables")
    assert t.node_pod_cidrs() == {
        "kind-control-plane": "10.244.0.0/24",
        "kind-worker": "10.244.1.0/24",
        "kind-worker2": "10.244.2.0/24",
    }


def test_node_names_number_each_role_from_its_second_node():
    roles = ["control-plane", "control-plane", "worker", "worker", "worker"]
    assert node_names_for("dev", roles) == [
        "dev-control-plane", "dev-control-plane2", "dev-worker", "dev-worker2", "dev-worker3",
    ]


def test_a_full_config_is_read():
    t = parse_kind_config_text(HEAD + """name: course
nodes:
- role: control-plane
- role: worker
  labels: {zone: a}
  image: kindest/node:v1.31.0
networking:
  podSubnet: 10.200.0.0/16
  serviceSubnet: 10.100.0.0/16
  kubeProxyMode: nftables
  disableDefaultCNI: true
""")
    assert t.name == "course"
    assert t.nodes == (NodeSpec("course-control-plane", "control-plane"),
                       NodeSpec("course-worker", "worker", {"zone": "a"}))
    assert (t.pod_subnet, t.service_subnet, t.kube_proxy_mode, t.disable_default_cni) == (
        "10.200.0.0/16", "10.100.0.0/16", "nftables", True)


def test_a_config_without_nodes_is_kinds_single_control_plane():
    assert parse_kind_config_text(HEAD).node_names == ("kind-control-plane",)


def test_a_node_without_role_is_a_control_plane_as_in_kind():
    t = parse_kind_config({"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [{}, {"role": "worker"}]})
    assert [n.role for n in t.nodes] == ["control-plane", "worker"]


def test_every_problem_is_reported_together_naming_the_field():
    with pytest.raises(ManifestError) as e:
        parse_kind_config_text("""kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha3
colour: blue
nodes:
- role: worker
  cpus: 2
- role: master
networking:
  podSubnet: 10.244.0.0/25
  serviceSubnet: 10.96.0.1/16
  kubeProxyMode: userspace
  mtu: 1400
""", "cluster.yaml")
    assert str(e.value) == """cluster.yaml: 9 problems found:
  - Cluster kind: apiVersion: must be 'kind.x-k8s.io/v1alpha4', got 'kind.x-k8s.io/v1alpha3' (fix: set 'apiVersion: kind.x-k8s.io/v1alpha4')
  - Cluster kind: colour: unknown field (fix: remove it, or check its spelling against kind's v1alpha4 Cluster)
  - Cluster kind: nodes[0].cpus: unknown field (fix: remove it, or check its spelling (role, image, labels, ...))
  - Cluster kind: nodes[1].role: 'master' is not a node role (fix: use 'control-plane' or 'worker')
  - Cluster kind: networking.mtu: unknown field (fix: remove it, or check its spelling (podSubnet, serviceSubnet, kubeProxyMode, ...))
  - Cluster kind: networking.kubeProxyMode: 'userspace' is not a kube-proxy mode (fix: use one of: iptables, nftables, ipvs, none)
  - Cluster kind: nodes: a cluster needs at least one control-plane node (fix: add '- role: control-plane')
  - Cluster kind: networking.podSubnet: 10.244.0.0/25 is smaller than one node's /24 (fix: use a prefix of /24 or shorter, e.g. 10.244.0.0/16)
  - Cluster kind: networking.serviceSubnet: '10.96.0.1/16' is not a CIDR with its host bits zero (fix: write it like 10.244.0.0/16)"""


def test_a_pod_subnet_too_small_for_the_nodes_is_refused():
    with pytest.raises(ManifestError) as e:
        parse_kind_config_text(HEAD + "nodes: [{role: control-plane}, {role: worker}, {role: worker}]\n"
                               "networking: {podSubnet: 10.244.0.0/23}\n")
    assert e.value.problems[0].message == "10.244.0.0/23 has room for 2 node /24s but the cluster has 3 nodes"


def test_not_yaml_is_one_problem():
    with pytest.raises(ManifestError) as e:
        parse_kind_config_text("kind: [", "bad.yaml")
    assert e.value.problems[0].message.startswith("not valid YAML")
