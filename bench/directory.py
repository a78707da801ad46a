"""Benchmark `directory`: the national directory import (200,000 lines) and the search over 1,000,000 professionals.

Import: a generated extract (tests/directory_extract.py: the real header, 1 to 3 activities per professional,
a broken line every few thousand) is imported by the same service as the command, in this process, while a thread
samples this process's resident memory (the database server is another process and is not counted). Then the
same file is imported again: the idempotent pass, which writes nothing.

Search: professionals are added with COPY up to 1,000,000 (names from a syllable pool, so a name fragment matches
from a handful to thousands of rows), 20 networks of 25 members, then VACUUM ANALYZE; the search page is then
requested through the whole middleware stack with a mix of criteria (name fragment, name + department,
profession + department, specialty + department, city, network, name + specialty).

Knobs: BENCH_DIRECTORY_LINES (200000), BENCH_DIRECTORY_PROFESSIONALS (1000000), BENCH_REQUESTS (200),
BENCH_WARMUP (20), BENCH_EXPLAIN=1.
"""

import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from django.db import connection, transaction

from bench import harness
from teleexpertise.accounts.models import User
from teleexpertise.directory.models import DirectoryImport, Network, NetworkMembership, Professional
from teleexpertise.directory.reference import load_reference_codes
from teleexpertise.directory.search import search_key
from teleexpertise.directory.services import directory_import_file
from tests.directory_extract import rpps_number, write_extract

NAME = "directory"
SEED = 1792
BATCH = 10_000
TARGET_P95_MS = 100.0
TARGET_PROFESSIONALS = 1_000_000
TARGET_LINES = 200_000
SYLLABLES = ("MA", "RO", "LE", "DU", "BER", "NAR", "TI", "GAR", "MOR", "VIL", "LA", "PON", "CHE", "VA", "RI",
             "SAN", "BO", "FON", "TA", "NE", "GI", "RAR", "LOU", "PE", "TIT", "CO", "LIN", "MI", "CHEL", "DE")
FIRST_NAMES = ("Alice", "Bruno", "Chloé", "David", "Emma", "François", "Gabrielle", "Hugo", "Inès", "Jules",
               "Karima", "Louis", "Manon", "Nicolas", "Océane", "Pierre", "Quentin", "Rose", "Samuel", "Théo",
               "Yasmine", "Zoé", "Mathieu", "Claire", "Antoine", "Sophie", "Julien", "Camille", "Thomas", "Léa")
PROFESSIONS = (("10", 30), ("60", 35), ("70", 10), ("40", 6), ("21", 8), ("50", 3), ("91", 4), ("80", 4))
SPECIALTIES = ("SM04", "SM15", "SM16", "SM21", "SM24", "SM27", "SM30", "SM32", "SM34", "SM38", "SM40", "SM42",
               "SM48", "SM54", "SM54", "SM54", "SM54", "SM54")  # general practice is the most common
DEPARTMENTS = [f"{n:02d}" for n in range(1, 96) if n != 20] + ["2A", "2B", "971", "972", "973", "974", "976"]
CITIES = 3_000


def _config() -> dict:
    return {"lines": harness.env_int("BENCH_DIRECTORY_LINES", TARGET_LINES),
            "professionals": harness.env_int("BENCH_DIRECTORY_PROFESSIONALS", TARGET_PROFESSIONALS),
            "requests": harness.env_int("BENCH_REQUESTS", 200), "warmup": harness.env_int("BENCH_WARMUP", 20),
            "explain": harness.env_flag("BENCH_EXPLAIN")}


# --- Import ----------------------------------------------------------------------------------------------

def _timed_import(path: Path, sampler) -> tuple[DirectoryImport, float, dict]:
    with sampler.window() as memory:
        started = time.perf_counter()
        run = directory_import_file(path=str(path))
        seconds = time.perf_counter() - started
    return run, seconds, memory


def measure_import(lines: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-directory-"))
    path = folder / "extract.txt"
    try:
        started = time.perf_counter()
        good, broken = write_extract(path, lines)
        harness.say(f"generated {lines:,} lines ({path.stat().st_size / 2**20:.1f} MB, {len(broken)} broken) in "
                    f"{time.perf_counter() - started:.1f} s")
        with harness.MemorySampler(os.getpid()) as sampler:
            first, first_s, first_mem = _timed_import(path, sampler)
            harness.say(f"import: {first.lines:,} lines in {first_s:.1f} s ({first.lines / first_s:,.0f} lines/s), "
                        f"peak RSS {first_mem['peak_mb']} MB (+{first_mem['growth_mb']} MB)")
            again, again_s, again_mem = _timed_import(path, sampler)
            harness.say(f"same file again: {again_s:.1f} s ({again.lines / again_s:,.0f} lines/s), "
                        f"{again.created} created, {again.updated} updated")
        kept = Professional.objects.filter(rpps__in=good).count() if len(good) < 50_000 else None
        return {
            "lines": first.lines, "file_mb": round(path.stat().st_size / 2**20, 1), "broken_lines": len(broken),
            "rejected": first.rejected, "every_broken_line_reported": first.rejected == len(broken) and set(
                first.rejections.values_list("line_number", flat=True)) == set(broken),
            "professionals_created": first.created, "professionals_expected": len(good),
            "good_professionals_kept_checked": kept,
            "seconds": round(first_s, 1), "lines_per_second": round(first.lines / first_s),
            "memory": first_mem,
            "second_import": {"seconds": round(again_s, 1), "lines_per_second": round(again.lines / again_s),
                              "created": again.created, "updated": again.updated, "unchanged": again.unchanged,
                              "memory": again_mem},
        }
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()


# --- A million professionals -----------------------------------------------------------------------------

def _last_name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3, 3, 4))))


def _professional(rng: random.Random, serial: int, professions, weights) -> Professional:
    profession = rng.choices(professions, weights)[0]
    first, last = rng.choice(FIRST_NAMES), _last_name(rng)
    city = f"VILLE {rng.randrange(CITIES)}"
    return Professional(
        id=uuid.UUID(int=rng.getrandbits(128), version=4), rpps=rpps_number(5_000_000 + serial),
        first_name=first, last_name=last, profession_id=profession,
        specialty_id=rng.choice(SPECIALTIES) if profession == "10" else None,
        title="Dr" if profession == "10" else "", city=city, city_key=search_key(city),
        department=rng.choice(DEPARTMENTS), search_name=search_key(f"{last} {first}"))


def fill_professionals(total: int, rng: random.Random) -> dict:
    professions, weights = zip(*PROFESSIONS, strict=True)
    missing = total - Professional.objects.count()
    started = time.perf_counter()
    for start in range(0, max(missing, 0), BATCH):
        rows = [_professional(rng, start + i, professions, weights) for i in range(min(BATCH, missing - start))]
        with transaction.atomic():
            harness.bulk_insert(Professional, rows)
        if (start // BATCH) % 20 == 0:
            harness.say(f"  professionals {start + len(rows):,}/{missing:,} ({time.perf_counter() - started:.0f} s)")
    inserted = time.perf_counter() - started
    networks = _networks(rng)
    harness.analyze()
    return {"professionals": Professional.objects.count(), "networks": networks,
            "insert_seconds": round(inserted, 1), "seconds": round(time.perf_counter() - started, 1)}


def _networks(rng: random.Random) -> int:
    doctors = list(Professional.objects.filter(profession_id="10").values_list("pk", flat=True)[:20_000])
    for i, specialty in enumerate(SPECIALTIES[:13]):
        network = Network.objects.create(name=f"Réseau {i}", specialty_id=specialty)
        NetworkMembership.objects.bulk_create([NetworkMembership(network=network, professional_id=pk)
                                               for pk in rng.sample(doctors, 25)])
    return Network.objects.count()


def search_urls(rng: random.Random, count: int = 60) -> list[str]:
    names = [_last_name(rng) for _ in range(200)]  # same distribution as the stored names
    networks = list(Network.objects.values_list("pk", flat=True))
    kinds = [
        lambda: {"q": rng.choice(names)[:rng.choice((3, 4, 5, 6))]},
        lambda: {"q": rng.choice(names)[:4], "department": rng.choice(DEPARTMENTS)},
        lambda: {"profession": rng.choice(("10", "60", "70")), "department": rng.choice(DEPARTMENTS)},
        lambda: {"specialty": rng.choice(SPECIALTIES), "department": rng.choice(DEPARTMENTS)},
        lambda: {"city": f"Ville {rng.randrange(CITIES)}"},
        lambda: {"network": str(rng.choice(networks))},
        lambda: {"q": rng.choice(names)[:5], "specialty": rng.choice(SPECIALTIES), "experts_only": "on"},
        lambda: {"q": f"{rng.choice(names)} {rng.choice(FIRST_NAMES)[:3]}"},
    ]
    return [f"/directory/?{urlencode(kinds[i % len(kinds)]())}" for i in range(count)]


def measure_search(config: dict, rng: random.Random) -> dict:
    user = User.objects.create_user("bench-directory@bench.test", None)
    urls = search_urls(rng)
    samples = harness.measure(harness.logged_in_client(user), urls, warmup=config["warmup"],
                              requests=config["requests"])
    stats = harness.summarise(samples, target_ms=TARGET_P95_MS)
    slowest = sorted(samples, key=lambda s: s.ms, reverse=True)[:5]
    stats["slowest_urls"] = [{"url": s.url, "ms": round(s.ms, 1)} for s in slowest]
    if config["explain"]:
        for row in stats["slowest_statements"]:
            row["explain"] = harness.explain(row["sql"], row["params"])
    harness.say(harness.summary_line(NAME, "search", stats))
    return stats


def run() -> dict:
    config = _config()
    rng = random.Random(SEED)
    load_reference_codes()
    imported = measure_import(config["lines"])
    data = fill_professionals(config["professionals"], rng)
    harness.say(f"directory: {data['professionals']:,} professionals in {data['seconds']} s")
    search = measure_search(config, rng)
    applies = (connection.vendor == "postgresql" and data["professionals"] >= TARGET_PROFESSIONALS
               and imported["lines"] >= TARGET_LINES)
    return {
        "config": {k: v for k, v in config.items() if k != "explain"} | {"seed": SEED},
        "import": imported,
        "data": data,
        "search": search,
        "target": {"p95_ms": TARGET_P95_MS, "vendor": "postgresql", "professionals": TARGET_PROFESSIONALS,
                   "applies": applies, "met": search["met"]},
    }
