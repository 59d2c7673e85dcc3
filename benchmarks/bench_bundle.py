"""The shipped app: its size on disk and download, and how fast the installed binary
starts and gives its first result.

    python3 benchmarks/bench_bundle.py APP [--deb FILE] [--archive FILE] [--repeats 5]
    # e.g. after packaging/build.sh --out /tmp/b (and --viewer):
    xvfb-run -a python3 benchmarks/bench_bundle.py /tmp/b/lungapp --deb /tmp/b/lungapp_0.1.0-1_amd64.deb

APP is a built bundle folder (dist/lungapp, or /opt/lungapp once the .deb is installed).
Needs a display (Xvfb is fine) for the timings. Standard library only: it runs with the
system's python3 against the frozen app, as a user would start it.

* size: the unpacked bundle (du) with its largest top-level components, the .deb and the
  tar.gz as downloaded;
* start -> window: from launching the process to the main window's first paint;
* start -> first result: until the Review view shows the result of a bundled 15-s
  example (the model loads after the first paint). Each run is a fresh process
  (`lungapp --smoke-test FILE`); the page cache is warm after the first run, so the
  median is the warm start and run 1 is as cold as this machine allows.

Goals (issue 33): .deb <= 350 MB, bundle <= 1.0 GB, window <= 2 s, first result <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def du_mb(path: Path) -> float:
    out = subprocess.run(["du", "-s", "--block-size=1M", str(path)], capture_output=True, text=True)
    return float(out.stdout.split()[0])


def components(app: Path, n: int = 8) -> list[tuple[str, float]]:
    base = app / "_internal"
    sizes = [(p.name, du_mb(p)) for p in base.iterdir()]
    return sorted(sizes, key=lambda s: -s[1])[:n]


def one_start(app: Path, example: Path) -> dict:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, LUNGAPP_HOME=home)
        t0 = time.time()
        proc = subprocess.run([str(app / "lungapp"), "--smoke-test", str(example)], env=env,
                              capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"{app}: --smoke-test failed: {proc.stderr.strip()[-500:]}")
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"window_s": d["window_shown"] - t0, "result_s": d["result"] - t0, "label": d["label"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("app", type=Path)
    ap.add_argument("--deb", type=Path)
    ap.add_argument("--archive", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    app = args.app.resolve()
    example = app / "_internal" / "lungapp" / "resources" / "examples" / "synthetic_wheeze.wav"
    print(f"| {app} | MB |\n|---|---:|")
    print(f"| bundle, unpacked | {du_mb(app):.0f} |")
    for name, mb in components(app):
        print(f"| &nbsp; {name} | {mb:.0f} |")
    for label, f in (("deb", args.deb), ("tar.gz", args.archive)):
        if f:
            print(f"| {label}: {f.name} | {f.stat().st_size / 2**20:.0f} |")
    print(f"\n1-min load average before the runs: {os.getloadavg()[0]:.1f}")
    runs = [one_start(app, example) for _ in range(args.repeats)]
    print("\n| run | start -> window (s) | start -> first result (s) | label |\n|---:|---:|---:|---|")
    for i, r in enumerate(runs, 1):
        print(f"| {i} | {r['window_s']:.2f} | {r['result_s']:.2f} | {r['label']} |")
    w, r = ([x[k] for x in runs] for k in ("window_s", "result_s"))
    print(f"| median | {statistics.median(w):.2f} | {statistics.median(r):.2f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
