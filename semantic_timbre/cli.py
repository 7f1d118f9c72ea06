"""What every command line shares: one-line errors instead of tracebacks."""

from __future__ import annotations

import os
import sys


class UserError(Exception):
    """A problem the user can fix; its message says what was wrong and what to do."""


def run_main(main, argv=None) -> int:
    """Run `main(argv)` and turn expected failures into a one-line message and an exit status.

    UserError, a refused pickle and a missing file give 'error: ...' on stderr and exit 2;
    Ctrl-C gives exit 130. Set SEMANTIC_TIMBRE_DEBUG=1 to see the traceback instead.
    """
    from .safe_io import UnsafePickleError

    try:
        return int(main(argv) or 0)
    except (UserError, UnsafePickleError, FileNotFoundError) as error:
        if os.environ.get("SEMANTIC_TIMBRE_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: files already written are complete; nothing half-written was left", file=sys.stderr)
        return 130


def quiet_tensorflow() -> None:
    """Silence TensorFlow's start-up chatter unless the user asked for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
