"""``python -m genlab.cli`` (what torchrun launches: ``torchrun --nproc_per_node=N -m genlab.cli train ...``)."""
import sys

from . import main

sys.exit(main())
