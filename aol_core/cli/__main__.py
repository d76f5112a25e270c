import sys

from aol_core.cli import main

sys.exit(main())
