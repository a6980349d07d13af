"""`python -m smarteye` runs the smarteye CLI."""

from smarteye.cli import app

app()
