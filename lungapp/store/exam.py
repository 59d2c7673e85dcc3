"""A guided exam: the clinic's protocol of chest sites, stepped through in order (no Qt).

The exam names the site to record next; each recording made is filed under the exam's
patient, visit and that site; a site can be skipped, or repeated (recorded again after
a poor recording). Protocols are lists of site names, editable; the built-in ones use the
recorder's site names plus lower posterior sites for the 8-site protocol."""

from __future__ import annotations

from dataclasses import dataclass, field

PROTOCOLS: dict[int, tuple[str, ...]] = {
    4: ("Anterior right", "Anterior left", "Posterior right", "Posterior left"),
    6: ("Anterior right", "Anterior left", "Lateral right", "Lateral left", "Posterior right", "Posterior left"),
    8: ("Anterior right", "Anterior left", "Lateral right", "Lateral left", "Posterior right", "Posterior left",
        "Posterior right lower", "Posterior left lower"),
}


def parse_sites(text: str) -> list[str]:
    """A protocol typed as comma-separated site names (blanks and repeats dropped)."""
    out: list[str] = []
    for s in (part.strip() for part in text.split(",")):
        if s and s not in out:
            out.append(s)
    return out


@dataclass
class Exam:
    """The state of one exam: ``sites`` in order, what was recorded (site -> uids) and
    skipped, and the site to record now (``current``; None when every site is done)."""

    patient: str
    sites: list[str]
    visit_id: int | None = None
    recorded: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    current: str | None = None
    last: str | None = None     # the site recorded last (what "repeat" records again)

    def __post_init__(self):
        if not self.sites:
            raise ValueError("an exam needs at least one site")
        if self.current is None:
            self.current = self._first_open()

    def _first_open(self, after: str | None = None) -> str | None:
        """The first site (after ``after`` in protocol order, wrapping) neither recorded nor skipped."""
        start = self.sites.index(after) + 1 if after in self.sites else 0
        order = self.sites[start:] + self.sites[:start]
        return next((s for s in order if s not in self.recorded and s not in self.skipped), None)

    @property
    def finished(self) -> bool:
        return self.current is None

    def position(self) -> tuple[int, int]:
        """(1-based place of the current site in the protocol, number of sites)."""
        return (self.sites.index(self.current) + 1 if self.current in self.sites else len(self.sites),
                len(self.sites))

    def record(self, uid: str) -> str | None:
        """A recording of the current site was made: file it there, move on; the next site."""
        if self.current is None:
            raise ValueError("the exam is finished")
        site = self.current
        self.recorded.setdefault(site, []).append(uid)
        self.last = site
        self.current = self._first_open(site)
        return self.current

    def skip(self) -> str | None:
        """Leave the current site out (it stays "to record" on the body map); the next site."""
        if self.current is not None:
            self.skipped.append(self.current)
            self.current = self._first_open(self.current)
        return self.current

    def repeat(self) -> str | None:
        """Record the last recorded site again next (e.g. after a poor recording)."""
        if self.last is not None:
            self.current = self.last
        return self.current

    def remaining(self) -> list[str]:
        return [s for s in self.sites if s not in self.recorded and s not in self.skipped]

    def summary(self) -> str:
        marks = []
        for s in self.sites:
            n = len(self.recorded.get(s, []))
            marks.append(f"{s} ✓" + (f"×{n}" if n > 1 else "") if n else f"{s} (skipped)" if s in self.skipped
                         else f"{s} ▶" if s == self.current else s)
        return ", ".join(marks)
