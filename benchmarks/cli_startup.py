"""How long the `labkit` command takes to start, against bare Python.

    python benchmarks/cli_startup.py [--runs N]

Prints the median wall time of N runs of `python -c pass`, `labkit --help`
and `labkit render iptables ...` (on a one-Service manifest), and each one's
ratio to bare Python. The target: both labkit commands well under 0.3 s.
Commands run as `python -m labkit.cli.main` with this interpreter, so the
numbers do not depend on where the console script was installed.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MANIFEST = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abcde
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: ["10.244.1.5"]
  conditions: {ready: true}
ports: [{name: http, port: 80, protocol: TCP}]
"""


def time_command(argv: list[str], runs: int) -> tuple[float, str]:
    """Median seconds over `runs`, and "" or the failure (exit code, last stderr line)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [""])[-1]
            return statistics.median(times), f"exit {done.returncode}: {last}"
    return statistics.median(times), ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="runs per command (default 11)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
        manifest = Path(tmp) / "web.yaml"
        manifest.write_text(MANIFEST)
        labkit = [sys.executable, "-m", "labkit.cli.main"]
        commands = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("labkit --help", labkit + ["--help"]),
            ("labkit render iptables", labkit + ["render", "iptables", "-f", str(manifest),
                                                 "--node", "kind-worker",
                                                 "--node-ip", "172.18.0.3"]),
        ]
        print(f"median of {args.runs} runs, {sys.executable}")
        base = None
        for name, cmd in commands:
            seconds, failure = time_command(cmd, args.runs)
            base = base or seconds
            line = f"{name:<24} {seconds * 1000:7.1f} ms  {seconds / base:5.2f}x python"
            print(line + (f"  FAILED ({failure})" if failure else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
