import sys

from lungapp.cli import main

sys.exit(main())
