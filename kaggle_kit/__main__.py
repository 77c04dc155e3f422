"""``python -m kaggle_kit`` is ``kaggle-kit``."""
import sys

from kaggle_kit.cli import main

sys.exit(main())
