"""What every command shares: the Typer apps, the consoles, common options, logging to the
console and to each command's log file, progress bars, and Ctrl-C handling. Presentation only."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from candleflow.models.progress import PROGRESS_SECONDS


def _flag_type(self: Any, ctx: Any) -> str | None:
    """Typer's help shows a type after every option, `<bool>` after flags such as --refit too,
    which reads as if the flag took a value: flags show none."""
    return None if getattr(self, "is_flag", False) else _option_type(self, ctx)


_option_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Exchange candles to leak-free datasets and trained, evaluated, versioned models.",
)
models_app = typer.Typer(no_args_is_help=True, help="List and inspect saved runs and their models.")
app.add_typer(models_app, name="models")
cache_app = typer.Typer(no_args_is_help=True, help="List and prune candleflow's caches (downloads, prepared data).")
app.add_typer(cache_app, name="cache")
# wide enough for the metrics table when output goes to a file or a CI log
# markup off: symbols, file names, listing keys and run names are printed as they are ("[/]" included)
console = Console(markup=False) if sys.stdout.isatty() else Console(width=120, markup=False)
err_console = (
    Console(stderr=True, markup=False) if sys.stderr.isatty() else Console(stderr=True, width=120, markup=False)
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config; the embedded default when omitted")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="override a config key, e.g. --set labels.horizon=48")
]
RunsOpt = Annotated[Path, typer.Option("--runs-dir", help="folder holding run folders")]


class CommandLog(logging.FileHandler):
    """The log file of one command; a later command in the same process replaces it."""


def printable(text: Any) -> str:
    """`text` with every control character shown escaped (`\\x1b`, `\\n`): a value from a run folder
    or a file (a tag, a ticker, a note) cannot move the cursor, clear the screen or recolour the
    terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def plain(text: Any) -> Text:
    """A table cell or line from data: printable, and never read as rich markup (`[red]`)."""
    return Text(printable(text))


def check_inputs(cfg: Any) -> None:
    """What a command reads, checked in well under a second, before Keras or JAX load: the
    exchange calendar (installed and known) and a files source's paths and globs (a pattern that
    matches nothing is one line now, not after the heavy imports and the run's start). Templated
    paths ({symbol}) are checked per series later."""
    from candleflow.data.calendar import check_calendar

    check_calendar(cfg.validation.calendar)
    src = cfg.source
    if getattr(src, "kind", None) == "files":
        from candleflow.data.sources.files import expand_paths

        plain = [str(Path(p).expanduser()) for p in src.paths if "{" not in p]
        if plain:
            expand_paths(plain)


def use_backend(cfg: Any, family: str | None = None) -> str:
    """Check the inputs (check_inputs), then fix the Keras backend `training.backend` asks for
    before anything imports Keras (the commands that train call this before importing the
    pipeline)."""
    check_inputs(cfg)
    from candleflow.models.backend_choice import apply_backend, device_kind

    return apply_backend(cfg.training.backend, family or cfg.model.kind, device_kind(cfg.training.device))


def setup_logging(verbose: bool = False, log_file: Path | None = None) -> None:
    """Log to the console (INFO with `verbose`, else WARNING) and, with `log_file`, everything to that file."""
    log = logging.getLogger("candleflow")
    log.setLevel(logging.INFO)
    if not any(isinstance(h, RichHandler) for h in log.handlers):
        h = RichHandler(console=err_console, show_path=False, show_time=False, markup=False)
        h.setLevel(logging.INFO if verbose else logging.WARNING)
        h.addFilter(lambda record: record.name != "candleflow.epochs")
        log.addHandler(h)
    for old in [h for h in log.handlers if isinstance(h, CommandLog)]:
        log.removeHandler(old)
        old.close()
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = CommandLog(log_file)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(fh)
        fh.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, "candleflow %s", (" ".join(sys.argv[1:]),), None))
    log.propagate = False


class LoggedProgress(Progress):
    """rich's Progress, which draws nothing where stderr is not a terminal (a log file, CI, nohup,
    a notebook's captured output): there, each task's progress is also a plain line on stderr, at
    most every PROGRESS_SECONDS and when it completes, so long work is never silent."""

    def __init__(self, label: str, *args: Any, say: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label, self.said = label, 0.0
        self.plain = say and not err_console.is_terminal and not kwargs.get("disable", False)

    def update(self, task_id: Any, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._say(task_id)

    def advance(self, task_id: Any, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._say(task_id)

    def _say(self, task_id: Any) -> None:
        if not self.plain:
            return
        task = self._tasks[task_id]
        now = time.monotonic()
        if task.finished or now - self.said >= PROGRESS_SECONDS:
            self.said = now
            total = f"/{task.total:,.0f}" if task.total else ""
            err_console.print(
                f"{self.label}: {task.description} {task.completed:,.0f}{total} done, {task.elapsed or 0:.0f} s",
                highlight=False,
                markup=False,
            )


def bar(label: str, transient: bool = True, disable: bool = False, say: bool = True) -> Progress:
    """The progress of the long commands: label, bar, done/total, elapsed time, on stderr; off a
    terminal, log lines at a steady interval instead (LoggedProgress; `say=False` where the
    command prints its own lines)."""
    return LoggedProgress(
        label,
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
        disable=disable,
        say=say,
    )


def log_file_for(cfg, command: str) -> Path:
    """Where a long command other than run/train logs: LOG_DIR/TIME-COMMAND-PID.log, LOG_DIR being
    output.log_dir, $CANDLEFLOW_LOG_DIR or the user's state folder (never the working folder)."""
    folder = (cfg.output.log_dir if cfg is not None else None) or os.environ.get("CANDLEFLOW_LOG_DIR")
    if not folder:
        state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        folder = Path(state) / "candleflow" / "logs"
    where = Path(folder).expanduser()
    if where.exists() and not where.is_dir():
        from candleflow.errors import ConfigError

        raise ConfigError(f"output.log_dir {str(where)!r} is a file; expected a folder for the commands' log files")
    return where / f"{time.strftime('%Y%m%d-%H%M%S')}-{command}-{os.getpid()}.log"


def interruptible(call):
    """Run `call`; on Ctrl-C print how to resume (one line) and exit 130, the shell's code for SIGINT."""
    try:
        return call()
    except KeyboardInterrupt as exc:
        notes = " ".join(getattr(exc, "__notes__", []))
        err_console.print(f"interrupted{'; ' + notes if notes else ''}", markup=False, highlight=False)
        raise typer.Exit(130) from None


def log_error(text: str, exc_info: bool = False) -> None:
    """End the command's log file (if it has one) with its error line, and the traceback for an
    error candleflow did not expect; the console shows the one line only."""
    log = logging.getLogger("candleflow")
    record = log.makeRecord(
        log.name, logging.ERROR, __file__, 0, "error: %s", (text,), sys.exc_info() if exc_info else None
    )
    for h in log.handlers:
        if isinstance(h, CommandLog):
            h.handle(record)
