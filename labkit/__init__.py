"""labkit: the lab behind the course "Kubernetes networking, packet by packet".

Kept light on purpose: importing labkit must not import scapy or Jupyter, so
that `labkit --help` and `labkit render` start fast. `labkit.lab` (the one
call a notebook makes) is loaded on first use, not at import.
"""
__version__ = "0.1.0"

__all__ = ["lab"]


def __getattr__(name):
    if name == "lab":
        from labkit.lab import lab

        globals()["lab"] = lab  # importing the submodule set it to the module
        return lab
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")
