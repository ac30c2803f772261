"""Everything that runs the bundle on one machine (sandbox, runner, demo, test support).

The layer's package is put on the import path here, as Lambda puts a layer under /opt/python.
"""

import sys
from pathlib import Path

_LAYER = str(Path(__file__).resolve().parent.parent / "layers" / "calendly_sync")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
