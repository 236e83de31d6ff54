"""Run CLI cases in this one process (imports paid once) and report each outcome as JSON.

Usage: python hostile_runner.py CASES.json RESULTS.json. Each case: {"id", "args", "cwd",
"limit_s"}. Each result: exit code, stdout, stderr, whether an exception escaped `main` (a
traceback), whether the case ran past its time limit, and the process's peak memory after it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import sys
import traceback


class CaseTimeout(BaseException):
    """Not an Exception (nor an OSError): nothing in candleflow may catch it."""


def _alarm(signum, frame):
    raise CaseTimeout()


def run_case(case: dict) -> dict:
    from candleflow.cli import main

    out, err = io.StringIO(), io.StringIO()
    result = {"id": case["id"], "code": None, "traceback": None, "timeout": False}
    os.chdir(case["cwd"])
    sys.argv = ["candleflow", *case["args"]]
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(case.get("limit_s", 60)))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
        result["code"] = 0
    except SystemExit as exc:
        result["code"] = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except CaseTimeout:
        result["timeout"] = True
    except BaseException:  # any other escape is a traceback the user would see
        result["traceback"] = traceback.format_exc()[-3000:]
    finally:
        signal.alarm(0)
    result["stdout"] = out.getvalue()[-3000:]
    result["stderr"] = err.getvalue()[-3000:]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> int:
    cases_path, results_path = sys.argv[1], sys.argv[2]  # run_case replaces sys.argv
    cases = json.loads(open(cases_path).read())
    results = [run_case(c) for c in cases]
    with open(results_path, "w") as fh:
        json.dump(results, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
