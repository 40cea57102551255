"""A pod's stub resolver: resolv.conf and glibc's search-list walk.

A pod's /etc/resolv.conf (kubelet's dnsPolicy ClusterFirst, written by the
container runtime) is

    search <ns>.svc.cluster.local svc.cluster.local cluster.local
    nameserver 10.96.0.10
    options ndots:5

and glibc (resolv/res_query.c, __res_context_search) turns one lookup into
a sequence of queries:

- a name ending in a dot is absolute: asked once, as is;
- a name with at least `ndots` dots is asked as is first, then with each
  search domain appended;
- a name with fewer dots (every Service name a learner types, and also
  `example.com` or even `web.default.svc.cluster.local`: 4 dots < 5) is
  asked with each search domain appended first, and as is last;
- NXDOMAIN and NODATA move on to the next candidate, as does SERVFAIL; any
  other failure (REFUSED, ...) ends the walk; the first answer with records
  ends it with success.

`resolve` does that walk against any `ask(qname, qtype) -> Answer`: the
pure record store (labkit.controllers.dns.answer) in the simulation, a real
query over the kernel lab's network in the netns backend. It returns the
answer *and every query sent*, so a notebook can count what a short name
costs compared with a fully qualified one. `resolve_host` sends A and AAAA
for each candidate, as getaddrinfo(AF_UNSPEC) does.

Not modelled: retries and timeouts (the lab's server always answers),
several nameservers, `options rotate`, `single-request`, /etc/hosts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from labkit.controllers.dns import Answer
from labkit.errors import LabkitError

Ask = Callable[[str, str], Answer]

KUBE_DNS_IP = "10.96.0.10"
DEFAULT_NDOTS = 5  # kubelet's ClusterFirst
GLIBC_MAX_NDOTS = 15  # RES_MAXNDOTS


class ResolvConfError(LabkitError):
    """A resolv.conf line labkit cannot read."""


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = (KUBE_DNS_IP,)
    search: tuple[str, ...] = ()
    ndots: int = 1  # glibc's default when no option says otherwise
    options: tuple[str, ...] = ()  # every option as written, ndots:N included

    def render(self) -> str:
        """The file as the container runtime writes it: search, nameserver, options."""
        lines = []
        if self.search:
            lines.append("search " + " ".join(self.search))
        lines += [f"nameserver {ns}" for ns in self.nameservers]
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"


def pod_search_domains(namespace: str, cluster_domain: str = "cluster.local") -> tuple[str, ...]:
    d = cluster_domain.rstrip(".")
    return (f"{namespace}.svc.{d}", f"svc.{d}", d)


def pod_resolv_conf(
    pod_namespace: str,
    cluster_domain: str = "cluster.local",
    nameservers: Sequence[str] = (KUBE_DNS_IP,),
    host_search: Sequence[str] = (),
    ndots: int = DEFAULT_NDOTS,
) -> ResolvConf:
    """A ClusterFirst pod's resolver settings (kubelet: pkg/kubelet/network/dns).

    host_search: search domains of the node's own resolv.conf, which kubelet
    appends after the cluster's three.
    """
    search = pod_search_domains(pod_namespace, cluster_domain) + tuple(host_search)
    return ResolvConf(tuple(nameservers), search, ndots, (f"ndots:{ndots}",))


def render_resolv_conf(
    pod_namespace: str,
    cluster_domain: str = "cluster.local",
    nameservers: Sequence[str] = (KUBE_DNS_IP,),
    host_search: Sequence[str] = (),
    ndots: int = DEFAULT_NDOTS,
) -> str:
    """/etc/resolv.conf of a pod in `pod_namespace`."""
    return pod_resolv_conf(pod_namespace, cluster_domain, nameservers, host_search, ndots).render()


def parse_resolv_conf(text: str) -> ResolvConf:
    """Read resolv.conf as glibc does: the last search/domain line wins."""
    nameservers: list[str] = []
    search: tuple[str, ...] = ()
    ndots = 1
    options: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        word, *rest = line.split()
        if word == "nameserver" and rest:
            nameservers.append(rest[0])
        elif word == "search":
            search = tuple(rest)
        elif word == "domain" and rest:
            search = (rest[0],)
        elif word == "options":
            for opt in rest:
                options.append(opt)
                if opt.startswith("ndots:"):
                    try:
                        ndots = min(int(opt[6:]), GLIBC_MAX_NDOTS)
                    except ValueError:
                        raise ResolvConfError(
                            f"resolv.conf line {n}: {opt!r} needs a number (fix: write e.g. ndots:5)"
                        ) from None
        elif word in ("sortlist", "lookup", "family"):
            continue
        else:
            raise ResolvConfError(
                f"resolv.conf line {n}: unknown keyword {word!r} in {raw.strip()!r} "
                "(fix: use nameserver, search, domain or options)"
            )
    return ResolvConf(tuple(nameservers), search, ndots, tuple(options))


@dataclass(frozen=True)
class Query:
    """One question the resolver sent, and the server's answer."""

    name: str
    qtype: str
    answer: Answer

    def __str__(self) -> str:
        got = " ".join(r.data for r in self.answer.records)
        return f"{self.name} {self.qtype} -> {self.answer.status}" + (f" {got}" if got else "")


@dataclass(frozen=True)
class Resolution:
    """The outcome of one lookup: status, the answering query, all queries sent."""

    name: str
    qtypes: tuple[str, ...]
    status: str  # NOERROR, NXDOMAIN, NODATA, SERVFAIL, or the rcode that ended the walk
    queries: tuple[Query, ...]
    answered_name: str = ""  # the candidate that got records ("" if none)

    @property
    def query_count(self) -> int:
        return len(self.queries)

    @property
    def answers(self) -> tuple[Answer, ...]:
        """The answers of the successful candidate (one per qtype)."""
        return tuple(q.answer for q in self.queries if q.name == self.answered_name)

    @property
    def records(self):
        return tuple(r for a in self.answers for r in a.records)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(r.data for r in self.records if r.type in ("A", "AAAA"))

    def render(self) -> str:
        """One line per query sent, then the verdict: what a notebook prints."""
        lines = [f"{i}. {q}" for i, q in enumerate(self.queries, 1)]
        n = self.query_count
        verdict = f"{self.name}: {self.status} after {n} quer{'y' if n == 1 else 'ies'}"
        if self.answered_name:
            verdict += f" (answered as {self.answered_name})"
        return "\n".join(lines + [verdict]) + "\n"


def count_dots(name: str) -> int:
    return name.count(".")


def search_candidates(name: str, conf: ResolvConf) -> tuple[str, ...]:
    """The names glibc asks, in order, when every one of them is NXDOMAIN."""
    walk = _walk(name, ("A",), conf, lambda n, t: Answer(n, t, "NXDOMAIN"))
    return tuple(q.name for q in walk.queries)


def _candidate_status(answers: Sequence[Answer]) -> str:
    """glibc's verdict on one failed candidate (A answer first, then AAAA)."""
    rcode = answers[0].rcode
    if rcode == "NOERROR" and len(answers) > 1:
        rcode = answers[1].rcode
    return "NODATA" if rcode == "NOERROR" else rcode


def resolve(name: str, qtype: str, conf: ResolvConf, ask: Ask) -> Resolution:
    """res_search(name, qtype): walk the search list, stop at the first records."""
    return _walk(name, (qtype.upper(),), conf, ask)


def resolve_host(name: str, conf: ResolvConf, ask: Ask) -> Resolution:
    """getaddrinfo(name, AF_UNSPEC): A and AAAA for each candidate."""
    return _walk(name, ("A", "AAAA"), conf, ask)


def _walk(name: str, qtypes: tuple[str, ...], conf: ResolvConf, ask: Ask) -> Resolution:
    """__res_context_search, step for step."""
    if not name or name == ".":
        raise LabkitError("an empty name cannot be resolved (fix: give a host name such as web)")
    sent: list[Query] = []

    def query(candidate: str) -> Optional[str]:
        """None on success, else the candidate's failure status."""
        answers = [ask(candidate, qt) for qt in qtypes]
        sent.extend(Query(candidate, qt, a) for qt, a in zip(qtypes, answers))
        if any(a.rcode == "NOERROR" and a.records for a in answers):
            return None
        return _candidate_status(answers)

    def done(status: str, answered: str = "") -> Resolution:
        return Resolution(name, qtypes, status, tuple(sent), answered)

    dots = count_dots(name)
    trailing = name.endswith(".")
    bare = name[:-1] if trailing else name
    saved: Optional[str] = None
    tried_as_is = root_on_list = got_nodata = got_servfail = False
    status = "NXDOMAIN"  # HOST_NOT_FOUND when nothing was asked
    # 1. enough dots (or absolute): as is, first
    if dots >= conf.ndots or trailing:
        status = query(bare)
        if status is None:
            return done("NOERROR", bare)
        if trailing:
            return done(status)
        saved, tried_as_is = status, True
    # 2. the search list; NXDOMAIN, NODATA and SERVFAIL move on, anything else stops
    for domain in conf.search:
        d = domain[1:] if domain.startswith(".") else domain
        candidate = f"{bare}.{d}" if d else bare
        root_on_list = root_on_list or not d
        status = query(candidate)
        if status is None:
            return done("NOERROR", candidate)
        if status == "NODATA":
            got_nodata = True
        elif status == "SERVFAIL":
            got_servfail = True
        elif status != "NXDOMAIN":
            break
    # 3. as is, last, unless already asked
    if not (tried_as_is or root_on_list):
        status = query(bare)
        if status is None:
            return done("NOERROR", bare)
    if saved is not None:
        return done(saved)
    if got_nodata:
        return done("NODATA")
    if got_servfail:
        return done("SERVFAIL")
    return done(status)
