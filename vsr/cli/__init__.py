"""The `vsr` command line: one typer module per command, registered here.

Each command parses, calls the public API (vsr.api), renders what it returns and leaves errors to
`main`, which maps exception types to exit codes: the mapping lives here and nowhere else.
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from vsr.errors import (
    BackendUnavailableError,
    BadInputError,
    ModelError,
    OutputError,
    StalledError,
    UsageError,
    VsrError,
)

# Exit codes by error type: 2 for what the user can fix (input, request, runtime), 3 for our defects and
# hangs, 4 for the environment (disk full, output folder missing or not writable).
EXIT_CODES: dict[type[VsrError], int] = {
    BadInputError: 2,
    UsageError: 2,
    BackendUnavailableError: 2,
    ModelError: 3,
    StalledError: 3,
    OutputError: 4,
}
DAMAGED = 1  # done, but the input was damaged (decode errors skipped or concealed)
INTERNAL = 3
INTERRUPTED = 130


def exit_code(error: BaseException | str) -> int:
    """The exit code of an error, or of an error type's name (a folder's status file records names)."""
    name = error if isinstance(error, str) else type(error).__name__
    return next((code for kind, code in EXIT_CODES.items() if kind.__name__ == name), INTERNAL)


app = typer.Typer(
    name="vsr",
    help="Video super-resolution: upscale and denoise video files with every stream kept.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Video super-resolution: upscale and denoise video files with every stream kept."""


def _register() -> None:
    # Imported here so that each command module can import `app` from this package without a cycle.
    from vsr.cli import (  # noqa: F401
        bench_cmd,
        compare_cmd,
        engine_cmd,
        eval_cmd,
        export_cmd,
        import_cmd,
        models_cmd,
        probe_cmd,
        profiles_cmd,
        train_cmd,
        upscale_cmd,
    )


def _fail(message: str, code: int) -> int:
    print(f"vsr: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure becomes one line on stderr and a distinct exit code."""
    _register()
    try:
        result = app(args=argv, prog_name="vsr", standalone_mode=False)
    except typer.Exit as exc:  # also --help; typer turns Ctrl-C into Exit(130)
        return _fail("interrupted", INTERRUPTED) if exc.exit_code == INTERRUPTED else exc.exit_code
    except typer.Abort:
        return _fail("interrupted", INTERRUPTED)
    except typer.TyperException as exc:  # bad usage: the parser's own message
        exc.show()  # type: ignore[attr-defined]
        return 2
    except KeyboardInterrupt:
        return _fail("interrupted", INTERRUPTED)
    except VsrError as exc:
        return _fail(str(exc), exit_code(exc))
    except Exception as exc:  # an internal defect: one line, full traceback only on request
        if os.environ.get("VSR_DEBUG"):
            raise
        return _fail(
            f"internal error: {type(exc).__name__}: {exc} (set VSR_DEBUG=1 for a traceback)", INTERNAL
        )
    if result == INTERRUPTED:  # typer returns Ctrl-C as exit code 130 when not in standalone mode
        return _fail("interrupted", INTERRUPTED)
    return result if isinstance(result, int) else 0


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (a job scheduler, `kill`) takes the same clean path as Ctrl-C: temporary output removed.
    raise KeyboardInterrupt


def entry() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
