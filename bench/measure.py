"""What the whole-run benchmarks measure of a run: per-step wall time, CPU time and peak memory.

A ``Sampler`` thread reads the resident memory and the CPU time of this process and every
descendant (Beam's worker processes) every 0.2 s; ``steps`` cuts those samples by the
executions ML Metadata recorded, so each step gets the wall time the orchestrator saw, the CPU
seconds the process tree spent inside it and the largest resident memory while it ran.
"""

from __future__ import annotations

import threading
import time
from typing import List


def _tree(process):
    """(resident bytes, CPU seconds) of ``process`` and its live descendants; the CPU time of
    reaped children counts too (psutil's children_user / children_system)."""
    rss = cpu = 0.0
    for p in [process] + process.children(recursive=True):
        try:
            rss += p.memory_info().rss
            times = p.cpu_times()
            cpu += times.user + times.system
            if p is process:
                cpu += times.children_user + times.children_system
        except Exception:  # noqa: BLE001 (a worker that just exited)
            pass
    return rss, cpu


class Sampler(threading.Thread):
    """Resident memory and CPU time of this process and its descendants, every ``interval`` s."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        import psutil

        self._me, self._interval = psutil.Process(), interval
        self.samples: List[tuple] = []  # (time, rss bytes, cpu seconds)
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            self.samples.append((time.time(),) + _tree(self._me))
            self._done.wait(self._interval)

    def stop(self):
        self._done.set()
        self.join()
        self.samples.append((time.time(),) + _tree(self._me))

    def peak(self, start: float, end: float) -> int:
        inside = [rss for t, rss, _ in self.samples if start - 0.2 <= t <= end + 0.2]
        return int(max(inside, default=0))

    def cpu(self, start: float, end: float) -> float:
        """CPU seconds between the samples around ``start`` and ``end``."""
        before = [c for t, _, c in self.samples if t <= start]
        after = [c for t, _, c in self.samples if t >= end]
        first = before[-1] if before else self.samples[0][2]
        last = after[0] if after else self.samples[-1][2]
        return max(last - first, 0.0)


def steps(metadata_path: str, started: float, sampler: Sampler) -> List[dict]:
    """Each execution since ``started`` in ML Metadata: component, seconds, cpu_seconds, peak_rss."""
    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration import metadata

    from presentation import summary

    store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))
    out = []
    for execution in summary.run_executions(store, started):
        begin = execution.create_time_since_epoch / 1000
        end = execution.last_update_time_since_epoch / 1000
        out.append({"component": summary.node_id(store, execution),
                    "seconds": round(summary.seconds_of(execution), 2),
                    "cpu_seconds": round(sampler.cpu(begin, end), 2),
                    "peak_rss": sampler.peak(begin, end), "started": begin, "ended": end})
    return out
