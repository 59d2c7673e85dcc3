"""Export and import of labels: SPRSound sidecars, ICBHI cycle files, Audacity label tracks,
one CSV of events, and events as WAV clips.

Exported files never make a labelled folder unreadable to training: they go into a separate
folder by default (``FOLDER-labels-FORMAT`` beside it), and into the recordings' own folder
only under names the readers ignore (``NAME.labels.txt`` label tracks, ``events.csv`` without
the manifest's ``file``/``label`` columns). ICBHI files (``NAME.txt``) and clips (audio) would
add a second layout there, so they are refused in the recordings' folder.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from pathlib import Path

from lungapp.annotation.folder import Item, annotated, check_folder
from lungapp.annotation.model import Annotation, Region, now_iso
from lungapp.annotation.sidecar import Sidecar, annotation_to_json
from lungapp.data.labels import event_flags, normalise_event_type
from lungapp.data.readers import icbhi_label, parse_icbhi_cycles
from lungapp.errors import LungappError
from lungapp.fsutil import atomic_write_json, atomic_write_text

FORMATS = ("sprsound", "icbhi", "audacity", "csv")
AUDACITY_SUFFIX = ".labels.txt"
CSV_NAME = "events.csv"
CSV_COLUMNS = ("recording", "record_label", "start_s", "end_s", "type", "note", "author", "time",
               "suggested", "accepted")


def default_out(folder: Path, fmt: str) -> Path:
    """``FOLDER-labels-FORMAT`` beside ``folder``."""
    if not folder.name:  # the root folder has nothing beside it
        raise LungappError("an export cannot go beside the root folder: choose a folder with --out",
                           folder)
    return folder.with_name(f"{folder.name}-labels-{fmt}")


# ----------------------------------------------------------------------------- writers


def audacity_text(regions: list[Region]) -> str:
    """An Audacity label track: ``start<TAB>end<TAB>label`` (seconds) a line; the label is the
    event type, then `` | note`` when there is one."""
    lines = []
    for r in sorted(regions, key=lambda r: (r.start_s, r.end_s)):
        note = " ".join(r.note.split())  # a tab or a line break would end the label's line
        label = f"{r.type} | {note}" if note else r.type
        lines.append(f"{r.start_s:.6f}\t{r.end_s:.6f}\t{label}")
    return "".join(line + "\n" for line in lines)


def icbhi_text(regions: list[Region]) -> str:
    """ICBHI cycle lines ``start end crackles wheezes`` (tab-separated) from the regions'
    types (a wheeze-like type sets the wheeze flag, a crackle the crackle flag)."""
    lines = []
    for r in sorted(regions, key=lambda r: (r.start_s, r.end_s)):
        cas, das = event_flags(r.type)
        lines.append(f"{r.start_s:.3f}\t{r.end_s:.3f}\t{int(das)}\t{int(cas)}")
    return "".join(line + "\n" for line in lines)


def csv_rows(items: list[Item]) -> list[list[str]]:
    """A row per event; a recording without events gets one row with its record label and
    the event's columns empty (its label is not lost)."""
    rows = []
    for item in items:
        doc = item.sidecar.doc
        for r in sorted(doc.regions, key=lambda r: (r.start_s, r.end_s)):
            rows.append([item.rel, doc.record_label or "", f"{r.start_s:.3f}", f"{r.end_s:.3f}",
                         r.type, r.note, r.author, r.time, str(int(r.suggested)),
                         str(int(r.accepted))])
        if not doc.regions:
            rows.append([item.rel, doc.record_label or ""] + [""] * (len(CSV_COLUMNS) - 2))
    return rows


def clip_targets(item: Item, out: Path) -> list[tuple[Region, Path]]:
    """The confirmed regions of ``item`` in time order, each with its clip's path under
    ``out`` (``NAME_NN_TYPE.wav``)."""
    stem = Path(item.rel).with_suffix("")
    regions = sorted(item.sidecar.doc.confirmed_regions(), key=lambda r: (r.start_s, r.end_s))
    return [(r, out / stem.parent / f"{stem.name}_{n:02d}_{r.type.replace(' ', '_')}.wav")
            for n, r in enumerate(regions, start=1)]


def write_clips(item: Item, out: Path, skipped: list[tuple[str, str]] | None = None) -> list[Path]:
    """Each confirmed region of ``item`` as a WAV clip ``NAME_NN_TYPE.wav`` under ``out``
    (new files only: an existing one raises FileExistsError and is left as it is).

    What cannot be clipped goes to ``skipped`` as ``(file, reason)`` (without it, raises
    LungappError): a recording that cannot be decoded (no clip of it), a region that starts
    after the recording's end (no clip). A region that runs past the end is clipped at the
    end, and ``skipped`` says so."""
    import soundfile as sf

    from lungapp.audio import load_audio
    from lungapp.fsutil import atomic_write_bytes

    def note(reason: str) -> None:
        if skipped is None:
            raise LungappError(reason, item.sidecar.audio)
        skipped.append((str(item.sidecar.audio), reason))

    targets = clip_targets(item, out)
    if not targets:
        return []
    try:
        audio = load_audio(item.sidecar.audio)
    except LungappError as err:
        note(f"no clips: {err.problem}")
        return []
    duration = len(audio.samples) / audio.rate
    written = []
    for n, (r, target) in enumerate(targets, start=1):
        where = f"region {n} ({r.type}, {r.start_s:g}-{r.end_s:g} s)"
        if r.start_s >= duration:
            note(f"{where} starts after the recording's end ({duration:.2f} s): no clip")
            continue
        if r.end_s > duration + END_SLACK_S:
            note(f"{where} runs past the recording's end: its clip {target.name} stops at {duration:.2f} s")
        a, b = int(r.start_s * audio.rate), int(r.end_s * audio.rate)
        clip = audio.samples[a:max(b, a + 1)]
        buf = io.BytesIO()
        sf.write(buf, clip, audio.rate, format="WAV", subtype="PCM_16")
        written.append(atomic_write_bytes(target, buf.getvalue(), overwrite=False))
    return written


def export_labels(folder: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None,
                  clips: bool = False) -> dict:
    """Export the labels of every annotated recording in ``folder`` as ``fmt`` (one of
    :data:`FORMATS`) into ``out`` (default :func:`default_out`). Returns a summary: the
    folder written, the files written, the recordings skipped with a reason (and clips
    that could not be made, or were cut at a recording's end)."""
    root = check_folder(folder)
    if fmt not in FORMATS:
        raise LungappError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}", root)
    target = Path(out).expanduser().resolve() if out else default_out(root, fmt)
    _refuse_same_folder(root, target, fmt, clips)
    items, problems = annotated(root)
    if fmt == "icbhi":  # an ICBHI file without a cycle is not one: say so instead
        problems += [(str(i.sidecar.audio), "no events to write as ICBHI cycles (its record label "
                      "is not exported)") for i in items if not i.sidecar.doc.confirmed_regions()]
        items = [i for i in items if i.sidecar.doc.confirmed_regions()]
    if not items:
        if problems:
            f, why = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise LungappError(f"nothing to export: no recording's labels could be used; "
                               f"{f}: {why}{more}", root)
        raise LungappError("no labelled recordings in the folder (no NAME.json or ICBHI "
                           "NAME.txt beside any recording)", root)
    _refuse_existing(target, _planned(items, target, fmt, clips), default=not out, clips=clips)
    try:
        written = _write_format(items, target, fmt)
        if clips:
            for item in items:
                written += write_clips(item, target / "clips", problems)
    except FileExistsError as exc:  # made by someone else since the check: left as it is
        raise LungappError(f"{exc} (the export stopped there; nothing was replaced)") from None
    return {"folder": str(target), "format": fmt, "recordings": len(items),
            "written": [str(p) for p in written],
            "skipped": [{"file": f, "reason": why} for f, why in problems]}


def _refuse_same_folder(root: Path, target: Path, fmt: str, clips: bool) -> None:
    if target != root and not root.is_relative_to(target) and not target.is_relative_to(root):
        return
    what = {"sprsound": "the sidecars are already there",
            "icbhi": "ICBHI NAME.txt files beside the recordings would mix two layouts and make "
                     "the folder unreadable to training"}.get(fmt)
    if clips:
        what = "clips are audio files without labels and would make the folder unreadable to training"
    if what:
        raise LungappError(f"cannot export {fmt} into the recordings' own folder: {what}; "
                           "choose another folder with --out", target)


#: The file each format writes for a recording ``NAME`` (csv: one file for them all).
_SUFFIX = {"sprsound": ".json", "icbhi": ".txt", "audacity": AUDACITY_SUFFIX}


def _format_target(item: Item, target: Path, fmt: str) -> Path:
    stem = target / Path(item.rel).with_suffix("")
    return stem.with_name(stem.name + _SUFFIX[fmt])


def _planned(items: list[Item], target: Path, fmt: str, clips: bool) -> list[Path]:
    """Every file the export would write, in the order it writes them (a clip twice when two
    recordings would give it: see :func:`_refuse_existing`)."""
    files = [target / CSV_NAME] if fmt == "csv" else [_format_target(i, target, fmt) for i in items]
    files = list(dict.fromkeys(files))  # NAME.wav and NAME.flac share their sidecar: one file
    if clips:
        files += [p for item in items for _, p in clip_targets(item, target / "clips")]
    return files


def _refuse_existing(target: Path, planned: list[Path], *, default: bool, clips: bool) -> None:
    """Refuse, before anything is written, an export that would replace a file or mix with
    an earlier export: an existing file where ``target`` goes; the default folder when it
    already holds anything (an earlier export: its files and the new ones would mix); any
    file the export would write that exists (the first named, all counted); a ``clips``
    folder that is not empty (clips of an earlier export would stay among the new ones); two
    recordings that would give the same clip."""
    twice = next((p for p, n in Counter(planned).items() if n > 1), None)
    if twice is not None:
        raise LungappError(f"two recordings of the folder would give the same clip "
                           f"{twice.relative_to(target)} (same name, another audio format): "
                           "rename one; nothing written", target)
    if target.exists() and not target.is_dir():
        raise LungappError("exists and is not a folder; choose a folder with --out", target)
    if not target.is_dir():
        return
    if default and any(target.iterdir()):
        raise LungappError("already holds an earlier export; nothing written, nothing replaced: "
                           "move or delete it, or choose another folder with --out", target)
    there = [p for p in planned if os.path.lexists(p)]
    if there:
        first = there[0].relative_to(target)
        which = (f"{first} already exists there" if len(planned) == 1 else
                 f"{len(there)} of the {len(planned)} files the export would write already "
                 f"exist{'s' if len(there) == 1 else ''} there (first: {first})")
        raise LungappError(f"{which}; nothing written, nothing replaced: choose a new or empty "
                           "folder with --out, or move them away", target)
    if clips and (target / "clips").is_dir() and any((target / "clips").iterdir()):
        raise LungappError("holds the clips of an earlier export, which would mix with the new "
                           "ones; nothing written: choose a new or empty folder with --out",
                           target / "clips")


def _write_format(items: list[Item], target: Path, fmt: str) -> list[Path]:
    """Write ``items``' labels as ``fmt`` under ``target``: new files only (an existing one
    raises FileExistsError and is left as it is)."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_rows(items))
        return [atomic_write_text(target / CSV_NAME, buf.getvalue(), overwrite=False)]
    written = []
    for item in items:
        path, doc = _format_target(item, target, fmt), item.sidecar.doc
        if path in written:  # NAME.wav and NAME.flac: one sidecar, the same labels
            continue
        if fmt == "sprsound":
            written.append(atomic_write_json(path, annotation_to_json(doc), overwrite=False))
        elif fmt == "icbhi":
            written.append(atomic_write_text(path, icbhi_text(doc.confirmed_regions()), overwrite=False))
        else:  # a label track has no "suggested" mark: pending suggestions are left out
            written.append(atomic_write_text(path, audacity_text(doc.confirmed_regions()), overwrite=False))
    return written


# ----------------------------------------------------------------------------- readers


def parse_audacity(text: str) -> list[Region]:
    """Regions of an Audacity label track (``start<TAB>end<TAB>label`` lines; Audacity's
    spectral-selection lines starting with ``\\`` are ignored). The label is an event type,
    optionally followed by `` | note``. Raises ValueError naming the line."""
    regions = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("\\"):
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"line {n}: expected 'start<TAB>end<TAB>label', got {line.strip()!r}")
        try:
            start, end = float(fields[0]), float(fields[1])
        except ValueError:
            raise ValueError(f"line {n}: the times are not numbers: {line.strip()!r}") from None
        type_text, _, note = fields[2].partition(" | ")
        try:
            type_ = normalise_event_type(type_text.strip())
        except ValueError as err:
            raise ValueError(f"line {n}: {err}") from None
        if not (0 <= start <= end):
            raise ValueError(f"line {n}: the region ends before it starts or starts before 0 s")
        regions.append(Region(start, end, type_, note.strip()))
    return regions


def read_label_file(path: Path) -> tuple[str, list[Region], str | None]:
    """``(format, regions, record label or None)`` of an ICBHI cycle file or an Audacity label
    track. Raises LungappError naming the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise LungappError(f"cannot read it ({err})", path) from None
    try:
        cycles = parse_icbhi_cycles(text)
        regions = [Region(c.start_s, c.end_s, c.type) for c in cycles]
        return "icbhi", regions, icbhi_label(cycles)
    except ValueError:
        pass
    try:
        return "audacity", parse_audacity(text), None
    except ValueError as err:
        raise LungappError(f"neither an ICBHI cycle file nor an Audacity label track: {err}",
                           path) from None


def _audio_for(label_file: Path) -> Path | None:
    from lungapp.audio import AUDIO_EXTENSIONS

    name = label_file.name
    stem = name[: -len(AUDACITY_SUFFIX)] if name.endswith(AUDACITY_SUFFIX) else label_file.stem
    for suffix in AUDIO_EXTENSIONS:
        candidate = label_file.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def import_labels(files: list[str | os.PathLike], author: str = "",
                  audio_dir: str | os.PathLike | None = None) -> list[dict]:
    """Add the regions of ICBHI cycle files and Audacity label tracks to the sidecars of their
    recordings (``NAME.wav`` beside the label file, or in ``audio_dir``); a region already there
    (same times and type) is not added twice, and an ICBHI file's record label is set when
    the recording has none. Returns one ``{"file", "sidecar", "added"}`` per file.

    ``author``: who imports; an annotator's name puts the regions into that annotator's part
    of the sidecar (:class:`~lungapp.annotation.sidecar.Sidecar`), never into another's.
    Every file is read and checked before any sidecar is written: one bad file imports
    nothing."""
    from lungapp.annotation.sidecar import is_person

    planned = []
    for name in files:
        path = Path(name).resolve()
        fmt, regions, label = read_label_file(path)
        audio = _audio_for(Path(audio_dir).resolve() / path.name if audio_dir else path)
        if audio is None:
            raise LungappError("no recording of the same name beside it (NAME.wav/.flac); "
                               "give the recordings' folder with --audio-dir", path)
        cycles = audio.with_suffix(".txt")
        if _is_icbhi_file(cycles):
            where = ("an ICBHI file beside its recording is already read as labels"
                     if cycles == path else f"{audio.name} has ICBHI labels beside it ({cycles.name})")
            raise LungappError(f"{where}; a NAME.json beside it too would mix two layouts and make "
                               "the folder unreadable to training: give a folder holding copies of "
                               "the recordings alone (no NAME.txt) with --audio-dir", path)
        _check_within(path, regions, audio)
        planned.append((path, fmt, regions, label, audio))
    results = []
    for path, fmt, regions, label, audio in planned:
        sidecar = Sidecar(audio, author if is_person(author) else "")
        sidecar.reload()
        added = merge_regions(sidecar.doc, regions, label, author or f"import:{path.name}")
        try:
            sidecar.save()
        except (OSError, LungappError) as err:
            done = (f" (imported before it: {', '.join(r['file'] for r in results)})"
                    if results else " (nothing was imported)")
            text = err.problem if isinstance(err, LungappError) else (err.strerror or str(err))
            raise LungappError(f"cannot write {sidecar.path} ({text}); its labels are as they "
                               f"were{done}", path) from None
        results.append({"file": str(path), "format": fmt, "sidecar": str(sidecar.path),
                        "added": added})
    return results


def _is_icbhi_file(path: Path) -> bool:
    """Whether ``path`` is an ICBHI cycle file (a recording's labels in that layout)."""
    try:
        parse_icbhi_cycles(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return True


#: How far a region may reach past the recording's end (rounding of its times) when imported.
END_SLACK_S = 0.05


def _check_within(path: Path, regions: list[Region], audio: Path) -> None:
    """LungappError naming the label file when one of its regions lies past the end of
    ``audio``: the labels of another recording, or times in other units. Nothing is imported."""
    from lungapp.audio import audio_info

    duration = audio_info(audio).duration_s
    for i, r in enumerate(regions, start=1):
        if r.start_s >= duration or r.end_s > duration + END_SLACK_S:
            raise LungappError(f"region {i} ({r.start_s:g}-{r.end_s:g} s) lies past the end of "
                               f"{audio.name} ({duration:.2f} s): are these the labels of another "
                               "recording, or times in other units? Nothing imported", path)


def merge_regions(doc: Annotation, regions: list[Region], label: str | None, author: str) -> int:
    """Add ``regions`` not already in ``doc`` (same times and type), stamped with ``author``;
    set ``label`` as the record label if ``doc`` has none. A region that matches a pending
    suggestion confirms it: the suggestion is replaced by the region. Returns how many were
    added."""
    def key(r: Region) -> tuple:
        return round(r.start_s, 3), round(r.end_s, 3), r.type

    have = {key(r) for r in doc.regions if not r.pending}
    pending = {key(r): r for r in doc.regions if r.pending}
    stamp = now_iso()
    added = 0
    for r in regions:
        k = key(r)
        if k in have:
            continue
        if k in pending:
            doc.regions.remove(pending.pop(k))
        doc.regions.append(Region(r.start_s, r.end_s, r.type, r.note, author, stamp))
        have.add(k)
        added += 1
    if label and not doc.record_label:
        doc.record_label, doc.record_author, doc.record_time = label, author, stamp
    return added
