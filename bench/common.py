"""Shared machinery of the benchmarks: result rows, interleaved timing, profiling, databases.

Every benchmark compares the ENGINE with a HAND-WRITTEN FLOOR doing the same work, in one run.
Timings on a shared 2-core machine are noisy, so:

* each case is warmed up first;
* samples are taken in rounds, every round running every case once, alternating the order
  (engine, floor, ... then ..., floor, engine) so a burst of load hits both sides alike;
* the reported time is the median sample; the reported ratio is the median of the per-round
  ratios (each ratio compares two samples taken right next to each other).
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa


@dataclass
class Row:
    """One line of the results table.

    ``engine``/``floor`` are nanoseconds per operation. A row with a ``target`` is judged
    (ratio ≤ target → met); a row without one is context (shown, not judged).
    """

    benchmark: str
    engine: float | None
    floor: float | None
    ratio: float | None
    target: float | None = None
    note: str = ""
    engine_label: str = "engine"
    floor_label: str = "floor"

    @property
    def verdict(self) -> str:
        if self.ratio is None:
            return "skipped"
        if self.target is None:
            return "context"
        return "met" if self.ratio <= self.target else "MISSED"


@dataclass
class Stats:
    samples: list[float] = field(default_factory=list)  # ns per operation, one per round
    best_of: float | None = None  # set when the best is not simply the smallest sample (see subtract)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return self.best_of if self.best_of is not None else min(self.samples)


def compare(cases: dict[str, Callable[[], Any]], *, rounds: int, inner: int = 1, per: int = 1,
            warmup: int = 1, min_sample_ns: int = 0) -> dict[str, Stats]:
    """Time each zero-argument case, interleaved: ``rounds`` rounds, each calling every case ``inner`` times.

    ``per`` is how many operations one call performs (a case may loop internally); times are
    reported per operation. ``min_sample_ns``: after the warm-up, each case's own ``inner`` is
    doubled until one sample takes at least this long (keeps timer resolution out of fast cases,
    and keeps samples short so that neighbouring samples see the same machine load).
    """
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            for _ in range(inner):
                cases[name]()
    counts = dict.fromkeys(names, inner)
    if min_sample_ns:
        for name in names:
            n = counts[name]
            while n < 1 << 22:
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    cases[name]()
                if time.perf_counter_ns() - t0 >= min_sample_ns:
                    break
                n *= 2
            counts[name] = n
    stats = {name: Stats() for name in names}
    clock = time.perf_counter_ns
    for i in range(rounds):
        order = names if i % 2 == 0 else names[::-1]
        gc.collect()
        for name in order:
            fn, n = cases[name], counts[name]
            t0 = clock()
            for _ in range(n):
                fn()
            stats[name].samples.append((clock() - t0) / (n * per))
    return stats


def ratio(a: Stats, b: Stats) -> float:
    """Median of the per-round ratios a/b (samples taken next to each other)."""
    return statistics.median(x / y for x, y in zip(a.samples, b.samples, strict=True))


def subtract(stats: Stats, baseline: Stats) -> Stats:
    """``stats`` minus a baseline (e.g. the cost of the bare loop): per round (for the paired ratio),
    and best minus best (for the time shown)."""
    return Stats([max(x - y, 0.1) for x, y in zip(stats.samples, baseline.samples, strict=True)],
                 best_of=max(stats.best - baseline.best, 0.1))


def profile_calls(stats: Stats, budget_ns: float = 2e9, most: int = 300) -> int:
    """How many calls to profile so that profiling takes about ``budget_ns``."""
    return max(5, min(most, int(budget_ns / stats.best)))


def row(benchmark: str, engine: Stats, floor: Stats, target: float | None, note: str = "", *,
        paired: bool = True, **labels) -> Row:
    """A result row: best-of-N times; ratio = median of paired per-round ratios (``paired``, both
    timed in the same :func:`compare`) or else the ratio of the best times."""
    r = ratio(engine, floor) if paired else engine.best / floor.best
    return Row(benchmark, engine.best, floor.best, r, target, note, **labels)


def profile(label: str, fn: Callable[[], Any], calls: int, top: int = 18) -> str:
    """cProfile ``calls`` calls of ``fn``; the top functions by own time, as text."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    # Keep the table, drop pstats' preamble.
    start = text.find("   ncalls")
    body = (text[start:] if start >= 0 else text).strip("\n")
    return f"--- profile: {label} ({calls} calls, sorted by own time) ---\n{body}\n"


def fmt_ns(ns: float | None) -> str:
    if ns is None:
        return "—"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.1f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


# --- PostgreSQL ---------------------------------------------------------------------------------

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_unreachable(url: str) -> str | None:
    """None if PostgreSQL answers at ``url``, else why not."""
    import sqlalchemy as sa

    from crm_platform.engine import make_engine
    try:
        engine = make_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: not available here
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


@contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A new database ``crm_bench_<random>`` next to ``admin_url``'s; dropped afterwards."""
    import sqlalchemy as sa

    from crm_platform.engine import make_engine
    name = f"crm_bench_{secrets.token_hex(4)}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_actor(installation):
    """A team and an admin user in ``installation`` (created once); returns the admin's Actor."""
    import sqlalchemy as sa
    accounts = installation.accounts
    if accounts.team_id("Bench") is None:
        accounts.create_team("Bench")
    users = installation.runtime.tables["users"]
    with installation.db.connect() as conn:
        user_id = conn.scalar(sa.select(users.c.id).where(users.c.username == "bench_admin"))
    if user_id is None:
        user_id = accounts.create_user("bench_admin", "bench-password", "admin", "Bench")
    return accounts.actor(user_id)


def pg_schema(url: str, schema: str) -> dict:
    """Create ``schema`` in the benchmark database; the engine options that put it on the search path."""
    from crm_platform.engine import make_engine
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return {"connect_args": {"options": f"-csearch_path={schema}"}}
