"""`python -m keras_trainer ...` runs the command line."""

import sys

from keras_trainer.cli import main

sys.exit(main())
