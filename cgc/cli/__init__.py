"""The `cgc` command line: one group, a sub-group or command per pipeline stage, one module each.

Commands are thin: they parse options, call the library and print a summary. Problems with
the user's inputs arrive as `InputError` and leave as a one-line message, never a traceback.
"""

from cgc.cli import annotate, crf, datasets, inference, serve, training, weaklabels  # noqa: F401 (each adds its commands)
from cgc.cli.options import reports_input_errors
from cgc.cli.root import cgc, main

__all__ = ["cgc", "main", "reports_input_errors"]
