"""``python -m kaggle_kit`` is ``kaggle-kit``."""
import sys

from .cli import main

sys.exit(main())
