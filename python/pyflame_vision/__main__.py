import sys

from pyflame_vision.cli import main

sys.exit(main())
