"""The package's rule for bad user input: one error type, reported by `pite` as one line naming the file or field,
exit status 2. A traceback is printed only for real bugs.

Raise `UserInputError` (or one of its three kinds) wherever a command finds a problem with what the user gave it:
a path that does not exist, a file that cannot be read or parsed, a field with a wrong value, an output that
already exists. Each kind also derives from the builtin error callers already catch (ValueError, FileNotFoundError,
FileExistsError), so library code that raises them keeps its contract.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2
# Set to print the traceback of a bad-input error too (for debugging a command, not for users).
TRACEBACK_VARIABLE = "PITE_TRACEBACK"


class UserInputError(Exception):
    """A problem with a file, folder, option or field the user gave: the message names it.

    Attributes:
        path: the file or folder at fault, when there is one.
        field: the option or field at fault (e.g. "--out", "lora_r"), when there is one.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, field: str | None = None):
        if path is not None and os.fspath(path) not in message:
            message = f"{os.fspath(path)}: {message}"
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.field = field


class InvalidInputError(UserInputError, ValueError):
    """A file that cannot be read or parsed (truncated, corrupted, wrong format), or a field with a wrong value."""


class MissingInputError(UserInputError, FileNotFoundError):
    """A file or folder the command needs does not exist."""


class OutputExistsError(UserInputError, FileExistsError):
    """The output already exists (or is the command's own input) and the command was not told to replace it."""


# Builtin errors whose message names the path (OSError's `filename`): what a missing or unreadable file raises
# before any of our code can say more. Anything else (IndexError, RuntimeError, ...) is a bug: traceback.
PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def one_line(error: BaseException) -> str:
    """The error's message on one line (multi-line messages, e.g. lists of problems, joined with '; ')."""
    text = str(error)
    if isinstance(error, OSError) and not isinstance(error, UserInputError) and error.filename is not None:
        text = f"{error.filename}: {error.strerror or text}"
    parts = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(parts) or type(error).__name__


def report(command: str, error: BaseException) -> int:
    """Print `pite COMMAND: message` as one line on stderr; returns the bad-input exit status."""
    print(f"pite {command}: {one_line(error)}", file=sys.stderr)
    return EXIT_BAD_INPUT


def is_input_error(error: BaseException) -> bool:
    """Whether `pite` reports `error` as bad input (one line, exit 2) rather than as a bug (traceback)."""
    if isinstance(error, UserInputError):
        return True
    return isinstance(error, PATH_ERRORS) and getattr(error, "filename", None) is not None


def show_tracebacks() -> bool:
    return os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0")
