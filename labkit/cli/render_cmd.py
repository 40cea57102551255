"""`labkit render iptables`: manifests in, the node's iptables-restore text out.

The shell around the pure pipeline: read files, then load -> reconcile (as
the control plane would, seeded, without admission) -> render, and print the
text kube-proxy would hand to `iptables-restore` on that node.
"""
from __future__ import annotations

import argparse
import ipaddress
import sys
from dataclasses import dataclass
from typing import Sequence

from labkit.errors import LabkitError

HOST_FEATURES = ("random-fully", "tcp-be-liberal", "nfacct:NAME")
IP_FAMILIES = ("IPv4", "IPv6")


@dataclass(frozen=True)
class HostFeatureFlags:
    """What --host-feature said, before it becomes the renderer's HostFeatures."""

    random_fully: bool = False
    tcp_be_liberal: bool = False
    nfacct: frozenset[str] = frozenset()


def parse_host_features(values: Sequence[str]) -> HostFeatureFlags:
    """--host-feature values -> flags; an unknown one is a LabkitError naming it."""
    random_fully = tcp_be_liberal = False
    nfacct: set[str] = set()
    for value in values:
        if value == "random-fully":
            random_fully = True
        elif value == "tcp-be-liberal":
            tcp_be_liberal = True
        elif value.startswith("nfacct:") and value != "nfacct:":
            nfacct.add(value[len("nfacct:"):])
        else:
            raise LabkitError(
                f"--host-feature {value!r} is not a feature labkit knows "
                f"(fix: use one of {', '.join(HOST_FEATURES)})"
            )
    return HostFeatureFlags(random_fully, tcp_be_liberal, frozenset(nfacct))


def check_addresses(option: str, addresses: Sequence[str], ip_family: str) -> list[str]:
    """Each address parsed and of the rendered family, or one error naming them all."""
    bad = []
    want = 4 if ip_family == "IPv4" else 6
    for text in addresses:
        try:
            if ipaddress.ip_address(text).version != want:
                bad.append(f"{text} is not an {ip_family} address")
        except ValueError:
            bad.append(f"{text!r} is not an IP address")
    if bad:
        raise LabkitError(
            f"{option}: {'; '.join(bad)} (fix: give an {ip_family} address such as "
            f"{'172.18.0.2' if want == 4 else 'fc00:f853:ccd:e793::2'}, or change --ip-family)"
        )
    return list(addresses)


def read_text(path: str, what: str) -> str:
    """The text of `path` ("-" is stdin); a LabkitError naming the file otherwise."""
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise LabkitError(f"{what} {path}: no such file (fix: check the path)") from None
    except IsADirectoryError:
        raise LabkitError(f"{what} {path}: is a directory (fix: name a YAML file)") from None
    except PermissionError:
        raise LabkitError(f"{what} {path}: permission denied") from None
    except UnicodeDecodeError as e:
        raise LabkitError(f"{what} {path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _source(path: str) -> str:
    """How errors name a file: its path, or <stdin> for "-"."""
    return "<stdin>" if path == "-" else path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit render",
        description="Print what a controller would program, from Kubernetes manifests.",
    )
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    ipt = targets.add_parser(
        "iptables",
        help="the iptables-restore text kube-proxy (iptables mode) loads on one node",
        description=(
            "Load the manifests, complete them as the control plane would (cluster IPs, "
            "node ports, EndpointSlices), and print the iptables-restore text kube-proxy "
            "in iptables mode would load on node NAME."
        ),
    )
    ipt.add_argument("-f", "--filename", dest="files", action="append", required=True,
                     metavar="FILE", help="a YAML manifest file, '-' for stdin (repeatable)")
    ipt.add_argument("--node", required=True, metavar="NAME", help="the node kube-proxy runs on")
    ipt.add_argument("--node-ip", dest="node_ips", action="append", required=True, metavar="IP",
                     help="the node's IP address (repeatable)")
    ipt.add_argument("--config", metavar="KUBE_PROXY_CONFIG.yaml",
                     help="a KubeProxyConfiguration (default: kube-proxy's defaults)")
    ipt.add_argument("--local-address", dest="local_addresses", action="append", metavar="IP",
                     help="an address on the node's interfaces (repeatable; default: the node IPs)")
    ipt.add_argument("--ip-family", choices=IP_FAMILIES, default="IPv4",
                     help="which family's rules to render (default: IPv4)")
    ipt.add_argument("--host-feature", dest="host_features", action="append", default=[],
                     metavar="FEATURE",
                     help=f"what the node's iptables supports: {', '.join(HOST_FEATURES)} (repeatable)")
    return parser


def render_iptables_text(args: argparse.Namespace) -> str:
    """Check, read, load, reconcile and render: the whole `render iptables` pipeline.

    Everything the learner typed is checked and every file read before the
    first manifest is loaded, so a typo is reported before any real work.
    """
    node_ips = check_addresses("--node-ip", args.node_ips, args.ip_family)
    local_addresses = check_addresses(
        "--local-address", args.local_addresses or node_ips, args.ip_family
    )
    flags = parse_host_features(args.host_features)
    manifests = [(_source(path), read_text(path, "manifest file")) for path in args.files]
    config_text = read_text(args.config, "config file") if args.config else None

    import random

    # Imported here, not at the top: `labkit --help` must not pay for them.
    from labkit.controllers.cluster import ClusterSettings, reconcile
    from labkit.controllers.kube_proxy.config import (
        HostFeatures,
        KubeProxyConfig,
        parse_kube_proxy_config,
    )
    from labkit.controllers.kube_proxy.iptables import render_iptables
    from labkit.model.load import load_manifests

    objects = []
    for path, text in manifests:
        objects.extend(load_manifests(text, source=path))
    if config_text is None:
        config = KubeProxyConfig()
    else:
        config = parse_kube_proxy_config(config_text, _source(args.config))
    host = HostFeatures(
        random_fully=flags.random_fully, tcp_be_liberal=flags.tcp_be_liberal, nfacct=flags.nfacct
    )
    # The node being rendered exists even when no Node manifest names it, so
    # that pods of a Deployment are scheduled (onto it, or spread over the
    # nodes given) and the Services have endpoints, as in a live cluster.
    state = reconcile(
        objects, ClusterSettings(), random.Random(0), node_names=[args.node], admit=False
    )
    node = state.node(args.node)
    rules = render_iptables(
        state.services,
        state.endpoint_slices,
        node_name=args.node,
        node_ips=node_ips,
        local_addresses=local_addresses,
        config=config,
        host=host,
        ip_family=args.ip_family,
        node_labels=dict(node.meta.labels) if node else {},
    )
    return rules.full_text


def main_render(argv: Sequence[str]) -> int:
    """`labkit render TARGET ...`; LabkitError propagates to the frame (exit 2)."""
    args = build_parser().parse_args(list(argv))
    text = render_iptables_text(args)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return 0
