"""The install builds the compiled passes (it finds a C compiler and Python's headers), and the book and the
recording reader use them. Without them the Python passes run, with the same results, more slowly."""

from __future__ import annotations

import dataflows.recordings as recordings
import operators.book as book

NOT_BUILT = (
    "{} was not built: install a C compiler and Python's headers (Debian: gcc, python3-dev), then rebuild it "
    "with .venv/bin/pip install -e ."
)


def test_the_book_applies_changes_with_the_compiled_loop():
    assert book.apply_changes is not book.python_apply_changes, NOT_BUILT.format("operators/_book_kernel.c")


def test_the_recording_reader_makes_messages_with_the_compiled_pass():
    assert recordings.native_messages is not recordings.python_native_messages, NOT_BUILT.format(
        "dataflows/_native_lines.c"
    )
