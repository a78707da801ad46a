"""Run one benchmark or all: `python -m bench.run [name ...]`; each writes bench/results/<name>.json.

A benchmark is a module of this package that defines `run() -> dict`; it runs inside its own throwaway
database and returns its figures, to which this runner adds the machine, the database and the time.
"""

import importlib
import json
import os
import pkgutil
import platform
import sys
import time
from datetime import UTC, datetime

from bench import harness

NOT_BENCHMARKS = {"run", "harness"}


def discover() -> dict:
    """{name: module} for every module of bench/ that defines a callable run()."""
    import bench

    found = {}
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name in NOT_BENCHMARKS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "run", None)):
            found[info.name] = module
    return found


def _load() -> list[float]:
    """1, 5 and 15-minute load averages: other work on the machine skews the timings."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def _context(database: dict, load_before: list[float]) -> dict:
    import django

    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "django": django.get_version(), "load_before": load_before, "load_after": _load()},
        "database": database,
    }


def run_one(name: str, module) -> dict:
    keepdb = harness.env_flag("BENCH_KEEPDB")
    harness.say(f"== {name} ==")
    started, load_before = time.perf_counter(), _load()
    with harness.throwaway_database(name, keepdb=keepdb):
        database = harness.database_info()
        harness.say(f"database: {database['vendor']} {database['version']} ({database['name']}), keepdb={keepdb}")
        figures = module.run()
    result = {"benchmark": name, **_context(database, load_before), **figures,
              "wall_seconds": round(time.perf_counter() - started, 1)}
    harness.RESULTS_DIR.mkdir(exist_ok=True)
    path = harness.RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    harness.say(f"wrote {path.relative_to(harness.PROJECT_DIR)}")
    return result


def _missed(result: dict) -> bool:
    target = result.get("target") or {}
    return bool(target.get("applies")) and not target.get("met")


def main(argv: list[str]) -> int:
    harness.setup_django()
    available = discover()
    names = argv or sorted(available)
    unknown = [name for name in names if name not in available]
    if unknown:
        harness.say(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(sorted(available))}")
        return 2
    results = [run_one(name, available[name]) for name in names]
    if harness.env_flag("BENCH_STRICT") and any(_missed(result) for result in results):
        harness.say("a target was missed (BENCH_STRICT=1)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
