"""What the benchmarks share. A benchmark runs as `python bench/<name>.py`, so bench/ is on its
import path and this module is imported as `_common`."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def work_folder(prefix: str, keep: bool, dir=None):
    """A new temporary folder (tempfile.mkdtemp(prefix=prefix, dir=dir)) for a benchmark's files,
    removed at the end, however the benchmark ends; with `keep`, kept and its path printed."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
