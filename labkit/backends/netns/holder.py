"""The lab holder: a process inside its own user namespace that holds a kernel lab for an unprivileged user.

A process with threads (a Jupyter kernel) cannot enter a new user
namespace, so labkit.backends.netns.rootless starts this module as a fresh
process under `unshare --user --map-root-user --net --mount --pid --fork
--mount-proc --kill-child --propagation private`. Inside, it is "root" of
namespaces nobody else shares:
- a private tmpfs over /run, so `ip netns add` has a /run/netns to bind
  into, iptables has its /run/xtables.lock, and the lab's registry lives in
  /run/labkit, and a private /etc/netns for the pods' resolv.conf -- all
  invisible to the host, which stays untouched;
- it is PID 1 of a PID namespace: when it exits, for any reason, the kernel
  kills every process it started (the pod servers), and its namespaces go
  with their last user. Nothing can be left behind.

It holds one NetnsLab, built and driven exactly as a root user's, and serves
its caller over the pipes it was started with: each request a length-prefixed
pickle ("new", lab, kind_config, seed) / ("get", attribute) / ("call", method,
args, kwargs) / ("bye",), each answer ("ok", value) / ("method",) /
("error", exception). Pickle, not JSON: the answers are the backend's own
dataclasses (Pods, ProbeResults, the LabPlan), and the pipe joins two
processes of the same user and program. End of input (the caller exited)
means: take the lab down and exit.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import struct
import sys
import traceback
from typing import Any, BinaryIO, Optional

HEADER = struct.Struct("!I")
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC = 2, 4, 4096, 16384


def write_message(f: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(HEADER.pack(len(data)) + data)
    f.flush()


def _read_exact(f: BinaryIO, size: int) -> bytes:
    """`size` bytes (fewer only at end of input): a pipe hands out what it has."""
    chunks, left = [], size
    while left:
        chunk = f.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_message(f: BinaryIO) -> Optional[Any]:
    """The next message, or None at end of input."""
    head = _read_exact(f, HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    data = _read_exact(f, size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def portable_error(e: BaseException) -> BaseException:
    """`e` if it survives a pickle round trip, else a LabkitError with its text (e.g. CommandError)."""
    from labkit.errors import LabkitError

    try:
        back = pickle.loads(pickle.dumps(e))
        if type(back) is type(e) and str(back) == str(e):
            return e
    except Exception:  # noqa: BLE001 -- any failure means: send the text instead
        pass
    if isinstance(e, LabkitError):
        return LabkitError(str(e))
    return LabkitError(f"{type(e).__name__} in the lab holder: {e}")


def _mount(source: str, target: str, fstype: str = "", flags: int = 0, data: str = "") -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode() or None, flags, data.encode() or None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target} in the lab's mount namespace: {os.strerror(err)}")


def mount_private_run() -> None:
    """A tmpfs over /run in this (private) mount namespace, with /run/netns and /run/labkit."""
    _mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    for d in ("/run/netns", "/run/labkit"):
        os.makedirs(d, mode=0o755, exist_ok=True)


def mount_private_etc_netns(etc: str = "/etc") -> None:
    """A writable, private /etc/netns (where `ip netns exec` finds a namespace's resolv.conf).

    If the host has /etc/netns, a tmpfs covers it. If not, /etc itself is
    covered by a tmpfs holding the host's entries, each bound back in place,
    plus an empty netns/ (the host's /etc is owned by a root this namespace
    does not map, so nothing can be made in it directly).
    """
    netns = os.path.join(etc, "netns")
    if os.path.isdir(netns):
        _mount("tmpfs", netns, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
        return
    keep = "/run/labkit-etc"
    os.makedirs(keep, exist_ok=True)
    _mount(etc, keep, "", MS_BIND | MS_REC)
    _mount("tmpfs", etc, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    for name in os.listdir(keep):
        src, dst = os.path.join(keep, name), os.path.join(etc, name)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
            continue
        if os.path.isdir(src):
            os.mkdir(dst)
        else:
            open(dst, "w").close()
        _mount(src, dst, "", MS_BIND | MS_REC)
    os.mkdir(netns, 0o755)


def serve(rx: BinaryIO, tx: BinaryIO) -> None:
    """Answer requests until "bye" or end of input; the lab goes down either way."""
    from labkit.backends.netns.lab import NetnsLab

    lab: Optional[NetnsLab] = None
    try:
        while True:
            request = read_message(rx)
            if request is None or request[0] == "bye":
                return
            try:
                if request[0] == "new":
                    _, name, kind_config, seed = request
                    lab = NetnsLab(name, kind_config, seed)
                    answer: tuple = ("ok", None)
                elif lab is None:
                    raise RuntimeError(f"request {request[0]!r} before the lab was made")
                elif request[0] == "get":
                    value = getattr(lab, request[1])
                    answer = ("method",) if callable(value) else ("ok", value)
                elif request[0] == "call":
                    _, method, args, kwargs = request
                    answer = ("ok", getattr(lab, method)(*args, **kwargs))
                else:
                    raise RuntimeError(f"unknown request {request[0]!r}")
            except Exception as e:  # noqa: BLE001 -- every error goes back to the caller
                answer = ("error", portable_error(e))
            try:
                write_message(tx, answer)
            except (pickle.PicklingError, TypeError, AttributeError) as e:
                write_message(tx, ("error", portable_error(e)))
    finally:
        if lab is not None and lab.registry is not None:
            try:
                lab.down()
            except Exception:  # noqa: BLE001 -- exiting takes everything down anyway (PID 1)
                traceback.print_exc()


def main() -> int:
    # Our own copies of the request pipes; fds 0 and 1 become /dev/null, so the
    # programs and pod servers the lab starts never hold the caller's pipes open.
    rx = os.fdopen(os.dup(0), "rb", buffering=0)
    tx = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    try:
        if os.geteuid() != 0:
            raise RuntimeError("the lab holder must start as root of its own user namespace "
                               "(unshare --map-root-user)")
        mount_private_run()
        mount_private_etc_netns()
    except (OSError, RuntimeError) as e:
        write_message(tx, ("error", portable_error(e)))
        return 1
    write_message(tx, ("ok", os.getpid()))
    serve(rx, tx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
