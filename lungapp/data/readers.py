"""Labelled-folder readers: one call turns a folder into examples.

:func:`read_folder` recognises five layouts (:data:`LAYOUTS`) and returns a :class:`Dataset` of
:class:`Example` s (file, record label, patient id, timed events). It reads only the label files
(JSON, text, CSV) and never decodes audio, so a folder of thousands of recordings reads in well
under a second.

- ``sprsound``: ``NAME.json`` beside each ``NAME.wav``/``NAME.flac`` holding ``record_annotation``
  and ``event_annotation`` (``[{start, end, type}]`` in milliseconds, numbers or numeric strings).
  Patient id = the first ``_``-separated token of the file name. Searched recursively.
- ``icbhi`` (ICBHI 2017): ``NAME.txt`` beside each ``NAME.wav``, one respiratory cycle a line:
  ``start end crackles wheezes`` (seconds, 0/1 flags). Patient id = first token of the name.
- ``class-folders``: immediate subfolders named by label (``normal/``, ``wheeze/``, ``crackles/``)
  holding audio files (or, when there is no audio, images), searched recursively. No patient ids.
- ``csv``: a ``.csv`` manifest in the folder with columns ``file`` and ``label`` (optional
  ``patient``; other columns go to ``meta``), file paths relative to the folder.
- ``seed-images``: the seed project's spectrogram images (``.png``/``.jpg``) with a ``NAME.txt``
  label each, or one ``labels.json`` (a list of ``{"file", "label"}`` or an object
  ``{file: label}``) in the folder.

A file that cannot be used (unreadable JSON, unknown label, missing audio, bad event times) is
skipped and listed in :attr:`Dataset.problems` with the reason; the folder as a whole is refused
with a :class:`~lungapp.errors.DatasetError` only when it is missing, empty, of no known layout,
of several layouts at once, or yields no usable example at all.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lungapp.data.labels import (
    ABNORMAL,
    ALL_LABELS,
    BOTH,
    CAS,
    DAS,
    label_from_flags,
    normalise_event_type,
    normalise_label,
)
from lungapp.errors import DatasetError
from lungapp.fsutil import open_regular

LAYOUTS = ("sprsound", "icbhi", "class-folders", "csv", "seed-images")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SEED_LABELS_JSON = "labels.json"

_LAYOUT_HELP = {
    "sprsound": "NAME.json (record_annotation, event_annotation) beside each NAME.wav/.flac",
    "icbhi": "NAME.txt of 'start end crackles wheezes' lines beside each NAME.wav",
    "class-folders": "subfolders named by label, e.g. normal/, wheeze/, crackles/",
    "csv": "a .csv manifest with 'file' and 'label' columns",
    "seed-images": "spectrogram images with a NAME.txt label each, or a labels.json",
}
_ICBHI_CYCLE_TYPES = {(False, False): "Normal", (True, False): "Crackle",
                      (False, True): "Wheeze", (True, True): "Wheeze+Crackle"}
_SPRSOUND_GENDER = {"0": "male", "1": "female"}
_SPRSOUND_LOCATION = {"p1": "left posterior", "p2": "left lateral",
                      "p3": "right posterior", "p4": "right lateral"}


@dataclass(frozen=True)
class Event:
    """A timed respiratory event inside a recording (seconds from its start)."""

    start_s: float
    end_s: float
    type: str


@dataclass(frozen=True)
class Example:
    """One labelled file.

    Attributes:
        path: absolute path of the audio file (or the image, for ``kind == "image"``).
        label: canonical record label (:data:`lungapp.data.labels.ALL_LABELS`).
        patient: patient id, or None where the layout has none.
        events: timed events (SPRSound events, ICBHI cycles), sorted by start time.
        kind: ``"audio"`` or ``"image"``.
        meta: extra facts from the file name or manifest (age, location, device...).
    """

    path: str
    label: str
    patient: str | None
    events: tuple[Event, ...] = ()
    kind: str = "audio"
    meta: dict = field(default_factory=dict, compare=False)


@dataclass
class Dataset:
    """The result of :func:`read_folder`.

    Attributes:
        root: absolute path of the folder read.
        layout: one of :data:`LAYOUTS`.
        examples: usable examples, sorted by path.
        problems: ``(file, reason)`` for every entry skipped.
        warnings: remarks about the folder as a whole (ignored files, label caveats).
    """

    root: str
    layout: str
    examples: list[Example]
    problems: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_patients(self) -> bool:
        """True when there is at least one example and every example has a patient id."""
        return bool(self.examples) and all(e.patient is not None for e in self.examples)

    def counts(self) -> Counter:
        """Examples per label, in vocabulary order; a Counter, so absent labels count 0."""
        raw = Counter(e.label for e in self.examples)
        return Counter({label: raw[label] for label in ALL_LABELS if raw[label]})

    def patients(self) -> set[str]:
        """The distinct patient ids (examples without one are not counted)."""
        return {e.patient for e in self.examples if e.patient is not None}

    def summary(self) -> dict:
        """A JSON-serialisable overview: layout, sizes, labels, patients, problems."""
        kinds = sorted({e.kind for e in self.examples})
        return {
            "root": self.root,
            "layout": self.layout,
            "kind": kinds[0] if len(kinds) == 1 else kinds,
            "n": len(self.examples),
            "counts": dict(self.counts()),
            "n_patients": len(self.patients()),
            "has_patients": self.has_patients,
            "n_events": sum(len(e.events) for e in self.examples),
            "n_problems": len(self.problems),
            "n_warnings": len(self.warnings),
        }


# ----------------------------------------------------------------------------- scanning


def _audio_extensions() -> tuple[str, ...]:
    """Audio suffixes the decoder reads (lower case, with the dot)."""
    from lungapp.audio import AUDIO_EXTENSIONS  # the decoder owns the list

    return tuple(AUDIO_EXTENSIONS)


def _suffix_list(suffixes: tuple[str, ...]) -> str:
    """``".wav/.wave/.flac/..."``: the first three suffixes, for messages."""
    return "/".join(suffixes[:3]) + ("/..." if len(suffixes) > 3 else "")


@dataclass
class _Tree:
    """What a folder holds: for each subfolder (relative, "" for the root) the file names by
    stem and lower-case suffix. Hidden files and folders (names starting with ".") are left out."""

    root: str
    dirs: dict[str, dict[str, dict[str, str]]]
    n_files: int
    warnings: list[str]
    problems: list[tuple[str, str]] = field(default_factory=list)  # unreadable subfolders

    def path(self, reldir: str, name: str) -> str:
        return os.path.join(self.root, reldir, name) if reldir else os.path.join(self.root, name)

    def files(self, suffixes: tuple[str, ...] | None = None,
              reldir: str | None = None) -> Iterator[tuple[str, str, str, str]]:
        """Yield ``(reldir, stem, suffix, name)`` for every file, or those with these suffixes,
        or only those directly in one folder."""
        dirs = self.dirs if reldir is None else {reldir: self.dirs.get(reldir, {})}
        for reldir, stems in dirs.items():
            for stem, by_suffix in stems.items():
                for suffix, name in by_suffix.items():
                    if suffixes is None or suffix in suffixes:
                        yield reldir, stem, suffix, name

    def sibling(self, reldir: str, stem: str, suffixes: tuple[str, ...]) -> str | None:
        """Name of the first file ``stem + suffix`` in ``reldir`` for these suffixes, or None."""
        found = self.siblings(reldir, stem, suffixes)
        return found[0] if found else None

    def siblings(self, reldir: str, stem: str, suffixes: tuple[str, ...]) -> list[str]:
        """Names of the files ``stem + suffix`` in ``reldir`` for these suffixes, in their order."""
        by_suffix = self.dirs[reldir][stem]
        return [by_suffix[suffix] for suffix in suffixes if suffix in by_suffix]

    def has_seed_labels_json(self) -> bool:
        """Whether the root holds the seed layout's ``labels.json``."""
        return self.dirs[""].get("labels", {}).get(".json") == SEED_LABELS_JSON

    def describe(self) -> str:
        """e.g. ``"12 files (8 .wav, 3 .txt, 1 .csv) in 3 folders"``."""
        by_suffix = Counter(suffix or "no extension" for _, _, suffix, _ in self.files())
        top = ", ".join(f"{n} {s}" for s, n in by_suffix.most_common(5))
        more = ", ..." if len(by_suffix) > 5 else ""
        n_dirs = len(self.dirs)
        return (f"{self.n_files} file{'s' * (self.n_files != 1)} ({top}{more}) "
                f"in {n_dirs} folder{'s' * (n_dirs != 1)}")


def _check_root(path: str | os.PathLike) -> str:
    """Absolute path of a readable folder, or DatasetError naming the problem."""
    root = os.path.abspath(os.fspath(path))
    if not os.path.exists(root):
        raise DatasetError("no such folder", root)
    if not os.path.isdir(root):
        raise DatasetError("is a file, not a folder: choose the folder that holds the recordings",
                           root)
    try:
        os.listdir(root)
    except OSError as err:
        raise DatasetError(f"cannot read the folder ({err.strerror or err})", root) from None
    return root


def _scan(root: str) -> _Tree:
    """List every non-hidden file under ``root`` (recursively, not following folder links).
    A subfolder that cannot be read is a problem of the dataset: its files are skipped,
    and it is listed with the reason."""
    problems: list[tuple[str, str]] = []

    def unreadable(err: OSError) -> None:
        problems.append((err.filename or root, f"cannot read this folder ({err.strerror or err}): "
                                               "its files were skipped"))

    dirs: dict[str, dict[str, dict[str, str]]] = {}
    n_files = 0
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        reldir = os.path.relpath(dirpath, root)
        reldir = "" if reldir == "." else reldir
        stems: dict[str, dict[str, str]] = {}
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            stem, suffix = os.path.splitext(name)
            stems.setdefault(stem, {})[suffix.lower()] = name
            n_files += 1
        dirs[reldir] = stems
    return _Tree(root, dirs, n_files, [], problems)


# ----------------------------------------------------------------------------- pure parsers


def _number(value: object, what: str) -> float:
    """``value`` (a number or numeric string) as a finite float; ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} is not a number: {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} is not a finite number: {value!r}")
    return number


def _checked_event(start_s: float, end_s: float, type_: str, where: str) -> Event:
    if start_s < 0:
        raise ValueError(f"{where}: negative start time {start_s:g} s")
    if end_s < start_s:
        raise ValueError(f"{where}: ends ({end_s:g} s) before it starts ({start_s:g} s)")
    return Event(start_s, end_s, type_)


def parse_sprsound_annotation(data: object) -> tuple[str, tuple[Event, ...]]:
    """Record label and events of one decoded SPRSound JSON annotation.

    Args:
        data: the decoded JSON: ``{"record_annotation": label, "event_annotation":
            [{"start": ms, "end": ms, "type": type}, ...]}``; times are milliseconds given as
            numbers or numeric strings. A missing ``event_annotation`` means no events.

    Returns:
        ``(label, events)``: the canonical record label and the events with times in seconds,
        sorted by start time.

    Raises:
        ValueError: the reason it cannot be used (no/unknown label, event not an object,
            a time that is not a finite number, an event ending before it starts, unknown type).
    """
    if not isinstance(data, dict):
        raise ValueError("not a SPRSound annotation (the JSON is not an object)")
    if "record_annotation" not in data:
        hint = (" (found 'recording_annotation'; SPRSound's key is 'record_annotation')"
                if "recording_annotation" in data else "")
        raise ValueError(f"not a SPRSound annotation: no 'record_annotation'{hint}")
    label = normalise_label(data["record_annotation"])
    raw_events = data.get("event_annotation", [])
    if not isinstance(raw_events, list):
        raise ValueError("'event_annotation' is not a list")
    events = []
    for i, raw in enumerate(raw_events, start=1):
        where = f"event {i}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where} is not an object: {raw!r}")
        for key in ("start", "end", "type"):
            if key not in raw:
                raise ValueError(f"{where} has no '{key}'")
        start = _number(raw["start"], f"{where} start") / 1000.0
        end = _number(raw["end"], f"{where} end") / 1000.0
        try:
            type_ = normalise_event_type(raw["type"])
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        events.append(_checked_event(start, end, type_, where))
    return label, tuple(sorted(events, key=lambda e: (e.start_s, e.end_s)))


def parse_icbhi_cycles(text: str) -> tuple[Event, ...]:
    """Respiratory cycles of one ICBHI 2017 annotation file.

    Args:
        text: the file's content: one cycle a line, ``start end crackles wheezes`` separated by
            white space (times in seconds, flags 0 or 1). Blank lines are ignored.

    Returns:
        One :class:`Event` per cycle, sorted by start time, typed ``Normal``, ``Crackle``,
        ``Wheeze`` or ``Wheeze+Crackle`` from its flags.

    Raises:
        ValueError: a line is not four fields, a time is not a finite number or ends before it
            starts, a flag is not 0/1, or there is no cycle at all.
    """
    events = []
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"line {n}"
        if len(fields) != 4:
            raise ValueError(f"{where}: expected 'start end crackles wheezes', "
                             f"got {line.strip()!r}")
        start = _number(fields[0], f"{where} start")
        end = _number(fields[1], f"{where} end")
        flags = []
        for name, value in zip(("crackles", "wheezes"), fields[2:]):
            if value not in ("0", "1"):
                raise ValueError(f"{where}: {name} flag is {value!r}, expected 0 or 1")
            flags.append(value == "1")
        events.append(_checked_event(start, end, _ICBHI_CYCLE_TYPES[tuple(flags)], where))
    if not events:
        raise ValueError("no respiratory cycles in it")
    return tuple(sorted(events, key=lambda e: (e.start_s, e.end_s)))


def icbhi_label(cycles: tuple[Event, ...]) -> str:
    """Record label of an ICBHI recording: any wheeze -> CAS, any crackle -> DAS, both ->
    CAS & DAS, none -> Normal."""
    cas = any(e.type in ("Wheeze", "Wheeze+Crackle") for e in cycles)
    das = any(e.type in ("Crackle", "Wheeze+Crackle") for e in cycles)
    return label_from_flags(cas, das)


def sprsound_name_info(stem: str) -> tuple[str | None, dict]:
    """Patient id and facts from a SPRSound file name ``PATIENT_AGE_GENDER_LOCATION_NUMBER``.

    The patient id is the first ``_``-separated token (None if it is empty). ``meta`` holds
    what parses: ``age`` (years, float), ``gender`` ("male"/"female"), ``location`` ("p1".."p4")
    and ``location_name`` (e.g. "left posterior"), ``number`` (the recording number, a string).
    """
    tokens = stem.split("_")
    patient = tokens[0] or None
    meta: dict = {}
    if len(tokens) == 5:
        try:
            meta["age"] = _number(tokens[1], "age")
        except ValueError:
            pass
        if tokens[2] in _SPRSOUND_GENDER:
            meta["gender"] = _SPRSOUND_GENDER[tokens[2]]
        if tokens[3] in _SPRSOUND_LOCATION:
            meta["location"] = tokens[3]
            meta["location_name"] = _SPRSOUND_LOCATION[tokens[3]]
        meta["number"] = tokens[4]
    return patient, meta


def icbhi_name_info(stem: str) -> tuple[str | None, dict]:
    """Patient id and facts from an ICBHI file name, e.g. ``101_1b1_Al_sc_Meditron``:
    patient ``"101"``; ``meta`` = recording index, chest location, acquisition mode
    (``sc`` single / ``mc`` multi-channel) and device, when the name has these five parts."""
    tokens = stem.split("_")
    patient = tokens[0] or None
    meta: dict = {}
    if len(tokens) == 5:
        meta = dict(zip(("recording", "location", "mode", "device"), tokens[1:]))
    return patient, meta


# ----------------------------------------------------------------------------- detection


def _label_dirs(tree: _Tree) -> dict[str, str]:
    """Immediate subfolders of the root whose names are label texts: {name: label}."""
    found = {}
    for reldir in tree.dirs:
        if reldir and os.sep not in reldir:
            try:
                found[reldir] = normalise_label(reldir)
            except ValueError:
                pass
    return found


def _in_dir(reldir: str, top: str) -> bool:
    return reldir == top or reldir.startswith(top + os.sep)


def _read_text(path: str) -> str:
    with open_regular(path, "r", encoding="utf-8-sig") as f:
        return f.read()


def _delimiter(first_line: str) -> str:
    """Whichever of ``,`` ``;`` and tab occurs most in a CSV's first line (``,`` on a tie), so
    files saved by spreadsheets in any locale read."""
    return max(",;\t", key=first_line.count)  # max() keeps the first of equal counts


def _csv_header(path: str) -> list[str]:
    """The header fields of a CSV file, read from its first line only (undecodable bytes are
    replaced, so a manifest with a bad row is still recognised and then refused by name)."""
    with open_regular(path, "rb") as f:
        first = f.readline(65536).decode("utf-8-sig", errors="replace").rstrip("\r\n")
    return next(csv.reader([first], delimiter=_delimiter(first)), [])


def _csv_rows(path: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of a UTF-8 CSV file (with or without a BOM), the delimiter
    from :func:`_delimiter`. Raises OSError, UnicodeDecodeError or csv.Error."""
    with open_regular(path, "r", encoding="utf-8-sig", newline="") as f:
        first = f.readline()
        f.seek(0)
        reader = csv.reader(f, delimiter=_delimiter(first))
        for fields in reader:
            yield reader.line_num, fields


def _csv_columns(header: list[str]) -> dict[str, int]:
    """Column index by lower-case, stripped header name."""
    return {name.strip().lower(): i for i, name in enumerate(header)}


#: Columns of the results lungapp itself exports (``predict --format csv``, the Review
#: list's Export CSV): such a file has ``file`` and ``label`` columns too, but its labels
#: are the model's answers, not the truth, so it is never read as a manifest.
_RESULT_COLUMNS = frozenset({"abnormal_probability", "decision"})


def _root_csvs(tree: _Tree) -> Iterator[tuple[str, dict[str, int]]]:
    """``(name, columns)`` of the root's readable .csv files."""
    for _, _, _, name in tree.files((".csv",), reldir=""):
        try:
            yield name, _csv_columns(_csv_header(tree.path("", name)))
        except (OSError, csv.Error):
            continue


def _same_label(a: str, b: str) -> bool:
    """Whether two labels as written in a manifest mean the same ("healthy" and "Normal")."""
    try:
        return normalise_label(a) == normalise_label(b)
    except ValueError:
        return a.strip().casefold() == b.strip().casefold()


def _manifest_csvs(tree: _Tree) -> list[str]:
    """Names of the root's .csv files whose header has ``file`` and ``label`` columns
    (results exported by lungapp left out)."""
    return [name for name, columns in _root_csvs(tree)
            if "file" in columns and "label" in columns and not _RESULT_COLUMNS & columns.keys()]


def _results_csvs(tree: _Tree) -> list[str]:
    """Names of the root's .csv files that are results exported by lungapp."""
    return [name for name, columns in _root_csvs(tree)
            if "file" in columns and _RESULT_COLUMNS & columns.keys()]


def _is_app_sidecar(path: str) -> bool:
    """Whether ``path`` is the sidecar lungapp's recorder writes beside a recording, still
    unlabelled (it has the recorder's keys and an empty record_annotation)."""
    try:
        with open_regular(path, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError):
        return False
    return (isinstance(data, dict) and "app_version" in data and "device" in data
            and not data.get("record_annotation"))


def _only_app_sidecars(tree: _Tree) -> bool:
    """Whether every .json beside an audio file is an unlabelled recorder sidecar."""
    audio = _audio_extensions()
    jsons = [tree.path(reldir, name) for reldir, stem, _, name in tree.files((".json",))
             if any(s in tree.dirs[reldir][stem] for s in audio)]
    return bool(jsons) and all(_is_app_sidecar(p) for p in jsons)


def _detect(tree: _Tree) -> dict[str, str]:
    """Layouts whose signature the folder shows: {layout: evidence}."""
    audio = _audio_extensions()
    found: dict[str, str] = {}
    n_json = n_txt_audio = n_txt_image = 0
    for reldir, stem, suffix, _ in tree.files((".json", ".txt")):
        by_suffix = tree.dirs[reldir][stem]
        has_audio = any(s in by_suffix for s in audio)
        if suffix == ".json" and has_audio:
            n_json += 1
        elif suffix == ".txt":
            n_txt_audio += has_audio
            n_txt_image += any(s in by_suffix for s in IMAGE_EXTENSIONS)
    if n_json:
        found["sprsound"] = f"{n_json} audio files with a .json beside them"
    if n_txt_audio:
        found["icbhi"] = f"{n_txt_audio} audio files with a .txt beside them"
    label_dirs = _label_dirs(tree)
    n_in_label_dirs = sum(
        1 for reldir, _, suffix, _ in tree.files(audio + IMAGE_EXTENSIONS)
        if any(_in_dir(reldir, top) for top in label_dirs))
    if n_in_label_dirs:
        found["class-folders"] = (f"label subfolders {', '.join(sorted(label_dirs))} "
                                  f"with {n_in_label_dirs} files")
    manifests = _manifest_csvs(tree)
    if manifests:
        found["csv"] = f"manifest {', '.join(manifests)}"
    if n_txt_image or (tree.has_seed_labels_json() and next(tree.files(IMAGE_EXTENSIONS), None)):
        found["seed-images"] = (f"{n_txt_image} images with a .txt beside them" if n_txt_image
                                else f"images and {SEED_LABELS_JSON}")
    return found


def detect_layout(path: str | os.PathLike) -> str:
    """The layout :func:`read_folder` would use for this folder.

    Raises:
        DatasetError: missing path, not a folder, empty, no known layout, or mixed layouts.
    """
    root = _check_root(path)
    return _detect_one(_scan(root))


def _detect_one(tree: _Tree) -> str:
    if tree.n_files == 0:
        raise DatasetError("the folder is empty: no files in it or its subfolders", tree.root)
    found = _detect(tree)
    if len(found) > 1 and "sprsound" in found and _only_app_sidecars(tree):
        del found["sprsound"]  # recordings made by lungapp, with their sidecars, not labels
    if not found:
        expected = "; ".join(f"{name}: {text}" for name, text in _LAYOUT_HELP.items())
        raise DatasetError(f"no known dataset layout: found {tree.describe()}. "
                           f"Expected one of: {expected}", tree.root)
    if len(found) > 1:
        listed = "; ".join(f"{name} ({evidence})" for name, evidence in found.items())
        raise DatasetError(f"the folder mixes dataset layouts: {listed}. Keep one layout per "
                           "folder, or choose the layout explicitly", tree.root)
    return next(iter(found))


# ----------------------------------------------------------------------------- readers

_Result = tuple[list[Example], list[tuple[str, str]], list[str]]


def _read_sprsound(tree: _Tree) -> _Result:
    audio = _audio_extensions()
    examples, problems, warnings = [], [], []
    unlabelled: list[str] = []
    for reldir, stem, _, name in tree.files((".json",)):
        json_path = tree.path(reldir, name)
        audio_name = tree.sibling(reldir, stem, audio)
        if audio_name is None:
            problems.append((json_path, f"no audio file beside it ({stem}{_suffix_list(audio)})"))
            continue
        if _shared(tree, reldir, stem, audio, json_path, problems):
            continue
        try:
            with open_regular(json_path, "rb") as f:
                data = json.load(f)
        except OSError as err:
            problems.append((json_path, f"cannot read it ({err.strerror or err})"))
            continue
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            problems.append((json_path, f"not valid JSON ({err})"))
            continue
        except RecursionError:
            problems.append((json_path, "not valid JSON (nested too deeply)"))
            continue
        if is_unlabelled(data):
            unlabelled.append(os.path.join(reldir, audio_name))
            continue
        try:
            label, events = parse_sprsound_annotation(data)
        except ValueError as err:
            problems.append((json_path, str(err)))
            continue
        patient, meta = sprsound_name_info(stem)
        examples.append(Example(tree.path(reldir, audio_name), label, patient, events, "audio",
                                meta))
    for reldir, stem, _, name in tree.files(audio):
        if ".json" not in tree.dirs[reldir][stem]:
            problems.append((tree.path(reldir, name), f"no annotation {stem}.json beside it"))
    if unlabelled:
        listed = ", ".join(unlabelled[:5]) + (", ..." if len(unlabelled) > 5 else "")
        warnings.append(f"{len(unlabelled)} recordings not labelled yet (empty "
                        f"record_annotation) left out: {listed}; label them in Review")
    return examples, problems, warnings


def _shared(tree: _Tree, reldir: str, stem: str, audio: tuple[str, ...], label_path: str,
            problems: list[tuple[str, str]]) -> bool:
    """Whether two recordings (``X.wav`` and ``X.flac``) sit beside one label file: which
    one the labels are of is not known, so neither is taken (said in ``problems``)."""
    names = tree.siblings(reldir, stem, audio)
    if len(names) > 1:
        problems.append((label_path, f"labels of which recording? {' and '.join(names)} both sit beside "
                                     "it: keep one, or give each a name of its own"))
    return len(names) > 1


def is_unlabelled(data: object) -> bool:
    """Whether a decoded SPRSound sidecar is one not labelled yet: an empty (or null)
    ``record_annotation``, what the app writes for a new recording. Such a recording is left
    out with a warning, not counted as an unreadable file."""
    if not isinstance(data, dict) or "record_annotation" not in data:
        return False
    label = data["record_annotation"]
    return label is None or (isinstance(label, str) and not label.strip())


def _read_icbhi(tree: _Tree) -> _Result:
    audio = _audio_extensions()
    examples, problems, warnings = [], [], []
    for reldir, stem, _, name in tree.files((".txt",)):
        txt_path = tree.path(reldir, name)
        audio_name = tree.sibling(reldir, stem, audio)
        try:
            cycles = parse_icbhi_cycles(_read_text(txt_path))
        except OSError as err:
            problems.append((txt_path, f"cannot read it ({err.strerror or err})"))
            continue
        except (UnicodeDecodeError, ValueError) as err:
            if audio_name is not None:  # an annotation that is broken
                problems.append((txt_path, f"not an ICBHI annotation: {err}"))
            # else: one of ICBHI's extra text files (diagnoses, demographics, split), not ours
            continue
        if audio_name is None:
            problems.append((txt_path, f"no audio file beside it ({stem}{_suffix_list(audio)})"))
            continue
        if _shared(tree, reldir, stem, audio, txt_path, problems):
            continue
        patient, meta = icbhi_name_info(stem)
        examples.append(Example(tree.path(reldir, audio_name), icbhi_label(cycles), patient,
                                cycles, "audio", meta))
    for reldir, stem, _, name in tree.files(audio):
        if ".txt" not in tree.dirs[reldir][stem]:
            problems.append((tree.path(reldir, name), f"no annotation {stem}.txt beside it"))
    return examples, problems, warnings


def _read_class_folders(tree: _Tree) -> _Result:
    audio = _audio_extensions()
    label_dirs = _label_dirs(tree)
    warnings: list[str] = []
    audio_files, image_files, other, outside = [], [], 0, 0
    for reldir, _, suffix, name in tree.files():
        top = reldir.split(os.sep, 1)[0] if reldir else ""
        if top not in label_dirs:
            outside += 1
        elif suffix in audio:
            audio_files.append((label_dirs[top], tree.path(reldir, name)))
        elif suffix in IMAGE_EXTENSIONS:
            image_files.append((label_dirs[top], tree.path(reldir, name)))
        else:
            other += 1
    if outside:
        warnings.append(f"ignored {outside} files outside the label folders "
                        f"({', '.join(sorted(label_dirs))})")
    if audio_files and image_files:
        warnings.append(f"ignored {len(image_files)} image files: the label folders hold audio")
    if other:
        warnings.append(f"ignored {other} files in the label folders that are neither audio "
                        "nor images")
    kind, files = ("audio", audio_files) if audio_files else ("image", image_files)
    examples = [Example(path, label, None, (), kind) for label, path in files]
    return examples, [], warnings


def _file_kind(path: str) -> str | None:
    suffix = os.path.splitext(path)[1].lower()
    if suffix in _audio_extensions():
        return "audio"
    return "image" if suffix in IMAGE_EXTENSIONS else None


def _read_csv(tree: _Tree) -> _Result:
    manifests = _manifest_csvs(tree)
    if not manifests:
        raise DatasetError("no .csv manifest with 'file' and 'label' columns in the folder",
                           tree.root)
    if len(manifests) > 1:
        raise DatasetError(f"several CSV manifests with 'file' and 'label' columns "
                           f"({', '.join(manifests)}): keep one", tree.root)
    csv_path = tree.path("", manifests[0])
    examples, problems, warnings = [], [], []
    seen: dict[str, tuple[int, str]] = {}  # path -> (line, label as written)
    conflicting: set[str] = set()
    try:
        rows = _csv_rows(csv_path)
        _, header = next(rows)
        columns = _csv_columns(header)
        i_file, i_label, i_patient = columns["file"], columns["label"], columns.get("patient")
        extra = {name.strip(): i for i, name in enumerate(header)
                 if i not in (i_file, i_label, i_patient) and name.strip()}
        for line, fields in rows:
            if not any(f.strip() for f in fields):
                continue
            where = f"{csv_path}:{line}"
            cell = fields[i_file].strip() if i_file < len(fields) else ""
            if not cell:
                problems.append((where, "no file name in the 'file' column"))
                continue
            path = os.path.normpath(os.path.join(tree.root, cell))
            rel = os.path.relpath(path, tree.root)
            if os.path.isabs(cell) or rel == os.pardir or rel.startswith(os.pardir + os.sep):
                # A manifest describes its own folder: a row reaching elsewhere would read
                # (and, in training, publish facts about) files the user did not hand over.
                problems.append((where, f"{cell!r} is outside the manifest's folder: list files "
                                        "inside it, by their path relative to it"))
                continue
            raw_label = (fields[i_label] if i_label < len(fields) else "").strip()
            if path in seen:
                first, first_label = seen[path]
                if _same_label(first_label, raw_label):
                    problems.append((path, f"listed twice in {manifests[0]} (lines {first} and {line})"))
                else:  # which label is right cannot be told: the file is left out
                    problems.append((path, f"listed twice in {manifests[0]} with different labels "
                                           f"({first_label!r} on line {first}, {raw_label!r} on line "
                                           f"{line}): left out"))
                    conflicting.add(path)
                continue
            seen[path] = (line, raw_label)
            if not os.path.isfile(path):
                problems.append((path, f"listed in {manifests[0]} (line {line}) but not found"))
                continue
            kind = _file_kind(path)
            if kind is None:
                problems.append((path, "not an audio or image file"))
                continue
            try:
                label = normalise_label(fields[i_label] if i_label < len(fields) else "")
            except ValueError as err:
                problems.append((path, f"{manifests[0]} line {line}: {err}"))
                continue
            patient = None
            if i_patient is not None and i_patient < len(fields):
                patient = fields[i_patient].strip() or None
            meta = {k: fields[i].strip() for k, i in extra.items() if i < len(fields)}
            examples.append(Example(path, label, patient, (), kind, meta))
    except UnicodeDecodeError as err:
        raise DatasetError(f"cannot read the manifest: not UTF-8 text ({err}); save it as "
                           "'CSV UTF-8'", csv_path) from None
    except (OSError, csv.Error) as err:
        raise DatasetError(f"cannot read the manifest: {err}", csv_path) from None
    return [e for e in examples if e.path not in conflicting], problems, warnings


def _seed_labels_json(path: str, root: str) -> dict[str, tuple[str, str]]:
    """``{absolute image path: (label text, where)}`` from a seed ``labels.json``: a list of
    ``{"file", "label"}`` objects or an object ``{file: label}``; paths relative to ``root``.
    Raises DatasetError when the file as a whole is unusable."""
    try:
        with open_regular(path, "rb") as f:
            data = json.load(f)
    except OSError as err:
        raise DatasetError(f"cannot read it ({err.strerror or err})", path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"not valid JSON ({err})", path) from None
    except RecursionError:
        raise DatasetError("not valid JSON (nested too deeply)", path) from None
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list):
        pairs = []
        for i, item in enumerate(data, start=1):
            if not (isinstance(item, dict) and isinstance(item.get("file"), str)
                    and "label" in item):
                raise DatasetError(f"entry {i} is not an object with 'file' and 'label': "
                                   f"{item!r}", path)
            pairs.append((item["file"], item["label"]))
    else:
        raise DatasetError("expected a list of {\"file\", \"label\"} objects or an object "
                           "{file: label}", path)
    name = os.path.basename(path)
    return {os.path.normpath(os.path.join(root, file)): (label, name) for file, label in pairs}


def _read_seed_images(tree: _Tree) -> _Result:
    examples, problems, warnings = [], [], []
    from_json: dict[str, tuple[str, str]] = {}
    if tree.has_seed_labels_json():
        from_json = _seed_labels_json(tree.path("", SEED_LABELS_JSON), tree.root)
    images = {tree.path(reldir, name): (reldir, stem)
              for reldir, stem, _, name in tree.files(IMAGE_EXTENSIONS)}
    for path, (_label_text, source) in from_json.items():
        if path not in images:
            reason = ("not an image file" if os.path.isfile(path)
                      else "listed there but not found")
            problems.append((path, f"{source}: {reason}"))
    for path, (reldir, stem) in images.items():
        labels = []  # (label, source)
        if path in from_json:
            text, source = from_json[path]
            try:
                labels.append((normalise_label(text), source))
            except ValueError as err:
                problems.append((path, f"{source}: {err}"))
                continue
        if ".txt" in tree.dirs[reldir][stem]:
            txt_name = tree.dirs[reldir][stem][".txt"]
            try:
                labels.append((normalise_label(_read_text(tree.path(reldir, txt_name)).strip()),
                               txt_name))
            except OSError as err:
                problems.append((path, f"cannot read {txt_name} ({err.strerror or err})"))
                continue
            except (UnicodeDecodeError, ValueError) as err:
                problems.append((path, f"{txt_name}: {err}"))
                continue
        if not labels:
            problems.append((path, f"no label: no {stem}.txt beside it"
                                   + (f" and not in {SEED_LABELS_JSON}" if from_json else "")))
            continue
        if len({label for label, _ in labels}) > 1:
            problems.append((path, " but ".join(f"{src} says {label}" for label, src in labels)))
            continue
        examples.append(Example(path, labels[0][0], None, (), "image"))
    for reldir, stem, _, name in tree.files((".txt",)):
        by_suffix = tree.dirs[reldir][stem]
        if any(s in by_suffix for s in IMAGE_EXTENSIONS):
            continue
        txt_path = tree.path(reldir, name)
        try:
            normalise_label(_read_text(txt_path).strip())
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # a note, not a label file
        problems.append((txt_path, f"label file with no image beside it "
                                   f"({stem}{_suffix_list(IMAGE_EXTENSIONS)})"))
    return examples, problems, warnings


_READERS: dict[str, Callable[[_Tree], _Result]] = {
    "sprsound": _read_sprsound,
    "icbhi": _read_icbhi,
    "class-folders": _read_class_folders,
    "csv": _read_csv,
    "seed-images": _read_seed_images,
}


def read_folder(path: str | os.PathLike, layout: str | None = None) -> Dataset:
    """Read a labelled folder into a :class:`Dataset` (labels and file paths only; no audio
    is decoded).

    Args:
        path: the folder.
        layout: one of :data:`LAYOUTS`, or None to detect it from the folder's content.

    Returns:
        The dataset, examples sorted by path; skipped files are in ``problems``.

    Raises:
        DatasetError: the path is missing or not a folder; the folder is empty, matches no
            layout or several (when detecting), its manifest is unreadable, it mixes audio and
            image examples, or it has no usable example (the message cites the first problems).
    """
    if layout is not None and layout not in LAYOUTS:
        raise DatasetError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}",
                           os.fspath(path))
    root = _check_root(path)
    tree = _scan(root)
    if layout is None:
        layout = _detect_one(tree)
    examples, problems, warnings = _READERS[layout](tree)
    examples.sort(key=lambda e: e.path)
    problems = sorted(tree.problems + problems)
    warnings = tree.warnings + [f"ignored {name}: results exported by lungapp, not a manifest"
                                for name in _results_csvs(tree)] + warnings
    if not examples:
        first = "; ".join(f"{os.path.relpath(f, root)}: {why}" for f, why in problems[:3])
        detail = f" ({len(problems)} files skipped: {first}{'; ...' if len(problems) > 3 else ''})"
        raise DatasetError(f"no usable {layout} examples in the folder"
                           f"{detail if problems else ''}", root)
    kinds = Counter(e.kind for e in examples)
    if len(kinds) > 1:
        raise DatasetError(f"the folder mixes {kinds['audio']} audio files and {kinds['image']} "
                           "images: a dataset holds one kind", root)
    n_abnormal = sum(e.label == ABNORMAL for e in examples)
    if n_abnormal and any(e.label in (CAS, DAS, BOTH) for e in examples):
        warnings.append(f"{n_abnormal} examples are labelled only '{ABNORMAL}': they can be used "
                        "for normal/abnormal tasks but not for CAS/DAS classes")
    return Dataset(root, layout, examples, problems, warnings)
