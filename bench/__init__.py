"""Benchmarks: the engine against a hand-written floor doing the same work (``python -m bench``).

See ``docs/performance.md`` for what each one measures and how to read the results.
"""
