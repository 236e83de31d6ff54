"""`python -m candleflow.cli`: the same entry point as the `candleflow` command."""

from candleflow.cli.main import main

main()
