"""The exception types the CLI and the GUI show to users.

Every error a user can cause (a bad file, a bad folder, a bad model) is raised as a
:class:`LungappError` subclass whose message names the file and the problem, so front
ends can print ``str(err)`` as one clear line instead of a traceback.
"""

from __future__ import annotations

import os


class LungappError(Exception):
    """A problem the user can act on. ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = problem
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class AudioError(LungappError):
    """An audio file cannot be read or is unusable (the only error the decoder raises)."""


class DatasetError(LungappError):
    """A labelled folder cannot be read, is of no known layout, or is unfit for training."""


class ModelError(LungappError):
    """A model cannot be loaded: missing/invalid card, unsafe or corrupt Keras file."""
