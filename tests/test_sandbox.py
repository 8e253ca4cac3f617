"""The sandbox for model-written programs, run for real: each limit cuts what it should, and nothing is left."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from gate.worker import sandbox
from tests.processes import sandboxed_processes

ISOLATION = pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "seccomp"])


@pytest.fixture(autouse=True)
def nothing_left() -> Iterator[None]:
    folders = set(Path(tempfile.gettempdir()).glob("gate-sandbox-*"))
    yield
    assert set(Path(tempfile.gettempdir()).glob("gate-sandbox-*")) == folders  # each folder is removed
    deadline = time.monotonic() + 5
    while (left := sandboxed_processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, left


@ISOLATION
def test_a_correct_program_passes_and_a_wrong_one_fails(namespaces: bool) -> None:
    good = sandbox.run("def add(a, b):\n    return a + b\nassert add(2, 3) == 5\n", namespaces=namespaces)
    assert good == sandbox.Outcome(True, "passed", "")
    bad = sandbox.run("def add(a, b):\n    return a * b\nassert add(2, 3) == 5\n", namespaces=namespaces)
    assert not bad.passed and bad.reason == "exit status 1" and "AssertionError" in bad.output


def test_exiting_early_fails_as_in_code_eval() -> None:
    """code_eval execs the program and counts any exception, SystemExit(0) included, as a failure."""
    outcome = sandbox.run("import sys\nsys.exit(0)\n")
    assert not outcome.passed and "SystemExit: 0" in outcome.output


def test_the_program_runs_as_code_eval_runs_it() -> None:
    """Empty globals (so no `__main__` block runs), no input, and an isolated interpreter."""
    program = "import sys\nassert __name__ != '__main__'\nassert '' not in sys.path\nassert sys.stdin.read() == ''\n"
    assert sandbox.run(program).passed


@ISOLATION
def test_an_endless_loop_times_out(namespaces: bool) -> None:
    started = time.monotonic()
    outcome = sandbox.run("while True:\n    pass\n", sandbox.Limits(timeout_s=1.0), namespaces=namespaces)
    assert outcome.reason == "timed out" and not outcome.passed
    assert time.monotonic() - started < 5


def test_a_program_deaf_to_its_timeout_is_killed_at_the_wall_clock() -> None:
    """One that ignores SIGALRM and sleeps in C: neither the timeout nor the CPU limit ends it, the wall clock does."""
    program = "import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(600)\n"
    started = time.monotonic()
    outcome = sandbox.run(program, sandbox.Limits(timeout_s=0.5))
    assert outcome.reason == "timed out"
    assert time.monotonic() - started < 0.5 + sandbox.START_ALLOWANCE_S + 2


def test_the_cpu_limit_kills_a_loop_that_catches_its_timeout() -> None:
    program = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n"
    outcome = sandbox.run(program, sandbox.Limits(timeout_s=30, cpu_s=1))
    assert outcome.reason in ("killed by SIGXCPU", "killed by SIGKILL")


@ISOLATION
def test_a_huge_allocation_fails(namespaces: bool) -> None:
    outcome = sandbox.run("x = bytearray(1 << 40)\n", namespaces=namespaces)
    assert not outcome.passed and "MemoryError" in outcome.output
    grows = "x = []\nwhile True:\n    x.append(bytearray(1 << 24))\n"
    outcome = sandbox.run(grows, sandbox.Limits(memory_bytes=256 << 20), namespaces=namespaces)
    assert not outcome.passed and "MemoryError" in outcome.output


@ISOLATION
def test_forks_are_capped_and_a_fork_bomb_is_cut(namespaces: bool) -> None:
    count = (
        "import os, time\nn = 0\nfor _ in range(50):\n    try:\n        pid = os.fork()\n    except OSError:\n"
        "        break\n    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    n += 1\nprint('forked', n)\n"
    )
    outcome = sandbox.run(count, sandbox.Limits(processes=8), namespaces=namespaces)
    assert outcome.passed and outcome.output.startswith("forked ")
    assert 5 <= int(outcome.output.split()[1]) <= 7  # of 8, less the program and the sandbox's own processes
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    assert sandbox.run(bomb, sandbox.Limits(timeout_s=1.0), namespaces=namespaces).reason == "timed out"


def test_a_process_that_leaves_the_session_dies_with_the_program() -> None:
    """The PID namespace: when the program's first process ends, the kernel kills what it left."""
    assert sandbox.run("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\n").passed


@pytest.fixture
def listener() -> Iterator[int]:
    """An HTTP server on the host's loopback: what the program must not reach."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@ISOLATION
def test_the_network_is_unreachable(namespaces: bool, listener: int) -> None:
    with socket.create_connection(("127.0.0.1", listener), timeout=5):
        pass  # reachable from here
    program = f"import socket\nsocket.create_connection(('127.0.0.1', {listener}), timeout=2)\n"
    outcome = sandbox.run(program, namespaces=namespaces)
    assert not outcome.passed
    expected = "Network is unreachable" if namespaces else "Operation not permitted"
    assert expected in outcome.output
    unix = "import socket\nsocket.socketpair()\n"  # local pipes (multiprocessing uses them) still work
    assert sandbox.run(unix, namespaces=namespaces).passed


def test_the_program_writes_only_its_folder_and_a_bounded_file() -> None:
    program = "open('scratch.txt', 'w').write('x' * 1000)\nimport os\nprint(os.getcwd())\n"
    outcome = sandbox.run(program)
    assert outcome.passed
    assert Path(outcome.output.strip()).name.startswith("gate-sandbox-")
    assert not Path(outcome.output.strip()).exists()  # the throw-away folder is gone
    big = sandbox.run("open('big', 'wb').write(b'x' * (64 << 20))\n", sandbox.Limits(file_bytes=1 << 20))
    assert not big.passed and big.reason in ("killed by SIGXFSZ", "exit status 1")
    if os.geteuid() == 0:  # as root the program runs under a uid of its own
        assert not sandbox.run("open('/etc/gate-sandbox-test', 'w')\n").passed
        assert not Path("/etc/gate-sandbox-test").exists()


def test_a_sandbox_that_cannot_confine_fails_loudly_rather_than_count_the_program_wrong() -> None:
    """Whatever the program prints or exits with, only the sandbox's own report says it was confined."""
    with pytest.raises(sandbox.SandboxError, match="could not confine"):
        sandbox.run("pass\n", sandbox.Limits(open_files=10**9))  # above the kernel's fs.nr_open
    assert not sandbox.run("import os\nprint('confined')\nos._exit(1)\n").passed
