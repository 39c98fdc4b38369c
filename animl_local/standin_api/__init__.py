"""A stand-in for the Animl GraphQL API: real HTTP, real GraphQL, SQLite storage."""

from animl_local.standin_api.server import Fault, InferenceAutomation, StandinApi

__all__ = ["Fault", "InferenceAutomation", "StandinApi"]
