"""Step logic of the Animl ingest stack: plain functions, called by thin Lambda handlers."""
