"""The SPRSound-compatible JSON sidecar ``NAME.json`` beside ``NAME.wav``/``.flac``.

What is written, so that the training readers read it back unchanged in meaning:

- ``record_annotation``: the record label (``""`` while unlabelled, which the readers skip
  as "not labelled yet"); ``record_annotation_author`` / ``record_annotation_time``: who set it
  and when.
- ``event_annotation``: the confirmed regions, ``{start, end, type}`` in milliseconds, plus
  ``note``, ``author``, ``time`` and, for a region that came from the model's suggestion,
  ``suggested: true, accepted: true``.
- ``suggested_events``: suggestions not accepted yet, in the same form; the readers do not
  know the key, so an unconfirmed suggestion never reaches training.
- ``annotators``: the labels of other annotators of the same recording, one section per name
  (``{"bob": {"record_annotation": ..., "event_annotation": [...], ...}}``), so two annotators
  can label one recording in one folder independently; the readers ignore the key, so only
  the top level (the first annotator's labels) feeds training. See :func:`label_owner`.
- every other field (top level or inside an event) that another tool wrote, unchanged.

Writes are atomic, carry the audio file's permissions, and never overwrite a sidecar that
changed on disk since it was loaded (modification time, size and SHA-256 are compared):
when only other annotators' labels changed there, :meth:`Sidecar.save` writes its own part
into what is on disk now; when its own part changed too, it raises :class:`SidecarConflict`,
and the caller chooses between :meth:`Sidecar.reload` and :meth:`Sidecar.save_copy`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from lungapp.annotation.model import Annotation, Region
from lungapp.data.labels import normalise_event_type, normalise_label
from lungapp.data.readers import icbhi_label, parse_icbhi_cycles
from lungapp.errors import LungappError
from lungapp.fsutil import atomic_write_text

ANNOTATORS_KEY = "annotators"
_KNOWN_TOP = ("record_annotation", "record_annotation_author", "record_annotation_time",
              "event_annotation", "suggested_events", ANNOTATORS_KEY)
_KNOWN_EVENT = ("start", "end", "type", "note", "author", "time", "suggested", "accepted")
ICBHI_AUTHOR = "ICBHI annotation"


class SidecarConflict(LungappError):
    """The sidecar changed on disk (another program or annotator) since it was loaded."""


@dataclass(frozen=True)
class Stamp:
    """What a file looked like: modification time (ns), size and SHA-256 (None: absent)."""

    mtime_ns: int
    size: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> Stamp | None:
        """Raises OSError when the file is there but cannot be read (a folder, no permission)."""
        try:
            st = os.stat(path)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        except FileNotFoundError:
            return None
        return cls(st.st_mtime_ns, st.st_size, digest)


def sidecar_path(audio: str | os.PathLike) -> Path:
    return Path(audio).with_suffix(".json")


# ----------------------------------------------------------------------------- decoding


def _seconds(value: object, what: str) -> float:
    """Milliseconds (a number or numeric string, as SPRSound stores them) as seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} is not a number: {value!r}")
    try:
        ms = float(value)
    except ValueError:
        raise ValueError(f"{what} is not a number: {value!r}") from None
    except OverflowError:  # an integer beyond any float (float() of such a text gives inf)
        raise ValueError(f"{what} is too large to be a time") from None
    if not math.isfinite(ms) or ms < 0:
        raise ValueError(f"{what} is not a time: {value!r}")
    return ms / 1000.0


def _field_text(raw: dict, key: str) -> str:
    """A text field; null (what some tools write for "none") is absent, never "None"."""
    value = raw.get(key)
    return "" if value is None else str(value)


def _flag(raw: dict, key: str, where: str) -> bool:
    """A true/false field (null or absent: false). Anything else is refused, not guessed at:
    bool("false") is True, which would turn an expert's event into an accepted suggestion."""
    value = raw.get(key)
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{where} '{key}' is not true or false: {value!r}")
    return bool(value)


def _region(raw: object, where: str, pending: bool) -> Region:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} is not an object")
    for key in ("start", "end", "type"):
        if key not in raw:
            raise ValueError(f"{where} has no '{key}'")
    start, end = _seconds(raw["start"], f"{where} start"), _seconds(raw["end"], f"{where} end")
    if end < start:
        raise ValueError(f"{where} ends before it starts")
    return Region(start, end, normalise_event_type(raw["type"]), _field_text(raw, "note"),
                  _field_text(raw, "author"), _field_text(raw, "time"),
                  suggested=_flag(raw, "suggested", where) or pending,
                  accepted=_flag(raw, "accepted", where) and not pending,
                  extra={k: v for k, v in raw.items() if k not in _KNOWN_EVENT})


def annotation_from_json(data: object) -> Annotation:
    """The document of a decoded sidecar. Raises ValueError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("not a SPRSound annotation (the JSON is not an object)")
    text = data.get("record_annotation", "")
    label = normalise_label(text) if isinstance(text, str) and text.strip() else None
    if text not in ("", None) and not isinstance(text, str):
        raise ValueError(f"record_annotation is not a text: {text!r}")
    regions = []
    for key, pending in (("event_annotation", False), ("suggested_events", True)):
        raw = data.get(key) or []
        if not isinstance(raw, list):
            raise ValueError(f"'{key}' is not a list")
        regions += [_region(e, f"{key} {i}", pending) for i, e in enumerate(raw, start=1)]
    return Annotation(label, _field_text(data, "record_annotation_author"),
                      _field_text(data, "record_annotation_time"), regions,
                      {k: v for k, v in data.items() if k not in _KNOWN_TOP})


# ----------------------------------------------------------------------------- encoding


def _ms(seconds: float) -> int | float:
    ms = round(seconds * 1000.0, 3)
    return int(ms) if ms == int(ms) else ms


def _event_json(r: Region) -> dict:
    out = {**r.extra, "start": _ms(r.start_s), "end": _ms(r.end_s), "type": r.type}
    if r.note:
        out["note"] = r.note
    if r.author:
        out["author"] = r.author
    if r.time:
        out["time"] = r.time
    if r.suggested:
        out["suggested"] = True
        out["accepted"] = r.accepted
    return out


def annotation_to_json(doc: Annotation, event_json=None) -> dict:
    """The sidecar content of a document (see the module docstring). ``event_json``: what
    encodes one region (default :func:`_event_json`; a :class:`Sidecar` passes its cache)."""
    encode = event_json or _event_json
    ordered = sorted(doc.regions, key=lambda r: (r.start_s, r.end_s))
    data = dict(doc.extra)
    data["record_annotation"] = doc.record_label or ""
    if doc.record_author:
        data["record_annotation_author"] = doc.record_author
    if doc.record_time:
        data["record_annotation_time"] = doc.record_time
    data["event_annotation"] = [encode(r) for r in ordered if not r.pending]
    pending = [encode(r) for r in ordered if r.pending]
    if pending:
        data["suggested_events"] = pending
    return data


# ----------------------------------------------------------------------------- the file


def _icbhi_annotation(txt: Path) -> Annotation | None:
    """An ICBHI cycle file's cycles as regions (and its record label), or None if ``txt`` is
    absent or not an ICBHI cycle file."""
    try:
        cycles = parse_icbhi_cycles(txt.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    regions = [Region(c.start_s, c.end_s, c.type, author=ICBHI_AUTHOR) for c in cycles]
    return Annotation(icbhi_label(cycles), ICBHI_AUTHOR, "", regions)


def label_owner(doc: Annotation) -> str:
    """Whose labels a sidecar's top level holds: the record label's author, else the one
    author of its hand-made regions; "" for nobody in particular (no labels yet, labels from a
    source that names no one, such as SPRSound's experts or an import, or regions by several
    people)."""
    if is_person(doc.record_author):
        return doc.record_author
    authors = {r.author for r in doc.regions if not r.pending and is_person(r.author)}
    return authors.pop() if len(authors) == 1 else ""


def is_person(author: str) -> bool:
    """Whether a label's author is an annotator, not a tool (an import, ICBHI's files)."""
    return bool(author) and not author.startswith("import:") and author != ICBHI_AUTHOR


def sections(data: dict) -> dict:
    """The ``annotators`` sections of a decoded sidecar (``{}`` when it has none)."""
    raw = data.get(ANNOTATORS_KEY) or {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError(f"'{ANNOTATORS_KEY}' is not an object of annotators' labels")
    return raw


def annotator_docs(data: object) -> dict[str, Annotation]:
    """Every named annotator's labels in a decoded sidecar: the top level under its owner's
    name (see :func:`label_owner`; unnamed labels are left out) and each ``annotators``
    section under its name. Raises ValueError naming what is wrong."""
    top = annotation_from_json(data)
    owner = label_owner(top)
    docs = {owner: top} if owner else {}
    for name, section in sections(data).items():
        try:
            docs[str(name)] = annotation_from_json(section)
        except ValueError as err:
            raise ValueError(f"{ANNOTATORS_KEY} {name!r}: {err}") from None
    return docs


def _part_json(data: dict, part: str | None) -> object:
    """One annotator's part of a decoded sidecar: the top level (``part`` None, without the
    other annotators' sections) or the section ``part`` (None when absent)."""
    if part is None:
        return {k: v for k, v in data.items() if k != ANNOTATORS_KEY}
    raw = data.get(ANNOTATORS_KEY)
    return raw.get(part) if isinstance(raw, dict) else None


_EVENT_KEYS = ("event_annotation", "suggested_events")


def _event_text(event: dict) -> str:
    """An event as ``json.dumps(..., indent=2)`` writes it inside a top-level list."""
    return json.dumps(event, indent=2).replace("\n", "\n    ")


class _EventCache:
    """Each region's event dict and its JSON text, kept between saves. Regions are immutable
    and an edit replaces one or two of them, so a save encodes those, not every region of a
    long recording again."""

    def __init__(self):
        self._hits: dict[int, tuple[Region, dict, str]] = {}  # id(region) -> (region, dict, text)
        self._texts: dict[int, str] = {}  # id(event dict) -> text, for the dicts held in _hits

    def event_json(self, region: Region) -> dict:
        hit = self._hits.get(id(region))
        if hit is None or hit[0] is not region:
            event = _event_json(region)
            hit = (region, event, _event_text(event))
            self._hits[id(region)] = hit
            self._texts[id(event)] = hit[2]
        return hit[1]

    def text(self, event: dict) -> str:
        cached = self._texts.get(id(event))
        return _event_text(event) if cached is None else cached

    def keep_only(self, regions: list[Region]) -> None:
        """Forget the regions no longer in the document (once the cache has doubled)."""
        if len(self._hits) > 2 * len(regions) + 16:
            alive = {id(r): r for r in regions}
            self._hits = {k: v for k, v in self._hits.items() if alive.get(k) is v[0]}
            self._texts = {id(v[1]): v[2] for v in self._hits.values()}


class Sidecar:
    """One recording's sidecar, loaded, edited through its :attr:`doc`, saved safely.

    Attributes:
        audio: the recording.
        path: ``NAME.json`` beside it.
        annotator: who edits (``""``: nobody in particular, the top level is edited).
        part: the part of the file :attr:`doc` is: None for the top level (what training
            reads), else the name of the ``annotators`` section. An annotator edits their own
            section if they have one, else the top level if it is theirs or nobody's, else a
            new section: one annotator's edits never change another's labels.
        doc: the document (edit it through an :class:`~lungapp.annotation.model.UndoStack`).
        stamp: what the file looked like when last loaded or saved (None: absent).
        source: ``"sprsound"`` (read from the JSON), ``"icbhi"`` (read from ``NAME.txt``
            cycles) or ``"new"``.
    """

    def __init__(self, audio: str | os.PathLike, annotator: str = ""):
        self.audio = Path(audio)
        self.path = sidecar_path(self.audio)
        self.annotator = annotator
        self.part: str | None = None
        self.doc = Annotation()
        self.stamp: Stamp | None = None
        self.source = "new"
        self._base: dict = {}  # the file's content as last loaded or written
        self._events = _EventCache()

    def reload(self) -> Annotation:
        """Read the file (discarding unsaved changes). Raises LungappError naming the file
        when it cannot be read, is not valid JSON or is not an annotation."""
        try:
            stamp = Stamp.of(self.path)
        except OSError as err:
            raise _unreadable(err, self.path) from None
        self.part, self._base = None, {}
        if stamp is None:
            icbhi = _icbhi_annotation(self.audio.with_suffix(".txt"))
            self.doc, self.source = (icbhi, "icbhi") if icbhi else (Annotation(), "new")
        else:
            self._base = self._read()
            top = annotation_from_json(self._base)
            self.part = self._part_for(top, sections(self._base))
            self.doc = top if self.part is None else \
                annotation_from_json(sections(self._base).get(self.part, {}))
            self.source = "sprsound"
        self.stamp = stamp
        return self.doc

    def _read(self) -> dict:
        """The file decoded and checked (top level and sections); raises LungappError."""
        try:
            data = json.loads(self.path.read_bytes())
            annotator_docs(data)
        except OSError as err:  # gone or unreadable since its stamp was taken
            raise _unreadable(err, self.path) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise LungappError(f"not valid JSON ({err}); fix or remove it", self.path) from None
        except RecursionError:  # json.loads gives up on arrays or objects nested ~1000 deep
            raise LungappError("not a usable annotation: nested too deeply", self.path) from None
        except ValueError as err:
            raise LungappError(f"not a usable annotation: {err}", self.path) from None
        return data

    def _part_for(self, top: Annotation, named: dict) -> str | None:
        name = self.annotator
        if not name or (name not in named and label_owner(top) in ("", name)):
            return None
        return name

    def others(self) -> list[str]:
        """The other annotators with labels in the file (as last loaded or saved): the names
        of :func:`annotator_docs`, found without decoding every section's events (called
        after every edit)."""
        if not self._base:
            return []
        try:
            names = set(map(str, sections(self._base)))
            # The top level's owner: when it is the part being edited, the document is it.
            top = self.doc if self.part is None else annotation_from_json(self._base)
        except ValueError:
            return []
        names.add(label_owner(top))
        return sorted(n for n in names if n and n != self.annotator)

    def changed_on_disk(self) -> bool:
        """Whether the file differs from what was last loaded or saved."""
        try:
            return Stamp.of(self.path) != self.stamp
        except OSError:  # unreadable now: not what was loaded (a save then finds a conflict)
            return True

    def save(self) -> Path:
        """Write the document atomically, with the audio file's permissions. If the file
        changed on disk meanwhile, only in other annotators' labels, this part is written
        into what is there now; if this part changed there too (or the file went), raises
        :class:`SidecarConflict` and writes nothing."""
        if self.changed_on_disk():
            self._rebase()
        content = self._content()
        self._write(self.path, self._text(content))
        # What was written, decoded, is the content itself: JSON's own types throughout
        # (decoded fields, ints, floats, strings, booleans), never changed in place.
        self._base = content
        self.stamp = Stamp.of(self.path)
        self._events.keep_only(self.doc.regions)
        return self.path

    def _text(self, content: dict) -> str:
        """``json.dumps(content, indent=2)`` (the layout every sidecar writer uses), with
        the top level's events taken from the cache when the top level is this document."""
        if self.part is not None:
            return json.dumps(content, indent=2) + "\n"
        items = []
        for key, value in content.items():
            if key in _EVENT_KEYS and isinstance(value, list) and value:
                events = ",\n    ".join(map(self._events.text, value))
                items.append(f"  {json.dumps(key)}: [\n    {events}\n  ]")
            else:
                items.append(f"  {json.dumps(key)}: " + json.dumps(value, indent=2).replace("\n", "\n  "))
        return ("{\n" + ",\n".join(items) + "\n}" if items else "{}") + "\n"

    def _rebase(self) -> None:
        conflict = SidecarConflict("changed on disk by another program or annotator since it "
                                   "was opened; reload it, or keep your labels as a copy", self.path)
        if self.stamp is not None and not self.path.exists():
            raise conflict
        try:
            disk = json.loads(self.path.read_bytes()) if self.path.exists() else {}
            sections(disk)
        except (OSError, ValueError, AttributeError, RecursionError):
            raise conflict from None
        if _part_json(disk, self.part) != _part_json(self._base, self.part):
            raise conflict
        self._base = disk

    def _content(self) -> dict:
        named = dict(sections(self._base)) if self._base else {}
        if self.part is None:
            out = annotation_to_json(self.doc, self._events.event_json)
        else:
            out = {k: v for k, v in self._base.items() if k != ANNOTATORS_KEY}
            out.setdefault("record_annotation", "")
            named[self.part] = annotation_to_json(self.doc, self._events.event_json)
        if named:
            out[ANNOTATORS_KEY] = named
        return out

    def save_copy(self) -> Path:
        """Write the document beside the sidecar as ``NAME.json.mine-TIME`` (a name the
        readers ignore) and return it; the sidecar itself is left as it is on disk."""
        suffix = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.mine-{suffix}")
        n = 2
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.mine-{suffix}-{n}")
            n += 1
        self._write(target, json.dumps(annotation_to_json(self.doc), indent=2) + "\n")
        return target

    def _write(self, target: Path, text: str) -> None:
        atomic_write_text(target, text)
        try:
            os.chmod(target, os.stat(self.audio).st_mode & 0o666)
        except OSError:  # no audio (yet) or a file system without modes: keep the default
            pass


def _unreadable(err: OSError, path: Path) -> LungappError:
    return LungappError(f"cannot be read ({err.strerror or err}); fix or remove it", path)


def load_sidecar(audio: str | os.PathLike, annotator: str = "") -> Sidecar:
    """The sidecar of ``audio``, loaded for ``annotator`` (see :meth:`Sidecar.reload`)."""
    sidecar = Sidecar(audio, annotator)
    sidecar.reload()
    return sidecar
