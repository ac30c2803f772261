"""``python -m ops``: see :mod:`ops.cli`."""

import sys

from ops.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
