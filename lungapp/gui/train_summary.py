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

# Wall seconds per second of audio for one fit (one fold, the preset's epochs), from the
# reference runs on SPRSound's train folder in docs/benchmarks.md (19 366 s of audio,
# 4 folds + the final model = 5 fits: recommended 21 min, seed 9, bundled about 33,
# bundled-4s about 61, on this project's 2-core machine). Other presets: recommended's.
SECONDS_PER_AUDIO_S = {"recommended": 21 * 60 / 19366 / 5, "seed": 9 * 60 / 19366 / 5,
                       "bundled": 33 * 60 / 19366 / 5, "bundled-4s": 61 * 60 / 19366 / 5}
MAX_HEADERS = 5000   # header reads for the duration (a sample beyond that)


def folder_summary(task, folder: str, task_name: str, folds: int) -> dict:
    """A dict: layout, n (recordings usable for ``task_name``), counts, n_patients,
    duration_s (sum of the headers' durations; scaled up from a sample for very large
    folders), problems (list of one-line strings: unreadable files and what would stop
    training), error ("" or why the folder cannot be read at all)."""
    from lungapp.audio import audio_info
    from lungapp.data.readers import read_folder
    from lungapp.training.dataset import check_dataset, task_label
    from lungapp.vocabulary import BINARY_CLASSES, FOUR_CLASSES

    try:
        ds = read_folder(folder)
    except LungappError as exc:
        return {"error": str(exc)}
    classes = list(BINARY_CLASSES if task_name == "binary" else FOUR_CLASSES)
    usable = [(e, task_label(e.label, task_name)) for e in ds.examples]
    usable = [(e, lab) for e, lab in usable if lab is not None]
    problems = [f"{p}: {why}" for p, why in ds.problems[:5]]
    if len(ds.problems) > 5:
        problems.append(f"…and {len(ds.problems) - 5} more files skipped")
    problems += ds.warnings[:3]
    try:
        check_dataset([lab for _, lab in usable],
                      [e.patient for e, _ in usable] if ds.has_patients else None, folds, classes, folder)
    except LungappError as exc:
        problems.insert(0, getattr(exc, "problem", str(exc)))
    return {"error": "", "layout": ds.layout, "n": len(usable),
            "counts": {c: sum(1 for _, lab in usable if lab == c) for c in classes},
            "n_patients": len({e.patient for e, _ in usable if e.patient is not None}),
            "duration_s": _total_duration(task, [e.path for e, _ in usable if e.kind == "audio"], audio_info),
            "problems": problems}


def _total_duration(task, paths: list[str], audio_info) -> float | None:
    if not paths:
        return None
    step = max(1, len(paths) // MAX_HEADERS)
    total, read = 0.0, 0
    for p in paths[::step]:
        if task is not None and task.cancelled:
            return None
        try:
            total += float(audio_info(p).duration_s)
            read += 1
        except LungappError:
            continue
    return total * len(paths) / read if read else None


def estimate_s(duration_s: float | None, preset: str, folds: int, epochs: int,
               preset_epochs: int) -> float | None:
    """Roughly how long a run takes (s): the folds plus the final model, each one fit
    of the reference speed for ``preset`` (SECONDS_PER_AUDIO_S), scaled by ``epochs``
    against the preset's own (``epochs`` 0: the preset's)."""
    if not duration_s:
        return None
    per = SECONDS_PER_AUDIO_S.get(preset, SECONDS_PER_AUDIO_S["recommended"])
    scale = (epochs / preset_epochs) if epochs and preset_epochs else 1.0
    return duration_s * per * (folds + 1) * scale


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
