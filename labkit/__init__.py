"""labkit: the lab behind the course "Kubernetes networking, packet by packet".

Kept light on purpose: importing labkit must not import scapy or Jupyter, so
that `labkit --help` and `labkit render` start fast.
"""
__version__ = "0.1.0"
