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
    from lungapp.store import Store, StoreError, StoreFileError

    with Store() as store:
        if args.recording:
            if not args.to:
                raise SystemExit("lungapp relocate: --recording needs --to FILE")
            store.check()  # a damaged database is said, not written to
            store.relocate(args.recording, args.to)
            print(f"recording {args.recording} now at {store.recording(args.recording)['path']}")
            return EXIT_OK
        missing = store.missing_recordings()
        found = _search(args.search, missing) if args.search else {}
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
                    err(f"{r['uid']}  not relocated: {exc}")
                    continue
                relocated += 1
                print(f"{r['uid']}  found  {found[r['uid']]}")
            else:
                print(f"{r['uid']}  missing  {r['path']}")
    return EXIT_ERROR if relocated < len(missing) else EXIT_OK


def _search(folder: str, missing: list[dict]) -> dict[str, str]:
    """{uid: new path} for the missing recordings whose file name appears once under folder."""
    by_name: dict[str, list[str]] = {}
    for root, _, files in os.walk(folder):
        for f in files:
            by_name.setdefault(f, []).append(os.path.join(root, f))
    return {r["uid"]: by_name[n][0] for r in missing
            if len(by_name.get(n := os.path.basename(r["path"]), [])) == 1}
