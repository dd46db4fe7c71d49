"""Run the benchmarks: ``python -m bench [--quick] [--rows N] [--only NAME] [--postgres URL | --no-postgres] [--profile]``.

Each benchmark times the ENGINE against a HAND-WRITTEN FLOOR doing the same work, interleaved in
the same run, and reports the ratio. Speed is never asserted in tests; this is where it is measured.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .common import DEFAULT_PG_URL, Row, fmt_ns, fresh_postgres_database, postgres_unreachable

BENCHMARKS = ("validation", "expressions", "create", "list_page", "permissions", "http",
              "rollup_create", "lookup_list", "detail_list", "validation_rules")
SQL_BENCHMARKS = ("create", "list_page", "permissions", "http",
                  "rollup_create", "lookup_list", "detail_list", "validation_rules")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None,
                        help="opportunities in the list benchmarks, list_page and permissions (default 1,000,000; 20,000 with "
                             "--quick); http always uses 100,000 (5,000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small sizes and few samples: a smoke run")
    parser.add_argument("--only", choices=BENCHMARKS, action="append",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help=f"PostgreSQL server for the SQL benchmarks (default {DEFAULT_PG_URL}); a fresh "
                             "database crm_bench_<random> is created there and dropped afterwards")
    parser.add_argument("--no-postgres", action="store_true", help="run the SQL benchmarks on SQLite only")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile the engine side of each benchmark and print the top functions")
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = 20_000 if args.quick else 1_000_000
    args.profiles = []
    args.pg_url = None
    return args


def render(console: Console, rows: list[Row], title: str) -> None:
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("benchmark", no_wrap=True)
    table.add_column("engine", justify="right")
    table.add_column("floor", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("target", justify="right")
    table.add_column("verdict")
    for r in rows:
        style = {"met": "green", "MISSED": "bold red", "context": "dim", "skipped": "yellow"}[r.verdict]
        engine = fmt_ns(r.engine) + (f" ({r.engine_label})" if r.engine_label != "engine" else "")
        floor = fmt_ns(r.floor) + (f" ({r.floor_label})" if r.floor_label != "floor" else "")
        table.add_row(escape(r.benchmark), escape(engine), escape(floor), "—" if r.ratio is None else f"{r.ratio:.2f}×",
                      "—" if r.target is None else f"≤ {r.target:g}×", f"[{style}]{r.verdict}[/{style}]")
    console.print(table)
    console.print("Notes:")
    shown = set()
    for r in rows:
        if r.note and r.note not in shown:
            shown.add(r.note)
            console.print(f"  • [bold]{escape(r.benchmark.strip())}[/bold]: {escape(r.note)}", highlight=False)


def main(argv=None) -> int:
    args = parse_args(argv)
    console = Console(width=max(Console().width, 150))
    selected = args.only or list(BENCHMARKS)
    console.print(f"[bold]crm_platform benchmarks[/bold] — engine vs hand-written floor, one run "
                  f"({'quick' if args.quick else 'full'}; list rows: {args.rows:,}; "
                  f"Python {platform.python_version()}; {os.cpu_count()} CPUs; load average "
                  f"{', '.join(f'{x:.1f}' for x in os.getloadavg())})")
    console.print("Times: best of N interleaved samples per operation. Ratio: median over rounds of "
                  "engine/floor measured back to back (robust to the machine's background load).", highlight=False)

    pg_note = None
    if any(name in SQL_BENCHMARKS for name in selected) and not args.no_postgres:
        url = args.postgres or os.environ.get("CRM_BENCH_PG_URL") or DEFAULT_PG_URL
        why = postgres_unreachable(url)
        if why:
            pg_note = f"PostgreSQL NOT reachable at {url} ({why}): the SQL benchmarks run on SQLite only."
            console.print(f"[bold yellow]{pg_note}[/bold yellow]", highlight=False)
        else:
            args.pg_admin_url = url
            console.print(f"PostgreSQL reachable at {url}: the SQL benchmarks also run there, in a fresh "
                          f"database that is dropped afterwards.", highlight=False)
    elif args.no_postgres:
        pg_note = "PostgreSQL skipped (--no-postgres)."

    rows: list[Row] = []
    started = time.monotonic()

    def run_all():
        for name in selected:
            console.print(f"[bold]▶ {name}[/bold]")
            t0 = time.monotonic()
            module = importlib.import_module(f"bench.{name}")
            rows.extend(module.run(args))
            console.print(f"  done in {time.monotonic() - t0:.1f}s")

    if getattr(args, "pg_admin_url", None):
        with fresh_postgres_database(args.pg_admin_url) as url:
            args.pg_url = url
            console.print(f"  (benchmark database: {url.rsplit('/', 1)[1]})", highlight=False)
            run_all()
    else:
        run_all()

    console.print()
    render(console, rows, f"Results ({time.monotonic() - started:.0f}s)")
    if pg_note:
        console.print(f"[bold yellow]{pg_note}[/bold yellow]", highlight=False)
    for text in args.profiles:
        console.print(text, highlight=False, markup=False)
    missed = [r.benchmark.strip() for r in rows if r.verdict == "MISSED"]
    console.print(f"{sum(r.verdict == 'met' for r in rows)} targets met, {len(missed)} missed"
                  + (f": {escape(', '.join(missed))}" if missed else "") + " (benchmarks report; they never fail the build).",
                  highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
