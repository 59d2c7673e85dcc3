"""Colours and words for results, chosen to be told apart by colour-blind users
(Okabe-Ito palette) and never used alone: every colour comes with a word."""

from __future__ import annotations

PLOT_BG = "#ffffff"
WAVE = "#1f3b57"
CURSOR = "#d40000"
MUTED = "#6b6b6b"
ABNORMAL_LINE = "#000000"
HIT_RGBA = (213, 94, 0, 45)     # vermillion, translucent: windows over the threshold
NOISY_RGBA = (90, 90, 90, 150)  # grey hatching: stretches the quality check found noisy

# Okabe-Ito
ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILLION, PURPLE = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")

_CLASS_COLORS = {"cas": VERMILLION, "das": BLUE, "normal": GREEN}
_OTHER = [PURPLE, ORANGE, SKY, YELLOW]

DECISION_STYLE = {
    # decision: (background, foreground, headline)
    "normal": ("#d9efe6", "#00583f", "No adventitious sounds detected"),
    "abnormal": ("#fbe0cf", "#8a3300", "Adventitious sounds detected"),
    "poor quality": ("#eeeeee", "#444444", "Recording quality too poor to judge"),
}

CLASS_WORDS = {
    "CAS": "continuous adventitious sounds (wheeze / rhonchi)",
    "DAS": "discontinuous adventitious sounds (crackles)",
    "Normal": "normal breath sounds",
}


def class_color(name: str) -> str:
    key = name.lower()
    if key in _CLASS_COLORS:
        return _CLASS_COLORS[key]
    return _OTHER[sum(map(ord, key)) % len(_OTHER)]


def class_words(name: str) -> str:
    return CLASS_WORDS.get(name, name)
