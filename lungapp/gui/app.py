"""Start the desktop app: ``lungapp``, ``lungapp FILE...`` or ``lungapp-gui``.

The window is shown first; the model (and TensorFlow) is loaded afterwards in a worker,
so the app is usable (open, look, listen) from the first second.
"""

from __future__ import annotations

import os
import sys

NO_DISPLAY = "lungapp: no display found (set DISPLAY, or QT_QPA_PLATFORM=offscreen)"


def has_display(environ=os.environ, platform: str = sys.platform) -> bool:
    """False only where Qt would abort for lack of a display (Linux/BSD without X11,
    Wayland or an explicit QT_QPA_PLATFORM)."""
    if not (platform.startswith("linux") or "bsd" in platform):
        return True
    return any(environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def create_application(argv: list[str]):
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication, QIcon
    from PySide6.QtWidgets import QApplication

    import lungapp
    from lungapp import paths

    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(["lungapp", *argv])
    QCoreApplication.setOrganizationName("lungapp")
    QCoreApplication.setApplicationName("lungapp")
    QCoreApplication.setApplicationVersion(lungapp.__version__)
    QGuiApplication.setDesktopFileName("lungapp")
    try:  # like the bundled model and the examples: a missing resources folder is no crash
        icon = paths.resources_dir() / "icons" / "lungapp.svg"
    except FileNotFoundError:
        icon = None
    if icon is not None and icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def create_window(paths: list[str] | None = None, *, load_model: bool = True):
    """The main window, shown, with ``paths`` opened in Review. The model (and with it
    TensorFlow) starts loading in a worker only after the window's first paint, or after
    3 s if the window is never painted (e.g. started minimised)."""
    from PySide6.QtCore import QTimer

    from lungapp.gui.main_window import MainWindow

    win = MainWindow()
    win.show()
    if paths:
        win.open_paths(paths)
    if load_model:
        started = []

        def start():
            if not started:
                started.append(True)
                win.ctx.load_model()

        win.firstPainted.connect(start)
        QTimer.singleShot(3000, win, start)
    return win


def window_paths(argv: list[str]) -> list[str] | None:
    """The files and folders to open from the window's arguments: everything after ``--``,
    and before it anything that is not an option or is an existing file (``-3dB.flac``).
    An unknown option is said on stderr (None is returned): never dropped silently."""
    paths, args = [], iter(argv)
    for a in args:
        if a == "--":
            paths += list(args)
            break
        if a.startswith("-") and not os.path.exists(a):
            print(f"lungapp: unknown option {a} (to open a file of that name, put -- before it)\n"
                  "usage: lungapp [FILE_OR_FOLDER...]", file=sys.stderr)
            return None
        paths.append(a)
    return paths


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print("usage: lungapp [FILE_OR_FOLDER...]\n\nOpens the lungapp window; files and "
              "folders given are opened in the Review tab.")
        return 0
    smoke_test = bool(argv) and argv[0] == "--smoke-test"  # hidden: packaging/smoke.sh
    paths = [] if smoke_test else window_paths(argv)
    if paths is None:
        return 2
    if not has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if smoke_test:  # (lungapp.gui.smoke)
        from lungapp.gui import smoke

        return smoke.main(argv[1:])
    app = create_application([])
    win = create_window(paths)
    rc = app.exec()
    # Close (saves settings, stops playback and workers) and wait for the pool before
    # the interpreter tears Qt down: finalising with worker threads alive can crash.
    if win.isVisible():
        win.close()
    from lungapp.gui import workers

    workers.wait_all(5000)
    del win
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
