"""Typed errors. Library code raises these; only the CLI prints them and chooses exit codes."""

from __future__ import annotations


class VsrError(Exception):
    """Base of every error vsr raises on purpose; exit_code is what the CLI returns for it."""

    exit_code = 3


class BadInputError(VsrError):
    """The input cannot be processed: missing, not media, no video stream, undecodable."""

    exit_code = 2


class UsageError(VsrError):
    """The request itself is wrong: output equals input, output exists, unknown model, bad option."""

    exit_code = 2


class ModelError(VsrError):
    """A model or its artefacts are missing or inconsistent (a packaging defect, not the user's fault)."""

    exit_code = 3


class BackendUnavailableError(VsrError):
    """The requested inference backend cannot run on this machine."""

    exit_code = 2


class StalledError(VsrError):
    """No frame moved through the job for longer than its stall timeout (a hung decoder, encoder or model)."""

    exit_code = 3
