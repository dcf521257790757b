"""What the Python test scripts share: failures and skips, and the loop that runs their cases,
each under a watchdog (SIGALRM) and all within a time budget.

A script puts this directory on sys.path (see tests/h2/h2_frames.py) and registers its cases as
(name, function, watchdog seconds); a case function takes the script's environment and returns
an optional detail for its PASS line.
"""

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import threading
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


LISTENING = re.compile(r'listener "([^"]+)" listening on (https?)://(\[[^\]]+\]|[^:/\s]+):(\d+)')


def closed_port():
    """A loopback port nothing listens on (bound, then closed: refused until someone takes it)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def end_process(proc, grace=3.0):
    """SIGTERM, then a second SIGTERM, then SIGKILL; each bounded. Returns the exit code, or a
    text saying how it had to be ended."""
    if proc is None:
        return None
    how = None
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return proc.returncode if how is None else how
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            return proc.poll()
        try:
            proc.wait(wait)
            return proc.returncode if how is None else how
        except subprocess.TimeoutExpired:
            how = f"still running {wait:.0f} s after SIGTERM"
    return how


class Blitzd:
    """blitzd started with `config` (a dict; written to `workdir`), on BLITZ_TEST_BACKEND's
    event loop when that is set. `addrs` maps each listener's name to (host, port) once blitzd
    announced them all; `lines` keeps its stderr."""

    def __init__(self, exe, config, workdir, timeout=15.0):
        backend = os.environ.get("BLITZ_TEST_BACKEND", "")
        if backend and backend != "auto":
            config = dict(config, backend=backend)
        path = os.path.join(workdir, "blitzd.json")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        self.lines = []
        self.addrs = {}
        names = {listener["name"] for listener in config["listeners"]}
        self.proc = subprocess.Popen([exe, "--config", path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ready = threading.Event()

        def pump():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                m = LISTENING.search(line)
                if m:
                    self.addrs[m.group(1)] = (m.group(3).strip("[]"), int(m.group(4)))
                    if names <= set(self.addrs):
                        ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(timeout)
        if not names <= set(self.addrs):
            end_process(self.proc)
            raise RuntimeError("blitzd did not announce its listeners; stderr:\n" +
                               "\n".join(self.lines[-30:]))

    def alive(self, name):
        """casekit.run's after_each: False (with a FAIL line) once blitzd has exited."""
        if self.proc.poll() is not None:
            print(f"FAIL {name} — blitzd exited with {self.proc.returncode}; stderr tail:\n  " +
                  "\n  ".join(self.lines[-30:]), flush=True)
            return False
        return True

    def stop(self):
        """Ends blitzd with SIGTERM and prints whether it exited cleanly; returns that."""
        code = end_process(self.proc, grace=10.0)
        if code == 0:
            print("PASS blitzd_clean_exit", flush=True)
            return True
        print(f"FAIL blitzd_clean_exit — {code}; stderr tail:\n  " + "\n  ".join(self.lines[-30:]),
              flush=True)
        return False
