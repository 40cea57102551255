"""Shared by the kind backend's tests: a KindLab driven by a recording through the fake runner."""
from __future__ import annotations

from pathlib import Path

from labkit.backends.kind.lab import PROBE_DIR, PROBE_FILES, KindLab, KindState
from labkit.backends.kind.probe_pods import probe_image_tag
from labkit.backends.kind.runner import FakeCommandRunner, load_recording

RECORDINGS = Path(__file__).parent / "kind_recordings"
PROBE_IMAGE = probe_image_tag({n: (PROBE_DIR / n).read_bytes() for n in PROBE_FILES})


class FakeClock:
    """time.monotonic and time.sleep for the wait loop: sleeping moves the clock, nothing waits."""

    def __init__(self):
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def runner_for(name: str) -> FakeCommandRunner:
    return FakeCommandRunner(load_recording(RECORDINGS / name, {"PROBE_IMAGE": PROBE_IMAGE,
                                                                "PROBE_DIR": str(PROBE_DIR)}))


def new_lab(name: str, state_dir, shown: list, **kwargs) -> KindLab:
    clock = FakeClock()
    return KindLab("lab", "", 0, runner_for(name), str(state_dir), clock=clock, sleep=clock.sleep,
                   show=shown.append, find=lambda tool: f"/usr/bin/{tool}" if tool != "cloud-provider-kind" else None,
                   **kwargs)


def attached_lab(name: str, state_dir, shown: list | None = None) -> KindLab:
    """A lab that is up (its state file written), replaying recording `name`."""
    KindState("lab", "kind", "", 0, PROBE_IMAGE, "up").save(str(state_dir))
    clock = FakeClock()
    return KindLab.attach("lab", runner_for(name), str(state_dir), clock=clock, sleep=clock.sleep,
                          show=(shown if shown is not None else []).append,
                          find=lambda tool: f"/usr/bin/{tool}" if tool != "cloud-provider-kind" else None)
