"""What every command line shares: one-line errors instead of tracebacks."""

from __future__ import annotations

import os
import sys

from semantic_timbre.backend import quiet_tensorflow  # noqa: F401  (the commands import it from here)
from semantic_timbre.errors import UserError  # noqa: F401  (the error root, also imported from here)

MAX_SEED = 2 ** 32 - 1  # numpy's and Keras's seeds


def check_seeds(arguments) -> None:
    """Refuse a --seed or --random-state outside 0..2**32 - 1 (numpy's range) before any work."""
    for name in ("seed", "random_state"):
        value = getattr(arguments, name, None)
        if value is not None and not 0 <= value <= MAX_SEED:
            option = "--" + name.replace("_", "-")
            raise UserError(f"{option} must be a whole number from 0 to {MAX_SEED:,}, got {value}: choose "
                            f"another {option}")


def run_main(main, argv=None) -> int:
    """Run `main(argv)` and turn expected failures into a one-line message and an exit status.

    UserError, a refused pickle, a missing file and any other OSError (a full disk, an unwritable
    folder) give 'error: ...' on stderr and exit 2;
    Ctrl-C gives exit 130. Set SEMANTIC_TIMBRE_DEBUG=1 to see the traceback instead.
    """
    from semantic_timbre.safe_io import UnsafePickleError

    try:
        return int(main(argv) or 0)
    except (UserError, UnsafePickleError, FileNotFoundError) as error:
        if os.environ.get("SEMANTIC_TIMBRE_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, an unwritable folder, a file in the way
        if os.environ.get("SEMANTIC_TIMBRE_DEBUG"):
            raise
        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: files already written are complete; nothing half-written was left", file=sys.stderr)
        return 130


def entry_point(main):
    """A command's console entry point (pyproject.toml's scripts): a function of no arguments that
    runs `main` on sys.argv with run_main's one-line errors and returns the exit status."""
    def run() -> int:
        return run_main(main)

    run.__doc__ = f"{main.__module__}.main with one-line errors (the console entry point)."
    return run


def describe_os_error(error: OSError) -> str:
    """One line for an OSError: what failed, where, and what to do."""
    where = f" ({error.filename})" if error.filename and str(error.filename) not in str(error.strerror) else ""
    reason = error.strerror or str(error)
    return (f"{reason}{where}: check that the folder exists, is writable and has free space, or choose "
            f"another output folder; files already there were left as they were")
