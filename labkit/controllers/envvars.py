"""The Service environment variables kubelet puts into every container.

Follows kubelet exactly: pkg/kubelet/envvars/envvars.go (FromServices,
makeLinkVariables) for the variables of one Service, and
pkg/kubelet/kubelet_pods.go getServiceEnvVarMap for which Services a pod
sees:

- Services without a ClusterIP (headless, ExternalName, not yet allocated)
  give nothing.
- The `kubernetes` Service of the `default` namespace (the "master service")
  is always included, even with enableServiceLinks: false.
- Every other Service of the pod's own namespace is included when
  enableServiceLinks is true (the default). A Service of the pod's namespace
  that has the master service's name wins over it.

Kubelet computes the variables when it starts the container, from the
Services it knows at that moment: a Service created after the pod is not in
its environment (and never will be: kubelet does not restart containers when
Services change). The model has no timestamps, so that moment is an input:

    creation_order: the objects in the order they were created, each named
    as labkit.model.objects.ref names it ("Service default/web",
    "Pod default/client"). A Service is visible to a pod when it comes
    before the pod in that order. Objects not listed are taken to exist
    from the start (the `kubernetes` Service of a new cluster, objects of
    the first apply): an unlisted Service is visible to every pod, a listed
    Service is never visible to an unlisted pod.

The empty order (the default) therefore means "every Service existed before
every pod" -- the state of a cluster applied in one go, Services first.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

from labkit.errors import LabkitError
from labkit.model.objects import Pod, Service, ref

MASTER_SERVICE_NAMESPACE = "default"
MASTER_SERVICES = frozenset({"kubernetes"})


def env_var_name(service_name: str) -> str:
    """makeEnvVariableName: upper case, '-' -> '_' ("my-web" -> "MY_WEB")."""
    return service_name.replace("-", "_").upper()


def _join_host_port(host: str, port: int) -> str:
    """net.JoinHostPort: IPv6 addresses get brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_service_ip_set(svc: Service) -> bool:
    """v1helper.IsServiceIPSet: a ClusterIP that is neither "" nor "None"."""
    return svc.cluster_ip not in ("", "None")


def link_variables(svc: Service) -> list[tuple[str, str]]:
    """makeLinkVariables: the docker-link style variables of one Service."""
    prefix = env_var_name(svc.meta.name)
    out: list[tuple[str, str]] = []
    for i, sp in enumerate(svc.ports):
        protocol = sp.protocol or "TCP"
        url = f"{protocol.lower()}://{_join_host_port(svc.cluster_ip, sp.port)}"
        if i == 0:
            out.append((f"{prefix}_PORT", url))  # Docker special-cases the first port
        port_prefix = f"{prefix}_PORT_{sp.port}_{protocol.upper()}"
        out += [
            (port_prefix, url),
            (f"{port_prefix}_PROTO", protocol.lower()),
            (f"{port_prefix}_PORT", str(sp.port)),
            (f"{port_prefix}_ADDR", svc.cluster_ip),
        ]
    return out


def from_services(services: Iterable[Service]) -> list[tuple[str, str]]:
    """FromServices: (name, value) for each Service, in kubelet's order."""
    out: list[tuple[str, str]] = []
    for svc in services:
        if not is_service_ip_set(svc):
            continue
        prefix = env_var_name(svc.meta.name)
        out.append((f"{prefix}_SERVICE_HOST", svc.cluster_ip))
        if svc.ports:  # validation guarantees a port; kubelet indexes Ports[0]
            out.append((f"{prefix}_SERVICE_PORT", str(svc.ports[0].port)))
        for sp in svc.ports:
            if sp.name:
                out.append((f"{prefix}_SERVICE_PORT_{env_var_name(sp.name)}", str(sp.port)))
        out += link_variables(svc)
    return out


class CreationOrderError(LabkitError):
    """A creation order that names the same object twice."""


def _ranks(creation_order: Sequence[str]) -> dict[str, int]:
    ranks: dict[str, int] = {}
    for i, key in enumerate(creation_order):
        if key in ranks:
            raise CreationOrderError(
                f"creation_order lists {key!r} twice (positions {ranks[key]} and {i}); "
                "list each object once, at the moment it was created"
            )
        ranks[key] = i
    return ranks


def existed_before(service: Service, pod: Pod, creation_order: Sequence[str] = ()) -> bool:
    """Whether kubelet knew `service` when it started `pod`'s containers."""
    ranks = _ranks(creation_order)
    return _before(ranks.get(ref(service)), ranks.get(ref(pod)))


def _before(svc_rank: Optional[int], pod_rank: Optional[int]) -> bool:
    if svc_rank is None:
        return True  # there from the start
    if pod_rank is None:
        return False  # the pod was there from the start, the Service came later
    return svc_rank < pod_rank


def visible_services(
    pod: Pod,
    services: Iterable[Service],
    creation_order: Sequence[str] = (),
    enable_service_links: bool = True,
) -> list[Service]:
    """getServiceEnvVarMap's choice of Services, in a stable (name) order."""
    ranks = _ranks(creation_order)
    pod_rank = ranks.get(ref(pod))
    chosen: dict[str, Service] = {}
    for svc in sorted(services, key=lambda s: (s.meta.namespace, s.meta.name)):
        if not is_service_ip_set(svc) or not _before(ranks.get(ref(svc)), pod_rank):
            continue
        name = svc.meta.name
        if svc.meta.namespace == MASTER_SERVICE_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif svc.meta.namespace == pod.meta.namespace and enable_service_links:
            chosen[name] = svc
    return [chosen[k] for k in sorted(chosen)]


def service_env_vars(
    pod: Pod,
    services: Iterable[Service],
    creation_order: Sequence[str] = (),
    enable_service_links: bool = True,
) -> dict[str, str]:
    """The Service variables in `pod`'s containers, sorted by name.

    Kubelet builds a map, so the container sees them in no particular order;
    sorting is ours, for stable output.
    """
    env = dict(from_services(visible_services(pod, services, creation_order, enable_service_links)))
    return {k: env[k] for k in sorted(env)}


def pod_env_vars(state, namespace: str, pod_name: str, creation_order: Sequence[str] = (),
                 enable_service_links: bool = True) -> dict[str, str]:
    """service_env_vars for a pod of a reconciled ClusterState."""
    return service_env_vars(state.pod(namespace, pod_name), state.services, creation_order,
                            enable_service_links)


def render_env(env: Mapping[str, str]) -> str:
    """`env | sort` as seen inside the container: NAME=value lines."""
    return "".join(f"{k}={env[k]}\n" for k in sorted(env))
