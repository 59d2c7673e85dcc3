"""The About dialog: version, intended use, the active model's card (the same text as its
MODEL_CARD.md: what it reports, training data, cross-validated performance with the
confusion matrices, limitations), data credits."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor, QTextDocument
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

import lungapp
from lungapp.training.card_text import card_markdown

CREDITS = (
    "**Data.** The bundled model is trained on *SPRSound*, the SJTU Paediatric Respiratory "
    "Sound database: Q. Zhang, J. Zhang, J. Zhang et al., “SPRSound: Open-Source SJTU "
    "Paediatric Respiratory Sound Database”, *IEEE Transactions on Biomedical Circuits and "
    "Systems* 16(5), 2022, released for the IEEE BioCAS 2022 Grand Challenge on respiratory "
    "sound classification."
)

NOT_DIAGNOSTIC = (
    "**lungapp is not a diagnostic device.** It is decision support for clinicians and "
    "researchers: every result must be confirmed by a qualified clinician. It runs entirely "
    "on this computer and sends nothing over the network."
)

# Markdown features: GitHub tables, no raw HTML (card text is data, never markup)
_MD_FEATURES = (QTextDocument.MarkdownFeature.MarkdownDialectGitHub
                | QTextDocument.MarkdownFeature.MarkdownNoHTML)


def _plain(text) -> str:
    """Card-provided text for one list item: no line breaks."""
    return re.sub(r"\s+", " ", str(text))


def about_markdown(card, state: str, message: str, runtime: str = "") -> str:
    """The About text as Markdown; ``card`` None while loading or when there is no model."""
    parts = [f"## lungapp {lungapp.__version__}",
             "Record, review and analyse lung sounds from a digital stethoscope. A local model "
             "marks continuous (CAS: wheeze, rhonchi) and discontinuous (DAS: crackles) "
             "adventitious sounds and shows where they are in the recording.",
             NOT_DIAGNOSTIC]
    if card is None:
        parts.append(f"**Model:** {_plain(message or state)}")
    else:
        rows = [("Name", f"{card.name} {card.version}"),
                ("Task", f"{card.task}: {', '.join(card.classes)}"),
                ("Decision threshold", f"{card.threshold:.3f}"),
                ("Created", card.created)] + ([("Runtime", runtime)] if runtime else [])
        parts.append("### Active model\n\n" + "\n".join(f"- **{k}:** {_plain(v)}" for k, v in rows))
        # the model card, its headings one level down under "Active model"
        parts.append(re.sub(r"(?m)^(#+) ", lambda mt: "###" + mt.group(1)[1:] + " ",
                            card_markdown(card)))
    parts += [CREDITS, "Built with PySide6 (Qt), pyqtgraph, NumPy, SciPy, soundfile, sounddevice, "
                       "scikit-learn, Keras and TensorFlow. Licence: GPL-3.0-or-later."]
    return "\n\n".join(parts) + "\n"


class AboutDialog(QDialog):
    def __init__(self, context, parent=None):
        super().__init__(parent)
        self.setWindowTitle("About lungapp")
        self.resize(620, 560)
        lay = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        p = context.predictor()
        self.text.document().setMarkdown(
            about_markdown(p.card if p is not None else None, context.model_state(),
                           context.model_message(), p.runtime_text() if p is not None else ""),
            _MD_FEATURES)
        self.text.moveCursor(QTextCursor.MoveOperation.Start)  # open at the top
        lay.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).clicked.connect(self.accept)
        lay.addWidget(buttons)
        self.setWindowModality(Qt.WindowModality.ApplicationModal)
