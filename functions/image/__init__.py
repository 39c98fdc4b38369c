"""One image: what it is, its metadata (EXIF and maker notes), renditions, record or dead letter.

Imports only `functions.platform`.
"""
