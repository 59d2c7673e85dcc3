"""Entry point of the PyInstaller bundle (packaging/lungapp.spec): the same `lungapp`
command as the pip install, so the bundled binary opens the GUI with no arguments and
is the CLI with a subcommand (the Train tab runs `<binary> train ...` in a child process).
"""

import multiprocessing
import sys

from lungapp.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
