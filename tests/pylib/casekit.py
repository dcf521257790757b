"""What the Python test scripts share: failures and skips, and the loop that runs their cases,
each under a watchdog (SIGALRM) and all within a time budget.

A script puts this directory on sys.path (see tests/h2/h2_frames.py) and registers its cases as
(name, function, watchdog seconds); a case function takes the script's environment and returns
an optional detail for its PASS line.
"""

import ctypes
import os
import signal
import time


class Failure(Exception):
    """A case's assertion failed; the message says what was expected and what was seen."""


class Skip(Exception):
    """A case cannot run against this target."""


class Watchdog(Exception):
    """Raised by SIGALRM when a case overruns its watchdog."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def run(cases, env, name_filter=None, budget=170.0, after_each=None):
    """Runs `cases` ((name, fn, watchdog) each), printing one PASS/FAIL/SKIP line per case.
    `after_each(name)` returns False to stop the run (the server under test died), after
    counting its own failure in the returned tally. Returns (passed, failed, skipped)."""
    def on_alarm(signum, frame_):
        raise Watchdog()

    signal.signal(signal.SIGALRM, on_alarm)
    passed = failed = skipped = 0
    start = time.monotonic()
    for name, fn, watchdog in cases:
        if name_filter and name_filter not in name:
            continue
        if time.monotonic() - start > budget:
            print(f"FAIL {name} — not run: the run's {budget:.0f}s budget is spent", flush=True)
            failed += 1
            continue
        t0 = time.monotonic()
        signal.alarm(watchdog)
        try:
            detail = fn(env)
            signal.alarm(0)
            print(f"PASS {name}" + (f" — {detail}" if detail else "") +
                  f" ({time.monotonic() - t0:.2f}s)", flush=True)
            passed += 1
        except Skip as e:
            signal.alarm(0)
            print(f"SKIP {name} — {e}", flush=True)
            skipped += 1
        except Failure as e:
            signal.alarm(0)
            print(f"FAIL {name} — {e} ({time.monotonic() - t0:.2f}s)", flush=True)
            failed += 1
        except Watchdog:
            print(f"FAIL {name} — watchdog: still running after {watchdog}s", flush=True)
            failed += 1
        except Exception as e:  # an OSError from a socket, or a bug here: this case fails alone
            signal.alarm(0)
            print(f"FAIL {name} — {type(e).__name__}: {e} ({time.monotonic() - t0:.2f}s)",
                  flush=True)
            failed += 1
        if after_each is not None and not after_each(name):
            failed += 1
            break
    return passed, failed, skipped


def io_uring_refused():
    """Why this kernel (or its seccomp profile) refuses io_uring_setup(2), or None if it allows
    it; syscall 425 is io_uring_setup on every Linux architecture."""
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params
    fd = libc.syscall(425, ctypes.c_uint(4), params)
    if fd < 0:
        return os.strerror(ctypes.get_errno())
    os.close(fd)
    return None
