"""What every command line shares: one-line errors instead of tracebacks."""

from __future__ import annotations

import os
import re
import sys
import tempfile

from .errors import UserError  # noqa: F401  (the error root, also imported from here)

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
    from .safe_io import UnsafePickleError

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


def describe_os_error(error: OSError) -> str:
    """One line for an OSError: what failed, where, and what to do."""
    where = f" ({error.filename})" if error.filename and str(error.filename) not in str(error.strerror) else ""
    reason = error.strerror or str(error)
    return (f"{reason}{where}: check that the folder exists, is writable and has free space, or choose "
            f"another output folder; files already there were left as they were")


# TensorFlow's native start-up lines (oneDNN notice, "no CUDA driver", cuInit failure) are
# printed before its log level applies, so TF_CPP_MIN_LOG_LEVEL alone cannot hide them.
_TENSORFLOW_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog|[IW]\d{4} |E\d{4} .*(cuInit|cuda|CUDA))")


def quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up chatter filtered out of stderr.

    Other stderr lines written during the import are passed through; a failing import still
    raises. Set TF_CPP_MIN_LOG_LEVEL=0 or SEMANTIC_TIMBRE_DEBUG=1 to see everything.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ.get("SEMANTIC_TIMBRE_DEBUG") \
            or os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        return
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow

            tensorflow.config.list_physical_devices("GPU")  # the CUDA probe, without creating devices
        finally:
            sys.stderr.flush()
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if line and not _TENSORFLOW_NOISE.match(line):
                    print(line, file=sys.stderr)
