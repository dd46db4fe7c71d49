"""Workflow automation: rules triggered by record events and by time, and their actions.

Not built yet (a later issue). What exists already is the seam it will plug into: the engine's
``RecordHooks`` protocol (``crm_platform/engine/hooks.py``), called by the record service inside each
write transaction (``before_write``) and after commit (``after_commit``). This package will implement
that protocol; the engine never imports it.
"""
