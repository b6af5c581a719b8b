"""Prefect flows over the DVC stages (DVC stays the one owner of caching and lineage)."""
