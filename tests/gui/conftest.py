"""The Review tests' fixtures (a window with the tiny real model) for every GUI test file."""

from test_gui_review import tiny_predictor, window  # noqa: F401
