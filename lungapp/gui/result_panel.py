"""The result of one analysis, in words a clinician reads at a glance: the decision
(word + colour), which sounds, class probabilities, the quality verdict, the model."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from lungapp.gui import theme

# Under the "unlike the training recordings" caution: what a clinic that records with such a
# stethoscope can do about it (lungapp.gui.models_dialog; docs/model.md: a refitted
# threshold mends a device whose normal recordings the model's own one over-calls).
RECALIBRATE_HINT = ("If you record with this stethoscope regularly: Analysis > Models… > "
                    "Recalibrate to my stethoscope fits the model's threshold to it from your "
                    "own labelled recordings.")


def describe(prediction) -> str:
    """One sentence saying what the model heard."""
    decision = getattr(prediction, "decision", "")
    if decision == "poor quality":
        q = getattr(prediction, "quality", None)
        why = getattr(q, "reason", "") if q is not None else ""
        return "Please record again" + (f": {why}." if why else ".")
    if decision == "normal":
        return "The model heard normal breath sounds only."
    parts = [p.strip() for p in str(prediction.label).split("&")]
    heard = [f"{p}: {theme.class_words(p)}" for p in parts if p and p.lower() != "normal"]
    text = "The model heard " + "; ".join(heard) + "." if heard else f"Result: {prediction.label}."
    return text + _rule_note(prediction)


def windows_words(prediction) -> str:
    """How many windows the model read: one count, or one per window length for an
    ensemble whose members read windows of different lengths (the timeline shows the
    first length's)."""
    read = (prediction.model or {}).get("windows_read") or []
    if len(read) < 2:
        return f"{len(prediction.windows)} windows analysed"
    parts = " and ".join(f"{r['windows']} × {r['window_s']:g}-s" for r in read)
    return f"{parts} windows analysed (the timeline shows the {read[0]['window_s']:g}-s ones)"


def _rule_note(prediction) -> str:
    """When a flag model's per-sound thresholds (the model card's four-class rule) name a
    class whose bar is not the largest, say so, with the evidence for each sound, so the
    bars do not seem to contradict the result."""
    probs = dict(getattr(prediction, "probabilities", None) or {})
    abnormal = ("CAS", "DAS", "CAS & DAS")
    if set(probs) != {"Normal", *abnormal} or prediction.label not in abnormal:
        return ""
    if max(abnormal, key=lambda k: probs[k]) == prediction.label:
        return ""
    cas, das = probs["CAS"] + probs["CAS & DAS"], probs["DAS"] + probs["CAS & DAS"]
    return (f" The class comes from the model's threshold for each sound (see its card), not "
            f"the largest bar: CAS evidence {cas:.0%}, DAS evidence {das:.0%}.")


def consistency_note(prediction) -> str:
    """Why the verdict, the class bars and the timeline may seem to disagree, in words
    ("" when they do not): single windows above the threshold under a normal verdict, an
    abnormal verdict with no window above it, and bars that show the worst segment."""
    windows = getattr(prediction, "windows", None) or []
    t = prediction.threshold
    out = []
    segments = getattr(prediction, "segments", None) or []
    if len(segments) > 1:
        worst = max(segments, key=lambda sg: sg.abnormal_probability)
        out.append(f"The bars show the most abnormal segment ({worst.start_s:.0f}-{worst.end_s:.0f} s) "
                   f"of {len(segments)}.")
    if windows and prediction.decision in ("normal", "abnormal"):
        top = max(windows, key=lambda w: w.abnormal_probability)
        length = top.end_s - top.start_s
        if prediction.decision == "normal" and top.abnormal_probability >= t:
            out.append(f"Some {length:g}-s windows of the timeline rise above the threshold (up to "
                       f"{top.abnormal_probability:.0%} at {top.start_s:.1f} s), but the model judges "
                       "stretches of about a recording's length, not single windows: listen there.")
        elif prediction.decision == "abnormal" and top.abnormal_probability < t:
            out.append(f"No single window reaches the threshold ({t:.0%}); the evidence is spread "
                       "over the recording.")
    return " ".join(out)


class ResultPanel(QFrame):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(240)
        lay = QVBoxLayout(self)
        lay.setSpacing(8)

        title = QLabel("Result")
        title.setStyleSheet("font-weight: bold; font-size: 13pt;")
        lay.addWidget(title)

        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.headline.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.headline.setMinimumHeight(56)
        lay.addWidget(self.headline)

        self.sentence = QLabel()
        self.sentence.setWordWrap(True)
        lay.addWidget(self.sentence)

        # A recording unlike the model's training ones (lungapp.inference.profile): said in
        # a box of its own, under the verdict it qualifies, not among the other notes.
        self.caution = QLabel()
        self.caution.setWordWrap(True)
        self.caution.setStyleSheet("background: #fff1d6; color: #6b4000; border: 1px solid #e0a040;"
                                   " border-radius: 4px; padding: 4px;")
        self.caution.hide()
        lay.addWidget(self.caution)

        self.prob_box = QWidget()
        self.prob_grid = QGridLayout(self.prob_box)
        self.prob_grid.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.prob_box)

        self.notes = QLabel()
        self.notes.setWordWrap(True)
        lay.addWidget(self.notes)

        self.quality = QLabel()
        self.quality.setWordWrap(True)
        lay.addWidget(self.quality)

        self.model = QLabel()
        self.model.setTextFormat(Qt.TextFormat.PlainText)  # the card's name is data, never markup
        self.model.setWordWrap(True)
        self.model.setStyleSheet(f"color: {theme.MUTED};")
        lay.addWidget(self.model)

        lay.addStretch(1)
        note = QLabel("Decision support only — not a diagnostic device. "
                      "A clinician's judgement decides.")
        note.setWordWrap(True)
        note.setStyleSheet(f"color: {theme.MUTED}; font-size: 8pt;")
        lay.addWidget(note)
        self.show_message("Open a recording to see its result.")

    # --- states --------------------------------------------------------------------
    def _clear_probs(self) -> None:
        while self.prob_grid.count():
            w = self.prob_grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()

    def _headline(self, text: str, bg: str, fg: str) -> None:
        self.headline.setText(text)
        self.headline.setStyleSheet(
            f"background: {bg}; color: {fg}; border-radius: 6px; padding: 8px;"
            " font-size: 13pt; font-weight: bold;")

    def _set_caution(self, text: str) -> None:
        self.caution.setText(text)
        self.caution.setVisible(bool(text))

    def show_message(self, text: str, busy: bool = False) -> None:
        self._headline(text, "#f4f4f4", "#333333")
        self._set_caution("")
        self.sentence.setText("")
        self.notes.setText("")
        self.quality.setText("")
        self.model.setText("")
        self._clear_probs()
        self.state = "busy" if busy else "empty"

    def show_error(self, text: str) -> None:
        self._headline("Could not analyse", "#f4f4f4", "#8a3300")
        self._set_caution("")
        self.sentence.setText(text)
        self.notes.setText("")
        self.quality.setText("")
        self.model.setText("")
        self._clear_probs()
        self.state = "error"

    def show_prediction(self, prediction) -> None:
        decision = prediction.decision
        bg, fg, words = theme.DECISION_STYLE.get(decision, ("#f4f4f4", "#333333", str(prediction.label)))
        label = str(prediction.label)
        headline = words if decision == "poor quality" else f"{words}\n{label}"
        if getattr(prediction, "borderline", False) and decision != "poor quality":
            headline += "\nBorderline: listen again"
        self._headline(headline, bg, fg)
        self.sentence.setText(describe(prediction))
        unfamiliar = getattr(prediction, "unfamiliar", None)
        noisy = noisy_words(getattr(prediction, "quality", None))
        cautions = [noisy] if noisy else []
        if unfamiliar is not None:
            cautions.append(f"{unfamiliar.sentence()}\n{RECALIBRATE_HINT}")
        self._set_caution("\n".join(cautions))
        notes = list(prediction.notes(caution=False)) if hasattr(prediction, "notes") else []
        note = consistency_note(prediction)
        self.notes.setText("\n".join(notes + ([note] if note else [])))
        if decision == "poor quality":
            # The model's probabilities on a recording that cannot be judged mean nothing.
            self._clear_probs()
        else:
            self._show_bars(prediction)
        self.quality.setText(quality_words(getattr(prediction, "quality", None)))
        m = prediction.model or {}
        self.model.setText(f"Model: {m.get('name', '?')} {m.get('version', '')}\n"
                           f"Recording: {prediction.duration_s:.1f} s, "
                           f"{windows_words(prediction)}")
        self.state = decision

    def _show_bars(self, prediction) -> None:
        self._clear_probs()
        items = list(prediction.probabilities.items())
        # With more than one abnormal class, their sum gets its own bar; a binary model's
        # "Abnormal" bar already is that probability.
        if prediction.abnormal_probability is not None and len(items) > 2:
            items.append(("abnormal (any)", prediction.abnormal_probability))
        for row, (cls, p) in enumerate(items):
            name = QLabel(cls)
            name.setToolTip(theme.class_words(cls))
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(int(round(float(p) * 1000)))
            bar.setFormat(f"{float(p) * 100:.0f} %")
            bar.setTextVisible(True)
            bar.setMaximumHeight(16)
            color = theme.class_color(cls) if cls != "abnormal (any)" else "#555555"
            bar.setStyleSheet(f"QProgressBar::chunk {{ background: {color}; }}"
                              " QProgressBar { text-align: center; }")
            self.prob_grid.addWidget(name, row, 0)
            self.prob_grid.addWidget(bar, row, 1)


def noisy_words(q) -> str:
    """The quality check's warning for the caution box ("" unless it warned), saying that
    the noisy stretches it names are hatched on the plots."""
    if q is None or getattr(q, "level", "") != "warn":
        return ""
    text = q.reason[:1].upper() + q.reason[1:]
    return text + (". The noisy stretches are hatched on the plots." if q.noisy_ranges else ".")


def quality_words(q) -> str:
    """The quality verdict in one line for the panel."""
    if q is None:
        return "Quality check: not run by this model."
    if getattr(q, "level", "") == "warn":
        return "Quality check: passed, with the warning above."
    if q.ok:
        return "Quality check: passed." + (f" ({q.reason})" if q.reason else "")
    return f"Quality check: failed — {q.reason}"
