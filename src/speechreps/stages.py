"""Resumable stages for long jobs: a stage is skipped when its recorded inputs are unchanged.

Each stage's record is ``<run_dir>/stages/<name>.json`` holding the fingerprint of everything
that decides its output (configs, upstream fingerprints, seeds, versions), its result (small JSON:
numbers and paths) and its wall time. A stage whose record is missing, whose fingerprint differs,
or that is forced runs again; its record is written only after it succeeded, so a killed run
resumes at the stage it was in.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .fileio import write_json


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def fingerprint(*parts: Any) -> str:
    """A stable hash of JSON-able inputs (dict keys sorted)."""
    blob = json.dumps([__version__, *parts], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class StageCache:
    def __init__(self, run_dir: Path, force: set[str] | bool = False, log: Callable[[str], None] = print):
        self.dir = Path(run_dir) / "stages"
        self.force = force
        self.log = log
        self.timings: dict[str, float] = {}
        self.skipped: list[str] = []
        #: per stage: seconds, when it finished and the load average before and after, as recorded by
        #: the run that did the work (a reused stage keeps its own), and whether this run reused it
        self.details: dict[str, dict[str, Any]] = {}

    def _path(self, name: str) -> Path:
        return self.dir / (name.replace(":", "__").replace("/", "-") + ".json")

    def _forced(self, name: str) -> bool:
        if isinstance(self.force, bool):
            return self.force
        kind = name.split(":", 1)[0]
        return name in self.force or kind in self.force

    def run(self, name: str, fp: str, fn: Callable[[], Any]) -> Any:
        """Return the stage's recorded result if up to date, else run ``fn`` and record it."""
        hit, result = self.cached(name, fp)
        if hit:
            return result
        self.log(f"[{name}] running")
        t0, load0 = time.time(), load_average()
        result = fn()
        self.record(name, fp, result, round(time.time() - t0, 2), [load0, load_average()])
        return result

    def cached(self, name: str, fp: str) -> tuple[bool, Any]:
        """``(True, its recorded result)`` when stage ``name`` is up to date with fingerprint ``fp`` (and not
        forced), logged as skipped; else ``(False, None)``. With :meth:`record`, for stages run elsewhere
        (e.g. in worker processes)."""
        path = self._path(name)
        if path.is_file() and not self._forced(name):
            try:
                record = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                record = {}
            if record.get("fingerprint") == fp:
                self.skipped.append(name)
                self.timings[name] = record.get("seconds", 0.0)
                self.details[name] = {**{k: record.get(k) for k in ("seconds", "finished", "load")}, "reused": True}
                self.log(f"[{name}] up to date, skipped")
                return True, record["result"]
        return False, None

    def record(self, name: str, fp: str, result: Any, seconds: float, load: list[float | None]) -> None:
        """Write stage ``name``'s record: its result, fingerprint, wall ``seconds`` and load average before and after."""
        self.timings[name] = seconds
        finished = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.details[name] = {"seconds": seconds, "finished": finished, "load": load, "reused": False}
        write_json(self._path(name), {"name": name, "fingerprint": fp, "seconds": seconds, "finished": finished,
                                      "load": load, "result": result})
        self.log(f"[{name}] done in {seconds:.1f} s")
