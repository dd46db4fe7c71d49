"""crm_platform: a metadata-driven CRM engine.

metadata/ (definitions → Catalog) → engine/ (Catalog → Runtime, RecordService) →
workflow/ (rules, outbox) → web/ and cli.py (interfaces). See docs/architecture.md.
"""

__version__ = "0.1.0"
