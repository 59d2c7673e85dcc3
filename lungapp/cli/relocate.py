"""``lungapp relocate``: list recordings whose file was moved or deleted, and find them again."""

from __future__ import annotations

import argparse
import os

from lungapp.cli.common import EXIT_ERROR, EXIT_OK, err

HELP = "list recordings whose files are missing; find them in a folder (--search) or give one's new path"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--search", metavar="FOLDER", help="look for the missing files (same name) under FOLDER")
    p.add_argument("--recording", metavar="UID", help="the recording to point at --to")
    p.add_argument("--to", metavar="FILE", help="the new path of --recording")


def run(args) -> int:
    """Refused relocations (another recording's file, not audio) are said in one line each;
    with --search the others go on."""
    from lungapp.errors import LungappError
    from lungapp.store import Store, StoreError, StoreFileError

    if args.to and not args.recording:
        raise LungappError("--to needs --recording UID (which recording the file is)")
    if args.recording and not args.to:
        raise LungappError("--recording needs --to FILE (the recording's new path)")
    if args.search and not os.path.isdir(args.search):
        raise LungappError("no such folder" if not os.path.exists(args.search) else "not a folder",
                           args.search)
    with Store() as store:
        if args.recording:
            if os.path.isdir(args.to):
                raise LungappError("is a folder: give the recording's file", args.to)
            store.check()  # a damaged database is said, not written to
            store.relocate(args.recording, args.to)
            print(f"recording {args.recording} now at {store.recording(args.recording)['path']}")
            return EXIT_OK
        missing = store.missing_recordings()
        found, why_not = _search(args.search, missing) if args.search else ({}, {})
        if found:
            store.check()
        relocated = 0
        for r in missing:
            if r["uid"] in found:
                try:
                    store.relocate(r["uid"], found[r["uid"]])
                except StoreFileError:
                    raise  # the database itself: nothing more can be done
                except StoreError as exc:
                    print(f"{r['uid']}  missing  {r['path']}")
                    err(f"{r['uid']}  not relocated: {exc}")
                    continue
                relocated += 1
                print(f"{r['uid']}  found  {found[r['uid']]}")
            else:
                print(f"{r['uid']}  missing  {r['path']}")
                if r["uid"] in why_not:
                    err(f"{r['uid']}  not relocated: {why_not[r['uid']]}")
    return EXIT_ERROR if relocated < len(missing) else EXIT_OK


def _search(folder: str, missing: list[dict]) -> tuple[dict[str, str], dict[str, str]]:
    """``({uid: new path}, {uid: why not})`` for the missing recordings whose file name
    appears once under ``folder``. A name that two missing recordings share is taken for
    neither (it could be either's: patients' files are often named alike). Whether a file
    found is the recording's audio (its duration and sample rate) is
    :meth:`~lungapp.store.Store.relocate`'s check."""
    from collections import Counter

    by_name: dict[str, list[str]] = {}
    for root, _, files in os.walk(folder):
        for f in files:
            by_name.setdefault(f, []).append(os.path.join(root, f))

    def tail(path: str) -> str:  # the file's name with its folder's: P2/left.flac
        return os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))

    names = Counter(os.path.basename(r["path"]) for r in missing)
    tails = Counter(tail(r["path"]) for r in missing)
    found, why_not = {}, {}
    for r in missing:
        name = os.path.basename(r["path"])
        there = by_name.get(name, [])
        if not there:
            continue
        ambiguous = len(there) > 1 or names[name] > 1
        if ambiguous:  # the folder's name may still tell which, if only one pair matches
            same = [f for f in there if tail(f) == tail(r["path"])]
            if len(same) == 1 and tails[tail(r["path"])] == 1:
                there, ambiguous = same, False
        if ambiguous:
            why_not[r["uid"]] = (f"{name} could be any of {max(len(there), names[name])} files or recordings "
                                 "of that name: give it with --recording UID --to FILE")
            continue
        found[r["uid"]] = there[0]
    return found, why_not
