"""`python -m edge` runs the smarteye CLI."""

from edge.cli import app

app()
