"""Shared code of the Semantic Timbre Generation System (the six top-level scripts are thin
command lines over this package)."""
