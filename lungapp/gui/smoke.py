"""``lungapp --smoke-test FILE``: a hidden check of an installed app (packaging/smoke.sh).

Starts the real window exactly as ``lungapp FILE`` does, waits until the Review view
shows the file's result, prints one JSON line and quits: exit status 0 with the result,
1 when the analysis failed, the model did not load or nothing came within the time
limit. The line gives wall-clock times (``time.time()``) of the first paint and of the
result, so a caller that notes when it launched the process measures the cold start.
"""

from __future__ import annotations

import json
import os
import sys
import time

#: The hidden command-line option (not in --help: it is for packaging checks).
OPTION = "--smoke-test"


def run(path: str, timeout_s: float = 120.0) -> int:
    from lungapp.gui.app import create_application, create_window
    from lungapp.gui.workers import wait_all, wait_until

    path = os.path.abspath(path)
    app = create_application([])
    win = create_window([path])
    out: dict = {"file": path}
    win.firstPainted.connect(lambda: out.setdefault("window_shown", time.time()))
    ctx = win.ctx
    ctx.analysisFinished.connect(lambda p, pred: _finished(out, win, p, pred))
    ctx.analysisFailed.connect(lambda p, msg: p == path and out.setdefault("error", msg))
    ctx.modelStateChanged.connect(lambda state, msg: state == "error" and out.setdefault("error", msg))
    if not ctx.is_queued(path):  # auto-analysis may be switched off in the user's settings
        win.review.analyse(path)
    done = wait_until(lambda: "label" in out or "error" in out or _list_error(win, path, out), timeout_s)
    if not done:
        out["error"] = f"no result within {timeout_s:.0f} s"
    out["window_title"] = win.windowTitle()
    win.close()
    wait_all(5000)
    app.processEvents()
    print(json.dumps(out), flush=True)
    return 0 if "label" in out and "window_shown" in out else 1


def _list_error(win, path: str, out: dict) -> bool:
    """The Review list marked the file as failed (e.g. it could not be decoded for display,
    so no analysis was started): that is the smoke test's answer too."""
    from lungapp.gui import file_list as fl

    e = win.review.model.entry(path)
    if e is not None and e.status == fl.ERROR:
        out.setdefault("error", e.error or "the file could not be opened")
        return True
    return False


def _finished(out: dict, win, path: str, prediction) -> None:
    if path != out["file"]:
        return
    # The Review view's slot ran first (connected earlier): the headline is what the user sees.
    out["result"] = time.time()
    out["label"] = prediction.label
    out["headline"] = win.review.result.headline.text()


def main(argv: list[str]) -> int:
    """``argv`` after the option: exactly one file (lungapp.gui.app.main has checked the display)."""
    if len(argv) != 1:
        print(f"usage: lungapp {OPTION} FILE", file=sys.stderr)
        return 2
    if not os.path.isfile(argv[0]):
        print(f"{argv[0]}: no such file", file=sys.stderr)
        return 2
    return run(argv[0])
