"""`python -m sheetbatch` runs the CLI."""

from sheetbatch.cli import main

main()
