"""Annotation: a recording's labels as an editable document, its SPRSound-compatible JSON
sidecar, import/export, agreement between annotators and "add to a training folder".

The core of the annotation workspace (no Qt): the Review view's annotation layer edits a
:class:`~lungapp.annotation.model.Annotation` only through the commands of
:mod:`lungapp.annotation.model`, so every edit can be undone and autosaved, and the command
line (``lungapp labels ...``) reads and writes the same files.
"""

from lungapp.annotation.model import Annotation, Region, UndoStack
from lungapp.annotation.sidecar import Sidecar, SidecarConflict, load_sidecar

__all__ = ["Annotation", "Region", "UndoStack", "Sidecar", "SidecarConflict", "load_sidecar"]
