"""TensorFlow's start-up for the library and the commands: its import with the chatter filtered out.
Nothing here imports TensorFlow until quiet_tensorflow() is called."""

from __future__ import annotations

import os
import re
import sys
import tempfile

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
