"""``lungapp labels``: export, import, compare and collect annotators' labels.

- ``labels export FOLDER --format sprsound|icbhi|audacity|csv [--out DIR] [--clips]``
- ``labels import FILE... [--audio-dir DIR] [--author NAME]``: ICBHI cycle files and Audacity
  label tracks into the recordings' sidecars
- ``labels agreement A B [--tolerance S] [--json]``: Cohen's kappa, event F1, disagreements
  between two annotators' folders; ``labels agreement FOLDER --annotators alice,bob``: the
  same between two annotators who labelled the recordings of one folder
- ``labels collect SRC... --out TRAINFOLDER [--link]``: confirmed recordings into a training
  folder
"""

from __future__ import annotations

import argparse
import json

from lungapp.cli.common import EXIT_OK

HELP = "export, import, compare (agreement) and collect annotators' labels"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="labels_command", metavar="ACTION", required=True)
    e = sub.add_parser("export", help="write a folder's labels as sprsound, icbhi, audacity or csv")
    e.add_argument("folder", metavar="FOLDER")
    e.add_argument("--format", required=True, choices=("sprsound", "icbhi", "audacity", "csv"))
    e.add_argument("--out", metavar="DIR", help="where to write (default: FOLDER-labels-FORMAT "
                                                "beside FOLDER)")
    e.add_argument("--clips", action="store_true", help="also write each event as a WAV clip")
    e.add_argument("--json", action="store_true", help="print JSON")
    i = sub.add_parser("import", help="add ICBHI cycle files or Audacity label tracks to the "
                                      "recordings' sidecars")
    i.add_argument("files", metavar="FILE", nargs="+")
    i.add_argument("--audio-dir", metavar="DIR", help="folder of the recordings (default: beside "
                                                      "each file)")
    i.add_argument("--author", default="", help="who the imported labels are from (an annotator's name puts "
                   "them into that annotator's part of the sidecar)")
    i.add_argument("--json", action="store_true", help="print JSON")
    a = sub.add_parser("agreement", help="compare two annotators' sidecar folders, or two "
                                         "annotators' labels in one folder (--annotators)")
    a.add_argument("a", metavar="A", help="the first annotator's folder (with --annotators: the "
                                          "folder both labelled)")
    a.add_argument("b", metavar="B", nargs="?", help="the second annotator's folder")
    a.add_argument("--annotators", metavar="NAME,NAME",
                   help="compare these two annotators' labels of the recordings in folder A")
    a.add_argument("--tolerance", type=float, default=0.2, metavar="S",
                   help="event onset tolerance in seconds (default 0.2)")
    a.add_argument("--json", action="store_true", help="print JSON")
    c = sub.add_parser("collect", help="copy confirmed recordings and labels into a training folder")
    c.add_argument("sources", metavar="SRC", nargs="+")
    c.add_argument("--out", required=True, metavar="TRAINFOLDER")
    c.add_argument("--link", action="store_true", help="link the audio instead of copying it")
    c.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    return {"export": _export, "import": _import, "agreement": _agreement,
            "collect": _collect}[args.labels_command](args)


def _print(res, as_json: bool, lines: list[str]) -> int:
    print(json.dumps(res, indent=2) if as_json else "\n".join(lines))
    return EXIT_OK


def _skipped(items: list[dict]) -> list[str]:
    return [f"skipped: {s['file']}: {s['reason']}" for s in items]


def _export(args) -> int:
    from lungapp.annotation.formats import export_labels

    res = export_labels(args.folder, args.format, args.out, args.clips)
    return _print(res, args.json, [f"wrote {len(res['written'])} files for {res['recordings']} "
                                   f"recordings ({res['format']}) to {res['folder']}"]
                  + _skipped(res["skipped"]))


def _import(args) -> int:
    from lungapp.annotation.formats import import_labels

    res = import_labels(args.files, args.author, args.audio_dir)
    return _print(res, args.json, [f"{r['file']} ({r['format']}): {r['added']} regions added to "
                                   f"{r['sidecar']}" for r in res])


def _agreement(args) -> int:
    from lungapp.annotation.agreement import agreement, agreement_between, format_report, parse_names
    from lungapp.errors import LungappError

    if args.annotators is not None:
        if args.b is not None:
            raise LungappError("give one folder with --annotators, or two folders without it")
        res = agreement_between(args.a, parse_names(args.annotators), args.tolerance)
    elif args.b is None:
        raise LungappError("give two folders (A B), or one folder and --annotators alice,bob")
    else:
        res = agreement(args.a, args.b, args.tolerance)
    return _print(res, args.json, [format_report(res)])


def _collect(args) -> int:
    from lungapp.annotation.collect import collect

    res = collect(args.sources, args.out, args.link)
    return _print(res, args.json, [f"added {len(res['added'])} recordings to {res['folder']}"]
                  + _skipped(res["skipped"]))
