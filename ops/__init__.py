"""Operator commands for a deployed calendly-sync stack: ``python -m ops --help``.

Each command invokes one of the stack's functions (by logical id) and prints its answer::

    CALENDLY_TOKEN=... python -m ops connect        # validate and save a Personal Access Token
    python -m ops connect --recheck                 # re-check the stored token
    python -m ops subscribe | status | rotate-key   # manage the webhook subscription
"""

from ops.invokers import FunctionFailed, FunctionInvoker, LocalInvoker, OpsError, StackInvoker

__all__ = ["FunctionFailed", "FunctionInvoker", "LocalInvoker", "OpsError", "StackInvoker"]
