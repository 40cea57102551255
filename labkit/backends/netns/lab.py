"""The kernel lab: a LabPlan made real with `ip`, kube-proxy's rules, and a server per pod.

Needs root, or a user namespace: labkit.backends.netns.rootless runs this same class in a holder process.
The sequence of `up`, and of every re-sync after apply/delete/scale:
  1. the registry notes the namespaces about to exist (before they do);
  2. one `ip -batch -` adds the namespaces; `ip -n NS -batch -` per namespace,
     in phases (net -> nodes and hosts -> pods), makes links, addresses, routes;
  3. sysctls are written from a thread inside each namespace;
  4. one `iptables-restore` per node (kube-proxy's rules + kindnet's masquerade);
  5. the new pods' servers start; their PIDs are recorded.
Anything failing during `up` removes what was made, then re-raises.
"""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import replace
from typing import Optional, Sequence

from labkit.backends import operations as ops
from labkit.backends.lab_common import Endpoint, PlannedLab
from labkit.backends.base import (
    ANSWERED,
    NO_REPLY,
    REFUSED,
    UNREACHABLE,
    Backend,
    ConntrackEntry,
    LabNotFound,
    ProbeResult,
    Trace,
    check_sport,
    parse_destination,
)
from labkit.backends.netns import cleanup, commands, registry as reg, servers
from labkit.backends.netns.conntrack_text import parse_conntrack
from labkit.backends.netns.probes import http_probe, syn_probe, udp_probe
from labkit.backends.netns.rules import render_lab_rules
from labkit.backends.netns.runner import Runner, write_sysctls
from labkit.controllers.cluster import ClusterSettings, ClusterState
from labkit.controllers.loadbalancer import with_load_balancer_status
from labkit.errors import LabkitError
from labkit.tools import missing_requirements
from labkit.topology.masquerade import MasqueradeSettings
from labkit.topology.outside import (
    INTERNET_HOSTNAME,
    INTERNET_HTTP_PORT,
    INTERNET_UDP_PORT,
    KUBE_DNS_MANIFEST,
    LabNetworkSettings,
    check_cidrs,
    dns_pods,
    health_servers,
    is_dns_pod,
    needs_cloud,
    require_cluster_dns,
    trace_namespaces,
)
from labkit.topology.kind_config import ClusterTopology, default_topology, parse_kind_config_text
from labkit.topology.plan import DEFAULT_LAB_NAME, LabPlan, build_plan, check_lab_name, placements_from_pods
from labkit.workloads.netexec import pod_server_ports

REQUIRED_TOOLS = ("ip", "iptables-restore", "iptables-save")
NETWORK_FILE = "network.json"  # the lab's LabNetworkSettings, in its state directory


def check_can_run() -> None:
    """LabkitError saying what is missing for the netns backend on this machine."""
    missing = missing_requirements(root=True, tools=REQUIRED_TOOLS)
    if missing:
        raise LabkitError("the netns backend cannot run here:\n" + "\n".join(f"  - {m.reason}" for m in missing))


def _guard(plan: LabPlan, namespaces) -> None:
    """Refuse to touch any namespace that is not the lab's own (never the host's)."""
    bad = sorted({n for n in namespaces if not n.startswith(plan.prefix + "-")})
    if bad:
        raise LabkitError(f"refusing to configure namespaces outside lab {plan.lab}: {', '.join(bad)} (a labkit bug)")


class NetnsLab(PlannedLab, Backend):
    name = "netns"
    # kube-proxy's UDP conntrack cleanup after each sync (labkit.controllers.kube_proxy.conntrack_cleanup);
    # False plays a kube-proxy that cannot delete entries (as one without the conntrack tool once could
    # not), so a stale UDP entry outlives its endpoint until it expires
    conntrack_cleanup = True

    def __init__(self, lab: str = DEFAULT_LAB_NAME, kind_config: str = "", seed: int = 0,
                 runner: Optional[Runner] = None, root: str = reg.STATE_ROOT):
        check_lab_name(lab)
        self.lab = lab
        self.kind_config = kind_config
        self.topology: ClusterTopology = (
            parse_kind_config_text(kind_config) if kind_config else default_topology()
        )
        self.seed = seed
        self.runner = runner or Runner()
        self.root = root
        self.registry: Optional[reg.Registry] = None
        self.state: Optional[ClusterState] = None
        self.plan: Optional[LabPlan] = None
        self._rng = random.Random(f"{seed}:probes")
        self.network = LabNetworkSettings()
        self._health_running: dict[str, tuple] = {}  # node netns -> answers its server gives
        self._dns_running: dict[str, str] = {}  # DNS pod netns -> the configuration dnsmasq runs with
        self._init_ingress()

    # --- life cycle -------------------------------------------------------

    @property
    def settings(self) -> ClusterSettings:
        return ClusterSettings(pod_cidr=self.topology.pod_subnet, service_cidr=self.topology.service_subnet)

    def up(self, manifests: str = "", source: str = "") -> None:
        check_can_run()
        if reg.load_registry(self.lab, self.root) or os.path.isdir(os.path.join(self.root, self.lab)):
            raise LabkitError(f"lab {self.lab!r} already exists (fix: `labkit down --name {self.lab}` first, "
                              "or pick another --name)")
        self.registry = reg.new_registry(self.lab, f"lk{self.lab}", self.root,
                                         kind_config=self.kind_config, seed=self.seed)
        self.registry.save()
        try:
            state = ops.settle([], self.settings, self.seed, 0, self.topology.node_names)
            operations = []
            if manifests:
                operations.append({"op": "apply", "text": manifests, "source": source or "<manifest>"})
                state = ops.replay(operations, self.settings, self.seed, self.topology.node_names)
            self._sync(state, first=True)
            self.registry.operations = operations
            self.registry.phase = "up"
            self.registry.save()
        except BaseException:
            cleanup.down_lab(self.lab, self.runner, self.root)
            raise

    @classmethod
    def attach(cls, lab: str, runner: Optional[Runner] = None, root: str = reg.STATE_ROOT) -> "NetnsLab":
        """The lab `lab` made earlier (by this process or another), rebuilt from its registry."""
        registry = reg.load_registry(lab, root)
        if registry is None or registry.phase != "up":
            raise LabNotFound(f"no lab named {lab!r} is up (fix: `labkit up --name {lab}`; "
                              "`labkit status` lists the labs)")
        self = cls(lab, registry.kind_config, registry.seed, runner, root)
        self.registry = registry
        self.network = _load_network(registry)
        self.state = with_load_balancer_status(
            ops.replay(registry.operations, self.settings, self.seed, self.topology.node_names))
        self.plan = self._plan_for(self.state)
        self._health_running = {h.netns: h.answers for h in health_servers(self.plan, self.state)}
        self._dns_running = {p.netns: "?" for p in self.plan.pods if p.key in {
            f"{q.meta.namespace}/{q.meta.name}" for q in dns_pods(self.state)}}
        self._attach_ingress()
        return self

    def down(self) -> None:
        from labkit.backends.netns.dns_server import remove_resolv_confs

        remove_resolv_confs(f"lk{self.lab}")
        if getattr(self, "_watchers", None) is not None:  # the ingress controller's packet sockets
            self._watchers.close()
            self._watchers = None
        cleanup.down_lab(self.lab, self.runner, self.root)
        self.registry = None

    # --- changes ------------------------------------------------------------

    def _step(self) -> int:
        return len(self._require().operations) + 1

    def _record(self, op: dict, state: ClusterState) -> None:
        registry = self._require()
        self._sync(state)
        registry.operations.append(op)
        registry.save()

    # --- reading ----------------------------------------------------------

    def rules(self, node: str, table: str = "nat") -> str:
        ns = self._router(node)
        return self.runner.run(["ip", "netns", "exec", ns, "iptables-save", "-t", table]).stdout

    def conntrack(self, node: str) -> list[ConntrackEntry]:
        """A node's conntrack table; also "natgw", "lb" (the cloud's) and "net"."""
        ns = self._router(node)
        out = self.runner.run(["ip", "netns", "exec", ns, "conntrack", "-L"], check=False)
        if out.returncode != 0 and "0 flow entries" not in out.stderr:
            raise LabkitError(f"conntrack -L failed in {ns}: {out.stderr.strip()}")
        return parse_conntrack(out.stdout)

    # --- probes -----------------------------------------------------------

    def _pod_by_hostname(self, hostname: str) -> str:
        if hostname == INTERNET_HOSTNAME and self._plan().cloud is not None:
            return INTERNET_HOSTNAME
        keys = [p.key for p in self._plan().pods if p.name == hostname]
        return keys[0] if len(keys) == 1 else ""

    def probe(self, source: str, destination: str, protocol: str = "tcp", count: int = 1,
              timeout: float = 1.0, *, sport: Optional[int] = None) -> list[ProbeResult]:
        """TCP SYNs built with scapy, or UDP datagrams; `sport`: the client port every one of
        them leaves from (the sim's keyword: a UDP client that keeps its port keeps its
        conntrack entry), otherwise a random one per probe."""
        host, port = parse_destination(destination)
        self._ensure_cloud(source, host)
        src = self.endpoint(source)
        fixed = check_sport(sport)
        results = []
        for _ in range(count):
            sport = fixed or self._rng.randrange(32768, 61000)
            if protocol == "udp":
                u = udp_probe(src.netns, host, port, "hostname", timeout, sport)
                verdict = ANSWERED if u.ok else REFUSED if u.error == "refused" else NO_REPLY
                results.append(ProbeResult(src.label, destination, "udp", verdict,
                                           answered_by=self._pod_by_hostname(u.hostname),
                                           reply_from=u.reply_from, client_seen_as=u.client_seen_as,
                                           client_address=u.local, kind="udp", body=u.body,
                                           detail=u.error))
                continue
            if protocol != "tcp":
                raise LabkitError(f"--protocol must be tcp or udp, not {protocol!r}")
            o = syn_probe(src.netns, src.ip, host, port, sport, timeout)
            verdict = {"syn-ack": ANSWERED, "rst": REFUSED, "icmp": UNREACHABLE}.get(o.answer, NO_REPLY)
            answered_by, seen_as = "", ""
            if verdict == ANSWERED:
                answered_by, seen_as = self._who_answered(src, host, port, sport)
            results.append(ProbeResult(src.label, destination, "tcp", verdict, answered_by=answered_by,
                                       reply_from=o.reply_from, client_seen_as=seen_as,
                                       client_address=f"{src.ip}:{sport}", kind="syn", detail=o.detail))
        return results

    def _who_answered(self, src: Endpoint, host: str, port: int, sport: int) -> tuple[str, str]:
        """(pod, "address:port" the pod saw) from the conntrack entry of this connection."""
        node = self._nat_node(src, host)
        plan = self._plan()
        if not node and plan.cloud is not None:  # through the load balancer: its entry names the node
            try:
                for e in self.conntrack("lb"):
                    if e.proto == "tcp" and e.orig.sport == sport and e.orig.dst == host and e.orig.dport == port:
                        owner = plan.owner_of(e.reply.src)
                        if owner.startswith("node "):
                            node, host, port = owner[5:], e.reply.src, e.reply.sport
                        break
            except LabkitError:
                pass
        if node:
            try:
                for e in self.conntrack(node):
                    if e.proto == "tcp" and e.orig.sport == sport and e.orig.dst == host and e.orig.dport == port:
                        owner = plan.owner_of(e.reply.src)
                        return (owner[4:] if owner.startswith("pod ") else owner,
                                f"{e.reply.dst}:{e.reply.dport}")
            except LabkitError:
                pass
        owner = plan.owner_of(host)
        return (owner[4:] if owner.startswith("pod ") else owner), ""

    def http(self, source: str, destination: str, path: str = "/hostname", timeout: float = 2.0, *,
             sport: Optional[int] = None, host: Optional[str] = None,
             headers: Optional[dict] = None) -> ProbeResult:
        """One TCP connection and GET (sport: the client port to bind, else the kernel picks)."""
        sport = check_sport(sport)
        request_host = host
        host, port = parse_destination(destination)
        self._ensure_cloud(source, host)
        src = self.endpoint(source)
        if self._is_ingress_entry(host, port):
            return self._ingress_http(src, destination, host, port, path, request_host, headers or {}, timeout)
        o = http_probe(src.netns, host, port, path, timeout, sport)
        if o.ok:
            verdict = ANSWERED
        else:
            verdict = {"refused": REFUSED, "timeout": NO_REPLY}.get(o.error, UNREACHABLE)
        answered_by, seen_as = self._pod_by_hostname(o.hostname), o.client_seen_as
        if o.ok and not answered_by:  # kube-proxy's health check server answers on a node
            for h in health_servers(self._plan(), self._state()):
                if h.ip == host and h.answer(port) is not None:
                    answered_by, seen_as = h.node, ""  # it has no /clientip: every path gets the JSON
        return ProbeResult(src.label, destination, "tcp", verdict,
                           answered_by=answered_by, reply_from=o.peer,
                           client_seen_as=seen_as, client_address=o.local, kind="http",
                           status=o.status, body=o.body, detail=o.error)

    def trace(self, source: str, destination: str, protocol: str = "tcp", timeout: float = 1.0, *,
              sport: Optional[int] = None) -> Trace:
        """One TCP SYN traced by the kernel through the first node's chains (TRACE + xtables-monitor),
        from client port `sport` (a random one if not given)."""
        sport = check_sport(sport)
        import subprocess

        from labkit.backends.netns.trace_text import parse_xtables_trace, rule_positions
        from labkit.tools import require_tool

        if protocol != "tcp":
            raise LabkitError("the kernel trace sends a TCP SYN; --protocol udp is not traced yet")
        host, port = parse_destination(destination)
        self._ensure_cloud(source, host)
        src = self.endpoint(source)
        node_name = self._nat_node(src, host)
        names = trace_namespaces(self._plan(), node_name, host)
        if not names:
            raise LabkitError(f"{destination} is not a node of the lab, so no node's chains see a packet "
                              f"from {source} to it")
        sport = sport or self._rng.randrange(32768, 61000)
        rules = []
        for i, ns in enumerate(names):
            hook = "OUTPUT" if src.netns == ns else "PREROUTING"
            # --syn: only the SYN; the client's RST after the SYN-ACK has the same source and port.
            # After the first hop the source may be masqueraded (the port is kept): match the port.
            match = (["-s", src.ip] if i == 0 else []) + ["-p", "tcp", "--sport", str(sport), "--syn", "-j", "TRACE"]
            rules.append((ns, hook, match))
        monitors = [subprocess.Popen(["ip", "netns", "exec", ns, require_tool("xtables-monitor"), "--trace"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                    for ns in names]
        outs = []
        try:
            for ns, hook, match in rules:
                self.runner.run(["ip", "netns", "exec", ns, "iptables", "-t", "raw", "-I", hook, "1"] + match)
            time.sleep(0.1)  # xtables-monitor subscribes to the trace events
            o = syn_probe(src.netns, src.ip, host, port, sport, timeout)
            time.sleep(0.1)
        finally:
            for ns, hook, match in rules:
                self.runner.run(["ip", "netns", "exec", ns, "iptables", "-t", "raw", "-D", hook] + match,
                                check=False)
            for monitor in monitors:
                monitor.terminate()
                outs.append(monitor.communicate(timeout=5)[0])
        steps = []
        for ns, out in zip(names, outs):
            save = self.runner.run(["ip", "netns", "exec", ns, "iptables-save"]).stdout
            positions = {t: rule_positions(save, t) for t in ("raw", "mangle", "nat", "filter")}
            steps += [replace(step, netns=ns) for step in parse_xtables_trace(out, positions)]
        verdict = {"syn-ack": ANSWERED, "rst": REFUSED, "icmp": UNREACHABLE}.get(o.answer, NO_REPLY)
        return Trace(src.label, destination, "tcp", tuple(steps), verdict)

    # --- internals ----------------------------------------------------------

    def _require(self) -> reg.Registry:
        if self.registry is None:
            raise LabNotFound(f"lab {self.lab!r} is not up (fix: call up() or NetnsLab.attach({self.lab!r}))")
        return self.registry

    def _state(self) -> ClusterState:
        self._require()
        assert self.state is not None
        return self.state

    def _plan(self) -> LabPlan:
        self._require()
        assert self.plan is not None
        return self.plan

    def _plan_for(self, state: ClusterState) -> LabPlan:
        cidrs = {n.meta.name: n.pod_cidr for n in state.nodes if n.pod_cidr}
        return build_plan(self.lab, self.topology, placements_from_pods(state.pods), cidrs,
                          cloud=self.network.cloud)

    def _sync(self, state: ClusterState, first: bool = False) -> None:
        """Make the kernel match `state`: pods added/removed, every node's rules reloaded."""
        registry = self._require()
        state = with_load_balancer_status(state)
        if not self.network.cloud and needs_cloud(state):
            self._set_network(replace(self.network, cloud=True))
        new_plan = self._plan_for(state)
        old_plan = None if first else self.plan
        grow_cloud = new_plan.cloud is not None and (first or old_plan.cloud is None)
        old_pods = {p.key: p for p in old_plan.pods} if old_plan else {}
        new_pods = {p.key: p for p in new_plan.pods}
        gone = [p for k, p in old_pods.items() if k not in new_pods or new_pods[k] != p]
        if gone:
            self._remove_pods(gone)
        if first:
            fresh = set(new_plan.netns_names())
        else:
            fresh = {p.netns for k, p in new_pods.items() if k not in old_pods or old_pods[k] != p}
        if grow_cloud and not first:
            self._grow_cloud(new_plan)
        phases = commands.render_batches(new_plan, fresh) if fresh else []
        if grow_cloud and first:
            phases.insert(1, _cloud_batches(new_plan))
        _guard(new_plan, list(fresh) + [b.netns for phase in phases for b in phase])
        if fresh:
            ordered = [n for n in new_plan.netns_names() if n in fresh]
            registry.record_namespaces(ordered)
            self.runner.run(["ip", "-batch", "-"], stdin=commands.render_netns_add(ordered))
            for phase in phases:
                self.runner.run_all([(["ip", "-n", b.netns, "-batch", "-"], b.text) for b in phase])
            for ns in new_plan.namespaces:
                if ns.name in fresh and ns.sysctls:
                    write_sysctls(ns.name, ns.sysctls)
        texts = render_lab_rules(new_plan, state, self.network.masquerade)
        _guard(new_plan, texts)
        self.runner.run_all([(["ip", "netns", "exec", ns, "iptables-restore"], text)
                             for ns, text in texts.items()])
        model_pods = {f"{p.meta.namespace}/{p.meta.name}": p for p in state.pods}
        specs = []
        for key, p in new_pods.items():
            if p.netns in fresh and not is_dns_pod(model_pods[key]) and not _runs_nginx(model_pods[key]):
                tcp, udp = pod_server_ports(model_pods[key])
                specs.append(servers.ServerSpec(key, p.name, p.netns, tcp, udp))
        if grow_cloud:
            specs.append(servers.ServerSpec(INTERNET_HOSTNAME, INTERNET_HOSTNAME, new_plan.internet.netns,
                                            (INTERNET_HTTP_PORT,), (INTERNET_UDP_PORT,)))
        before = None if first else self.state
        self.state, self.plan = state, new_plan
        self._clean_conntrack(before, state)
        if specs:
            servers.start_servers(self.lab, specs, registry)
        self._sync_health(new_plan, state)
        self._sync_dns(new_plan, state, fresh)
        self._sync_ingress(new_plan, state, fresh)

    def _clean_conntrack(self, before: Optional[ClusterState], after: ClusterState) -> None:
        """kube-proxy's UDP conntrack cleanup after the sync (labkit.controllers.kube_proxy.
        conntrack_cleanup): each node lists its UDP entries and deletes the stale ones, one
        `conntrack -D` per entry, naming its whole original tuple."""
        from labkit.controllers.kube_proxy.conntrack_cleanup import (
            check_cleanup_required,
            is_stale,
            render_conntrack_delete,
            serving_endpoints,
        )

        from labkit.tools import find_tool

        # without the conntrack tool (the rest of the lab does not need it) there is nothing to clean with
        if not self.conntrack_cleanup or not check_cleanup_required(before, after) \
                or find_tool("conntrack") is None:
            return
        by_ip_port, by_node_port = serving_endpoints(after)
        nodes = [n.netns for n in self._plan().nodes]
        listings = self.runner.run_all([(["ip", "netns", "exec", ns, "conntrack", "-L", "-p", "udp"], "")
                                        for ns in nodes], check=False)
        deletes = []
        for ns, out in zip(nodes, listings):
            for e in parse_conntrack(out.stdout):
                if is_stale(e, by_ip_port, by_node_port):
                    deletes.append((["ip", "netns", "exec", ns] + render_conntrack_delete(e), ""))
        if deletes:  # an entry that expired meanwhile makes conntrack say "0 flow entries": not an error
            self.runner.run_all(deletes, check=False)

    # --- the world outside the pod network ----------------------------------------

    def _grow_cloud(self, plan: LabPlan) -> None:
        """Add the NAT gateway and the load balancer to a running lab: the outside client and the
        internet host move from the net namespace to them (their links are made again)."""
        registry = self._require()
        c = plan.cloud
        net = plan.network_netns
        _guard(plan, [c.natgw_netns, c.lb_netns])
        registry.record_namespaces([c.natgw_netns, c.lb_netns])
        self.runner.run(["ip", "-batch", "-"], stdin=commands.render_netns_add([c.natgw_netns, c.lb_netns]))
        self.runner.run(["ip", "-n", net, "-batch", "-"],
                        stdin=f"link del {plan.outside.port}\nlink del {plan.internet.port}\n")
        phases = commands.render_batches(plan, {c.natgw_netns, c.lb_netns, plan.outside.netns,
                                                plan.internet.netns})
        phases.insert(1, _cloud_batches(plan))
        for phase in phases:
            self.runner.run_all([(["ip", "-n", b.netns, "-batch", "-"], b.text) for b in phase])
        routes = "".join(f"route add {r.spec()}\n" for r in plan.routes if r.netns == net)
        self.runner.run(["ip", "-n", net, "-batch", "-"], stdin=routes)
        for ns in plan.namespaces:
            if ns.name in (c.natgw_netns, c.lb_netns):
                write_sysctls(ns.name, ns.sysctls)

    def _sync_health(self, plan: LabPlan, state: ClusterState) -> None:
        """kube-proxy's health check servers: (re)started on the nodes whose answers changed."""
        registry = self._require()
        wanted = {h.netns: h.answers for h in health_servers(plan, state)}
        changed = [ns for ns in set(wanted) | set(self._health_running)
                   if wanted.get(ns) != self._health_running.get(ns)]
        if not changed:
            return
        self._stop_processes(lambda r: r.netns in changed and r.pod.startswith("health "))
        specs = [servers.HealthSpec(f"health {n.name}", n.netns, wanted[n.netns])
                 for n in plan.nodes if n.netns in changed and n.netns in wanted]
        if specs:
            servers.start_servers(self.lab, specs, registry, argv_of=servers.health_argv)
        self._health_running = wanted

    def _sync_dns(self, plan: LabPlan, state: ClusterState, fresh: set) -> None:
        """dnsmasq in every kube-dns pod, restarted when the cluster's records change; pods'
        resolv.conf files for `ip netns exec`."""
        from labkit.backends.netns import dns_server
        from labkit.controllers.dns import cluster_dns_records
        from labkit.dns.resolver import render_resolv_conf
        from labkit.dns.server_conf import render_dnsmasq_conf

        registry = self._require()
        pods = {f"{p.meta.namespace}/{p.meta.name}" for p in dns_pods(state)}
        if not pods and not self._dns_running:
            return
        had_dns = bool(self._dns_running)
        records = cluster_dns_records(state)
        wanted = {}
        for p in plan.pods:
            if p.key in pods:
                wanted[p.netns] = (p, render_dnsmasq_conf(records, listen_address=p.ip,
                                                          state_dir=dns_server.dns_dir(registry, p.netns)))
        changed = {ns for ns in set(wanted) | set(self._dns_running)
                   if ns in fresh or self._dns_running.get(ns) != (wanted[ns][1] if ns in wanted else None)}
        if changed:
            self._stop_processes(lambda r: r.netns in changed and r.marker.startswith("--conf-file="))
            for ns in sorted(changed & set(wanted)):
                p, conf = wanted[ns]
                dns_server.start_dnsmasq(self.lab, p.key, ns, p.ip, conf, registry)
            self._dns_running = {ns: conf for ns, (_, conf) in wanted.items()}
        first_dns = not had_dns and bool(pods)
        new_files = {p.netns: render_resolv_conf(p.namespace) for p in plan.pods if p.netns in fresh or first_dns}
        if new_files:
            dns_server.write_resolv_confs(new_files)

    def _stop_processes(self, which) -> None:
        registry = self._require()
        doomed = [r for r in registry.processes if which(r)]
        if not doomed:
            return
        cleanup.kill_and_wait([r.pid for r in doomed])
        registry.processes = [r for r in registry.processes if r not in doomed]
        registry.save()

    def _set_network(self, network: LabNetworkSettings) -> None:
        self.network = network
        registry = self._require()
        os.makedirs(registry.dir, mode=0o700, exist_ok=True)
        with open(os.path.join(registry.dir, NETWORK_FILE), "w") as f:
            json.dump(network.to_json(), f)

    def _ensure_cloud(self, source: str, host: str) -> None:
        if not self.network.cloud and needs_cloud(self._state(), source, host):
            self.enable_cloud()

    def enable_cloud(self) -> None:
        """Put the cluster in its cloud: the NAT gateway and the load balancer (kept from now on)."""
        if not self.network.cloud:
            self._set_network(replace(self.network, cloud=True))
            self._sync(self._state())

    def set_masquerade(self, enabled: bool, non_masquerade_cidrs: Optional[Sequence[str]] = None) -> None:
        """Turn the pod network's masquerade (kindnet's KIND-MASQ-AGENT) on or off on every node.

        non_masquerade_cidrs: destinations pods reach with their own address
        (None: kindnet's default, the pod subnet). The cloud comes with it.
        """
        cidrs = check_cidrs(non_masquerade_cidrs) if non_masquerade_cidrs is not None else None
        self._set_network(replace(self.network, cloud=True, masquerade=MasqueradeSettings(bool(enabled), cidrs)))
        self._sync(self._state())

    def enable_dns(self) -> list[str]:
        """Apply the kube-dns add-on (a Service at 10.96.0.10 and two DNS pods running dnsmasq)."""
        return self.apply(KUBE_DNS_MANIFEST, "kube-dns add-on")

    def dns(self, from_pod: str, name: str, qtype: str = "A"):
        """Look `name` up from `from_pod` as its resolver does (search list, ndots:5), each query a
        real UDP datagram to the kube-dns ClusterIP. Returns labkit.dns.resolver.Resolution."""
        from labkit.backends.netns.dns_server import ask_dns
        from labkit.dns.resolver import KUBE_DNS_IP, pod_resolv_conf, resolve

        require_cluster_dns(self._state())
        if "/" not in from_pod:
            raise LabkitError(f"dns --from must be a pod (namespace/name), not {from_pod!r}")
        src = self.endpoint(from_pod)
        conf = pod_resolv_conf(from_pod.split("/", 1)[0])
        return resolve(name, qtype, conf, lambda qn, qt: ask_dns(src.netns, KUBE_DNS_IP, qn, qt))

    def env(self, pod: str) -> dict[str, str]:
        """The Service environment variables `pod` ("namespace/name") has (kubelet's rule:
        the Services that existed when it was created)."""
        from labkit.backends.sim.history import creation_order
        from labkit.controllers.envvars import pod_env_vars

        if "/" not in pod:
            raise LabkitError(f"env needs a pod as namespace/name, not {pod!r}")
        ns, name = pod.split("/", 1)
        order = creation_order(self._require().operations, self.settings, self.seed, self.topology.node_names)
        return pod_env_vars(self._state(), ns, name, order)

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass (real time: the kernel's conntrack and recent tables have their own clock)."""
        time.sleep(float(seconds))

    # --- NetworkPolicy (Backend.netpol_matrix / netpol_check) ----------------------------

    def netpol_objects(self) -> list:
        """The lab's Namespaces, Pods and NetworkPolicies, as the evaluator reads them."""
        state = self._state()
        return [*state.namespaces, *state.pods, *state.network_policies]

    def probe_many(self, requests, timeout: float = 0.5) -> list[ProbeResult]:
        """Every request (labkit.backends.base.ProbeRequest) at once, from its pod's namespace
        (labkit.backends.netns.batch_probes): a dropped probe costs one shared deadline. Client
        ports are taken in turn from the ephemeral range, from a random start per lab object,
        so no probe meets the conntrack entry an earlier one left on a node."""
        from labkit.backends.netns.batch_probes import BatchProbe, run_batch

        low, high = 32768, 61000  # net.ipv4.ip_local_port_range's default
        if not hasattr(self, "_batch_port"):
            import secrets

            self._batch_port = secrets.randbelow(high - low)
        batch, sources = [], []
        for r in requests:
            if r.protocol not in ("tcp", "udp", "sctp"):
                raise LabkitError(f"a batch probe is tcp, udp or sctp, not {r.protocol!r}")
            host, port = parse_destination(r.destination)
            src = self.endpoint(r.source)
            self._batch_port = (self._batch_port + 1) % (high - low)
            batch.append(BatchProbe(src.netns, host, port, r.protocol, low + self._batch_port))
            sources.append(src)
        outcomes = run_batch(batch, timeout)
        results = []
        for r, src, b, o in zip(requests, sources, batch, outcomes):
            answered_by = ""
            if o.answer == ANSWERED:  # the pod at that address (a UDP reply names it: check)
                owner = self._plan().owner_of(b.dst).removeprefix("pod ")
                answered_by = (owner if r.protocol == "tcp" or owner.split("/")[-1] == o.body
                               else self._pod_by_hostname(o.body))
            results.append(ProbeResult(src.label, r.destination, r.protocol, o.answer, answered_by=answered_by,
                                       reply_from=o.reply_from, client_address=f"{src.ip}:{b.sport}",
                                       kind={"tcp": "syn", "sctp": "sctp-init"}.get(r.protocol, "udp"),
                                       body=o.body,
                                       detail=o.detail))
        return results

    # --- the ingress controller (labkit.backends.netns.ingress) --------------------------

    def _init_ingress(self) -> None:
        self._ingress_rng = random.Random(f"{self.seed}:ingress")  # request ids, as the sim's
        self._nginx_running: dict[str, str] = {}  # controller pod netns -> generation served
        self._watchers = None  # labkit.backends.netns.ingress.Watchers, made on the first request

    def _attach_ingress(self) -> None:
        from labkit.controllers.ingress.controller import controller_pods

        keys = {f"{p.meta.namespace}/{p.meta.name}" for p in controller_pods(self.state)}
        self._nginx_running = {p.netns: "?" for p in self.plan.pods if p.key in keys}

    def _sync_ingress(self, plan: LabPlan, state: ClusterState, fresh: set) -> None:
        from labkit.backends.netns.ingress import sync_controllers

        if self._nginx_running or any(_runs_nginx(p) for p in state.pods):
            self._nginx_running = sync_controllers(self.lab, plan, state, fresh, self._nginx_running,
                                                   self._require())

    def _is_ingress_entry(self, host: str, port: int) -> bool:
        from labkit.controllers.ingress.controller import ingress_entry_points

        if not self._nginx_running:
            return False
        return (host, port) in ingress_entry_points(self._state(), [n.ip for n in self._plan().nodes])

    def _ingress_http(self, src, destination, host, port, path, request_host, headers, timeout) -> ProbeResult:
        from labkit.backends.netns.ingress import ingress_request

        rid = next((v for k, v in headers.items() if k.lower() == "x-request-id"), "") or \
            "%032x" % self._ingress_rng.getrandbits(128)
        sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "x-request-id")}
        from labkit.backends.netns.ingress import Watchers

        self._watchers = self._watchers or Watchers()
        o = ingress_request(src.netns, host, port, path, request_host or f"{host}:{port}", sent, rid,
                            self._watchers.for_netns(sorted(self._nginx_running)), timeout)
        if not o.ok:
            verdict = {"refused": REFUSED, "timeout": NO_REPLY}.get(o.error, UNREACHABLE)
            return ProbeResult(src.label, destination, "tcp", verdict, kind="http", detail=o.error)
        plan = self._plan()
        if o.upstream:
            answered_by = plan.owner_of(o.upstream.rsplit(":", 1)[0]).removeprefix("pod ")
            detail = f"nginx proxied to {o.upstream}"
        else:
            ctrl = [p.key for p in plan.pods if p.netns in self._nginx_running]
            answered_by, detail = (ctrl[0] if len(ctrl) == 1 else ""), "nginx answered itself"
        return ProbeResult(src.label, destination, "tcp", ANSWERED, answered_by=answered_by, reply_from=o.peer,
                           client_seen_as=o.seen_as, client_address=o.local, kind="http", status=o.status,
                           body=o.body, headers=o.upstream_headers, detail=detail)

    def enable_ingress(self) -> list[str]:
        """Apply the lab's ingress controller (labkit.controllers.ingress.controller): a pod running
        real nginx with the configuration labkit renders, behind a LoadBalancer Service on port 80."""
        from labkit.controllers.ingress.controller import INGRESS_NGINX_MANIFEST

        return self.apply(INGRESS_NGINX_MANIFEST, "ingress-nginx controller")

    def ingress_conf(self) -> str:
        """The nginx.conf the controller's nginx runs (read from its pod's directory)."""
        from labkit.backends.netns.ingress import controller_dir

        if not self._nginx_running:
            raise LabkitError("this lab has no ingress controller yet (fix: lab.enable_ingress())")
        with open(os.path.join(controller_dir(self._require(), sorted(self._nginx_running)[0]), "nginx.conf")) as f:
            return f.read()

    def _remove_pods(self, pods) -> None:
        registry = self._require()
        names = [p.netns for p in pods]
        pids = cleanup.lab_processes(self.lab, names, by_cmdline=False)
        cleanup.kill_and_wait(pids)
        self.runner.run(["ip", "-force", "-batch", "-"], stdin=commands.render_netns_del(names), check=False)
        registry.forget_namespaces(names)


def _runs_nginx(pod) -> bool:
    """The ingress controller's pods run nginx (labkit.backends.netns.ingress), not netexec."""
    from labkit.controllers.ingress.controller import is_controller_pod

    return is_controller_pod(pod)


def _load_network(registry: reg.Registry) -> LabNetworkSettings:
    try:
        with open(os.path.join(registry.dir, NETWORK_FILE)) as f:
            return LabNetworkSettings.from_json(json.load(f))
    except (OSError, ValueError):
        return LabNetworkSettings()


def _cloud_batches(plan: LabPlan) -> list:
    """The NAT gateway's and load balancer's own batches: run after the net namespace made their
    eth0 (phase 1) and before the outside and internet hosts configure theirs (phase 2)."""
    cloud = {plan.cloud.natgw_netns, plan.cloud.lb_netns}
    as_network = replace(plan, namespaces=tuple(replace(n, role="network") if n.name in cloud else n
                                                for n in plan.namespaces))
    batches = commands.render_batches(as_network, cloud)[0]
    return [b for b in batches if b.netns in cloud]
