"""Export the Review list's results to CSV (one row per file, written atomically)."""

from __future__ import annotations

import csv
import io

from lungapp.fsutil import atomic_write_text
from lungapp.gui.file_list import judged


def rows(entries) -> tuple[list[str], list[dict]]:
    classes: list[str] = []
    for e in entries:
        for c in (getattr(e.prediction, "probabilities", None) or {}):
            if c not in classes:
                classes.append(c)
    header = (["file", "duration_s", "status", "label", "decision", "abnormal_probability"]
              + [f"p_{c}" for c in classes]
              + ["quality_ok", "quality_reason", "unlike_training", "model_name", "model_version", "error"])
    out = []
    for e in entries:
        p = e.prediction
        row = {"file": e.path,
               "duration_s": "" if e.duration_s is None else f"{e.duration_s:.3f}",
               "status": e.status, "error": e.error}
        if p is not None:
            q = p.quality
            model = p.model or {}
            # A recording the quality check refused has no probabilities (as `predict
            # --format csv` and the result panel): its numbers mean nothing.
            shown = judged(p)
            row.update(label=p.label, decision=p.decision,
                       abnormal_probability="" if p.abnormal_probability is None or not shown
                       else f"{p.abnormal_probability:.4f}",
                       quality_ok="" if q is None else str(bool(q.ok)).lower(),
                       quality_reason="" if q is None else q.reason,
                       unlike_training=str(getattr(p, "unfamiliar", None) is not None).lower(),
                       model_name=model.get("name", ""), model_version=model.get("version", ""))
            for c, v in p.probabilities.items():
                row[f"p_{c}"] = f"{v:.4f}" if shown else ""
        out.append(row)
    return header, out


def export_csv(path, entries) -> int:
    """Write ``entries`` (file_list.Entry) to ``path``; returns the number of rows."""
    header, data = rows(entries)
    buf = io.StringIO()
    # "\r\n" (the csv module's own): a field holding a carriage return (a file name can)
    # is quoted, so the row reads back as one.
    w = csv.DictWriter(buf, fieldnames=header, restval="", lineterminator="\r\n")
    w.writeheader()
    w.writerows(data)
    atomic_write_text(path, buf.getvalue())
    return len(data)
