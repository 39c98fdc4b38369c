"""The Chalice app's handlers: thin adapters from Lambda events to `functions`."""
