"""What the Train tab says about a folder before Start: its layout, classes, patients,
total duration and the problems training would stop on, with an estimate of how long the
run takes; and the elapsed / remaining time while it runs.

:func:`folder_summary` runs in a worker (it reads every file's header) and uses the core's
own functions (:func:`lungapp.data.readers.read_folder`,
:func:`lungapp.training.dataset.task_label` and ``check_dataset``), so the summary says
what the training process will find."""

from __future__ import annotations

import html

from lungapp.errors import LungappError

# Reference speeds on this project's 2-core machine, from the runs on SPRSound's train
# folder in docs/benchmarks.md (19 366 s of audio). Recipes with a fixed number of batches
# per epoch take about the same time per epoch whatever the folder: recommended 21 min for
# 4 folds x 40 epochs, bundled about 33 min and bundled-4s about 61 min for 5 fits (4 folds
# and the final model) x 40 epochs. The seed recipe makes one pass over the windows per
# epoch: 9 min for 4 folds x 20 epochs, in proportion to the audio.
SECONDS_PER_EPOCH = {"recommended": 21 * 60 / (4 * 40), "bundled": 33 * 60 / (5 * 40),
                     "bundled-4s": 61 * 60 / (5 * 40)}
SECONDS_PER_EPOCH_PER_AUDIO_S = 9 * 60 / (4 * 20) / 19366
# Starting the process, TensorFlow's import, reading the folder and the features: about a
# minute for docs/make_screenshots.py's 2-fold x 6-epoch run (154 s in all, 2026-12-05).
STARTUP_S = 60.0
MAX_HEADERS = 5000   # header reads for the duration (a sample beyond that)


def folder_summary(task, folder: str, task_name: str, folds: int) -> dict:
    """A dict: layout, n (recordings usable for ``task_name``), counts, n_patients,
    duration_s (sum of the headers' durations; scaled up from a sample for very large
    folders), problems (list of one-line strings: unreadable files and what would stop
    training), error ("" or why the folder cannot be read at all)."""
    from lungapp.audio import audio_info
    from lungapp.data.readers import read_folder
    from lungapp.training.dataset import check_dataset, patient_ids, task_label
    from lungapp.training.recipes import TrainOptions
    from lungapp.vocabulary import BINARY_CLASSES, FOUR_CLASSES

    try:
        ds = read_folder(folder)
    except LungappError as exc:
        return {"error": str(exc)}
    classes = list(BINARY_CLASSES if task_name == "binary" else FOUR_CLASSES)
    usable = [(e, task_label(e.label, task_name)) for e in ds.examples]
    usable = [(e, lab) for e, lab in usable if lab is not None]
    audio = [e.path for e, _ in usable if e.kind == "audio"]
    duration, unreadable, share = _total_duration(task, audio, audio_info)
    if share is None:  # every header read: the unreadable recordings are known, and left out
        gone = {p for p, _ in unreadable}
        usable = [(e, lab) for e, lab in usable if e.path not in gone]
    skipped = list(ds.problems) + unreadable
    problems = [f"{p}: {why}" for p, why in skipped[:5]]
    if len(skipped) > 5:
        problems.append(f"…and {len(skipped) - 5} more files skipped")
    problems += ds.warnings[:3]
    n_files = len(usable) + len(skipped) if share is None else len(audio) + len(ds.problems)
    n_bad = len(skipped) if share is None else len(ds.problems) + round(share * len(audio))
    limit = TrainOptions.max_bad_share
    if n_files and n_bad / n_files > limit:  # what `lungapp train` would abort on
        problems.insert(0, f"{'about ' if share is not None else ''}{n_bad} of {n_files} files cannot "
                           f"be read: more than {limit:.0%}, so training would stop; fix or remove them")
    try:
        check_dataset([lab for _, lab in usable],
                      patient_ids([e for e, _ in usable]), folds, classes, folder)
    except LungappError as exc:
        problems.insert(0, getattr(exc, "problem", str(exc)))
    return {"error": "", "layout": ds.layout, "n": len(usable),
            "counts": {c: sum(1 for _, lab in usable if lab == c) for c in classes},
            "n_patients": len({e.patient for e, _ in usable if e.patient is not None}),
            "duration_s": duration, "problems": problems}


def _total_duration(task, paths: list[str], audio_info) -> tuple[float | None, list[tuple[str, str]], float | None]:
    """``(duration_s, unreadable, share)``: the recordings' total duration (None: none
    could be read, or cancelled), the ``(path, why)`` of those whose header cannot be read,
    and ``None`` when every header was read, else the unreadable share of the sample (a very
    large folder: its total is scaled up from the readable ones)."""
    if not paths:
        return None, [], None
    step = max(1, len(paths) // MAX_HEADERS)
    total, read, bad = 0.0, 0, []
    for p in paths[::step]:
        if task is not None and task.cancelled:
            return None, [], None
        try:
            total += float(audio_info(p).duration_s)
            read += 1
        except LungappError as exc:
            bad.append((p, getattr(exc, "problem", str(exc))))
    sampled = step > 1
    share = len(bad) / (read + len(bad)) if sampled else None
    if not read:
        return None, bad, share
    return (total * len(paths) * (1 - (share or 0)) / read if sampled else total), bad, share


def estimate_s(duration_s: float | None, preset: str, folds: int, epochs: int = 0) -> float | None:
    """Roughly how long a run takes (s): STARTUP_S, then the folds (and the final model
    of a "retrain" recipe) times the epochs (``epochs`` 0: the preset's) at the reference
    speed of ``preset``. None when it depends on the audio's duration and that is unknown."""
    from lungapp.training.recipes import PRESETS

    recipe = PRESETS.get(preset, PRESETS["recommended"])
    epochs = epochs or int(recipe["epochs"])
    fits = folds + (1 if recipe.get("artifact") == "retrain" else 0)
    if recipe.get("steps_per_epoch"):
        per_epoch = SECONDS_PER_EPOCH.get(preset, SECONDS_PER_EPOCH["recommended"])
    elif duration_s:
        per_epoch = duration_s * SECONDS_PER_EPOCH_PER_AUDIO_S
    else:
        return None
    return STARTUP_S + fits * epochs * per_epoch


def fmt_span(seconds: float | None) -> str:
    """"1 h 05 min", "12 min", "40 s"."""
    if seconds is None:
        return "unknown"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    h, m = divmod(s // 60, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def summary_html(summary: dict, estimate: float | None) -> str:
    """The summary as the label's rich text (file names and messages escaped)."""
    if summary.get("error"):
        return f"<span style='color:#a03000'>{html.escape(summary['error'])}</span>"
    counts = ", ".join(f"{html.escape(c)} {n}" for c, n in summary["counts"].items())
    dur = summary.get("duration_s")
    lines = [f"<b>{html.escape(summary['layout'])}</b> layout: {summary['n']} usable recordings "
             f"({counts}), {summary['n_patients'] or 'no'} patients"
             + (f", {fmt_span(dur)} of audio" if dur else "") + ".",
             f"Estimated run time: about {fmt_span(estimate)} (from the reference runs; "
             "a busy machine takes longer)." if estimate else ""]
    if summary["problems"]:
        lines.append("<span style='color:#a03000'>Problems: "
                     + "<br>".join(html.escape(p) for p in summary["problems"]) + "</span>")
    return "<br>".join(x for x in lines if x)


def remaining_s(elapsed_s: float, done: int, total: int) -> float | None:
    """Time left at the pace so far (``done`` of ``total`` epochs after ``elapsed_s``)."""
    if done <= 0 or total <= 0:
        return None
    return elapsed_s * max(0, total - done) / done
