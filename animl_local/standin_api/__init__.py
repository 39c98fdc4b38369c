"""A stand-in for the Animl GraphQL API: real HTTP, real GraphQL, SQLite storage."""

from animl_local.standin_api.server import Fault, StandinApi, StandinAws

__all__ = ["Fault", "StandinApi", "StandinAws"]
