"""The annotation document and its edit commands.

An :class:`Annotation` is one recording's labels: the record label (or None while unlabelled),
who set it and when, and its :class:`Region` s (timed events, overlapping allowed), plus any
fields other tools wrote that lungapp does not know (kept and written back unchanged).

Every edit is a command (:class:`AddRegion`, :class:`RemoveRegion`, :class:`ChangeRegion`,
:class:`SetRecordLabel`) pushed on an :class:`UndoStack`, so undo/redo covers every edit and
the GUI can autosave after each one.
"""

from __future__ import annotations

import datetime as _dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from lungapp.data.labels import ALL_LABELS, EVENT_TYPES, event_flags, label_from_flags

_ids = itertools.count(1)

REGION_FIELDS = ("start_s", "end_s", "type", "note", "author", "time", "suggested", "accepted")


def now_iso() -> str:
    """The current UTC time as ``2026-12-05T12:00:00Z`` (what a label's ``time`` holds)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Region:
    """One timed event.

    Attributes:
        start_s, end_s: seconds from the start of the recording (start <= end).
        type: an event type (SPRSound's :data:`~lungapp.data.labels.EVENT_TYPES`, or ICBHI's
            ``Crackle`` for cycles read from ICBHI files).
        note: free text.
        author, time: who made or last changed it, and when (ISO 8601, UTC).
        suggested: it came from the model's "Suggest regions".
        accepted: for a suggestion, whether the annotator accepted it (a pending suggestion is
            not a label yet and is left out of training folders).
        extra: fields of the event that other tools wrote, kept as they were.
        id: identity inside one document (not saved).
    """

    start_s: float
    end_s: float
    type: str = "Normal"
    note: str = ""
    author: str = ""
    time: str = ""
    suggested: bool = False
    accepted: bool = False
    extra: dict = field(default_factory=dict, compare=False)
    id: int = field(default_factory=lambda: next(_ids), compare=False)

    @property
    def pending(self) -> bool:
        """A suggestion the annotator has not accepted yet."""
        return self.suggested and not self.accepted


@dataclass
class Annotation:
    """One recording's labels (see the module docstring)."""

    record_label: str | None = None
    record_author: str = ""
    record_time: str = ""
    regions: list[Region] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def find(self, region_id: int) -> int:
        """Index of the region with this id; KeyError if there is none."""
        for i, r in enumerate(self.regions):
            if r.id == region_id:
                return i
        raise KeyError(region_id)

    def region(self, region_id: int) -> Region:
        return self.regions[self.find(region_id)]

    def confirmed_regions(self) -> list[Region]:
        """The regions that are labels: everything but pending suggestions."""
        return [r for r in self.regions if not r.pending]

    def suggested_label(self) -> str | None:
        """The record label the confirmed regions imply (any wheeze-like -> CAS, any crackle ->
        DAS), or None when there are no regions."""
        regions = self.confirmed_regions()
        if not regions:
            return None
        flags = [event_flags(r.type) for r in regions]
        return label_from_flags(any(c for c, _ in flags), any(d for _, d in flags))

    def state(self) -> str:
        """``unlabelled`` (no record label), ``labelled`` (a label; suggestions pending) or
        ``reviewed`` (a label and no pending suggestion)."""
        if not self.record_label:
            return "unlabelled"
        return "labelled" if any(r.pending for r in self.regions) else "reviewed"

    def same_labels(self, other: Annotation) -> bool:
        """Whether both hold the same record label and regions (ids and order aside)."""
        key = lambda a: sorted((r.start_s, r.end_s, r.type, r.note, r.suggested, r.accepted)  # noqa: E731
                               for r in a.regions)
        return self.record_label == other.record_label and key(self) == key(other)


# ---------------------------------------------------------------------------- commands


class Command:
    """An edit: ``do`` and ``undo`` change the document; ``text`` names it for menus."""

    text = "edit"

    def do(self, doc: Annotation) -> None:
        raise NotImplementedError

    def undo(self, doc: Annotation) -> None:
        raise NotImplementedError


def check_times(start_s: float, end_s: float) -> None:
    if not (start_s >= 0 and end_s >= start_s):
        raise ValueError(f"a region must start at 0 s or later and not end before it starts "
                         f"(got {start_s:g}-{end_s:g} s)")


def check_type(type_: str) -> None:
    if type_ not in EVENT_TYPES and type_ != "Crackle":
        raise ValueError(f"unknown event type {type_!r}: expected one of {', '.join(EVENT_TYPES)}")


class AddRegion(Command):
    text = "add region"

    def __init__(self, region: Region):
        check_times(region.start_s, region.end_s)
        check_type(region.type)
        self.region = region

    def do(self, doc: Annotation) -> None:
        doc.regions.append(self.region)

    def undo(self, doc: Annotation) -> None:
        del doc.regions[doc.find(self.region.id)]


class RemoveRegion(Command):
    text = "delete region"

    def __init__(self, doc: Annotation, region_id: int):
        self.index = doc.find(region_id)
        self.region = doc.regions[self.index]

    def do(self, doc: Annotation) -> None:
        del doc.regions[doc.find(self.region.id)]

    def undo(self, doc: Annotation) -> None:
        doc.regions.insert(self.index, self.region)


class ChangeRegion(Command):
    """Change some fields of a region (times, type, note, suggestion flags); the author and
    time of the change are stamped on it."""

    text = "change region"

    def __init__(self, doc: Annotation, region_id: int, author: str = "", **changes):
        unknown = set(changes) - set(REGION_FIELDS)
        if unknown:
            raise ValueError(f"unknown region fields: {', '.join(sorted(unknown))}")
        self.before = doc.region(region_id)
        stamp = {"author": author, "time": now_iso()} if author else {}
        self.after = replace(self.before, **{**changes, **stamp})
        check_times(self.after.start_s, self.after.end_s)
        check_type(self.after.type)

    def do(self, doc: Annotation) -> None:
        doc.regions[doc.find(self.before.id)] = self.after

    def undo(self, doc: Annotation) -> None:
        doc.regions[doc.find(self.before.id)] = self.before


class SetRecordLabel(Command):
    text = "set record label"

    def __init__(self, doc: Annotation, label: str | None, author: str = ""):
        if label is not None and label not in ALL_LABELS:
            raise ValueError(f"unknown record label {label!r}: expected one of "
                             f"{', '.join(ALL_LABELS)}")
        self.before = (doc.record_label, doc.record_author, doc.record_time)
        self.after = (label, author, now_iso() if label else "")

    def do(self, doc: Annotation) -> None:
        doc.record_label, doc.record_author, doc.record_time = self.after

    def undo(self, doc: Annotation) -> None:
        doc.record_label, doc.record_author, doc.record_time = self.before


class UndoStack:
    """Commands done on one document, with undo and redo. ``on_change`` is called after every
    push, undo and redo (the GUI autosaves and redraws there)."""

    def __init__(self, doc: Annotation, on_change: Callable[[], None] | None = None):
        self.doc = doc
        self.on_change = on_change
        self._done: list[Command] = []
        self._undone: list[Command] = []

    def push(self, command: Command) -> None:
        command.do(self.doc)
        self._done.append(command)
        self._undone.clear()
        self._changed()

    def can_undo(self) -> bool:
        return bool(self._done)

    def can_redo(self) -> bool:
        return bool(self._undone)

    def undo(self) -> bool:
        if not self._done:
            return False
        command = self._done.pop()
        command.undo(self.doc)
        self._undone.append(command)
        self._changed()
        return True

    def redo(self) -> bool:
        if not self._undone:
            return False
        command = self._undone.pop()
        command.do(self.doc)
        self._done.append(command)
        self._changed()
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
