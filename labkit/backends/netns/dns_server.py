"""Cluster DNS in the kernel lab: dnsmasq in each kube-dns pod, queries from pods, resolv.conf files.

The kube-dns pods (kube-system, k8s-app: kube-dns) run dnsmasq with the
configuration labkit.dns.server_conf renders from the cluster's records,
listening on the pod's own address, port 53; pods reach it through the
kube-dns ClusterIP and kube-proxy's DNAT, like any UDP flow. dnsmasq reads
its records once, so the lab restarts it when the records change (a Service
or pod came or went). Its files (configuration, pid file, query log) live in
the lab's state directory, which `labkit down` removes.

For a learner's own `ip netns exec lkLAB-pod-NS.NAME getent hosts web`, each
pod gets /etc/netns/<its namespace>/resolv.conf (ip netns exec bind-mounts
it over /etc/resolv.conf): the directory carries the lab's prefix, and the
lab removes it on down.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import Iterable

from labkit.backends.netns.registry import ProcessRecord, Registry
from labkit.backends.netns.runner import in_netns
from labkit.errors import LabkitError
from labkit.tools import require_tool

ETC_NETNS = "/etc/netns"
READY_DEADLINE = 3.0


def dns_dir(registry: Registry, netns: str) -> str:
    return os.path.join(registry.dir, "dns", netns)


def start_dnsmasq(lab: str, pod_key: str, netns: str, ip: str, conf_text: str, registry: Registry) -> ProcessRecord:
    """Write the configuration, start dnsmasq in the pod's namespace, wait until it answers."""
    from labkit.dns.server_conf import dnsmasq_argv

    d = dns_dir(registry, netns)
    os.makedirs(d, mode=0o700, exist_ok=True)
    conf = os.path.join(d, "dnsmasq.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    argv = ["ip", "netns", "exec", netns] + list(dnsmasq_argv(conf, require_tool("dnsmasq")))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    rec = ProcessRecord(proc.pid, netns, pod_key, f"--conf-file={conf}")
    registry.record_process(rec)
    end = time.monotonic() + READY_DEADLINE
    while time.monotonic() < end:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise LabkitError(f"pod {pod_key}: dnsmasq did not start: {err or 'it exited'}")
        if _answers(netns, ip):
            return rec
        time.sleep(0.01)
    raise LabkitError(f"pod {pod_key}: dnsmasq was not answering on {ip}:53 after {READY_DEADLINE:.0f} s")


def _answers(netns: str, ip: str) -> bool:
    from labkit.dns.query import build_dns_message

    query = bytes(build_dns_message("dns-version.cluster.local", "TXT"))

    def body() -> bool:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.05)
        try:
            s.sendto(query, (ip, 53))
            s.recv(4096)
            return True
        except OSError:
            return False
        finally:
            s.close()

    return in_netns(netns, body)


def ask_dns(netns: str, server: str, qname: str, qtype: str, timeout: float = 1.0):
    """One query from inside `netns` to server:53 over UDP (a scapy-built message); the Answer,
    or rcode "TIMEOUT" when nothing came back."""
    from labkit.controllers.dns import Answer
    from labkit.dns.query import build_dns_message, parse_dns_response

    def body():
        import random

        qid = random.SystemRandom().randrange(1, 65535)
        msg = bytes(build_dns_message(qname, qtype, qid=qid))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            s.connect((server, 53))
            s.send(msg)
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                data = s.recv(4096)
                if len(data) >= 2 and int.from_bytes(data[:2], "big") == qid:
                    a = parse_dns_response(data)
                    return Answer(qname, qtype, a.rcode, a.records)
        except (OSError, socket.timeout):
            pass
        finally:
            s.close()
        return Answer(qname, qtype, "TIMEOUT")

    return in_netns(netns, body)


def write_resolv_confs(files: dict[str, str]) -> list[str]:
    """Write /etc/netns/<netns>/resolv.conf for each {netns: text}; the directories written."""
    made = []
    for netns, text in files.items():
        d = os.path.join(ETC_NETNS, netns)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write(text)
        made.append(d)
    return made


def remove_resolv_confs(prefix: str, dirs: Iterable[str] = ()) -> None:
    """Remove the lab's /etc/netns/<prefix>-* directories (only those: the names carry the prefix)."""
    names = set(dirs)
    try:
        names.update(os.path.join(ETC_NETNS, n) for n in os.listdir(ETC_NETNS) if n.startswith(prefix + "-"))
    except FileNotFoundError:
        pass
    for d in names:
        if os.path.basename(d).startswith(prefix + "-"):
            shutil.rmtree(d, ignore_errors=True)
