"""The package's error root: every problem the user can fix is a UserError (or a subclass, e.g.
ModelFolderError, ProcessedDataError, NoteRequestError), raised by the library with a message that
says what was wrong and what to do. Only the command-line layer (semantic_timbre/cli/__init__.py's run_main,
which the scripts and the console commands call) turns one into an 'error: ...' line and exit
status 2; the explorer turns it into an HTTP error."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; its message says what was wrong and what to do."""
