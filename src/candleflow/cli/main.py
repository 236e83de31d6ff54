"""The entry point: every error candleflow can explain is one line on stderr (exit code 2) and
the last line of the command's log file; an unexpected one leaves its traceback in the log."""

from __future__ import annotations

import sys

import typer

# the commands register themselves on the app, in the order --help lists them
# isort: off
import candleflow.cli.train  # noqa: F401  run, train, walkforward, predict, tune, report, compare, export
import candleflow.cli.data  # noqa: F401  prepare, inspect, images, rewards
import candleflow.cli.download  # noqa: F401
import candleflow.cli.cache  # noqa: F401
import candleflow.cli.models  # noqa: F401

# isort: on
from candleflow.cli.common import app, console, err_console, log_error, printable
from candleflow.errors import CandleflowError
from candleflow.fs.atomic import full_disk


def _fail(text: str, limit: int = 800) -> None:
    """One error line: control characters shown escaped (a hostile file's bytes cannot move the
    cursor or clear the screen), at most `limit` characters."""
    shown = printable(text)
    shown = shown if len(shown) <= limit else shown[: limit - 3] + "..."
    log_error(shown)
    err_console.print(f"error: {shown}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(2)


def _usage_errors() -> tuple[type[Exception], ...]:
    """The exception types of bad options and arguments: typer's (it vendors click) and click's."""
    kinds: list[type[Exception]] = [k for k in (getattr(typer, "TyperException", None),) if k is not None]
    try:
        import click

        kinds.append(click.ClickException)
    except ImportError:
        pass
    return tuple(kinds)


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (kill, a scheduler, a closed session's SIGHUP) raises KeyboardInterrupt as Ctrl-C
    does, so every `finally` and atomic writer runs: a build stopped half-way removes its hidden
    temporary file instead of leaving hundreds of MB beside its target."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


def main() -> None:
    """Entry point: any error candleflow can explain is one line on stderr and exit code 2."""
    _terminate_like_ctrl_c()
    try:
        code = app(standalone_mode=False)
    except _usage_errors() as exc:  # a bad option or argument: the parser's message, on one line
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            console.print(ctx.get_help(), markup=False, highlight=False)
            sys.exit(0)
        if not hasattr(exc, "format_message"):
            raise
        where = f"{ctx.command_path}: " if ctx is not None else ""
        _fail(where + " ".join(exc.format_message().split()))
    except typer.Abort:
        err_console.print("interrupted", markup=False, highlight=False)
        sys.exit(130)
    except (CandleflowError, OSError) as exc:  # OSError: a file or folder we could not use
        if isinstance(exc, OSError) and full_disk(exc):  # a writer without its own wrapper: name what is known
            where = exc.filename or "the output being written"
            _fail(f"{where}: no space left on the device ({exc.strerror or exc}); free space or choose another folder")
        # one line: the message, and a note such as "resume with: ..." on the same line
        notes = "; ".join(getattr(exc, "__notes__", []))
        text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        _fail(text + (f" ({notes})" if notes else ""))
    except Exception as exc:  # a bug of ours: the traceback goes to the log file too, then as Python prints it
        log_error(f"{type(exc).__name__}: {exc}", exc_info=True)
        raise
    except MemoryError:
        _fail("out of memory; use a smaller dataset.batch_size, window or data range")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
