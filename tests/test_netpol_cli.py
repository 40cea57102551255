"""`labkit netpol check|matrix|rules` (main_netpol), on the upstream 9-pod cluster."""
from __future__ import annotations

import json

import pytest

from labkit.cli.netpol_cmd import main_netpol
from labkit.controllers.netpol.matrix import (
    compare_truth,
    parse_truth_table,
    render_truth_table,
)
from labkit.errors import LabkitError
from netpol_e2e_support import CLUSTER_FILE, E2E_DIR

POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x-a-allows-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
"""


@pytest.fixture
def files(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_text(POLICY)
    return ["-f", str(CLUSTER_FILE), "-f", str(p)]


def test_check_json_prints_verdict_and_exits_zero_when_denied(files, capsys):
    assert main_netpol(["check", *files, "--from", "y/b", "--to", "x/a", "--port", "80", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "allowed": False,
        "reason": "denied: y/b -> x/a TCP/80. Egress from y/b: not isolated (no NetworkPolicy selects "
                  "it for Egress). Ingress to x/a: isolated by x/x-a-allows-x-b; no ingress rule of "
                  "them allows it."}


def test_check_text_exits_one_when_denied_and_zero_when_allowed(files, capsys):
    assert main_netpol(["check", *files, "--from", "y/b", "--to", "x/a", "--port", "80"]) == 1
    assert main_netpol(["check", *files, "--from", "x/b", "--to", "x/a", "--port", "80",
                        "--protocol", "udp"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == ("allowed: x/b -> x/a UDP/80. Egress from x/b: not isolated (no NetworkPolicy "
                      "selects it for Egress). Ingress to x/a: isolated by x/x-a-allows-x-b; allowed by "
                      "NetworkPolicy x/x-a-allows-x-b ingress[0] from[0], any port (no ports).")


def test_check_accepts_an_outside_address(files, capsys):
    assert main_netpol(["check", *files, "--from", "203.0.113.9", "--to", "x/b", "--port", "80",
                        "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["allowed"] is True


def test_matrix_prints_the_upstream_table(files, capsys):
    assert main_netpol(["matrix", *files]) == 0
    out = capsys.readouterr().out
    head, table = out.split("\n", 1)
    assert head == "TCP/80: '.' allowed, 'X' denied (rows: from, columns: to)"
    names, truth = parse_truth_table(table)
    assert [k for k, v in truth.items() if not v] == [
        (n, "x/a") for n in names if n != "x/b"]


def test_matrix_grid_style(files, capsys):
    assert main_netpol(["matrix", *files, "--style", "grid", "--port", "81"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:5] == [
        "+--------+-----+-----+-----+-----+-----+-----+-----+-----+-----+",
        "| TCP/81 | X/A | X/B | X/C | Y/A | Y/B | Y/C | Z/A | Z/B | Z/C |",
        "+--------+-----+-----+-----+-----+-----+-----+-----+-----+-----+",
        "| x/a    | X   | .   | .   | .   | .   | .   | .   | .   | .   |",
    ]


def test_matrix_json(files, capsys):
    assert main_netpol(["matrix", *files, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["port"], data["protocol"], len(data["pods"])) == (80, "TCP", 9)
    assert data["allowed"]["x/b"]["x/a"] is True and data["allowed"]["x/c"]["x/a"] is False


def test_rules_prints_the_nodes_filter_table(files, capsys):
    assert main_netpol(["rules", *files, "--node", "kind-worker"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("*filter\n") and out.endswith("COMMIT\n")
    assert ('-A LABKIT-NP-INGRESS -m comment --comment "x/a ingress, isolated by x/x-a-allows-x-b" '
            "-d 10.244.1.10/32 -j LABKIT-NP-I-") in out


@pytest.mark.parametrize("argv,message", [
    (["check", "--from", "x/a", "--to", "x/b", "--port", "80"],
     "no manifests given (fix: add -f FILE with Namespaces, Pods and NetworkPolicies, or --name LAB to ask "
     "a running lab)"),
    (["check", "-f", "/nonexistent.yaml", "--from", "x/a", "--to", "x/b", "--port", "80"],
     "manifest file /nonexistent.yaml: no such file (fix: check the path)"),
    (["check", "-f", str(CLUSTER_FILE), "--from", "x/a", "--to", "nowhere", "--port", "80"],
     "'nowhere' is neither NAMESPACE/POD nor an IP address (fix: write x/a or 203.0.113.7)"),
    (["check", "-f", str(CLUSTER_FILE), "--from", "x/a", "--to", "x/b", "--port", "70000"],
     "port 70000 is not a port number (fix: give 1-65535)"),
    (["matrix", "--name", "lab1", "-f", str(CLUSTER_FILE)],
     "give either -f FILE (manifests) or --name LAB (a running lab), not both"),
    (["matrix", "-f", str(CLUSTER_FILE), "--probe"],
     "--probe sends packets in a running lab (fix: add --name LAB)"),
    (["rules", "--name", "lab1", "--node", "kind-worker"],
     "--name lab1: `labkit rules --name lab1 --node NODE --table filter` shows a lab node's rules (fix: use "
     "that, or give the manifests with -f FILE)"),
])
def test_bad_input_is_a_labkit_error_naming_the_fix(argv, message):
    with pytest.raises(LabkitError) as e:  # the `labkit` frame turns these into exit code 2
        main_netpol(argv)
    assert str(e.value) == message


def test_bad_manifest_reports_the_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(POLICY.replace("{pod: b}}}]", "{pod: b}}}]\n    ports: [{port: 80, protocol: tcp}]"))
    with pytest.raises(LabkitError) as e:
        main_netpol(["matrix", "-f", str(CLUSTER_FILE), "-f", str(p)])
    assert "spec.ingress[0].ports[0].protocol" in str(e.value)


def test_usage_errors_exit_two():
    with pytest.raises(SystemExit) as e:
        main_netpol(["check", "-f", "x.yaml"])
    assert e.value.code == 2


# --- the truth-table text itself ------------------------------------------------------


def test_truth_table_round_trips_and_marks_ignored_loopback():
    names = ("x/a", "x/b")
    truth = {("x/a", "x/a"): False, ("x/a", "x/b"): True, ("x/b", "x/a"): False, ("x/b", "x/b"): True}
    text = render_truth_table(names, truth)
    assert text == "-\tx/a\tx/b\nx/a\tX\t.\nx/b\tX\t."
    assert parse_truth_table(text) == (names, truth)
    ignored = render_truth_table(names, truth, ignore_loopback=True)
    assert ignored == "-\tx/a\tx/b\nx/a\t?\t.\nx/b\tX\t?"
    assert parse_truth_table(ignored)[1] == {("x/a", "x/b"): True, ("x/b", "x/a"): False}


def test_compare_truth_lists_differences_and_can_ignore_loopback():
    exp = {("a", "a"): True, ("a", "b"): False}
    obs = {("a", "a"): False, ("a", "b"): True}
    assert compare_truth(exp, obs) == [("a", "a", True, False), ("a", "b", False, True)]
    assert compare_truth(exp, obs, ignore_loopback=True) == [("a", "b", False, True)]


def test_bad_truth_table_text_is_refused_with_the_cell():
    with pytest.raises(LabkitError) as e:
        parse_truth_table("-\tx/a\nx/a\tY")
    assert str(e.value) == "truth table cell x/a -> x/a is 'Y' (fix: use '.' for allowed, 'X' for denied)"


def test_fixture_dir_is_where_the_support_module_says():
    assert (E2E_DIR / "cluster.yaml") == CLUSTER_FILE


# --- a running lab: --name, --probe ------------------------------------------------------


@pytest.fixture
def sim_lab_named(files, tmp_path, monkeypatch, capsys):
    """`labkit up --backend sim` with the cluster and the policy, in a private state directory."""
    from labkit.cli.lab_cmds import main_lab

    monkeypatch.setenv("LABKIT_STATE_DIR", str(tmp_path / "state"))
    assert main_lab("up", ["--backend", "sim", "--name", "np1", *files]) == 0
    capsys.readouterr()
    return "np1"


PROBED_80 = """\
TCP/80: '.' allowed, 'X' denied (rows: from, columns: to); probed with real packets on the sim lab: '?' \
not probed (a pod to itself never meets a node's rules), '!' differs from the prediction
predicted (evaluator)                   | probed (sim)
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c | -   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a X   .   .   .   .   .   .   .   .   | x/a ?   .   .   .   .   .   .   .   .
x/b .   .   .   .   .   .   .   .   .   | x/b .   ?   .   .   .   .   .   .   .
x/c X   .   .   .   .   .   .   .   .   | x/c X   .   ?   .   .   .   .   .   .
y/a X   .   .   .   .   .   .   .   .   | y/a X   .   .   ?   .   .   .   .   .
y/b X   .   .   .   .   .   .   .   .   | y/b X   .   .   .   ?   .   .   .   .
y/c X   .   .   .   .   .   .   .   .   | y/c X   .   .   .   .   ?   .   .   .
z/a X   .   .   .   .   .   .   .   .   | z/a X   .   .   .   .   .   ?   .   .
z/b X   .   .   .   .   .   .   .   .   | z/b X   .   .   .   .   .   .   ?   .
z/c X   .   .   .   .   .   .   .   .   | z/c X   .   .   .   .   .   .   .   ?
probed and predicted agree on all 72 probed pairs
"""


def test_matrix_of_a_running_lab_probed_beside_the_prediction(sim_lab_named, capsys):
    assert main_netpol(["matrix", "--name", sim_lab_named, "--probe"]) == 0
    assert capsys.readouterr().out == PROBED_80


def test_matrix_of_a_running_lab_without_probe_is_the_prediction(sim_lab_named, capsys):
    assert main_netpol(["matrix", "--name", sim_lab_named, "--port", "81", "--protocol", "UDP"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["UDP/81: '.' allowed, 'X' denied (rows: from, columns: to)", "predicted (evaluator)",
                         "-   x/a x/b x/c y/a y/b y/c z/a z/b z/c"]
    assert lines[3] == "x/a X   .   .   .   .   .   .   .   ."


def test_matrix_json_of_a_running_lab_has_probed_cells_and_differences(sim_lab_named, capsys):
    assert main_netpol(["matrix", "--name", sim_lab_named, "--probe", "--json", "--protocol", "udp"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["backend"], out["protocol"], out["port"], out["differences"]) == ("sim", "UDP", 80, [])
    assert out["probed"]["x/a"] == {"x/a": None, "x/b": True, "x/c": True, "y/a": True, "y/b": True,
                                    "y/c": True, "z/a": True, "z/b": True, "z/c": True}
    assert out["probed"]["y/b"]["x/a"] is False and out["verdicts"]["y/b"]["x/a"] == "no-reply"
    assert out["allowed"]["y/b"]["x/a"] is False and out["verdicts"]["x/b"]["x/a"] == "answered"


def test_check_in_a_running_lab_with_one_probe(sim_lab_named, capsys):
    assert main_netpol(["check", "--name", sim_lab_named, "--from", "y/b", "--to", "x/a", "--port", "80",
                        "--probe"]) == 1
    assert capsys.readouterr().out.splitlines()[1] == "probe: y/b -> 10.244.1.10:80 tcp: no-reply (as predicted)"
    assert main_netpol(["check", "--name", sim_lab_named, "--from", "x/b", "--to", "x/a", "--port", "80",
                        "--probe", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["probe"] == {
        "verdict": "answered", "allowed": True, "destination": "10.244.1.10:80", "protocol": "tcp"}


def test_sctp_check_in_a_running_lab_probes_with_an_init(sim_lab_named, capsys):
    """No SCTP in the pods: a reached pod's kernel answers the INIT with protocol unreachable."""
    assert main_netpol(["check", "--name", sim_lab_named, "--from", "y/b", "--to", "x/b", "--port", "80",
                        "--protocol", "SCTP", "--probe", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["probe"] == {
        "verdict": "refused", "allowed": True, "destination": "10.244.2.11:80", "protocol": "sctp"}
    assert main_netpol(["check", "--name", sim_lab_named, "--from", "y/b", "--to", "x/a", "--port", "80",
                        "--protocol", "SCTP", "--probe"]) == 1
    assert capsys.readouterr().out.splitlines()[1] == "probe: y/b -> 10.244.1.10:80 sctp: no-reply (as predicted)"


@pytest.mark.labkit_requires(root=True, tools=("ip", "iptables-restore", "iptables-save"))
def test_matrix_probe_in_a_kernel_lab_from_the_command_line(files, capsys):
    """`labkit up --backend netns`, then `labkit netpol matrix --name --probe` attaches and probes."""
    import secrets

    from labkit.cli.lab_cmds import main_lab

    name = "k" + secrets.token_hex(2)
    assert main_lab("up", ["--backend", "netns", "--name", name, *files]) == 0
    try:
        capsys.readouterr()
        assert main_netpol(["matrix", "--name", name, "--probe"]) == 0
        out = capsys.readouterr().out
        assert out.replace("netns", "sim") == PROBED_80
    finally:
        main_lab("down", ["--name", name])
