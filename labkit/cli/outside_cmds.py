"""`labkit masquerade`, `labkit dns` and `labkit env`: the stories beyond the pod network, on a running lab.

    labkit masquerade --name LAB off          # pods' traffic leaves with the pod's own address
    labkit masquerade --name LAB on [--non-masquerade CIDR ...]
    labkit dns --name LAB --from default/client web [--type A|SRV]
    labkit env --name LAB default/client

Each attaches to the kernel lab named (as `labkit probe` does) and hands the
work to its Backend methods; the text printed is the same a notebook gets.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _parser(command: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"labkit {command}", description=description)
    p.add_argument("--name", required=True, help="the lab's name")
    return p


def _attach(name: str):
    from labkit.backends.netns.lab import NetnsLab

    return NetnsLab.attach(name)


def main_masquerade(argv: Sequence[str]) -> int:
    p = _parser("masquerade", "Turn the pod network's masquerade (kindnet's KIND-MASQ-AGENT) on or off.")
    p.add_argument("state", choices=("on", "off"))
    p.add_argument("--non-masquerade", nargs="+", metavar="CIDR", default=None,
                   help="destinations pods reach with their own address (default: the pod subnet)")
    args = p.parse_args(argv)
    lab = _attach(args.name)
    lab.set_masquerade(args.state == "on", args.non_masquerade)
    cidrs = lab.network.masquerade.non_masquerade_cidrs
    print(f"lab {args.name}: masquerade {args.state}" + (f" (not for {', '.join(cidrs)})" if cidrs else ""))
    return 0


def main_dns(argv: Sequence[str]) -> int:
    p = _parser("dns", "Look a name up from a pod through cluster DNS; prints every query sent.")
    p.add_argument("--from", dest="source", required=True, help="NAMESPACE/POD")
    p.add_argument("--type", dest="qtype", choices=("A", "AAAA", "SRV", "CNAME", "PTR", "TXT"), default="A")
    p.add_argument("qname", metavar="NAME")
    args = p.parse_args(argv)
    res = _attach(args.name).dns(args.source, args.qname, args.qtype)
    sys.stdout.write(res.render())
    for r in res.records:
        print(r)
    return 0 if res.status == "NOERROR" else 1


def main_env(argv: Sequence[str]) -> int:
    from labkit.controllers.envvars import render_env

    p = _parser("env", "The Service environment variables a pod has.")
    p.add_argument("pod", metavar="NAMESPACE/POD")
    args = p.parse_args(argv)
    sys.stdout.write(render_env(_attach(args.name).env(args.pod)))
    return 0
