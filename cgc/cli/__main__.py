"""`python -m cgc.cli`, the same as `cgc`."""

from cgc.cli import main

main()
