"""Regenerate the bundled model in resources/model from SPRSound train, with the
project's own `lungapp train`, then add the clinician-facing parts of its card.

    .venv/bin/python research/make_bundled_model.py            # train + combine + annotate
    .venv/bin/python research/make_bundled_model.py --from RUN:OOF --from RUN:OOF ...
                                                                # combine finished runs
    .venv/bin/python research/make_bundled_model.py --from DIR  # annotate a finished run
    .venv/bin/python research/make_bundled_model.py --members [--from RUN:OOF ...]
                                                # recombine the kept members (and new runs)

Training: for each preset and seed in RUNS, `lungapp train ../shared/data/sprsound/train
--task 4class --preset P --seed N --oof ...` (patient-grouped 4-fold CV, then one model
retrained on all data) into --work; the runs are combined (lungapp.training.combine) at the
window steps HOP_S (each run at its own step: 2-s windows every 0.5 s, 4-s windows every
1 s), with the threshold chosen on the averaged out-of-fold predictions and the four
classes named from the flags pooled by CLASS_POOLING.
Never trained on intra_test. The command resumes: a run already finished in --work (the
preset and seed asked for, on the data as it is now, with the out-of-fold file it wrote) is
reused, not trained again (--retrain trains every run again).

Runs are kept in research/bundled_members/w<window>s_seed<N>/ (their card, model and
curves, and their out-of-fold file stripped of the dataset's labels and patient ids; writing
resources/model keeps its members there), so that an ensemble can be recombined or given
another member without training its members again; combining them reads the labels from
SPRSound train.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data" / "sprsound" / "train").resolve()
TARGET = ROOT / "resources" / "model"
#: The bundled model's runs: preset -> seeds; several runs are combined
#: (lungapp.training.combine) at the window steps HOP_S (window length -> step; None: each
#: run at its own step, 2-s windows every 0.5 s and 4-s windows every 1 s).
RUNS = "bundled:0;bundled-4s:0,1"
HOP_S = None
#: The ensemble names the four classes from the flags pooled by their 75th percentile over
#: the windows, fixed by the recipe rather than chosen on the ensemble's own out-of-fold
#: predictions: scored strictly, it beat the most probable class of the mean in each of
#: the 14 two- and three-run ensembles of the kept runs compared before it was fixed (the
#: card still reports that comparison).
CLASS_POOLING = "quantile:0.75"
#: Kept runs of the bundled recipe (see the module docstring); not shipped.
MEMBERS = ROOT / "research" / "bundled_members"

DATASET = (
    "SPRSound (SJTU Paediatric Respiratory Sound Database, BioCAS 2022 release), train split: "
    "expert-labelled lung sounds of children aged 1 month to 18 years, recorded at Shanghai "
    "Children's Medical Center with Yunting model II electronic stethoscopes (one hospital, one "
    "device), at four chest sites (left/right posterior and lateral), 8 kHz. Each recording has "
    "a record label and timed, labelled respiratory events; the model learns from the event "
    "times (windows are labelled by the events they overlap). Poor Quality recordings are "
    "excluded from the diagnosis task; the quality check is not fitted to them (it refuses "
    "only what cannot be judged, see below).")
CREDITS = (
    "Q. Zhang et al., \"SPRSound: Open-Source SJTU Paediatric Respiratory Sound Database\", "
    "IEEE Transactions on Biomedical Circuits and Systems 16(5), 2022; Q. Zhang et al., "
    "\"Grand Challenge on Respiratory Sound Classification\", IEEE BioCAS 2022. The data are "
    "distributed under the GNU GPL v3; this model, derived from them, is distributed with "
    "lungapp under GPL-3.0-or-later.")
LIMITATIONS = [
    "Not a diagnostic device: decision support only; a clinician decides.",
    "Trained on children (1 month to 18 years) from one hospital, recorded with one "
    "stethoscope model; adults and other stethoscopes are outside what it has seen (see the "
    "device-shift check for the measured drop on a simulated other device).",
    "Noise (crying, talking, movement) degrades it; the quality check catches some but not all "
    "poor recordings.",
    "The timeline shows where the model's evidence is, at the resolution of its windows; it is "
    "not a precise event detector.",
]

#: What the model card says about the quality check (lungapp.inference.quality); its
#: measured behaviour is printed by benchmarks/quality_gate.py (per label of SPRSound train)
#: and benchmarks/quality_transfer.py (other collections and devices).
QUALITY_CHECK = (
    "Before the model runs, a quality check refuses recordings it cannot judge (too short, no "
    "signal, heavily clipped, no breathing found) and warns about noisy ones, naming the noisy "
    "stretches; the model's result is then given with the warning. It does not catch every poor "
    "recording (benchmarks/quality_gate.py, benchmarks/quality_transfer.py).")


#: The input profile's data, in words (lungapp.inference.profile).
PROFILE_SOURCE = "SPRSound train, the model's training recordings"


def annotate(model_dir: Path) -> None:
    from lungapp.inference.card import load_card, write_card
    from lungapp.training.card_text import write_model_card_md

    card = load_card(model_dir)
    card.name = "lungapp-sprsound"
    card.training.dataset_description = DATASET
    card.training.credits = CREDITS
    card.limitations = LIMITATIONS + [x for x in card.limitations if x not in LIMITATIONS]
    card.metrics.quality_gate = QUALITY_CHECK
    card.quality_gate = {}  # the check's default parameters
    if card.input_profile is None:  # runs kept from before profiles existed have none
        from lungapp.training.profile import profile_of_folder

        card.input_profile = profile_of_folder(DATA, card.features.rate, "sprsound", PROFILE_SOURCE)
    write_card(model_dir, card)
    write_model_card_md(model_dir)


def _runs(spec: str) -> list[tuple[str, int]]:
    """"PRESET:SEEDS;PRESET:SEEDS" -> [(preset, seed), ...]; exits on a malformed spec."""
    out = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        preset, sep, seeds = part.partition(":")
        try:
            out += [(preset, int(x)) for x in seeds.split(",") if x.strip()]
        except ValueError:
            sep = ""
        if not sep or not preset:
            sys.exit(f"--runs {spec!r}: expected PRESET:SEED,SEED;PRESET:SEED,...")
    return out


def _kept(runs: list[tuple[str, int]]) -> list[tuple[Path, Path]]:
    """The kept runs (MEMBERS) of ``runs``; exits naming any that is not kept."""
    from lungapp.training.combine import kept_name
    from lungapp.training.recipes import PRESETS

    out = []
    for preset, seed in runs:
        if preset not in PRESETS:
            sys.exit(f"unknown preset {preset!r}")
        d = MEMBERS / kept_name(PRESETS[preset]["features"].window_s, seed)
        if not (d / "oof.npz").is_file():
            sys.exit(f"{preset} seed {seed} is not kept in {MEMBERS} (no {d.name}/oof.npz)")
        out.append((d, d / "oof.npz"))
    return out


def _unfinished(run: Path, oof: Path, preset: str, seed: int) -> str:
    """Why ``run`` and its out-of-fold file ``oof`` in --work are not a finished run of
    ``preset`` and ``seed`` on DATA as it is now ("" when they are, so regenerating resumes
    after an interruption instead of training every run again)."""
    from datetime import datetime

    from lungapp.data.readers import read_folder
    from lungapp.errors import LungappError
    from lungapp.inference.card import load_card
    from lungapp.training.dataset import labels_hash, task_label

    if not (run / "card.json").is_file():
        return "no finished run"
    try:
        card = load_card(run)
    except LungappError as exc:
        return f"its card does not load ({exc})"
    opts, data = card.training.options or {}, card.training.data.to_dict() if card.training.data else {}
    if (opts.get("preset"), opts.get("seed")) != (preset, seed):
        return f"it is a run of {opts.get('preset')} seed {opts.get('seed')}"
    if not oof.is_file():
        return f"no out-of-fold file {oof.name}"
    # train writes the out-of-fold file after its cross-validation and the card at the end:
    # a file newer than the card is an interrupted later run's
    try:
        created = datetime.fromisoformat(card.created).timestamp()
    except (TypeError, ValueError):
        return "its card has no creation time"
    if oof.stat().st_mtime > created + 1:
        return f"{oof.name} is newer than the run (an interrupted later run wrote it)"
    examples = read_folder(DATA).examples
    now = labels_hash((os.path.relpath(e.path, DATA), lab) for e in examples
                      if (lab := task_label(e.label, card.task)))
    if data.get("file_list_sha256") != now:
        return f"it was trained on other data than {DATA} holds now"
    return ""


def _train(preset: str, seed: int, out: Path, oof: Path | None) -> int:
    cmd = [sys.executable, "-m", "lungapp", "train", str(DATA), "--out", str(out),
           "--task", "4class", "--preset", preset, "--seed", str(seed),
           "--name", "lungapp-sprsound", "--overwrite", "--progress", "bar"]
    if oof is not None:
        cmd += ["--oof", str(oof)]
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="src", action="append", default=[],
                    help="a finished `lungapp train` output folder; or, given twice or more, "
                         "RUN:OOF pairs (a run and its --oof file) to combine into an ensemble")
    ap.add_argument("--members", action="store_true",
                    help=f"combine the kept runs ({MEMBERS.relative_to(ROOT)}) that --runs names, "
                         "with any --from RUN:OOF runs")
    ap.add_argument("--runs", default=RUNS,
                    help=f"presets and seeds to train when regenerating (default {RUNS!r})")
    ap.add_argument("--hop-s", action="append", default=None, metavar="STEP|WINDOW=STEP",
                    help="window step of an ensemble: one, or per window length, e.g. 2=1 "
                         "(default: " + (" ".join(f"{w:g}={h:g}" for w, h in HOP_S.items())
                                         if HOP_S else "each run's own") + ")")
    ap.add_argument("--class-pooling", default=CLASS_POOLING, metavar="RULE",
                    help=f"an ensemble's four-class class pooling, fixed (default {CLASS_POOLING}; "
                         "'' chooses it on the out-of-fold predictions)")
    ap.add_argument("--work", default=str(ROOT / "runs"), help="where regenerated runs are kept")
    ap.add_argument("--retrain", action="store_true",
                    help="train every run again, even one that finished in --work before")
    ap.add_argument("--out", default=str(TARGET))
    return ap


def _train_runs(runs: list[tuple[str, int]], work: Path, retrain: bool) -> list[tuple[Path, Path]] | int:
    """Train each (preset, seed) of ``runs`` into ``work`` (reusing a run finished there
    before, unless ``retrain``); the (run, out-of-fold file) pairs, or the exit status of
    the first training that failed."""
    members = []
    for preset, seed in runs:
        run, oof = work / f"{preset}_seed{seed}", work / f"{preset}_seed{seed}_oof.npz"
        why = "--retrain" if retrain else _unfinished(run, oof, preset, seed)
        if why:
            if run.exists() or oof.exists():
                print(f"training {run.name} again: {why}", flush=True)
            rc = _train(preset, seed, run, oof)
            if rc != 0:
                return rc
        else:
            print(f"reusing {run} (finished run of {preset} seed {seed}; "
                  "--retrain trains it again)", flush=True)
        members.append((run, oof))
    return members


def _combine(members: list[tuple[Path, Path]], out: Path, hop_s, class_pooling: str) -> None:
    """Combine ``members`` into ``out``; writing the bundled model (TARGET) also keeps its
    members in MEMBERS. Exits with the message on a bad member."""
    from lungapp.errors import LungappError
    from lungapp.inference.card import load_card
    from lungapp.training.combine import combine, keep_runs, kept_name_of, kept_runs

    try:
        combine(members, out, hop_s=hop_s, name="lungapp-sprsound", overwrite=True,
                data_root=DATA, class_pooling=class_pooling or None)
        if out.resolve() == TARGET.resolve():
            # the bundled model's members join (or replace) the runs kept before
            mine = {kept_name_of(load_card(d)) for d, _ in members}
            keep_runs([m for m in kept_runs(MEMBERS) if m[0].name not in mine] + members, MEMBERS)
    except LungappError as exc:
        sys.exit(f"combine: {exc}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Path(args.out)
    from lungapp.training.combine import parse_hops, parse_member, summary_line

    try:
        hop_s = parse_hops(args.hop_s) if args.hop_s else HOP_S
    except ValueError as exc:
        sys.exit(f"--hop-s: {exc}")

    members: list[tuple[Path, Path]] = _kept(_runs(args.runs)) if args.members else []
    if len(args.src) == 1 and ":" not in args.src[0] and not args.members:
        if Path(args.src[0]).resolve() != out.resolve():
            if out.exists():
                shutil.rmtree(out)
            shutil.copytree(args.src[0], out)
    elif args.src:
        try:
            members += [parse_member(spec) for spec in args.src]
        except ValueError as exc:
            sys.exit(f"--from: {exc}")
    elif not members:
        if not DATA.is_dir():
            sys.exit(f"SPRSound train not found at {DATA}")
        runs = _runs(args.runs)
        if len(runs) == 1:  # one model, trained straight into the target
            rc = _train(*runs[0], out, None)
            if rc != 0:
                return rc
        else:
            trained = _train_runs(runs, Path(args.work), args.retrain)
            if isinstance(trained, int):
                return trained
            members = trained
    if members:
        _combine(members, out, hop_s, args.class_pooling)
    annotate(out)
    card = json.loads((out / "card.json").read_text())
    print(f"{out}: {summary_line(card['metrics'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
