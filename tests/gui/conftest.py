"""Fixtures for every GUI test file: the Review tests' window with the tiny real model, and
a window with no model (an annotator named "tester") for tests that need none."""

import pytest
from test_gui_review import tiny_predictor, window  # noqa: F401


@pytest.fixture
def bare_window(qtbot):
    """The main window, shown, with no model loaded; closed at the end without the
    questions closing asks while something runs."""
    from lungapp.gui import workers
    from lungapp.gui.app import create_window

    win = create_window([], load_model=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.review.settings.setValue("annotation/annotator", "tester")
    yield win
    win.ask_close = lambda parent, what: True
    win.close()
    workers.wait_all(5000)
