"""What a report holds, gathered from the store (no Qt)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from lungapp.store import ModelId, Store

NOTICE = "Decision support, not a diagnostic device"

# Worst first: the state a body-map site shows when it holds several recordings.
STATE_ORDER = ("abnormal", "poor quality", "normal", "not analysed", "missing")


@dataclass
class SiteEntry:
    """One recording of the visit: its site, file, newest result and confirmed labels."""

    site: str
    uid: str
    path: str
    missing: bool
    duration_s: float | None
    result: dict | None
    labels: list[dict] = field(default_factory=list)

    @property
    def state(self) -> str:
        """What the body map shows: the stored result's decision (it stands when the file
        has gone missing since), else "missing" or "not analysed"."""
        if self.result is not None:
            return self.result["decision"]
        return "missing" if self.missing else "not analysed"


@dataclass
class ReportData:
    patient: dict
    visit: dict
    entries: list[SiteEntry]
    active_model: str
    created: str

    def site_states(self) -> dict[str, str]:
        """{site: the worst state of its recordings} for the body map."""
        states: dict[str, str] = {}
        for e in self.entries:
            old = states.get(e.site)
            if old is None or STATE_ORDER.index(e.state) < STATE_ORDER.index(old):
                states[e.site] = e.state
        return states

    def models(self) -> list[str]:
        """The models whose results the report shows (normally one)."""
        return sorted({e.result["model"] for e in self.entries if e.result})


def gather(store: Store, identifier: str, visit_number: int | None = None,
           active: ModelId | None = None, *, visit_id: int | None = None) -> ReportData:
    """The report of visit ``visit_number`` (1 = first; None: latest) of a patient, or of
    the visit whose store id is ``visit_id``."""
    p = store.patient(identifier)
    v = store.visit(p["id"], visit_number, visit_id=visit_id)
    entries = [SiteEntry(r["site"] or "unknown site", r["uid"], r["path"], r["missing"], r["duration_s"],
                         store.latest_result(r["uid"], active), store.labels(r["uid"], current=True))
               for r in store.recordings(v["id"])]
    return ReportData(dict(p), dict(v), entries, active.text() if active else "",
                      _dt.datetime.now().strftime("%Y-%m-%d %H:%M"))


def site_history(store: Store, identifier: str, site: str, active: ModelId | None = None) -> list[dict]:
    """Every recording of ``site`` of a patient, oldest first, each with its visit number
    and date, newest result (``None`` when not analysed) and confirmed labels: what the
    comparison and the per-site trend show."""
    p = store.patient(identifier)
    out = []
    for r in store.patient_recordings(p["id"]):
        if (r["site"] or "unknown site") == site:
            out.append({**r, "result": store.latest_result(r["uid"], active),
                        "labels": store.labels(r["uid"], current=True)})
    return out


def judged(result: dict) -> bool:
    """Whether a stored result's probability means anything: not for a recording the
    quality check refused (silence, heavy clipping): the model's output on it is noise."""
    return (result.get("quality") or {}).get("level") != "refuse"


def trend(history: list[dict]) -> list[tuple[int, float]]:
    """(visit number, abnormal probability) of each analysed, current recording of a site's
    history; results by another model are left out (never mixed with the active model's),
    and so are recordings the quality check refused (:func:`judged`)."""
    return [(h["visit_number"], h["result"]["abnormal_probability"]) for h in history
            if h["result"] is not None and not h["result"].get("stale") and judged(h["result"])]
