"""How the command line reports what went wrong.

A user's mistake (a bad path, option, setting or URL) or a problem of their surroundings (a store
that cannot be used, a port in use, a folder that cannot be written) is one line on stderr: exit
status 2 for a bad argument, 1 for the rest. A ValueError is a bad argument only where the checks of
the arguments raise it (``bad_input``) or where the work refuses its input as unfit for it
(``quantumflow.errors.UnfitInput``: too short to train on, a test period too early). Anything else is
an internal error: one line naming the log file its traceback went to, or with ``--debug`` the
traceback itself. Every error's
traceback is appended to the log file, and so are the flow's warnings (a store write retried).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from quantumflow.settings import data_dir

USAGE = 2  # a bad argument, as click reports its own
FAILED = 1
FLOW_LOGGER = "quantumflow.flow"

# (module, exception class, exit status): the project's errors that are the user's to fix. Looked up
# by module, so that reporting one imports nothing (an error of a module not imported cannot occur).
USER_ERRORS = (
    ("store.base", "StoreConfigError", USAGE),
    ("store.base", "StoreError", FAILED),  # a store that cannot be used, or that failed while running
    ("dataflows.recordings", "RecordingError", USAGE),
    ("dataflows.recovery", "RecoveryMismatch", USAGE),
    ("models.checkpoints", "CheckpointError", USAGE),
    ("esg.validation", "EsgDataError", USAGE),
    ("quantumflow.net", "PortUnavailable", FAILED),
    ("dataflows.kafka", "BrokerUnavailable", FAILED),
    ("dataflows.kafka", "TopicError", USAGE),
    ("dataflows.kafka_publish", "PublishFailed", FAILED),
    ("dashboards.report", "ReportError", FAILED),
    ("dataflows.ingest", "IngestFailed", FAILED),
    ("venues.base", "VenueError", FAILED),
    ("dataflows.live_source", "NothingReceived", FAILED),
    ("quantumflow.errors", "UnfitInput", USAGE),  # recordings too short to train on, a test period too early...
)


class UserError(Exception):
    """A problem the user can fix, said in one line."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


@contextmanager
def bad_input() -> Iterator[None]:
    """Around checks of the arguments only (never long work): a ValueError raised inside is a bad
    argument (exit status 2), said in one line."""
    try:
        yield
    except ValueError as error:
        raise UserError(str(error), USAGE) from error


def known_feed(name: str | None) -> str | None:
    """A ``--feed`` option's check: a name of a feed QuantumFlow reads."""
    from operators.feeds import get_feed

    if name is not None:
        try:
            get_feed(name)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
    return name


def writable_folder(path: Path) -> None:
    """Make the folder if need be and try writing in it; UserError naming it and the cause if that fails."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a folder", USAGE)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise UserError(f"cannot write in the folder {path}: {error.strerror or error}") from error


def writable_file(path: Path, option: str) -> None:
    """Check before the work that the file ``option`` names can be written; UserError naming both if not."""
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder, not a file")
    try:
        writable_folder(path.parent)
    except UserError as error:
        raise UserError(f"{option} {path}: {error}") from error


def log_file() -> Path:
    return data_dir() / "logs" / "quantumflow.log"


class ReportingGroup(TyperGroup):
    """The command group (``typer.Typer(cls=ReportingGroup)``) whose commands' errors are reported as
    this module says; ``debug`` (the ``--debug`` option) lets an internal error's traceback through."""

    debug = False

    def get_command(self, ctx: typer.Context, name: str) -> Any:
        """The command, its line in the list of commands being the first paragraph of its help as one
        run of text: that list keeps the line breaks of a docstring's paragraph as they are."""
        command = super().get_command(ctx, name)
        if command is not None and command.short_help is None and command.help:
            command.short_help = " ".join(command.help.split("\n\n")[0].split())
        return command

    def invoke(self, ctx: typer.Context) -> Any:
        handler = _log_warnings()
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise  # --help, Ctrl-C
        except BrokenPipeError:  # the reader of the output went away (`| head`): nothing more to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except typer.TyperException as error:  # a bad option value: one line, as every other mistake
            context = getattr(error, "ctx", None)
            where = f" (see {context.command_path} --help)" if context is not None else ""
            typer.echo(f"Error: {' '.join(error.format_message().split())}{where}", err=True)
            ctx.exit(error.exit_code)
        except Exception as error:
            if ReportingGroup.debug and user_status(error) is None:
                raise  # an internal error's traceback; a user's mistake stays one line
            ctx.exit(report(error))
        finally:
            if handler is not None:
                logging.getLogger(FLOW_LOGGER).removeHandler(handler)
                handler.close()


def report(error: Exception) -> int:
    """Print ``error`` in one line on stderr and log its traceback; the exit status."""
    status = user_status(error)
    written = _append_traceback(error)
    if status is not None:
        message = f"Error: {error}"
    else:
        status = FAILED
        where = f"the traceback is in {written}" if isinstance(written, Path) else f"no log: {written}"
        message = f"Internal error: {type(error).__name__}: {error} ({where}; --debug shows it here)"
    typer.echo(" ".join(message.split()), err=True)
    return status


def user_status(error: BaseException) -> int | None:
    """The exit status of a user's error, None for an internal one."""
    if isinstance(error, UserError):
        return error.status
    for module, name, status in USER_ERRORS:
        kind = getattr(sys.modules.get(module), name, None)
        if kind is not None and isinstance(error, kind):
            return status
    if isinstance(error, OSError) and error.filename is not None:
        return FAILED  # a path that cannot be read or written, named by the message
    return None


def _append_traceback(error: Exception) -> Path | str:
    """Append the error's traceback to the log file; its path, or why it could not be written."""
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"{datetime.now().isoformat(timespec='seconds')} quantumflow {' '.join(sys.argv[1:])}\n")
            log.write("".join(traceback.format_exception(error)))
    except OSError as e:
        return f"{path}: {e.strerror or e}"
    return path


def _log_warnings() -> logging.Handler | None:
    """Send the flow's warnings (a store write retried) to the log file, not to the terminal."""
    try:
        path = log_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:
        return None
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger(FLOW_LOGGER).addHandler(handler)
    return handler
