"""Operator commands for a deployed calendly-sync stack: ``python -m ops --help``.

Each command invokes one of the stack's functions (by logical id) and prints its answer::

    CALENDLY_TOKEN=... python -m ops connect        # validate and save a Personal Access Token
    python -m ops connect --recheck                 # re-check the stored token
    python -m ops subscribe | status | rotate-key   # manage the webhook subscription
    python -m ops sync                              # poll Calendly now, run after run until done
    python -m ops backfill --since 2025-01-01       # read history since a date, with a progress bar
"""

from ops.invokers import FunctionFailed, FunctionInvoker, LocalInvoker, OpsError, StackInvoker

__all__ = ["FunctionFailed", "FunctionInvoker", "LocalInvoker", "OpsError", "StackInvoker"]
