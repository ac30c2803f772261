"""The repository's own tools (``python -m tools.<name>``), run by the Makefile."""
