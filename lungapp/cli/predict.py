"""``lungapp predict PATH...``: analyse recordings (files, or folders searched recursively)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys

from lungapp.cli.common import EXIT_ERROR, EXIT_OK, err, load_predictor
from lungapp.errors import LungappError

HELP = "analyse recordings (files or folders, recursively)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the active model)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")


def collect_inputs(paths: list[str], extensions: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """Expand files and folders (recursively) into (file, problem) pairs, in order.

    A folder with no audio, a sub-folder that cannot be read and a path the system refuses
    (e.g. a name too long) each become a (path, problem) pair: nothing is skipped silently."""
    out: list[tuple[str, str | None]] = []
    for p in paths:
        try:
            is_dir = os.path.isdir(p)
        except (OSError, ValueError) as exc:  # isdir swallows most errors, not all
            out.append((p, f"cannot access this path ({getattr(exc, 'strerror', None) or exc})"))
            continue
        if not is_dir:
            out.append((p, None))
            continue
        found, problems = _walk(p, extensions)
        if not found and not problems:
            out.append((p, f"no audio files ({', '.join(extensions)}) in this folder"))
        out.extend((f, None) for f in found)
        out.extend(problems)
    return out


def _walk(folder: str, extensions: tuple[str, ...]) -> tuple[list[str], list[tuple[str, str]]]:
    """Audio files under ``folder`` (sorted; hidden files and folders left out) and the
    sub-folders that could not be read, with the reason. Linked sub-folders are followed
    (as linked files are taken), each real folder once (a link back up ends there)."""
    problems: list[tuple[str, str]] = []

    def unreadable(exc: OSError) -> None:
        problems.append((exc.filename or folder, f"cannot read this folder ({exc.strerror or exc})"))

    found, seen = [], set()
    for root, dirs, files in os.walk(folder, onerror=unreadable, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in files
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in extensions]
    return sorted(found), problems


def run(args) -> int:
    try:
        predictor = load_predictor(args.model)
    except LungappError as exc:
        err(str(exc))
        return EXIT_ERROR
    from lungapp.audio import AUDIO_EXTENSIONS

    exts = (".png", ".jpg", ".jpeg") if predictor.card.input_kind == "image" else AUDIO_EXTENSIONS
    results = []
    for f, problem in collect_inputs(args.paths, exts):
        if problem:
            results.append({"file": f, "error": problem})
            continue
        try:
            results.append(predictor.predict_file(f).to_dict())
        except LungappError as exc:
            results.append({"file": f, "error": exc.problem})
    if not results:
        err("nothing to analyse")
        return EXIT_ERROR
    _print_predictions(results, args.format, predictor.card.classes)
    return EXIT_ERROR if any("error" in r for r in results) else EXIT_OK


def _print_predictions(results: list[dict], fmt: str, classes: list[str]) -> None:
    if fmt == "json":
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["file", "duration_s", "label", "decision", "abnormal_probability",
                    *[f"p_{c}" for c in classes], "quality", "borderline", "abnormal_ranges",
                    "truncated", "unlike_training", "error"])
        for r in results:
            if "error" in r:
                w.writerow([r["file"], "", "", "", "", *[""] * len(classes), "", "", "", "", "", r["error"]])
            else:
                q = r.get("quality") or {}
                # A refused recording has no probabilities, as in the table ("-"); the JSON
                # keeps the model's raw output beside the verdict.
                judged = q.get("level") != "refuse"
                w.writerow([r["file"], r["duration_s"], r["label"], r["decision"],
                            f"{r['abnormal_probability']:.4f}" if judged else "",
                            *[f"{r['probabilities'][c]:.4f}" if judged else "" for c in classes],
                            q.get("reason", ""), int(bool(r.get("borderline"))),
                            " ".join(f"{a:g}-{b:g}" for a, b in r.get("abnormal_ranges") or []),
                            _truncated_cell(r.get("truncated")), int(bool(r.get("unfamiliar"))), ""])
        sys.stdout.write(buf.getvalue())
        return
    width = min(60, max(len("file"), *(len(r["file"]) for r in results)))
    print(f"{'file':<{width}}  {'dur (s)':>7}  {'p(abnormal)':>11}  result")
    for r in results:
        name = r["file"] if len(r["file"]) <= width else "..." + r["file"][-(width - 3):]
        if "error" in r:
            print(f"{name:<{width}}  {'':>7}  {'':>11}  ERROR: {r['error']}")
        else:
            q = r.get("quality") or {}
            refused = q.get("level") == "refuse"
            # A refused recording's probability means nothing: the table leaves it out (JSON
            # and CSV keep it, for research).
            p = "-" if refused else f"{r['abnormal_probability']:.3f}"
            print(f"{name:<{width}}  {r['duration_s']:>7.1f}  {p:>11}  {r['label']}")
            if q.get("level") in ("warn", "refuse"):
                why = q.get("reason", "")
                line = f"Not judged: {why}" if refused else why[:1].upper() + why[1:]
                print(f"{'':<{width}}  {'':>7}  {'':>11}  {line}")
            for note in r.get("notes") or []:
                print(f"{'':<{width}}  {'':>7}  {'':>11}  {note}")
    m = next((r["model"] for r in results if "model" in r), None)
    if m:
        print(f"model: {m['name']} {m['version']} (decision threshold "
              f"{next(r['threshold'] for r in results if 'threshold' in r):.3f}); "
              "decision support only, not a diagnostic device")
    n_unlike = sum(bool(r.get("unfamiliar")) for r in results)
    if n_unlike:
        print(f"{n_unlike} of {len(results)} unlike the training recordings: if you record with "
              "that stethoscope regularly, `lungapp recalibrate FOLDER --out DIR` fits the "
              "model's threshold to it from your own labelled recordings")


def _truncated_cell(t: dict | None) -> str:
    """"15.0/5.0" (declared/present seconds) for a truncated file, else ""."""
    return f"{t['declared_s']:.1f}/{t['present_s']:.1f}" if t else ""
