import sys

from mabcq.cli import main

sys.exit(main())
