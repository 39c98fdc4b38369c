"""Local-only machinery: the embedded engine, the stand-in Animl API and the CLI.

Nothing here ships to Lambda.
"""
