"""The `labkit` command: its frame (dispatch, errors, exit codes, lazy imports)
and `labkit render iptables` end to end."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import types
from importlib import metadata
from pathlib import Path

import pytest

import labkit
from labkit.cli import main as cli
from labkit.errors import LabkitError

REPO = Path(__file__).resolve().parent.parent

HELP = """\
usage: labkit [-h] [--version] COMMAND ...

The lab behind the course 'Kubernetes networking, packet by packet'.

positional arguments:
  COMMAND
    render       print the rules kube-proxy would program for some manifests
    trace        follow one packet through the simulated dataplane, chain by
                 chain
    netpol       answer NetworkPolicy questions from manifests: check, matrix,
                 rules
    ingress      route an HTTP request through Ingress/HTTPRoute objects;
                 render nginx.conf
    up           make a lab and apply manifests to it
    down         remove a lab (or --all) completely
    status       list the labs that are up
    doctor       what this machine allows (root, namespaces, tools) and how to
                 fix gaps
    apply        create or update objects in a lab
    delete       delete objects from a lab
    scale        set a Deployment's replicas
    probe        send TCP SYNs or UDP packets from a pod, node or outside host
    http         one real HTTP request inside a lab
    conntrack    a node's conntrack table
    rules        a node's rules as iptables-save shows them
    compare-rules
                 diff a kind node's live kube-proxy rules against labkit's
                 rendering
    masquerade   turn the pod network's masquerade on or off in a lab
    dns          look a name up from a pod through cluster DNS
    env          the Service environment variables a pod has
    version      print labkit's version

options:
  -h, --help     show this help message and exit
  --version      show program's version number and exit

Run 'labkit COMMAND --help' for a command's own options.
"""


@pytest.fixture(autouse=True)
def fixed_width(monkeypatch):
    """argparse wraps help at the terminal's width: make it 80 everywhere."""
    monkeypatch.setenv("COLUMNS", "80")


def run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


# --- the frame --------------------------------------------------------------


def test_help_lists_every_subcommand(capsys):
    assert run(["--help"], capsys) == (0, HELP, "")


def test_no_subcommand_is_a_usage_error(capsys):
    rc, out, err = run([], capsys)
    assert (rc, out) == (2, "")
    assert err.endswith("labkit: error: the following arguments are required: COMMAND\n")


def test_unknown_subcommand_exits_2(capsys):
    rc, out, err = run(["bogus"], capsys)
    assert (rc, out) == (2, "")
    assert err.endswith(
        "labkit: error: argument COMMAND: invalid choice: 'bogus' "
        "(choose from 'render', 'trace', 'netpol', 'ingress', 'up', 'down', 'status', 'doctor', 'apply', "
        "'delete', 'scale', 'probe', 'http', 'conntrack', 'rules', 'compare-rules', "
        "'masquerade', 'dns', 'env', 'version')\n"
    )


def test_version(capsys):
    assert run(["version"], capsys) == (0, f"labkit {labkit.__version__}\n", "")
    assert run(["--version"], capsys) == (0, f"labkit {labkit.__version__}\n", "")


def fake_module(monkeypatch, name, **functions):
    module = types.ModuleType(name)
    for fname, fn in functions.items():
        setattr(module, fname, fn)
    monkeypatch.setitem(sys.modules, name, module)


def test_trace_gets_its_arguments_and_its_exit_code_is_kept(monkeypatch, capsys):
    seen = []

    def main_trace(argv):
        seen.append(list(argv))
        return 1

    fake_module(monkeypatch, "labkit.cli.trace_cmd", main_trace=main_trace)
    assert run(["trace", "--from", "client", "web:80"], capsys) == (1, "", "")
    assert seen == [["--from", "client", "web:80"]]


def test_labkit_error_becomes_message_and_exit_2(monkeypatch, capsys):
    def main_trace(argv):
        raise LabkitError("Service default/web: no such Service (fix: apply it first)")

    fake_module(monkeypatch, "labkit.cli.trace_cmd", main_trace=main_trace)
    assert run(["trace"], capsys) == (
        2,
        "",
        "labkit: Service default/web: no such Service (fix: apply it first)\n",
    )


def test_missing_subcommand_module_says_not_available_yet(monkeypatch, capsys):
    ghost = cli.Subcommand("ghost", "labkit.cli.ghost_cmd", "main_ghost", "not written yet")
    monkeypatch.setattr(cli, "SUBCOMMANDS", cli.SUBCOMMANDS + (ghost,))
    assert run(["ghost"], capsys) == (
        2,
        "",
        "labkit: the 'ghost' command is not available yet "
        "(module labkit.cli.ghost_cmd is missing)\n",
    )


def test_a_bug_inside_a_subcommand_module_is_not_hidden(monkeypatch):
    """A module that exists but imports something missing is a bug: let it show."""

    def main_trace(argv):
        import labkit_no_such_dependency  # noqa: F401

    fake_module(monkeypatch, "labkit.cli.trace_cmd", main_trace=main_trace)
    with pytest.raises(ModuleNotFoundError):
        cli.main(["trace"])


def test_console_script_points_at_main():
    (ep,) = metadata.entry_points(group="console_scripts", name="labkit")
    assert ep.value == "labkit.cli.main:main"


# --- startup stays light ----------------------------------------------------

HEAVY = ("scapy", "yaml", "IPython", "ipywidgets", "ipykernel", "jupyter_client",
         "graphviz", "labkit.controllers", "labkit.dataplane", "labkit.model.load")


def modules_after(argv) -> list[str]:
    """Run main(argv) in a fresh interpreter; the heavy modules it imported."""
    code = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from labkit.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()):
            rc = main({argv!r})
        heavy = {HEAVY!r}
        print(json.dumps([rc, sorted(m for m in sys.modules
                                     if any(m == h or m.startswith(h + ".") for h in heavy))]))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    rc, heavy = json.loads(done.stdout)
    assert rc == 0
    return heavy


def test_help_imports_nothing_heavy():
    assert modules_after(["--help"]) == []


def test_render_help_imports_nothing_heavy():
    assert modules_after(["render", "iptables", "--help"]) == []


# --- labkit render iptables: bad input ----------------------------------------


def render(capsys, *extra, files=("svc.yaml",), node_ip="172.18.0.2"):
    argv = ["render", "iptables", "--node", "kind-worker"]
    argv += [a for f in files for a in ("-f", str(f))]
    if node_ip:
        argv += ["--node-ip", node_ip]
    return run(argv + list(extra), capsys)


def test_render_missing_file_names_it(tmp_path, capsys):
    missing = tmp_path / "no-such.yaml"
    assert render(capsys, files=[missing]) == (
        2, "", f"labkit: manifest file {missing}: no such file (fix: check the path)\n"
    )


def test_render_missing_config_file_names_it(tmp_path, capsys):
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(SERVICE)
    missing = tmp_path / "kube-proxy.yaml"
    assert render(capsys, "--config", str(missing), files=[manifest]) == (
        2, "", f"labkit: config file {missing}: no such file (fix: check the path)\n"
    )


def test_render_bad_node_ip(tmp_path, capsys):
    assert render(capsys, node_ip="172.18.0") == (
        2,
        "",
        "labkit: --node-ip: '172.18.0' is not an IP address "
        "(fix: give an IPv4 address such as 172.18.0.2, or change --ip-family)\n",
    )


def test_render_node_ip_of_the_other_family(capsys):
    assert render(capsys, "--ip-family", "IPv6") == (
        2,
        "",
        "labkit: --node-ip: 172.18.0.2 is not an IPv6 address "
        "(fix: give an IPv6 address such as fc00:f853:ccd:e793::2, or change --ip-family)\n",
    )


def test_render_unknown_host_feature(capsys):
    assert render(capsys, "--host-feature", "random_fully") == (
        2,
        "",
        "labkit: --host-feature 'random_fully' is not a feature labkit knows "
        "(fix: use one of random-fully, tcp-be-liberal, nfacct:NAME)\n",
    )


def test_render_without_node_is_a_usage_error(capsys):
    rc, out, err = run(["render", "iptables", "-f", "svc.yaml"], capsys)
    assert (rc, out) == (2, "")
    assert err.endswith(
        "labkit render iptables: error: the following arguments are required: --node, --node-ip\n"
    )


# --- labkit render iptables: the real pipeline --------------------------------
# Names and addresses are those of kube-proxy's own golden tests
# (pkg/proxy/iptables/proxier_test.go), so the chain names below are the ones a
# real kube-proxy computes: KUBE-SVC-/KUBE-SEP- + base32(sha256(...))[:16].

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: svc1
  namespace: ns1
spec:
  clusterIP: 172.30.0.41
  ports:
  - name: p80
    port: 80
    protocol: TCP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc1-abcde
  namespace: ns1
  labels:
    kubernetes.io/service-name: svc1
addressType: IPv4
endpoints:
- addresses: ["10.180.0.1"]
  conditions: {ready: true}
ports:
- name: p80
  port: 80
  protocol: TCP
"""

CLUSTER_IP_RULE = (
    '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" '
    "-m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O"
)
SVC_TO_SEP_RULE = (
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" '
    "-j KUBE-SEP-SXIVWICOYRO3J4NJ"
)
DNAT_RULE = (
    "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 "
    "-m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80"
)
MASQUERADE_ALL_RULE = (
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" '
    "-m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ"
)
SNAT_RULE = (
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
    "-j MASQUERADE"
)


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "svc.yaml"
    path.write_text(SERVICE)
    return path


def rendered_lines(capsys, *extra, files):
    rc, out, err = render(capsys, *extra, files=files)
    assert (rc, err) == (0, "")
    assert out.endswith("COMMIT\n")
    return out.splitlines()


def test_render_prints_kube_proxy_rules(manifest, capsys):
    lines = rendered_lines(capsys, files=[manifest])
    nat = lines[lines.index("*nat"):]  # the nat table runs to the end: COMMIT checked above
    assert nat.count("COMMIT") == 1
    assert "*filter" in lines[:lines.index("*nat")]
    for rule in (CLUSTER_IP_RULE, SVC_TO_SEP_RULE, DNAT_RULE, SNAT_RULE):
        assert nat.count(rule) == 1, rule
    assert MASQUERADE_ALL_RULE not in lines


def test_render_reads_kube_proxy_config(manifest, tmp_path, capsys):
    config = tmp_path / "kube-proxy.yaml"
    config.write_text(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
        "kind: KubeProxyConfiguration\n"
        "mode: iptables\n"
        "iptables:\n"
        "  masqueradeAll: true\n"
    )
    lines = rendered_lines(capsys, "--config", str(config), files=[manifest])
    assert lines.count(MASQUERADE_ALL_RULE) == 1


def test_render_host_feature_random_fully(manifest, capsys):
    lines = rendered_lines(capsys, "--host-feature", "random-fully", files=[manifest])
    assert lines.count(SNAT_RULE + " --random-fully") == 1
    assert SNAT_RULE not in lines


def test_render_reads_several_files(tmp_path, capsys):
    service, slice_ = SERVICE.split("---\n")
    (tmp_path / "svc.yaml").write_text(service)
    (tmp_path / "slice.yaml").write_text(slice_)
    lines = rendered_lines(capsys, files=[tmp_path / "svc.yaml", tmp_path / "slice.yaml"])
    assert lines.count(DNAT_RULE) == 1


def test_render_bad_manifest_names_object_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SERVICE.replace("port: 80\n    protocol", "port: eighty\n    protocol"))
    rc, out, err = render(capsys, files=[bad])
    assert (rc, out) == (2, "")
    assert err.startswith("labkit: ")
    assert "Service ns1/svc1: spec.ports[0].port: " in err


# --- the start-up benchmark runs ----------------------------------------------


def test_startup_benchmark_prints_one_line_per_command():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cli_startup.py"), "--runs", "1"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0] == f"median of 1 runs, {sys.executable}"
    assert [line[:24].rstrip() for line in lines[1:]] == [
        "python -c pass", "labkit --help", "labkit render iptables",
    ]
    assert lines[1].endswith(" ms   1.00x python")
    assert "FAILED" not in lines[2]


def test_render_reads_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(SERVICE))
    lines = rendered_lines(capsys, files=["-"])
    assert lines.count(DNAT_RULE) == 1


def test_render_names_stdin_in_errors(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(": : :\n"))
    rc, out, err = render(capsys, files=["-"])
    assert (rc, out) == (2, "")
    assert err.startswith("labkit: <stdin>: 1 problem found:\n")
