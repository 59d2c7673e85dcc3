"""Do a model's predictions on a folder of recordings equal a reference run's?

    .venv/bin/python benchmarks/predict_parity.py REFERENCE.json
        [--data ../shared/data/sprsound/intra_test] [--model DIR] [--tolerance 1e-5]

REFERENCE.json is the output of ``lungapp predict FOLDER --format json`` from the run to
compare with (e.g. an older runtime: ``LUNGAPP_RUNTIME=... lungapp predict ... > ref.json``).
This script predicts the same recordings with the active model (``--model``: another;
``LUNGAPP_RUNTIME`` chooses the runtime as usual) and compares, recording by recording,
the abnormal probability and the class probabilities; it prints the largest differences
and exits 1 when one exceeds the tolerance or a recording is missing on either side.
Keep the reference out of the repository: it names the dataset's files. Missing data
folder: a message and exit 0 (nothing to compare).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sprsound" / "intra_test"


def by_name(results: list[dict]) -> dict[str, dict]:
    """``lungapp predict --format json`` results keyed by file name (the folder part of
    the path depends on where the command ran)."""
    return {Path(r["file"]).name: r for r in results if r.get("file")}


def differences(ref: dict, new: dict) -> dict[str, float]:
    """Largest absolute difference of one recording's abnormal probability and of its
    class probabilities (inf when the classes differ)."""
    out = {"abnormal_probability": abs(float(ref["abnormal_probability"]) - float(new["abnormal_probability"]))}
    rp, np_ = ref["probabilities"], new["probabilities"]
    out["probabilities"] = (max(abs(float(rp[k]) - float(np_[k])) for k in rp)
                            if set(rp) == set(np_) else float("inf"))
    return out


def _gate_ok(result: dict):
    """The quality gate's verdict of a result (None when the gate is off)."""
    q = result.get("quality")
    return None if q is None else bool(q["ok"])


def predict_folder(folder: Path, model: str | None) -> list[dict]:
    """Every recording of ``folder`` predicted as ``lungapp predict --format json`` does
    (the same code path, in this process)."""
    import contextlib
    import io

    from lungapp.cli import main

    out = io.StringIO()
    argv = ["predict", str(folder), "--format", "json"] + (["--model", model] if model else [])
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    if rc != 0:
        sys.exit(f"lungapp predict failed with status {rc}")
    return json.loads(out.getvalue())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference", type=Path, help="lungapp predict --format json output to compare with")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of recordings")
    ap.add_argument("--model", help="model folder (default: the active model)")
    ap.add_argument("--tolerance", type=float, default=1e-5)
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"{args.data}: data folder not found; nothing to compare")
        return 0
    ref = by_name(json.loads(args.reference.read_text()))
    new = by_name(predict_folder(args.data, args.model))
    missing, extra = sorted(set(ref) - set(new)), sorted(set(new) - set(ref))
    worst = {"abnormal_probability": (0.0, ""), "probabilities": (0.0, "")}
    labels_differ, gate_differs = [], []
    for name in sorted(set(ref) & set(new)):
        for key, d in differences(ref[name], new[name]).items():
            if d > worst[key][0]:
                worst[key] = (d, name)
        if _gate_ok(ref[name]) != _gate_ok(new[name]):
            gate_differs.append(name)
        elif ref[name]["label"] != new[name]["label"]:
            labels_differ.append(name)
    print(f"recordings: {len(set(ref) & set(new))} compared, {len(missing)} only in the reference, "
          f"{len(extra)} only in this run")
    for key, (d, name) in worst.items():
        print(f"max |diff| {key}: {d:.3g}" + (f" ({name})" if name else ""))
    # The quality gate is not the model: its verdicts are counted apart (informative only).
    print(f"quality gate verdicts that differ: {len(gate_differs)}")
    print(f"labels that differ with the same gate verdict: {len(labels_differ)}"
          + (f" ({', '.join(labels_differ[:5])})" if labels_differ else ""))
    ok = not missing and not extra and all(d <= args.tolerance for d, _ in worst.values())
    print(f"{'OK' if ok else 'FAILED'}: tolerance {args.tolerance:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
