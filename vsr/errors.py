"""Typed errors. Library code raises these; only the CLI prints them and chooses exit codes.

Each also subclasses the built-in it refines, as PyAV's errors do, so `except ValueError` in a caller's
code still catches a bad request.
"""

from __future__ import annotations


class VsrError(Exception):
    """Base of every error vsr raises on purpose."""


class UsageError(VsrError, ValueError):
    """The request itself is wrong: output equals input, output exists, unknown model, bad option."""


class BadInputError(VsrError, ValueError):
    """The input cannot be processed: missing, not media, no video stream, undecodable."""


class ModelError(VsrError, RuntimeError):
    """A model or its artefacts are missing or inconsistent (a packaging defect, not the user's fault)."""


class PlanError(ModelError):
    """A runtime could not prepare a model for the job's shapes (a TensorRT plan that failed to build or
    load); under `auto` the job runs again on the next backend."""


class BackendUnavailableError(VsrError, RuntimeError):
    """The requested inference backend cannot run on this machine."""


class StalledError(VsrError, TimeoutError):
    """No frame moved through the job for longer than its stall timeout (a hung decoder, encoder or model)."""


class OutputError(VsrError, OSError):
    """The machine refuses the output: disk full, folder missing or not writable (not the request's fault)."""
