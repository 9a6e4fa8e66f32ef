"""``python -m mom`` is ``momd``."""
import sys

from mom.daemon import main

sys.exit(main())
