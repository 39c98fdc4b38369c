"""What every step stands on: settings, reason codes, object keys, the API client, the runtime.

Imports nothing else of `functions`.
"""
