"""Reading a `<batch-id>.zip` in S3 without downloading it, and grouping its entries for the Map.

Imports only `functions.platform`.
"""
