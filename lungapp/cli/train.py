"""``lungapp train FOLDER --out DIR``: the command-line front end of :mod:`.train`.

Exit status: 0 done; 2 bad options; 3 dataset refused (nothing trained); 4 output
folder or --oof file refused (exists: use --overwrite; over the data; not writable) or
the model could not be saved (disk full); 1 any other error; 130 cancelled (SIGINT /
SIGTERM: the run stops within one batch and --out is left untouched).

``--progress json`` prints one JSON object per line on stdout and nothing else (library
output that would reach stdout is redirected to stderr): the events of
:mod:`lungapp.training.progress`, ``start``, ``extract``, ``log``, ``epoch_end``,
``fold_end``, then ``done`` or ``error``. ``--progress bar`` draws a bar on stderr (the default on a terminal);
``none`` prints only the final summary.

Several GPUs: the same command uses them all (data parallel; see
:func:`lungapp.training.fit.distribution_scope`). Restrict with CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

# The light modules only (no Keras): `lungapp train --help` must stay fast.
from lungapp.data.readers import LAYOUTS
from lungapp.training import progress as P
from lungapp.training.recipes import ARCH_NAMES, ARTIFACTS, OUTPUTS, PRECISIONS, PRESET_NAMES, SAMPLINGS, WINDOW_LABELS
from lungapp.vocabulary import TASKS, classes_for

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DATASET, EXIT_OUTPUT, EXIT_CANCELLED = 0, 1, 2, 3, 4, 130


HELP = "train a model with patient-grouped k-fold cross-validation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="labelled folder (SPRSound, ICBHI, class folders, CSV, seed images)")
    parser.add_argument("--layout", choices=LAYOUTS, default=None,
                        help="the folder's layout (default: detected from its content)")
    parser.add_argument("--out", required=True, help="model folder to create (written atomically)")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="recommended",
                        help="recipe: 'seed' reproduces the student project; 'recommended' is the "
                             "best measured recipe within 30 min on 2 cores (default); 'bundled' "
                             "is the app's own model's recipe (finer time resolution, one model "
                             "retrained on all data; about 2.5x the time); 'bundled-4s' is "
                             "'bundled' on 4-s windows (the bundled model's other run; about "
                             "twice 'bundled''s time). Explicit options override it.")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="binary normal/abnormal (default; with --init-from, the starting "
                             "model's task) or Normal/CAS/DAS/CAS & DAS")
    parser.add_argument("--arch", choices=ARCH_NAMES, default=None,
                        help="seed_cnn (the seed project's CNN), cnn4 (compact 4-block CNN), "
                             "lungcnn (per-band-normalised compact CNN, the recommended one), "
                             "inception_v3 or resnet50 (keras.applications backbones)")
    parser.add_argument("--folds", type=int, default=4, help="cross-validation folds (default 4)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="(peak) learning rate")
    parser.add_argument("--init-from", default=None, metavar="bundled|active|MODEL_DIR",
                        help="fine-tune: every fold model starts from this model's weights (its "
                             "member reading the preset's window length) instead of random ones; "
                             "task, outputs and features default to the model's, the threshold is "
                             "chosen again on the out-of-fold predictions, and the report compares "
                             "the adapted model with it on the same folds. Epochs default to a "
                             "quarter of the preset's")
    parser.add_argument("--finetune-lr", type=float, default=None,
                        help="(peak) learning rate when fine-tuning (default: the preset's, a "
                             "hundredth of its --lr)")
    parser.add_argument("--seed", type=int, default=0, help="seed for folds, weights and augmentation")
    parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    parser.add_argument("--pooling", default=None, help="window -> recording pooling: mean, max, topk:K")
    parser.add_argument("--window-labels", choices=WINDOW_LABELS, default=None,
                        help="label windows by the recording's label or by its timed events")
    parser.add_argument("--outputs", choices=OUTPUTS, default=None,
                        help="softmax over the classes, or independent sigmoid flags "
                             "[CAS, DAS] (4class) / [abnormal] (binary)")
    parser.add_argument("--sampling", choices=SAMPLINGS, default=None,
                        help="shuffle: one pass over the windows per epoch; balanced: batches "
                             "drawn half from adventitious windows (the recommended preset)")
    parser.add_argument("--steps-per-epoch", type=int, default=None,
                        help="batches per epoch (0: one pass over the training windows)")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help="share of the training folds' patients held out for early stopping "
                             "and plateau decisions (0: none, fixed schedule)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="training arithmetic: auto trains in mixed bfloat16 where the CPU "
                             "computes it natively (AMX / AVX-512 BF16), else float32; saved "
                             "models are float32 either way")
    parser.add_argument("--artifact", choices=ARTIFACTS, default=None,
                        help="save the fold models as an ensemble, or retrain one on all data")
    parser.add_argument("--weights", default=None,
                        help="weights file for the inception_v3 / resnet50 backbone "
                             "(offline, ImageNet weights cannot be downloaded)")
    parser.add_argument("--features", default=None,
                        help="feature config overriding the preset's: a JSON object or a JSON file "
                             "(FeatureConfig.to_dict() form: spectrogram, window_s, hop_s, resize)")
    parser.add_argument("--max-bad-share", type=float, default=None,
                        help="abort when more than this share of files is unreadable (default 0.1)")
    parser.add_argument("--real-noise", action="store_true", default=None,
                        help="texture the noise the recipe adds to training windows with the "
                             "folder's Poor Quality recordings (crying, talking, rubbing) instead "
                             "of white noise; the folder must hold some. Checked on SPRSound: it "
                             "lowered AUC on intra_test and on other stethoscopes "
                             "(docs/model_checks.md), so no recipe uses it")
    parser.add_argument("--equalise", action="store_true", default=None,
                        help="equalise every recording to the training recordings' mean balance of "
                             "frequencies before the model reads it, here and in the app (takes "
                             "out a stethoscope's coloration; a fine-tune keeps its model's setting)")
    parser.add_argument("--no-device-shift", action="store_true",
                        help="skip the device-shift check (saves time and memory)")
    parser.add_argument("--oof", default=None, metavar="FILE.npz",
                        help="also write the out-of-fold predictions (per recording and per window, "
                             "with file names and folds) to this new .npz file, outside the model "
                             "and the data folders (an existing one is replaced only with "
                             "--overwrite, and only if it is an earlier --oof file)")
    parser.add_argument("--name", default=None, help="model name in the card (default: the folder name)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out folder once the new model is complete, "
                             "and an existing --oof file of an earlier run")
    parser.add_argument("--progress", choices=("json", "bar", "none"), default=None,
                        help="json lines on stdout, a bar on stderr (default on a terminal), or none")


def options_from_args(args):
    """The run's TrainOptions; with ``--init-from``, the starting model supplies what was not
    given (:func:`_start_overrides`) and is checked against the result. Raises ValueError
    for bad options, LungappError for an unusable starting model."""
    from lungapp.training.recipes import TrainOptions

    overrides = {"task": args.task, "arch": args.arch, "folds": args.folds, "epochs": args.epochs,
                 "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                 "pooling": args.pooling, "window_labels": args.window_labels,
                 "outputs": args.outputs, "sampling": args.sampling,
                 "steps_per_epoch": args.steps_per_epoch, "val_fraction": args.val_fraction,
                 "artifact": args.artifact, "weights": args.weights,
                 "precision": getattr(args, "precision", None),
                 "max_bad_share": args.max_bad_share, "name": args.name,
                 "finetune_lr": getattr(args, "finetune_lr", None),
                 "equalise": getattr(args, "equalise", None),
                 "real_noise": getattr(args, "real_noise", None)}
    if getattr(args, "features", None):
        overrides["features"] = _features(args.features)
    if args.no_augment:
        overrides["augment"] = None
    if getattr(args, "init_from", None):
        overrides.update(_start_overrides(args, overrides))
    elif overrides["task"] is None:
        overrides["task"] = "binary"
    opts = TrainOptions.from_preset(args.preset, **overrides)
    if args.no_augment:
        opts.augment = None
    if args.no_device_shift:
        opts.device_shift = False
    if opts.init_from:  # a mismatch given explicitly is refused before TensorFlow loads
        from lungapp.training.finetune import load_start

        load_start(opts.init_from, opts)
    return opts


def _start_overrides(args, given: dict) -> dict:
    """Recipe values a fine-tuning run takes from its starting model (task, outputs, the
    member's features) where ``given`` lacks them, and its epochs (a quarter of the
    preset's: a few passes adapt a trained model, and a long run would over-fit a small
    folder)."""
    from lungapp.training.finetune import start_defaults
    from lungapp.training.recipes import PRESETS, finetune_epochs

    preset = PRESETS.get(args.preset, {})
    window = given["features"].window_s if given.get("features") else \
        getattr(preset.get("features"), "window_s", None)
    out = {k: v for k, v in start_defaults(args.init_from, window).items() if given.get(k) is None}
    out["init_from"] = args.init_from
    if given.get("epochs") is None:
        out["epochs"] = finetune_epochs(args.preset)
    return out


def _features(text: str):
    from lungapp.inference.features import FeatureConfig

    try:
        raw = json.loads(text) if text.lstrip().startswith("{") else json.loads(Path(text).read_text())
        return FeatureConfig.from_dict(raw)
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"--features: {exc}") from None


class _Emitter:
    """Routes progress events (:mod:`lungapp.training.progress`) to JSON lines, a bar, or
    nowhere."""

    def __init__(self, mode: str, json_fd: int | None):
        self.mode = mode
        self.out = os.fdopen(json_fd, "w", buffering=1) if json_fd is not None else None
        self.err = sys.stderr

    def __call__(self, event: P.Event) -> None:
        if self.mode == "json":
            self.out.write(event.to_json() + "\n")
            self.out.flush()
        elif self.mode == "bar":
            self._bar(event)
        elif isinstance(event, (P.Done, P.Error)) or getattr(event, "level", "") == "warning":
            self._line(event)

    def _line(self, e: P.Event) -> None:
        if isinstance(e, P.Done):
            m = e.metrics
            print(f"done: {e.out}  AUC {m['auc']:.3f}  sensitivity {m['sensitivity']:.3f}  "
                  f"specificity {m['specificity']:.3f}  score {m['score']:.3f}  "
                  f"(threshold {e.threshold:.3f}, {e.wall_s:.0f} s); {len(e.skipped)} files "
                  "skipped" + (" (listed above)" if e.skipped else ""), file=self.err)
            if e.start_comparison:
                from lungapp.training.finetune import comparison_text

                print(comparison_text(e.start_comparison), file=self.err)
        elif isinstance(e, P.Error):
            print(f"error: {e.message}", file=self.err)
        elif isinstance(e, P.Log):
            print(f"{e.level}: {e.message}", file=self.err)

    def _bar(self, e: P.Event) -> None:
        width = 30
        if isinstance(e, P.Extract):
            f = e.done / max(1, e.total)
            self.err.write(f"\rfeatures [{'=' * int(f * width):<{width}}] {e.done}/{e.total}"
                           f" ({e.bad} unreadable)")
            if e.done == e.total:
                self.err.write("\n")
        elif isinstance(e, P.EpochEnd):
            f = e.epoch / e.epochs
            m = e.metrics
            extra = f" val_auc {m['val_auc']:.3f}" if m.get("val_auc") is not None else ""
            self.err.write(f"\rfold {e.fold} [{'=' * int(f * width):<{width}}] epoch "
                           f"{e.epoch}/{e.epochs} loss {m['loss']:.3f}{extra}   ")
        elif isinstance(e, P.FoldEnd):
            self.err.write(f"\nfold {e.fold}/{e.folds} done: held-out AUC {e.metrics['auc']:.3f}\n")
        elif isinstance(e, P.Start):
            self.err.write(f"training {e.preset} / {e.arch} / {e.task} on {e.folder}\n")
        else:
            self._line(e)
        self.err.flush()


def run(args) -> int:
    """Run ``lungapp train`` with parsed ``args``; returns the exit status."""
    mode = args.progress or ("bar" if sys.stderr.isatty() else "none")
    json_fd = saved_fd1 = None
    saved_stdout = sys.stdout
    if mode == "json":
        # Keep the real stdout for our JSON lines only; anything else that writes to
        # stdout (Python prints, native libraries) goes to stderr until we return.
        sys.stdout.flush()
        json_fd, saved_fd1 = os.dup(1), os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    emit = _Emitter(mode, json_fd)
    stop = {"signal": None}

    def handler(signum, _frame):
        if stop["signal"] is not None:  # second signal: stop now
            raise P.Cancelled()
        stop["signal"] = signal.Signals(signum).name

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return _train(args, emit, stop)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if saved_fd1 is not None:  # give the caller its stdout back (in-process use)
            sys.stderr.flush()
            emit.out.close()
            os.dup2(saved_fd1, 1)
            os.close(saved_fd1)
            sys.stdout = saved_stdout


def _train(args, emit: _Emitter, stop: dict) -> int:
    """Train as ``args`` say, reporting to ``emit``; a failure becomes one ``error`` event
    and its exit status. ``stop["signal"]``: the signal that asked the run to stop."""
    from lungapp.errors import DatasetError, LungappError
    from lungapp.fsutil import check_oof_file, check_output_dir
    from lungapp.training import unavailable_reason

    reason = unavailable_reason()
    if reason:  # the viewer build: say so before any import fails
        emit(P.Error(kind="unavailable", message=reason))
        return EXIT_ERROR

    try:
        opts = options_from_args(args)
    except (ValueError, LungappError) as exc:  # bad options, or a starting model that does not fit
        emit(P.Error(kind="options", message=str(exc)))
        return EXIT_USAGE
    try:  # before TensorFlow is imported and any file is read: fails in a second
        check_output_dir(args.out, data_dirs=[args.folder], overwrite=args.overwrite,
                         report=lambda note: emit(P.Log(message=note, level="warning")))
        if getattr(args, "oof", None) is not None:
            check_oof_file(args.oof, out=args.out, data_dirs=[args.folder], overwrite=args.overwrite)
    except LungappError as exc:
        emit(P.Error(kind="output", message=str(exc)))
        return EXIT_OUTPUT
    from lungapp.training.dataset import usable_examples

    try:  # the folder too (layout, enough recordings and patients), before TensorFlow loads
        found = usable_examples(args.folder, opts, list(classes_for(opts.task)), getattr(args, "layout", None))
    except DatasetError as exc:
        emit(P.Error(kind="dataset", message=str(exc)))
        return EXIT_DATASET
    from lungapp.training.finetune import StartModelError
    from lungapp.training.train import train

    try:
        train(args.folder, args.out, opts, progress=emit,
              should_stop=lambda: stop["signal"] is not None, overwrite=args.overwrite,
              oof_path=getattr(args, "oof", None), layout=getattr(args, "layout", None), found=found)
        return EXIT_OK
    except P.Cancelled:
        emit(P.Error(kind="cancelled",
                     message=f"cancelled ({stop['signal'] or 'signal'}); {args.out} left untouched"))
        return EXIT_CANCELLED
    except DatasetError as exc:
        emit(P.Error(kind="dataset", message=str(exc)))
        return EXIT_DATASET
    except StartModelError as exc:  # the --init-from model's file cannot be loaded: a bad option
        emit(P.Error(kind="options", message=str(exc)))
        return EXIT_USAGE
    except LungappError as exc:
        emit(P.Error(kind="output", message=str(exc)))
        return EXIT_OUTPUT
    except KeyboardInterrupt:
        emit(P.Error(kind="cancelled", message="cancelled"))
        return EXIT_CANCELLED
    except OSError as exc:  # e.g. the disk filled while saving: one line, --out untouched
        where = exc.filename or args.out
        emit(P.Error(kind="output", message=f"{where}: {exc.strerror or exc} (the run failed; "
                                            f"{args.out} left untouched)"))
        return EXIT_OUTPUT
    except Exception as exc:  # report, don't crash the GUI's parser with a traceback on stdout
        import traceback

        traceback.print_exc(file=sys.stderr)
        emit(P.Error(kind="internal", message=f"{type(exc).__name__}: {exc}"))
        return EXIT_ERROR


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lungapp train", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
