"""`python -m lmforge ...`: the `lmforge` command, for an environment whose scripts folder is not on PATH."""

from lmforge.cli.main import main

main()
