"""The process sandbox of the embedded server: users' Python, PySpark and Shell jobs under bwrap.

When the server has more than one user (or `serve --sandbox always`), every engine process runs
under bubblewrap (`bwrap`): it sees the system's programs and libraries, the server's Python and
Java read-only, its own files (`<data dir>/users/<user>/files`, also its HOME) and its scratch
folder writable, a private /tmp, /proc and /dev, and nothing else; in particular not the rest of
the data dir (users.json, credentials.json, job history, other users' areas) nor the server's
processes or environment. It has no network but its own loopback (enough for Spark local[*]).
Its environment is a short explicit list, so the server's secrets never reach it.

Fail closed: if bwrap is missing or does not work (probed once at start), only the server's
owner runs Python, PySpark and Shell jobs (unconfined, as with one user); everyone else's fail
with `ERR_SANDBOX` saying why. No job outlives the server: sandboxed ones die with it
(`--die-with-parent`), unconfined ones get a parent-death signal. Processes are started from one
long-lived thread because a parent-death signal fires when the thread that started the child
ends, not the process, and jobs run on short-lived threads. Where the server can create cgroups,
each user's sandboxed processes also join cgroups of that user capping their processes and
threads, and where the memory controller can be used their memory, together (cgroups.py);
elsewhere only RLIMIT_NPROC caps them, which root ignores, and RLIMIT_DATA each process.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import glob
import logging
import os
import resource
import shutil
import signal
import site
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .cgroups import UserCgroups, UserGroup, create_user_cgroups
from .paths import Layout

log = logging.getLogger("linkis_kernel.local")

AUTO, ALWAYS, NEVER = "auto", "always", "never"
SANDBOX_MODES = (AUTO, ALWAYS, NEVER)
BWRAP_ENV = "LINKIS_LOCAL_BWRAP"  # the bwrap program to use (default: bwrap on PATH)
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and restart the server"
)
# A bwrap that is there but fails: installing it again does not help (often the kernel or a
# security module keeps the server's user from creating namespaces; bwrap's error says which).
REPAIR_HINT = (
    "make bwrap work for the server's OS user (its error says why it does not; often "
    f"unprivileged user namespaces are turned off) or set {BWRAP_ENV} to a bwrap that works, "
    "and restart the server"
)
# Processes and threads a sandboxed job may have. RLIMIT_NPROC counts every process of the real
# user id (all jobs run as the server's), and Linux does not apply it to root at all; where the
# server can create cgroups, the same number is also the default cap of each user's processes
# and threads together (cgroups.py); an idle Spark engine holds about 90 of them on two cores.
MAX_PROCESSES = 4096
_PROBE_TIMEOUT = 15.0
# What programs need from the host, read-only (merged-/usr symlinks are recreated as symlinks).
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_PATHS = (
    "alternatives", "ssl", "ca-certificates", "ca-certificates.conf", "hosts", "passwd", "group",
    "nsswitch.conf", "localtime", "timezone", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
    "mime.types", "java-*", "host.conf", "gai.conf",
)  # fmt: skip
_NAMESPACES = ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net")
# The kernel's settings, read-only: a job runs as the server's user, and when that is root, a
# fresh /proc would let it change them (core_pattern runs a program of its choice outside).
_KERNEL_SETTINGS_READ_ONLY = (
    "--ro-bind", "/proc/sys", "/proc/sys",
    "--ro-bind-try", "/proc/sysrq-trigger", "/proc/sysrq-trigger",
)  # fmt: skip
_PR_SET_PDEATHSIG = 1
_SIG_IGN = 1


class SandboxRefused(Exception):
    """A job may not start: the sandbox it needs cannot be used; the text says why."""


@dataclass(frozen=True)
class Sandbox:
    """How the engine processes of one user are confined: a bwrap command line."""

    bwrap: str
    data_dir: Path
    home: Path
    read_only: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    refusal: str | None = None
    group: UserGroup | None = None  # the user's cgroups its processes join (cgroups.py)

    @classmethod
    def refusing(cls, bwrap: str, refusal: str) -> Sandbox:
        """A sandbox that starts nothing, saying `refusal` instead."""
        return cls(bwrap, Path(), Path(), (), (), refusal)

    def command(self, command: Sequence[str], scratch: Path) -> list[str]:
        """`command` run under bwrap in `scratch`; SandboxRefused if this user may not run."""
        if self.refusal is not None:
            raise SandboxRefused(self.refusal)
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        # No --new-session: the process already has no controlling terminal (it starts a
        # session of its own), and a new one inside would keep kill signals sent to its process
        # group from reaching the job.
        argv = [self.bwrap, "--die-with-parent", *_NAMESPACES, "--hostname", "localhost"]
        argv += ["--unshare-cgroup-try", "--cap-drop", "ALL", "--clearenv"]
        for name, value in self.environment:
            argv += ["--setenv", name, value]
        # The private /tmp first, so that the read-only binds that follow show a Python or a
        # checkout that lives under the machine's /tmp.
        argv += ["--proc", "/proc", *_KERNEL_SETTINGS_READ_ONLY, "--dev", "/dev", "--tmpfs", "/tmp"]
        argv += list(self.read_only)
        # The data dir is hidden even where a read-only bind above would show it; then only the
        # data all Spark engines share comes back, read-only, and the user's own files and this
        # job's scratch folder, writable.
        argv += ["--tmpfs", str(self.data_dir)]
        shared = Layout(self.data_dir).spark_dir
        argv += ["--ro-bind-try", str(shared), str(shared)]
        for folder in dict.fromkeys((self.home, scratch)):
            argv += ["--bind", str(folder), str(folder)]
        # Writes anywhere else fail, rather than land in bwrap's own (private) tmpfs.
        argv += ["--remount-ro", str(self.data_dir), "--remount-ro", "/"]
        argv += ["--chdir", str(scratch), "--", *command]
        return argv


@dataclass(frozen=True)
class Sandboxing:
    """The server's sandbox rule: whether jobs run in a sandbox and, if it is broken, why."""

    active: bool = False
    owner: str = ""
    layout: Layout | None = None
    bwrap: str = ""
    problem: str | None = None
    remedy: str = INSTALL_HINT  # what to do about `problem`
    read_only: tuple[str, ...] = field(default=(), repr=False)
    java_home: str | None = None
    cgroups: UserCgroups | str | None = None  # per-user cgroups, or why there are none

    @classmethod
    def decide(cls, mode: str, users: int, owner: str, data_dir: Path) -> Sandboxing:
        """The rule for a server with `users` users (`mode`: auto, always or never); when a
        sandbox is needed, bwrap is probed once here."""
        if mode == NEVER or (mode == AUTO and users <= 1):
            return cls(owner=owner)
        layout = Layout(data_dir)
        java_home = _java_home()
        read_only = _read_only_binds(java_home)
        program = os.environ.get(BWRAP_ENV) or shutil.which("bwrap") or "bwrap"
        rule = cls(True, owner, layout, program, None, read_only=read_only, java_home=java_home)
        return rule.probed()

    def probed(self) -> Sandboxing:
        """This rule with `problem` set if bwrap cannot run a trivial command here."""
        assert self.layout is not None
        probe = self.layout.scratch_dir / f".sandbox-probe-{os.getpid()}"
        sandbox = self._sandbox(self.owner, home=probe)
        remedy = REPAIR_HINT  # bwrap is there but fails
        try:
            probe.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                sandbox.command(["true"], probe),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_PROBE_TIMEOUT,
                env={},
            )
            problem = None if done.returncode == 0 else _last_line(done.stderr, done.returncode)
        except FileNotFoundError:
            problem, remedy = "it is not installed", INSTALL_HINT
        except (OSError, subprocess.SubprocessError) as exc:
            problem = str(exc)
        finally:
            shutil.rmtree(probe, ignore_errors=True)
        if problem is None:
            return self
        return replace(
            self, problem=f"bwrap ({self.bwrap}) cannot be used: {problem}", remedy=remedy
        )

    def for_user(self, user: str) -> Sandbox | None:
        """How `user`'s engine processes run: None unconfined, else a Sandbox (one that refuses
        to start anything when the sandbox is broken and `user` is not the server's owner)."""
        if not self.active or (self.problem is not None and user == self.owner):
            return None
        if self.problem is not None:
            refusal = (
                f"This server has several users, so it runs their Python, PySpark and Shell jobs "
                f"in a process sandbox, but {self.problem}. Until it can, only {self.owner}'s "
                f"jobs of these kinds run; SQL jobs are not affected. To fix it, {self.remedy}."
            )
            return Sandbox.refusing(self.bwrap, refusal)
        assert self.layout is not None
        sandbox = self._sandbox(user, self.layout.user_files(user))
        if not isinstance(self.cgroups, UserCgroups):
            return sandbox
        try:
            group = self.cgroups.for_user(self.layout.user_area(user).name)
        except OSError as exc:
            refusal = (
                f"This server caps each user's processes in cgroups, but {user}'s cannot be "
                f"created ({exc.strerror}); ask whoever runs the server to restart it."
            )
            return Sandbox.refusing(self.bwrap, refusal)
        return replace(sandbox, group=group)

    def group_for(self, user: str) -> UserGroup | None:
        """`user`'s cgroups, for their processes that run outside the sandbox (their SQL
        engine); None where there are none or they cannot be made."""
        if not isinstance(self.cgroups, UserCgroups) or self.layout is None:
            return None
        try:
            return self.cgroups.for_user(self.layout.user_area(user).name)
        except OSError:
            return None

    def with_user_cgroups(self, max_processes: int, memory: int | None) -> Sandboxing:
        """This rule with each user's processes and threads together capped at `max_processes`
        in cgroups, where the server can create them, and their memory together at `memory`
        bytes (None: no limit) where the memory controller can be used too (cgroups.py); only
        for sandboxed jobs."""
        if not self.active or self.problem is not None:
            return self
        return replace(self, cgroups=create_user_cgroups(max_processes, memory))

    def close(self) -> None:
        """Remove the server's cgroups, ending what is still in them."""
        if isinstance(self.cgroups, UserCgroups):
            self.cgroups.remove()

    def _sandbox(self, user: str, home: Path) -> Sandbox:
        assert self.layout is not None
        return Sandbox(
            self.bwrap,
            self.layout.root,
            home,
            self.read_only,
            _environment(user, home, self.java_home),
        )

    def startup_note(self) -> tuple[int, str] | None:
        """(log level, line) the server says about its sandbox at start; None if there is none."""
        if not self.active:
            return None
        if self.problem is not None:
            return logging.WARNING, (
                f"Process sandbox: {self.problem}. Python, PySpark and Shell jobs of users other "
                f"than {self.owner} fail until it works: {self.remedy}."
            )
        return logging.INFO, (
            "Process sandbox: Python, PySpark and Shell jobs run under bwrap, each user's in "
            f"{self.layout.root if self.layout else ''}/users/<user>/files only."
        )

    def process_cap_note(self) -> tuple[int, str] | None:
        """(log level, line) saying how many processes sandboxed jobs may start; None if none
        run sandboxed."""
        if not self.active or self.problem is not None:
            return None
        if isinstance(self.cgroups, UserCgroups):
            cgroups = self.cgroups
            missing = cgroups.memory_limit is not None and cgroups.memory_root is None
            return logging.WARNING if missing else logging.INFO, (
                f"Process cap: each user's Python, PySpark and Shell processes and threads "
                f"together at most {cgroups.max_processes} (pids.max of cgroup "
                f"v{cgroups.version} {cgroups.root}/<user>); {cgroups.memory_note()}."
            )
        line = (
            f"Process cap: RLIMIT_NPROC only, {MAX_PROCESSES} processes of the server's OS user "
            f"(all users' jobs together) for each sandboxed job; no per-user cgroup: "
            f"{self.cgroups}; so no per-user memory limit either, only each process's own."
        )
        if os.geteuid() != 0:
            return logging.INFO, line
        return logging.WARNING, (
            f"{line} The server runs as root, and Linux does not apply RLIMIT_NPROC to root: a "
            "user's jobs can start processes until the machine runs out."
        )


def _last_line(stderr: bytes, code: int) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"it exited with status {code}"


def _java_home() -> str | None:
    """JAVA_HOME if set, else the JDK the `java` on PATH belongs to."""
    configured = os.environ.get("JAVA_HOME")
    if configured and Path(configured).is_dir():
        return str(Path(configured).resolve())
    java = shutil.which("java")
    return str(Path(java).resolve().parents[1]) if java else None


def _python_roots() -> list[str]:
    """The folders this server's Python, its packages and linkis_kernel live in."""
    package = Path(__file__).resolve().parents[1]
    candidates = [
        sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
        *site.getsitepackages(), str(package), str(Path(sys.executable).resolve().parents[1]),
    ]  # fmt: skip
    found: list[str] = []
    for path in candidates:
        for each in (os.path.abspath(path), os.path.realpath(path)):
            if os.path.isdir(each):
                found.append(each)
    return found


def _outermost(paths: list[str]) -> list[str]:
    """`paths` without duplicates and without those inside another one."""
    unique = sorted(set(paths))
    return [
        p for p in unique if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in unique)
    ]


def _read_only_binds(java_home: str | None) -> tuple[str, ...]:
    args: list[str] = []
    for path in _SYSTEM_PATHS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for pattern in _ETC_PATHS:
        for path in sorted(glob.glob(f"/etc/{pattern}")):
            args += ["--ro-bind-try", path, path]
    system = [p for p in _SYSTEM_PATHS if os.path.isdir(p) and not os.path.islink(p)]
    extra = _python_roots() + ([java_home] if java_home else [])
    for path in _outermost(extra):
        if not any(path == s or path.startswith(s + "/") for s in system):
            args += ["--ro-bind", path, path]
    return tuple(args)


def _environment(user: str, home: Path, java_home: str | None) -> tuple[tuple[str, str], ...]:
    """The whole environment of a sandboxed process."""
    python_bin = os.path.dirname(os.path.abspath(sys.executable))
    env = {
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "USER": user,
        "LOGNAME": user,
        "LANG": os.environ.get("LANG") or "C.UTF-8",
        "TMPDIR": "/tmp",
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    if java_home:
        env["JAVA_HOME"] = java_home
    return tuple(env.items())


# ---- starting processes ------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
_libc.signal.restype = ctypes.c_void_p
_prctl = getattr(_libc, "prctl", None)  # Linux only
_SPAWNER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="linkis-spawn")


def start_process(
    command: Sequence[str],
    cwd: Path,
    *,
    stdin: int,
    env: dict[str, str],
    sandbox: Sandbox | None,
    memory: int | None = None,
    group: UserGroup | None = None,
) -> subprocess.Popen[bytes]:
    """Start `command` in a process group of its own with piped stdout and stderr, under
    `sandbox` if given (SandboxRefused if it refuses), so that it dies when the server dies.
    With `memory`, each process it starts may use at most that many bytes of data memory; it
    joins the cgroups of the sandbox's user, or `group` when unconfined."""
    argv = sandbox.command(command, cwd) if sandbox is not None else list(command)
    if sandbox is not None:
        group = sandbox.group
    groups = group.joins if group is not None else ()
    setup = _child_setup(os.getpid(), confined=sandbox is not None, memory=memory, cgroups=groups)

    def popen() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={} if sandbox is not None else env,
            preexec_fn=setup,
        )

    try:
        return _SPAWNER.submit(popen).result()
    except subprocess.SubprocessError:  # the child's set-up before exec failed
        joining = f"joining cgroups {', '.join(map(str, groups))} or " if groups else ""
        steps = f"{joining}setting its limits"
        raise OSError(f"the process could not be set up ({steps})") from None


def _child_setup(
    server_pid: int, *, confined: bool, memory: int | None, cgroups: Sequence[Path]
) -> Callable[[], None]:
    """What the child does before exec: join `cgroups` (one per hierarchy, so it and all it
    starts count against that user's process cap and memory limit), die with the server, and
    cap its data memory (heap and private mappings; inherited by what it starts, a JVM
    included) at `memory`; when confined, also ignore SIGINT in bwrap itself (an interrupt is
    for the job inside, which sets its own handler) and cap its processes and core dumps."""

    nproc = _lowered(resource.RLIMIT_NPROC, MAX_PROCESSES)
    data = _lowered(resource.RLIMIT_DATA, memory) if memory is not None else None
    procs = [os.fsencode(group / "cgroup.procs") for group in cgroups]

    def setup() -> None:
        for each in procs:
            fd = os.open(each, os.O_WRONLY)
            try:
                os.write(fd, b"0")  # "0": the writing process itself (v1 and v2)
            finally:
                os.close(fd)
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != server_pid:  # the server died before the line above
                os.kill(os.getpid(), signal.SIGKILL)
        if data is not None:
            resource.setrlimit(resource.RLIMIT_DATA, data)
        if confined:
            _libc.signal(signal.SIGINT, _SIG_IGN)
            resource.setrlimit(resource.RLIMIT_NPROC, nproc)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return setup


def _lowered(which: int, most: int) -> tuple[int, int]:
    """(soft, hard) limits of `which` lowered to at most `most` (never raised)."""
    soft, hard = resource.getrlimit(which)
    cap = most if hard == resource.RLIM_INFINITY else min(most, hard)
    return (cap if soft == resource.RLIM_INFINITY else min(soft, cap), cap)
