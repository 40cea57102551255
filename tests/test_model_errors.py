"""Every kind of manifest error, with its exact message (and golden logs of a few
multi-problem manifests: LABKIT_UPDATE_GOLDEN=1 rewrites them)."""
import os
from pathlib import Path

import pytest

from labkit.errors import ManifestError, Problem
from labkit.model import load_manifests, parse_object
from labkit.model import load as load_module

GOLDEN = Path(__file__).parent / "golden" / "errors"

SVC = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n"


def svc(spec: str) -> str:
    return SVC + spec

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
NP = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\nspec:\n"
ING = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: ing}\nspec:\n"
EPS = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: eps}\n"
DEP = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n"
P80 = "  ports: [{port: 80}]\n"
NODE = "apiVersion: v1\nkind: Node\nmetadata: {name: kind-worker}\n"



def problems(text: str) -> list[str]:
    with pytest.raises(ManifestError) as e:
        load_manifests(text)
    return [str(p) for p in e.value.problems]


CASES = [
    pytest.param(
        "apiVersion: v1\nkind: Service\nmetadata: {labels: {app: web}}\nspec: {ports: [{port: 80}]}\n",
        ['document 1: metadata.name: required field is missing (fix: add name (name: web) under metadata)'],
        id='name_missing'),
    pytest.param(
        "apiVersion: v1\nkind: Service\nmetadata: {name: 1web}\nspec: {ports: [{port: 80}]}\n",
        ['Service default/1web: metadata.name: "1web" is not a valid DNS-1035 label: use lowercase letters, digits and \'-\', starting with a letter and ending with a letter or digit (fix: e.g. "svc-1web")'],
        id='service_name_dns1035'),
    pytest.param(
        "apiVersion: v1\nkind: Service\nmetadata: {name: Web_Front}\nspec: {ports: [{port: 80}]}\n",
        ['Service default/Web_Front: metadata.name: "Web_Front" is not a valid DNS-1035 label: use lowercase letters, digits and \'-\', starting with a letter and ending with a letter or digit (fix: e.g. "web-front")'],
        id='service_name_uppercase'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team.a}\n",
        ['Namespace team.a: metadata.name: "team.a" is not a valid DNS-1123 label: use lowercase letters, digits and \'-\', starting and ending with a letter or digit (fix: e.g. "team-a")'],
        id='namespace_name_label'),
    pytest.param(
        POD.replace("name: p", "name: web..1") + "  containers: [{name: c}]\n",
        ['Pod default/web..1: metadata.name: "web..1" is not a valid DNS-1123 subdomain: use lowercase letters, digits, \'-\' and \'.\', each dot-separated part starting and ending with a letter or digit (fix: e.g. "web.1")'],
        id='pod_name_subdomain'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + "a" * 64 + "}\n",
        ['Namespace aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: metadata.name: must be at most 63 characters, got 64 (fix: shorten it, e.g. "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")'],
        id='name_too_long'),
    pytest.param(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: My_NS}\nspec: {ports: [{port: 80}]}\n",
        ['Service My_NS/web: metadata.namespace: "My_NS" is not a valid DNS-1123 label: use lowercase letters, digits and \'-\', starting and ending with a letter or digit (fix: e.g. "my-ns")'],
        id='namespace_invalid'),
    pytest.param(
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1, namespace: default}\n",
        ['Node n1: metadata.namespace: a Node is cluster-scoped and has no namespace (fix: remove metadata.namespace)'],
        id='cluster_scoped_namespace'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {-bad: x}}\n",
        ['Namespace a: metadata.labels: key "-bad" is not a valid key: use letters, digits, \'-\', \'_\' and \'.\', starting and ending with a letter or digit (with an optional DNS prefix and \'/\') (fix: use a key like "app" or "app.kubernetes.io/name")'],
        id='label_key_invalid'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {Example.COM/app: x}}\n",
        ['Namespace a: metadata.labels: key "Example.COM/app": the prefix "Example.COM" must be a DNS subdomain (lowercase letters, digits, \'-\' and \'.\') (fix: use a prefix like "example.com")'],
        id='label_key_prefix_invalid'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {app: 'web server'}}\n",
        ['Namespace a: metadata.labels[app]: "web server" is not a valid label value: use letters, digits, \'-\', \'_\' and \'.\', starting and ending with a letter or digit (or leave it empty) (fix: e.g. "web-server")'],
        id='label_value_invalid'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {enabled: yes}}\n",
        ['Namespace a: metadata.labels[enabled]: expected a string, got a boolean true (fix: put the value in quotes (YAML reads unquoted numbers and true/false/yes/no/on/off as non-strings))'],
        id='label_value_bool'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {version: 2}}\n",
        ['Namespace a: metadata.labels[version]: expected a string, got an integer 2 (fix: put the value in quotes (YAML reads unquoted numbers and true/false/yes/no/on/off as non-strings))'],
        id='label_value_int'),
    pytest.param(
        svc("  ports: [{port: 0}]\n"),
        ['Service default/web: spec.ports[0].port: must be between 1 and 65535, got 0 (fix: use a port number from 1 to 65535)'],
        id='port_zero'),
    pytest.param(
        svc("  ports: [{port: 70000}]\n"),
        ['Service default/web: spec.ports[0].port: must be between 1 and 65535, got 70000 (fix: use a port number from 1 to 65535)'],
        id='port_too_big'),
    pytest.param(
        svc("  ports: [{port: '80'}]\n"),
        ['Service default/web: spec.ports[0].port: expected an integer, got a string "80" (fix: remove the quotes: port: 80)'],
        id='port_quoted'),
    pytest.param(
        svc("  ports: [{port: true}]\n"),
        ['Service default/web: spec.ports[0].port: expected an integer, got a boolean true (fix: write a whole number without quotes, e.g. port: 80)'],
        id='port_bool'),
    pytest.param(
        svc("  ports: [{targetPort: 80}]\n"),
        ['Service default/web: spec.ports[0].port: required field is missing (fix: add port (port: 80) under spec.ports[0])'],
        id='port_missing'),
    pytest.param(
        svc("  type: NodePort\n  ports: [{port: 80, nodePort: 70000}]\n"),
        ['Service default/web: spec.ports[0].nodePort: must be between 1 and 65535 (or 0 to leave it unset), got 70000 (fix: use a port number from 1 to 65535, or leave the field out)'],
        id='node_port_range'),
    pytest.param(
        svc("  ports: [{port: 80, nodePort: 30080}]\n"),
        ['Service default/web: spec.ports[0].nodePort: may not be used when type is ClusterIP (fix: remove nodePort, or set type: NodePort)'],
        id='node_port_on_cluster_ip'),
    pytest.param(
        svc("  ports: [{port: 80, protocol: tcp}]\n"),
        ['Service default/web: spec.ports[0].protocol: unsupported value "tcp" (fix: did you mean "TCP"? (values are case-sensitive: TCP, UDP, SCTP))'],
        id='protocol_lowercase'),
    pytest.param(
        svc("  ports: [{port: 80, protocol: ICMP}]\n"),
        ['Service default/web: spec.ports[0].protocol: unsupported value "ICMP" (fix: use one of: TCP, UDP, SCTP)'],
        id='protocol_unknown'),
    pytest.param(
        svc("  ports: [{port: 80, targetPort: web-frontend-http}]\n"),
        ['Service default/web: spec.ports[0].targetPort: port name "web-frontend-http" is longer than 15 characters (fix: shorten it, e.g. "http")'],
        id='target_port_too_long'),
    pytest.param(
        svc("  ports: [{port: 80, targetPort: HTTP}]\n"),
        ['Service default/web: spec.ports[0].targetPort: port name "HTTP" may contain only lowercase letters, digits and \'-\' (fix: use a name like "http" or "metrics")'],
        id='target_port_uppercase'),
    pytest.param(
        svc("  ports: [{port: 80, targetPort: '8080'}]\n"),
        ['Service default/web: spec.ports[0].targetPort: port name "8080" must contain at least one letter (fix: write a number without quotes for a port number, or use a name like "http")'],
        id='target_port_digits_only'),
    pytest.param(
        svc("  ports: [{port: 80, targetPort: my--port}]\n"),
        ['Service default/web: spec.ports[0].targetPort: port name "my--port" must not contain \'--\' (fix: use a single \'-\')'],
        id='target_port_double_dash'),
    pytest.param(
        svc("  ports: [{port: 80, targetPort: -http}]\n"),
        ['Service default/web: spec.ports[0].targetPort: port name "-http" must not start or end with \'-\' (fix: remove the leading or trailing \'-\')'],
        id='target_port_leading_dash'),
    pytest.param(
        svc("  ports: [{port: 80, targetPort: 65536}]\n"),
        ['Service default/web: spec.ports[0].targetPort: must be between 1 and 65535, got 65536 (fix: use a port number from 1 to 65535)'],
        id='target_port_range'),
    pytest.param(
        svc("  ports: [{port: 80}, {port: 443}]\n"),
        ['Service default/web: spec.ports[0].name: is required when a Service has more than one port (fix: name every port, e.g. name: http)',
         'Service default/web: spec.ports[1].name: is required when a Service has more than one port (fix: name every port, e.g. name: http)'],
        id='ports_need_names'),
    pytest.param(
        svc("  ports: [{name: web, port: 80}, {name: web, port: 443}]\n"),
        ['Service default/web: spec.ports[1].name: duplicate port name "web" (also used by spec.ports[0]) (fix: give each port a different name)'],
        id='port_names_unique'),
    pytest.param(
        svc("  ports: [{name: Web, port: 80}]\n"),
        ['Service default/web: spec.ports[0].name: "Web" is not a valid DNS-1123 label: use lowercase letters, digits and \'-\', starting and ending with a letter or digit (fix: e.g. "web")'],
        id='port_name_invalid'),
    pytest.param(
        svc("  ports: [{name: a, port: 80}, {name: b, port: 80}]\n"),
        ['Service default/web: spec.ports[1]: duplicate port 80/TCP (also at spec.ports[0]) (fix: use a different port number or protocol)'],
        id='port_protocol_unique'),
    pytest.param(
        svc("  selector: {app: web}\n"),
        ['Service default/web: spec.ports: required field is missing: a Service needs at least one port (fix: add ports, e.g. ports: [{port: 80, targetPort: 8080}])'],
        id='ports_missing'),
    pytest.param(
        svc("  ports: []\n"),
        ['Service default/web: spec.ports: must list at least one port (fix: add a port, e.g. - port: 80)'],
        id='ports_empty'),
    pytest.param(
        svc("  type: Nodeport\n" + P80),
        ['Service default/web: spec.type: unsupported value "Nodeport" (fix: did you mean "NodePort"? (values are case-sensitive: ClusterIP, NodePort, LoadBalancer, ExternalName))'],
        id='type_enum'),
    pytest.param(
        svc("  type: Public\n" + P80),
        ['Service default/web: spec.type: unsupported value "Public" (fix: use one of: ClusterIP, NodePort, LoadBalancer, ExternalName)'],
        id='type_unknown'),
    pytest.param(
        svc("  type: NodePort\n  externalTrafficPolicy: local\n" + P80),
        ['Service default/web: spec.externalTrafficPolicy: unsupported value "local" (fix: did you mean "Local"? (values are case-sensitive: Cluster, Local))'],
        id='etp_enum'),
    pytest.param(
        svc("  externalTrafficPolicy: Local\n" + P80),
        ['Service default/web: spec.externalTrafficPolicy: may only be set on Services reachable from outside (type NodePort or LoadBalancer, or with externalIPs); type is ClusterIP (fix: remove externalTrafficPolicy, or set type: NodePort or LoadBalancer)'],
        id='etp_on_cluster_ip'),
    pytest.param(
        svc("  internalTrafficPolicy: Node\n" + P80),
        ['Service default/web: spec.internalTrafficPolicy: unsupported value "Node" (fix: use one of: Cluster, Local)'],
        id='itp_enum'),
    pytest.param(
        svc("  sessionAffinity: Sticky\n" + P80),
        ['Service default/web: spec.sessionAffinity: unsupported value "Sticky" (fix: use one of: None, ClientIP)'],
        id='affinity_enum'),
    pytest.param(
        svc("  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 90000}}\n" + P80),
        ['Service default/web: spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be between 1 and 86400 seconds (one day), got 90000 (fix: use e.g. 10800 (three hours, the default))'],
        id='affinity_timeout_range'),
    pytest.param(
        svc("  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n" + P80),
        ['Service default/web: spec.sessionAffinityConfig: must not be set when sessionAffinity is None (fix: set sessionAffinity: ClientIP, or remove sessionAffinityConfig)'],
        id='affinity_config_without_client_ip'),
    pytest.param(
        svc("  type: NodePort\n  healthCheckNodePort: 32000\n" + P80),
        ['Service default/web: spec.healthCheckNodePort: may only be set when type is LoadBalancer and externalTrafficPolicy is Local (fix: remove healthCheckNodePort)'],
        id='health_check_node_port_on_cluster'),
    pytest.param(
        svc("  type: NodePort\n  allocateLoadBalancerNodePorts: false\n" + P80),
        ['Service default/web: spec.allocateLoadBalancerNodePorts: may only be used when type is LoadBalancer (type is NodePort) (fix: remove allocateLoadBalancerNodePorts)'],
        id='allocate_lb_node_ports_on_nodeport'),
    pytest.param(
        svc("  clusterIP: 10.96.0.300\n" + P80),
        ['Service default/web: spec.clusterIP: "10.96.0.300" is not a valid cluster IP (fix: use an IP from the Service CIDR (e.g. "10.96.0.10"), "None" for a headless Service, or leave it out)'],
        id='cluster_ip_invalid'),
    pytest.param(
        svc("  clusterIP: none\n" + P80),
        ['Service default/web: spec.clusterIP: "none" is not a valid cluster IP (fix: use an IP from the Service CIDR (e.g. "10.96.0.10"), "None" for a headless Service, or leave it out)'],
        id='cluster_ip_word'),
    pytest.param(
        svc("  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.11]\n" + P80),
        ['Service default/web: spec.clusterIPs[0]: must equal clusterIP "10.96.0.10" (fix: put clusterIP first in clusterIPs, or leave one of them out)'],
        id='cluster_ips_mismatch'),
    pytest.param(
        svc("  type: NodePort\n  clusterIP: None\n" + P80),
        ['Service default/web: spec.clusterIP: may not be "None" (headless) when type is NodePort (fix: remove clusterIP: None, or use type: ClusterIP)'],
        id='headless_nodeport'),
    pytest.param(
        svc("  type: LoadBalancer\n  loadBalancerIP: 192.0.2\n" + P80),
        ['Service default/web: spec.loadBalancerIP: "192.0.2" is not a valid IP address (fix: write an IPv4 address like "10.96.0.10" or an IPv6 address like "fd00::10")'],
        id='load_balancer_ip_invalid'),
    pytest.param(
        svc("  externalIPs: [127.0.0.1]\n" + P80),
        ['Service default/web: spec.externalIPs[0]: "127.0.0.1" may not be an unspecified, loopback, link-local or multicast address (fix: use an address outside routers can reach, e.g. "203.0.113.10")'],
        id='external_ip_loopback'),
    pytest.param(
        svc("  externalIPs: ['fe80::1%eth0']\n" + P80),
        ['Service default/web: spec.externalIPs[0]: "fe80::1%eth0" is not a valid IP address (fix: write an IPv4 address like "10.96.0.10" or an IPv6 address like "fd00::10")'],
        id='external_ip_zone'),
    pytest.param(
        svc("  type: LoadBalancer\n  loadBalancerSourceRanges: [203.0.113.0, 198.51.100.0/33]\n" + P80),
        ['Service default/web: spec.loadBalancerSourceRanges[0]: "203.0.113.0" is not a valid CIDR (fix: write an address and a prefix length, e.g. "203.0.113.0/24" or "2001:db8::/64")',
         'Service default/web: spec.loadBalancerSourceRanges[1]: "198.51.100.0/33" is not a valid CIDR (fix: write an address and a prefix length, e.g. "203.0.113.0/24" or "2001:db8::/64")'],
        id='source_range_not_cidr'),
    pytest.param(
        svc("  loadBalancerSourceRanges: [203.0.113.0/24]\n" + P80),
        ['Service default/web: spec.loadBalancerSourceRanges: may only be used when type is LoadBalancer (type is ClusterIP) (fix: remove loadBalancerSourceRanges, or set type: LoadBalancer)'],
        id='source_range_on_cluster_ip'),
    pytest.param(
        svc(P80) + "status: {loadBalancer: {ingress: [{ip: 192.0.2.300}]}}\n",
        ['Service default/web: status.loadBalancer.ingress[0].ip: "192.0.2.300" is not a valid IP address (fix: write an IPv4 address like "10.96.0.10" or an IPv6 address like "fd00::10")'],
        id='lb_ingress_ip_invalid'),
    pytest.param(
        svc("  type: ExternalName\n"),
        ['Service default/web: spec.externalName: is required when type is ExternalName (fix: set externalName to a DNS name, e.g. db.example.com)'],
        id='external_name_missing'),
    pytest.param(
        svc("  type: ExternalName\n  externalName: db_host.example.com\n"),
        ['Service default/web: spec.externalName: "db_host.example.com" is not a valid DNS-1123 subdomain: use lowercase letters, digits, \'-\' and \'.\', each dot-separated part starting and ending with a letter or digit (fix: e.g. "db-host.example.com")'],
        id='external_name_invalid'),
    pytest.param(
        svc("  ipFamilies: [ipv4]\n" + P80),
        ['Service default/web: spec.ipFamilies[0]: unsupported value "ipv4" (fix: did you mean "IPv4"? (values are case-sensitive: IPv4, IPv6))'],
        id='ip_families_enum'),
    pytest.param(
        svc("  selector: [app, web]\n" + P80),
        ['Service default/web: spec.selector: expected a mapping of names to strings, got a list of 2 items'],
        id='service_selector_list'),
    pytest.param(
        svc("  selector: {app: web/front}\n" + P80),
        ['Service default/web: spec.selector[app]: "web/front" is not a valid label value: use letters, digits, \'-\', \'_\' and \'.\', starting and ending with a letter or digit (or leave it empty) (fix: e.g. "web-front")'],
        id='service_selector_value'),
    pytest.param(
        DEP + "  selector: {matchExpressions: [{key: app, operator: in, values: [web]}]}\n  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c}]}}\n",
        ['Deployment default/d: spec.selector.matchExpressions[0].operator: unsupported value "in" (fix: did you mean "In"? (values are case-sensitive: In, NotIn, Exists, DoesNotExist))'],
        id='operator_enum'),
    pytest.param(
        DEP + "  selector: {matchExpressions: [{key: app, operator: In}]}\n  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c}]}}\n",
        ['Deployment default/d: spec.selector.matchExpressions[0].values: must have at least one value when operator is In (fix: list the values to match, e.g. values: ["web"])'],
        id='in_needs_values'),
    pytest.param(
        DEP + "  selector: {matchExpressions: [{key: app, operator: Exists, values: [web]}]}\n  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c}]}}\n",
        ['Deployment default/d: spec.selector.matchExpressions[0].values: must be empty when operator is Exists (fix: remove values (operator Exists looks only at the key))'],
        id='exists_without_values'),
    pytest.param(
        DEP + "  selector: {matchLabels: {app: web}}\n  template: {metadata: {labels: {app: api}}, spec: {containers: [{name: c}]}}\n",
        ['Deployment default/d: spec.template.metadata.labels: do not match spec.selector: the Deployment would not select its own pods (fix: give the pod template every label that spec.selector.matchLabels asks for)'],
        id='deployment_selector_mismatch'),
    pytest.param(
        DEP + "  selector: {}\n  template: {metadata: {labels: {app: api}}, spec: {containers: [{name: c}]}}\n",
        ["Deployment default/d: spec.selector: must not be empty: a Deployment's selector chooses its pods (fix: set selector.matchLabels to the pod template's labels, e.g. app: web)"],
        id='deployment_selector_empty'),
    pytest.param(
        DEP + "  replicas: -1\n  selector: {matchLabels: {app: web}}\n  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c}]}}\n",
        ['Deployment default/d: spec.replicas: must not be negative, got -1 (fix: use 0 or a positive number)'],
        id='deployment_replicas_negative'),
    pytest.param(
        DEP + "  selector: {matchLabels: {app: web}}\n",
        ['Deployment default/d: spec.template: required field is missing (fix: add template (template: {metadata: ..., spec: ...}) under spec)'],
        id='deployment_template_missing'),
    pytest.param(
        POD + "  nodeName: kind-worker\n",
        ['Pod default/p: spec.containers: required field is missing (fix: add containers (containers: [{name: web, image: nginx}]) under spec)'],
        id='containers_missing'),
    pytest.param(
        POD + "  containers: []\n",
        ['Pod default/p: spec.containers: must list at least one container (fix: add a container with a name and an image)'],
        id='containers_empty'),
    pytest.param(
        POD + "  containers: [{name: c}, {name: c}]\n",
        ['Pod default/p: spec.containers[1].name: duplicate container name "c" (also used by spec.containers[0]) (fix: give each container a different name)'],
        id='container_names_unique'),
    pytest.param(
        POD + "  containers: [{name: c, ports: [{containerPort: 80, name: http_alt}]}]\n",
        ['Pod default/p: spec.containers[0].ports[0].name: port name "http_alt" may contain only lowercase letters, digits and \'-\' (fix: use a name like "http" or "metrics")'],
        id='container_port_name'),
    pytest.param(
        POD + "  containers: [{name: c}]\nstatus: {podIP: 10.244.1}\n",
        ['Pod default/p: status.podIP: "10.244.1" is not a valid IP address (fix: write an IPv4 address like "10.96.0.10" or an IPv6 address like "fd00::10")'],
        id='pod_ip_invalid'),
    pytest.param(
        POD + "  containers: [{name: c}]\nstatus: {phase: running}\n",
        ['Pod default/p: status.phase: unsupported value "running" (fix: did you mean "Running"? (values are case-sensitive: Pending, Running, Succeeded, Failed, Unknown))'],
        id='pod_phase_enum'),
    pytest.param(
        POD + "  containers: [{name: c}]\nstatus: {conditions: [{type: Ready, status: true}]}\n",
        ['Pod default/p: status.conditions[0].status: expected a string, got a boolean true (fix: put the value in quotes (YAML reads unquoted numbers and true/false/yes/no/on/off as non-strings))'],
        id='condition_status_bool'),
    pytest.param(
        EPS + "addressType: ipv4\n",
        ['EndpointSlice default/eps: addressType: unsupported value "ipv4" (fix: did you mean "IPv4"? (values are case-sensitive: IPv4, IPv6, FQDN))'],
        id='address_type_enum'),
    pytest.param(
        EPS + "endpoints: [{addresses: [10.244.1.5]}]\n",
        ['EndpointSlice default/eps: addressType: required field is missing (fix: add addressType (addressType: IPv4))'],
        id='address_type_missing'),
    pytest.param(
        EPS + "addressType: IPv4\nendpoints: [{addresses: ['fd00::5']}]\n",
        ['EndpointSlice default/eps: endpoints[0].addresses[0]: "fd00::5" is not a valid IPv4 address (addressType is IPv4) (fix: write an address like "10.244.1.5")'],
        id='address_mismatch_v4'),
    pytest.param(
        EPS + "addressType: IPv6\nendpoints: [{addresses: [10.244.1.5]}]\n",
        ['EndpointSlice default/eps: endpoints[0].addresses[0]: "10.244.1.5" is not a valid IPv6 address (addressType is IPv6) (fix: write an address like "fd00:10:244::5")'],
        id='address_mismatch_v6'),
    pytest.param(
        EPS + "addressType: FQDN\nendpoints: [{addresses: [DB.example.com]}]\n",
        ['EndpointSlice default/eps: endpoints[0].addresses[0]: "DB.example.com" is not a valid DNS-1123 subdomain: use lowercase letters, digits, \'-\' and \'.\', each dot-separated part starting and ending with a letter or digit (addressType is FQDN) (fix: e.g. "db.example.com")'],
        id='address_fqdn'),
    pytest.param(
        EPS + "addressType: IPv4\nendpoints: [{addresses: []}]\n",
        ["EndpointSlice default/eps: endpoints[0].addresses: must list at least one address (fix: add the endpoint's IP address)"],
        id='endpoint_addresses_empty'),
    pytest.param(
        EPS + "addressType: IPv4\nports: [{port: 0}]\n",
        ['EndpointSlice default/eps: ports[0].port: must be between 1 and 65535, got 0 (fix: use a port number from 1 to 65535)'],
        id='endpoint_port_zero'),
    pytest.param(
        EPS + "addressType: IPv4\nendpoints: [{addresses: [10.244.1.5], conditions: {ready: 'true'}}]\n",
        ['EndpointSlice default/eps: endpoints[0].conditions.ready: expected a boolean (true or false), got a string "true" (fix: remove the quotes: ready: true)'],
        id='endpoint_ready_string'),
    pytest.param(
        NP + "  ingress: [{from: [{ipBlock: {cidr: 203.0.113.0/24}, podSelector: {}}]}]\n",
        ['NetworkPolicy default/np: spec.ingress[0].from[0]: may not specify both ipBlock and a selector (fix: split it into two peers: one with ipBlock, one with podSelector/namespaceSelector)'],
        id='peer_ipblock_and_selector'),
    pytest.param(
        NP + "  ingress: [{from: [{}]}]\n",
        ['NetworkPolicy default/np: spec.ingress[0].from[0]: must specify a peer: podSelector, namespaceSelector or ipBlock (fix: add one of them, or remove the empty peer)'],
        id='peer_empty'),
    pytest.param(
        NP + "  egress: [{to: [{ipBlock: {cidr: 203.0.113.0/24, except: [198.51.100.0/24, 203.0.113.0/24]}}]}]\n",
        ['NetworkPolicy default/np: spec.egress[0].to[0].ipBlock.except[0]: "198.51.100.0/24" is not inside cidr "203.0.113.0/24" (fix: list only ranges strictly inside cidr (a longer prefix of the same network))',
         'NetworkPolicy default/np: spec.egress[0].to[0].ipBlock.except[1]: "203.0.113.0/24" is not inside cidr "203.0.113.0/24" (fix: list only ranges strictly inside cidr (a longer prefix of the same network))'],
        id='except_outside_cidr'),
    pytest.param(
        NP + "  egress: [{to: [{ipBlock: {except: [203.0.113.0/25]}}]}]\n",
        ['NetworkPolicy default/np: spec.egress[0].to[0].ipBlock.cidr: required field is missing (fix: add cidr (cidr: 203.0.113.0/24) under spec.egress[0].to[0].ipBlock)'],
        id='ipblock_cidr_missing'),
    pytest.param(
        NP + "  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/255.0.0.0}}]}]\n",
        ['NetworkPolicy default/np: spec.egress[0].to[0].ipBlock.cidr: "10.0.0.0/255.0.0.0" is not a valid CIDR (fix: write an address and a prefix length, e.g. "203.0.113.0/24" or "2001:db8::/64")'],
        id='ipblock_cidr_invalid'),
    pytest.param(
        NP + "  policyTypes: [ingress]\n",
        ['NetworkPolicy default/np: spec.policyTypes[0]: unsupported value "ingress" (fix: did you mean "Ingress"? (values are case-sensitive: Ingress, Egress))'],
        id='policy_types_enum'),
    pytest.param(
        NP + "  policyTypes: [Ingress, Ingress]\n",
        ['NetworkPolicy default/np: spec.policyTypes[1]: duplicate value "Ingress" (already at spec.policyTypes[0]) (fix: list each value once)'],
        id='policy_types_duplicate'),
    pytest.param(
        NP + "  ingress: [{ports: [{port: 32000, endPort: 30000}]}]\n",
        ['NetworkPolicy default/np: spec.ingress[0].ports[0].endPort: must be greater than or equal to port (32000), got 30000 (fix: set endPort to 32000 or more)'],
        id='end_port_less_than_port'),
    pytest.param(
        NP + "  ingress: [{ports: [{port: http, endPort: 30000}]}]\n",
        ['NetworkPolicy default/np: spec.ingress[0].ports[0].endPort: may not be set when port is a name ("http") (fix: use a port number for port, or remove endPort)'],
        id='end_port_named_port'),
    pytest.param(
        NP + "  ingress: [{ports: [{endPort: 30000}]}]\n",
        ['NetworkPolicy default/np: spec.ingress[0].ports[0].endPort: may not be set without port (fix: add port: the first port of the range)'],
        id='end_port_without_port'),
    pytest.param(
        NP + "  ingress: [{ports: [{port: 53, protocol: DNS}]}]\n",
        ['NetworkPolicy default/np: spec.ingress[0].ports[0].protocol: unsupported value "DNS" (fix: use one of: TCP, UDP, SCTP)'],
        id='np_port_protocol'),
    pytest.param(
        ING + "  rules: [{http: {paths: [{path: /, backend: {service: {name: web, port: {number: 80}}}}]}}]\n",
        ['Ingress default/ing: spec.rules[0].http.paths[0].pathType: required field is missing (fix: add pathType (pathType: Prefix) under spec.rules[0].http.paths[0])'],
        id='path_type_missing'),
    pytest.param(
        ING + "  rules: [{http: {paths: [{path: /, pathType: prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]\n",
        ['Ingress default/ing: spec.rules[0].http.paths[0].pathType: unsupported value "prefix" (fix: did you mean "Prefix"? (values are case-sensitive: Exact, Prefix, ImplementationSpecific))'],
        id='path_type_enum'),
    pytest.param(
        ING + "  rules: [{http: {paths: [{path: api, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]\n",
        ['Ingress default/ing: spec.rules[0].http.paths[0].path: must be an absolute path (starting with /) when pathType is Prefix, got "api" (fix: write it as "/api")'],
        id='path_relative'),
    pytest.param(
        ING + "  rules: [{http: {paths: [{path: /a/../b, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}]}}]\n",
        ['Ingress default/ing: spec.rules[0].http.paths[0].path: "/a/../b" may not contain \'//\', \'/./\', \'/../\' or \'%2f\', nor end in \'/.\' or \'/..\' (fix: write the path in its plain form, e.g. /api)'],
        id='path_dot_segments'),
    pytest.param(
        ING + "  defaultBackend: {service: {name: web, port: {number: 80, name: http}}}\n",
        ['Ingress default/ing: spec.defaultBackend.service.port: may not set both number and name (fix: keep one of port.number and port.name)'],
        id='backend_port_both'),
    pytest.param(
        ING + "  defaultBackend: {service: {name: web, port: {}}}\n",
        ["Ingress default/ing: spec.defaultBackend.service.port: must set number or name (fix: add number: 80 (the Service's port), or name: http)"],
        id='backend_port_neither'),
    pytest.param(
        ING + "  defaultBackend: {service: {port: {number: 80}}}\n",
        ['Ingress default/ing: spec.defaultBackend.service.name: required field is missing (fix: add name (name: web) under spec.defaultBackend.service)'],
        id='backend_service_name_missing'),
    pytest.param(
        ING + "  defaultBackend: {}\n",
        ['Ingress default/ing: spec.defaultBackend: must set service (or resource) (fix: add service: {name: web, port: {number: 80}})'],
        id='backend_empty'),
    pytest.param(
        ING + "  rules: [{host: 'web.*.example.com'}]\n",
        ['Ingress default/ing: spec.rules[0].host: "web.*.example.com" is not a valid host: a wildcard may only be the whole first label, as in "*.example.com" (fix: write it as "*.example.com")'],
        id='wildcard_host_middle'),
    pytest.param(
        ING + "  rules: [{host: 192.0.2.10}]\n",
        ['Ingress default/ing: spec.rules[0].host: "192.0.2.10" is an IP address; an Ingress host must be a DNS name (fix: use a name such as "web.example.com", or leave host out to match any host)'],
        id='host_is_ip'),
    pytest.param(
        ING + "  rules: [{host: Web.Example.com}]\n",
        ['Ingress default/ing: spec.rules[0].host: "Web.Example.com" is not a valid host name: use lowercase letters, digits, \'-\' and \'.\', optionally starting with "*." (fix: e.g. "web.example.com")'],
        id='host_uppercase'),
    pytest.param(
        ING + "  ingressClassName: nginx\n",
        ['Ingress default/ing: spec: must set defaultBackend or rules (fix: add rules with the hosts and paths to route)'],
        id='ingress_spec_empty'),
    pytest.param(
        ING + "  rules: [{host: a.example.com, http: {paths: []}}]\n",
        ['Ingress default/ing: spec.rules[0].http.paths: must list at least one path (fix: add - path: / with a backend)'],
        id='http_paths_empty'),
    pytest.param(
        svc("  ports: [{port: 80, tragetPort: 8080}]\n"),
        ['Service default/web: spec.ports[0].tragetPort: unknown field "spec.ports[0].tragetPort" (fix: did you mean "targetPort"? the fields of spec.ports[0] are: appProtocol, name, nodePort, port, protocol, targetPort)'],
        id='unknown_field_typo'),
    pytest.param(
        svc("  foo: bar\n" + P80),
        ['Service default/web: spec.foo: unknown field "spec.foo" (fix: check the spelling; the fields of spec are: allocateLoadBalancerNodePorts, clusterIP, clusterIPs, externalIPs, externalName, externalTrafficPolicy, healthCheckNodePort, internalTrafficPolicy, ipFamilies, ipFamilyPolicy, loadBalancerClass, loadBalancerIP, loadBalancerSourceRanges, ports, publishNotReadyAddresses, selector, sessionAffinity, sessionAffinityConfig, trafficDistribution, type)'],
        id='unknown_field_spec'),
    pytest.param(
        SVC.replace("spec:\n", "spec: {ports: [{port: 80}]}\nspecs: {}\n"),
        ['Service default/web: specs: unknown field "specs" (fix: did you mean "spec"? the fields of the top level are: apiVersion, kind, metadata, spec, status)'],
        id='unknown_field_top'),
    pytest.param(
        POD + "  containers: [{name: c}]\n  hostNetwrok: true\n",
        ['Pod default/p: spec.hostNetwrok: unknown field "spec.hostNetwrok" (fix: did you mean "hostNetwork"? the fields of spec are: containers, hostNetwork, hostname, nodeName, subdomain (labkit also accepts, and ignores, 35 more Kubernetes fields here))'],
        id='unknown_field_pod_spec'),
    pytest.param(
        "apiVersion: v1\nkind: Service\nmetadata: [web]\nspec: {ports: [{port: 80}]}\n",
        ['document 1: metadata: expected an object (a mapping of fields), got a list of 1 item (fix: this field takes one object, not a list: remove the "- ")'],
        id='wrong_type_list_for_object'),
    pytest.param(
        svc("  ports: {port: 80}\n"),
        ['Service default/web: spec.ports: expected a list, got an object (a mapping) (fix: write it as a list: each item on its own line starting with "- ")'],
        id='wrong_type_object_for_list'),
    pytest.param(
        POD + "  hostNetwork: 'true'\n  containers: [{name: c}]\n",
        ['Pod default/p: spec.hostNetwork: expected a boolean (true or false), got a string "true" (fix: remove the quotes: hostNetwork: true)'],
        id='wrong_type_string_for_bool'),
    pytest.param(
        POD + "  containers: [{name: c, image: 42}]\n",
        ['Pod default/p: spec.containers[0].image: expected a string, got an integer 42 (fix: put the value in quotes (YAML reads unquoted numbers and true/false/yes/no/on/off as non-strings))'],
        id='wrong_type_int_for_string'),
    pytest.param(
        svc("  ports: [{port: 80.5}]\n"),
        ['Service default/web: spec.ports[0].port: expected an integer, got a number 80.5 (fix: write a whole number without quotes, e.g. port: 80)'],
        id='wrong_type_float_for_int'),
    pytest.param(
        svc("  ports: [null]\n"),
        ['Service default/web: spec.ports[0]: expected an object (a mapping of fields), got null (fix: remove the empty item (a "-" with nothing after it), or fill it in)'],
        id='list_item_null'),
    pytest.param(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
        ['document 1: kind: unsupported kind "ConfigMap" (apiVersion "v1") (fix: labkit reads these kinds: v1 Namespace, Pod, Service, Node; apps/v1 Deployment; discovery.k8s.io/v1 EndpointSlice; networking.k8s.io/v1 NetworkPolicy, Ingress; gateway.networking.k8s.io/v1 Gateway, HTTPRoute)'],
        id='unknown_kind'),
    pytest.param(
        "apiVersion: v1\nkind: service\nmetadata: {name: c}\n",
        ['document 1: kind: unsupported kind "service" (apiVersion "v1") (fix: did you mean "Service"? labkit reads these kinds: v1 Namespace, Pod, Service, Node; apps/v1 Deployment; discovery.k8s.io/v1 EndpointSlice; networking.k8s.io/v1 NetworkPolicy, Ingress; gateway.networking.k8s.io/v1 Gateway, HTTPRoute)'],
        id='kind_case'),
    pytest.param(
        "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  rules:\n  - http:\n      paths:\n      - path: /\n        backend: {serviceName: web, servicePort: 80}\n",
        ['Ingress default/web: apiVersion: Ingress is served as apiVersion networking.k8s.io/v1, not "extensions/v1beta1" (fix: set apiVersion: networking.k8s.io/v1 (and move to its field names))',
         'Ingress default/web: spec.rules[0].http.paths[0].backend.serviceName: unknown field "spec.rules[0].http.paths[0].backend.serviceName" (fix: did you mean "service"? the fields of spec.rules[0].http.paths[0].backend are: resource, service)',
         'Ingress default/web: spec.rules[0].http.paths[0].backend.servicePort: unknown field "spec.rules[0].http.paths[0].backend.servicePort" (fix: did you mean "service"? the fields of spec.rules[0].http.paths[0].backend are: resource, service)',
         'Ingress default/web: spec.rules[0].http.paths[0].backend: must set service (or resource) (fix: add service: {name: web, port: {number: 80}})',
         'Ingress default/web: spec.rules[0].http.paths[0].pathType: required field is missing (fix: add pathType (pathType: Prefix) under spec.rules[0].http.paths[0])'],
        id='ingress_beta'),
    pytest.param(
        DEP.replace("apps/v1", "v1") + "  selector: {matchLabels: {app: web}}\n  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c}]}}\n",
        ['Deployment default/d: apiVersion: Deployment is served as apiVersion apps/v1, not "v1" (fix: set apiVersion: apps/v1)'],
        id='deployment_wrong_group'),
    pytest.param(
        "kind: Namespace\nmetadata: {name: a}\n",
        ['Namespace a: apiVersion: required field is missing (fix: add apiVersion: every Kubernetes object starts with apiVersion and kind)'],
        id='api_version_missing'),
    pytest.param(
        "apiVersion: v1\nkind: [Service]\nmetadata: {name: a}\n",
        ['document 1: kind: expected a string, got a list of 1 item (fix: write kind as text, e.g. kind: Service)'],
        id='kind_not_string'),
    pytest.param(
        "just some text\n",
        ['document 1: expected a Kubernetes object (a mapping with apiVersion, kind and metadata), got a string "just some text" (fix: start each document with apiVersion: and kind:)'],
        id='document_scalar'),
    pytest.param(
        "apiVersion: v1\nkind: List\nitems: {a: b}\n",
        ['document 1: items: expected a list, got an object (a mapping) (fix: write items as a list: each object starting with "- ")'],
        id='list_items_not_list'),
    pytest.param(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n- 42\n",
        ['document 1, items[0]: metadata: required field is missing (fix: add metadata)',
         'document 1, items[1]: expected a Kubernetes object (a mapping with apiVersion, kind and metadata), got an integer 42 (fix: start each document with apiVersion: and kind:)'],
        id='list_item_unnamed'),
    pytest.param(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n spec: {}\n",
        ['document 1: YAML syntax error at line 5, column 2: did not find expected key (while parsing a block mapping): " spec: {}" (fix: check the indentation and quoting on that line and the one before it)'],
        id='yaml_syntax'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n\tname: a\n",
        ['document 1: YAML syntax error at line 4, column 1: found character that cannot start any token (while scanning for the next token): "\\tname: a" (fix: indent with spaces: YAML does not allow tabs for indentation)'],
        id='yaml_tabs'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: \"a}\n",
        ['document 1: YAML syntax error at line 4, column 1: found unexpected end of stream (while scanning a quoted scalar) (fix: check the indentation and quoting on that line and the one before it)'],
        id='yaml_unclosed_quote'),
    pytest.param(
        svc("  ports: [{port: 80}]\n  ports: [{port: 81}]\n"),
        ['Service default/web: spec.ports: is given twice (lines 5 and 6); YAML would silently keep only the last one (fix: remove one of them)'],
        id='yaml_duplicate_key'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: *missing}\n",
        ['Namespace a: metadata.labels: the alias *missing refers to an anchor that is not defined before it (or that contains it) (fix: define &missing earlier in the same document)'],
        id='yaml_undefined_alias'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: !!python/name:os.system a}\n",
        ['Namespace a: metadata.name: uses the YAML tag "tag:yaml.org,2002:python/name:os.system", which Kubernetes manifests do not use (fix: remove the tag)'],
        id='yaml_python_tag'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a\x07}\n",
        ['document 1: YAML cannot be read at line 3, column 19: control characters are not allowed (U+0007) (fix: remove control characters and binary data; a manifest is plain text)'],
        id='control_characters'),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_error_message(text, expected):
    assert problems(text) == expected


MORE_CASES = [
    pytest.param(
        NODE + "status: {addresses: [{type: InternalIP, address: kind-worker}]}\n",
        ['Node kind-worker: status.addresses[0].address: "kind-worker" is not a valid IP address (fix: write an IPv4 address like "10.96.0.10" or an IPv6 address like "fd00::10")'],
        id='node_address_not_ip'),
    pytest.param(
        NODE + "status: {addresses: [{type: InternalIp, address: 172.18.0.3}]}\n",
        ['Node kind-worker: status.addresses[0].type: unsupported value "InternalIp" (fix: did you mean "InternalIP"? (values are case-sensitive: Hostname, ExternalIP, InternalIP, ExternalDNS, InternalDNS))'],
        id='node_address_type_enum'),
    pytest.param(
        NODE + "spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.2.0/24]}\n",
        ['Node kind-worker: spec.podCIDRs[0]: must equal podCIDR "10.244.1.0/24", got "10.244.2.0/24" (fix: put podCIDR first in podCIDRs, or leave one of them out)'],
        id='node_pod_cidrs_mismatch'),
    pytest.param(
        NODE + "spec: {podCIDR: 10.244.1.0}\n",
        ['Node kind-worker: spec.podCIDR: "10.244.1.0" is not a valid CIDR (fix: write an address and a prefix length, e.g. "203.0.113.0/24" or "2001:db8::/64")'],
        id='node_pod_cidr_invalid'),
    pytest.param(
        POD + "  containers: [{name: c, ports: [{containerPort: 80, hostPort: 65536}]}]\n",
        ['Pod default/p: spec.containers[0].ports[0].hostPort: must be between 1 and 65535 (or 0 to leave it unset), got 65536 (fix: use a port number from 1 to 65535, or leave the field out)'],
        id='host_port_range'),
    pytest.param(
        POD + "  containers: [{name: c, ports: [{name: http}]}]\n",
        ['Pod default/p: spec.containers[0].ports[0].containerPort: required field is missing (fix: add containerPort (containerPort: 80) under spec.containers[0].ports[0])'],
        id='container_port_missing'),
    pytest.param(
        POD + "  containers: [{name: c, ports: [{containerPort: 80, name: web}, {containerPort: 81, name: web}]}]\n",
        ['Pod default/p: spec.containers[0].ports[1].name: duplicate port name "web" (also used by spec.containers[0].ports[0]) (fix: give each port a different name)'],
        id='container_port_names_unique'),
    pytest.param(
        svc(P80) + "status: {loadBalancer: {ingress: [{hostname: lb.example.com, ipMode: Proxy}]}}\n",
        ['Service default/web: status.loadBalancer.ingress[0].ipMode: may only be set together with ip (fix: add ip, or remove ipMode)'],
        id='lb_ip_mode_without_ip'),
    pytest.param(
        svc("  type: ExternalName\n  externalName: db.example.com\n  clusterIP: 10.96.0.9\n"),
        ['Service default/web: spec.clusterIP: must not be set when type is ExternalName (fix: remove clusterIP and clusterIPs)'],
        id='external_name_with_cluster_ip'),
    pytest.param(
        svc("  clusterIPs: [10.96.0.1, fd00::1, 10.96.0.2]\n" + P80),
        ['Service default/web: spec.clusterIPs: has 3 addresses; at most 2 (one per IP family) (fix: keep at most one IPv4 and one IPv6 address)'],
        id='cluster_ips_three'),
    pytest.param(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, annotations: {big: '" + "x" * 262144 + "'}}\n",
        ['Namespace a: metadata.annotations: holds 262147 bytes; the API allows at most 262144 (fix: move large data into a ConfigMap)'],
        id='annotations_too_big'),
    pytest.param(
        EPS + "addressType: IPv4\nports: [{name: HTTP, port: 80}]\n",
        ['EndpointSlice default/eps: ports[0].name: "HTTP" is not a valid DNS-1123 label: use lowercase letters, digits and \'-\', starting and ending with a letter or digit (fix: e.g. "http")'],
        id='endpoint_port_name_invalid'),
    pytest.param(
        NP + "  egress: [{to: [{ipBlock: {cidr: 203.0.113.0/24, except: ['2001:db8::/64']}}]}]\n",
        ['NetworkPolicy default/np: spec.egress[0].to[0].ipBlock.except[0]: "2001:db8::/64" is not inside cidr "203.0.113.0/24" (fix: list only ranges strictly inside cidr (a longer prefix of the same network))'],
        id='ipv6_except_in_ipv4_cidr'),
]


@pytest.mark.parametrize("text, expected", MORE_CASES)
def test_more_error_messages(text, expected):
    assert problems(text) == expected


# --- golden logs: the full rendered text of multi-problem manifests --------------------

GOLDEN_CASES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))


def test_golden_inputs_exist():
    assert GOLDEN_CASES == ["broken-stream", "hostile", "learner-policy", "learner-web"]


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_golden_error_log(name):
    source = f"{name}.yaml"
    with pytest.raises(ManifestError) as e:
        load_manifests((GOLDEN / source).read_text(), source)
    text = e.value.render() + "\n"
    log = GOLDEN / f"{name}.log"
    if os.environ.get("LABKIT_UPDATE_GOLDEN") == "1":
        log.write_text(text)
    assert log.exists(), f"no golden log yet: run with LABKIT_UPDATE_GOLDEN=1 to write {log}"
    assert text == log.read_text()


# --- how problems are gathered and named -------------------------------------------------


def test_every_problem_of_every_document_is_reported_in_order():
    text = (svc("  ports: [{port: 0}]\n") + "---\n" + svc("  ports: [{port: 80, protocol: tcp}]\n")
            .replace("name: web", "name: api"))
    assert problems(text) == [
        "Service default/web: spec.ports[0].port: must be between 1 and 65535, got 0 "
        "(fix: use a port number from 1 to 65535)",
        'Service default/api: spec.ports[0].protocol: unsupported value "tcp" '
        '(fix: did you mean "TCP"? (values are case-sensitive: TCP, UDP, SCTP))',
    ]


def test_unnamed_documents_are_numbered_in_the_stream():
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\n42\n---\nkind: Namespace\n"
    assert problems(text) == [
        "document 3: expected a Kubernetes object (a mapping with apiVersion, kind and metadata), "
        "got an integer 42 (fix: start each document with apiVersion: and kind:)",
        "document 4: apiVersion: required field is missing "
        "(fix: add apiVersion: every Kubernetes object starts with apiVersion and kind)",
        "document 4: metadata: required field is missing (fix: add metadata)",
    ]


def test_rendered_error_names_the_source():
    with pytest.raises(ManifestError) as e:
        load_manifests(svc("  ports: [{port: 0}]\n"), "web.yaml")
    assert e.value.source == "web.yaml"
    assert str(e.value) == (
        "web.yaml: 1 problem found:\n"
        "  - Service default/web: spec.ports[0].port: must be between 1 and 65535, got 0 "
        "(fix: use a port number from 1 to 65535)")
    assert e.value.problems == (Problem("Service default/web", "spec.ports[0].port",
                                        "must be between 1 and 65535, got 0",
                                        "use a port number from 1 to 65535"),)


def test_parse_object_reports_like_load_manifests():
    with pytest.raises(ManifestError) as e:
        parse_object({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                      "spec": {"ports": [{"port": 80, "targetPort": 99999}]}}, "api")
    assert str(e.value) == (
        "api: 1 problem found:\n  - Service default/web: spec.ports[0].targetPort: must be between "
        "1 and 65535, got 99999 (fix: use a port number from 1 to 65535)")


def test_parse_object_refuses_a_non_mapping():
    with pytest.raises(ManifestError) as e:
        parse_object(["not", "a", "mapping"])
    assert [str(p) for p in e.value.problems] == [
        "document 1: expected a Kubernetes object (a mapping with apiVersion, kind and metadata), "
        "got a list of 3 items (fix: start each document with apiVersion: and kind:)"]


def test_non_text_input():
    with pytest.raises(ManifestError) as e:
        load_manifests(None)
    assert [str(p) for p in e.value.problems] == [
        "document 1: expected YAML text, got null (fix: pass the file's contents as a string)"]


def test_invalid_utf8_bytes():
    with pytest.raises(ManifestError) as e:
        load_manifests(b"kind: \xff\xfe")
    assert [str(p) for p in e.value.problems] == [
        "document 1: the file is not UTF-8 text (byte 6) (fix: save it as UTF-8 text)"]


def test_lone_surrogate_in_text():
    assert problems("kind: \ud800\n") == [
        "document 1: the text is not valid Unicode (at character 6) (fix: save the file as UTF-8 text)"]


# --- budgets against hostile input ---------------------------------------------------------


def test_alias_bomb_is_refused():
    laughs = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))
    assert problems(laughs) == [
        "document 1: is too large: more than 500000 values once YAML aliases are expanded "
        "(fix: remove repeated aliases (*name); a Kubernetes object is never this big)"]


def test_deep_nesting_is_refused_and_later_documents_still_read():
    text = "[" * 1000 + "]" * 1000 + "\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: A}\n"
    assert problems(text) == [
        "document 1: nests deeper than 100 levels (fix: a Kubernetes object is never this deep: "
        "check for runaway brackets or indentation)",
        'Namespace A: metadata.name: "A" is not a valid DNS-1123 label: use lowercase letters, '
        "digits and '-', starting and ending with a letter or digit (fix: e.g. \"a\")"]


def test_very_deep_nesting_stops_the_reading():
    assert problems("[" * 100_000) == [
        "document 1: nests deeper than 100 levels; the rest of the text was not read "
        "(fix: a Kubernetes object is never this deep: check for runaway brackets or indentation)"]


def test_recursive_alias_is_refused():
    assert problems("apiVersion: v1\nkind: Namespace\nmetadata: &m {name: a, labels: *m}\n") == [
        "Namespace a: metadata.labels: the alias *m refers to an anchor that is not defined before it "
        "(or that contains it) (fix: define &m earlier in the same document)"]


def test_text_over_the_size_budget(monkeypatch):
    monkeypatch.setattr(load_module, "MAX_TEXT_CHARS", 100)
    assert problems("#" * 101) == [
        "document 1: the text is 101 characters long; labkit reads at most 100 "
        "(fix: split it into several files)"]


def test_integer_with_thousands_of_digits():
    assert problems(svc("  ports: [{port: " + "9" * 5000 + "}]\n")) == [
        "Service default/web: spec.ports[0].port: a number with thousands of digits is too large "
        "(the API stores a 32-bit integer) (fix: use a smaller number)"]


def test_endpoints_capped_at_1000():
    text = EPS + "addressType: IPv4\nendpoints:\n" + "- addresses: [10.244.1.5]\n" * 1001
    assert problems(text) == [
        "EndpointSlice default/eps: endpoints: has 1001 items; the API allows at most 1000 "
        "(fix: split it or remove items to keep at most 1000)"]


def test_nested_lists_budget():
    inner = "{apiVersion: v1, kind: Namespace, metadata: {name: a}}"
    for _ in range(12):
        inner = "{apiVersion: v1, kind: List, items: [" + inner + "]}"
    assert problems(inner) == [
        "document 1, items[0], items[0], items[0], items[0], items[0], items[0], items[0], items[0], "
        "items[0], items[0]: items: Lists nest more than 10 deep (fix: put the objects directly into one List)"]
