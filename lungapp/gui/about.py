"""The About dialog: version, the active model's card, data credits, intended use."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

import lungapp

CREDITS = (
    "<b>Data.</b> The bundled model is trained on <i>SPRSound</i>, the SJTU Paediatric "
    "Respiratory Sound database: Q. Zhang, J. Zhang, J. Zhang et al., “SPRSound: Open-Source "
    "SJTU Paediatric Respiratory Sound Database”, <i>IEEE Transactions on Biomedical Circuits "
    "and Systems</i> 16(5), 2022, released for the IEEE BioCAS 2022 Grand Challenge on "
    "respiratory sound classification."
)

NOT_DIAGNOSTIC = (
    "<b>lungapp is not a diagnostic device.</b> It is decision support for clinicians and "
    "researchers: every result must be confirmed by a qualified clinician. It runs entirely "
    "on this computer and sends nothing over the network."
)


def _fmt_metric(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        inner = {k: x for k, x in v.items() if isinstance(x, (int, float, str))}
        return ", ".join(f"{k} {_fmt_metric(x)}" for k, x in list(inner.items())[:6])
    return html.escape(str(v))


def model_html(card, state: str, message: str, runtime: str = "") -> str:
    if card is None:
        return f"<p><b>Model:</b> {html.escape(message or state)}</p>"
    fc = card.features
    sc = fc.spectrogram
    rows = [
        ("Name", f"{card.name} {card.version}"),
        ("Task", f"{card.task}: {', '.join(card.classes)}"),
        ("Input", f"{sc.rate} Hz, {sc.scale} spectrogram ({sc.n_bins} bins, window "
                  f"{sc.win_length}, hop {sc.hop_length}); {fc.window_s:g} s windows every {fc.hop_s:g} s"),
        ("Decision threshold", f"{card.threshold:.3f}" + (f" ({card.threshold_rule})" if card.threshold_rule else "")),
        ("Created", card.created),
    ] + ([("Runtime", runtime)] if runtime else [])
    metrics = card.metrics or {}
    for k, v in list(metrics.items())[:8]:
        if isinstance(v, (int, float, dict)):
            rows.append((f"CV {k}", _fmt_metric(v)))
    trows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(str(v)) if not k.startswith('CV') else v}</td></tr>"
                    for k, v in rows)
    extra = ""
    if card.description:
        extra += f"<p>{html.escape(card.description)}</p>"
    if card.limitations:
        extra += "<p><b>Limitations</b></p><ul>" + "".join(
            f"<li>{html.escape(str(x))}</li>" for x in card.limitations) + "</ul>"
    return f"<h3>Active model</h3><table cellspacing='4'>{trows}</table>{extra}"


def about_html(card, state: str, message: str, runtime: str = "") -> str:
    return (f"<h2>lungapp {html.escape(lungapp.__version__)}</h2>"
            "<p>Record, review and analyse lung sounds from a digital stethoscope. A local model "
            "marks continuous (CAS: wheeze, rhonchi) and discontinuous (DAS: crackles) "
            "adventitious sounds and shows where they are in the recording.</p>"
            f"<p>{NOT_DIAGNOSTIC}</p>"
            f"{model_html(card, state, message, runtime)}"
            f"<p>{CREDITS}</p>"
            "<p>Built with PySide6 (Qt), pyqtgraph, NumPy, SciPy, soundfile, sounddevice, "
            "scikit-learn, Keras and TensorFlow. Licence: GPL-3.0-or-later.</p>")


class AboutDialog(QDialog):
    def __init__(self, context, parent=None):
        super().__init__(parent)
        self.setWindowTitle("About lungapp")
        self.resize(620, 560)
        lay = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        p = context.predictor()
        self.text.setHtml(about_html(p.card if p is not None else None,
                                     context.model_state(), context.model_message(),
                                     p.runtime_text() if p is not None else ""))
        lay.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).clicked.connect(self.accept)
        lay.addWidget(buttons)
        self.setWindowModality(Qt.WindowModality.ApplicationModal)
