"""The grading kernel, forked from a sandboxed server that has already imported TensorFlow and Keras.

Every grading kernel used to import numpy, TensorFlow, Keras, matplotlib and
ipykernel itself: about 3 seconds of every submission, the same work each time.
A worker now starts one *kernel server* per unit, in the bubblewrap sandbox of
:func:`autograder.sandbox.bwrap_argv` (the staged packages, no network, a
cleared environment), that imports those libraries once and then forks a
kernel for each submission. No student code ever runs in the server.

What a forked kernel is fenced in by, on top of the server's sandbox
-------------------------------------------------------------------
Before any student code runs, the fork (trusted code of this module) gives itself

* a user namespace of its own, with new mount, IPC, network and UTS namespaces
  owned by it;
* its own writable folders and nothing else writable that another kernel could
  read: the submission's box bound at ``/grading/work``, a fresh ``/tmp`` (which
  hides the server's spool of boxes and its socket) with the kernel's connection
  folder bound in it, a fresh ``/dev/shm``;
* no way into the server: the server, the fork that waits for the kernel and
  the kernel itself are not dumpable, so ``/proc/<pid>/mem``, ``environ``, ``fd``
  and ``root`` of each are closed to every other process of the sandbox, and no
  kernel can trace another (the mounts it inherits are locked by the kernel, as
  in any nested user namespace: it cannot uncover the spool). It shares the
  server's PID namespace (a PID namespace of its own would leave ``/proc``
  showing the server's, which misleads psutil and ipykernel's shutdown): it can
  send the server a signal, which costs the next kernel a new server and nothing
  else, and a server forks one kernel at a time;
* no capabilities (bounding, ambient, effective and permitted sets emptied;
  ``no_new_privs``), the kernel's memory limit, the client's stdin, stdout and
  stderr, and a fresh seed for Python's and numpy's global random generators.

The fork that waits for the kernel is a child subreaper: when the kernel exits,
every process it started (daemons included, which are reparented to the fork)
is killed before the client is told, so before the next submission's kernel is
forked: nothing of one student is left for the next one to meet. The kernel's
pids cgroup, when there is one, ends them too.

The client
----------
nbgrader's kernel manager starts, as the kernelspec's command, this file as a
script (``python -I -S zygote.py connect ...``: the standard library only, in a
few milliseconds). The client connects to the server's socket, hands it its
stdin, stdout and stderr and the request (the box's name in the spool, the
kernel's command line and environment), moves the fork into the kernel's pids
cgroup when there is one (:mod:`autograder.cgroups`) before the kernel starts,
and exits with the kernel's exit status. When the client is killed (nbgrader's
time limit, a shutdown), the fork that waits for the kernel kills it.

A server that cannot start, or cannot build a kernel's namespaces on this machine,
makes the worker start every kernel in bubblewrap of its own, as before
(``AUTOGRADER_KERNEL_SERVER=0`` does that too).
"""
from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys

SOCKET_NAME = "server.sock"
READY = "ready"
WORK = "/grading/work"             # autograder.sandbox.WORK_IN_BOX
MAX_REQUEST = 64 * 1024
PRELOAD = ("numpy", "tensorflow", "keras", "matplotlib", "matplotlib.pyplot", "IPython", "ipykernel.kernelapp")

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 36, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target: str, fstype, flags: int, data=None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _prctl(option: int, arg: int = 0) -> int:
    return _libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _valid_name(name) -> bool:
    return isinstance(name, str) and 0 < len(name) <= 32 and name.isalnum() and name.isascii()


# --- in the fork: the kernel's own namespaces ---------------------------------------------------------

def isolate(spool: str, name: str) -> None:
    """New user, mount, IPC, network and UTS namespaces; the box of `name` at
    /grading/work and its connection folder at its own path in a fresh /tmp; a fresh /dev/shm."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    own = os.path.join(spool, name)
    flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    box, io = os.open(os.path.join(own, "box"), flags), os.open(os.path.join(own, "io"), flags)
    try:
        read_only_mounts(keep={spool})   # the server's root, /dev, /grading...: shared by its kernels
        _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")   # hides the spool and the socket
        os.makedirs(os.path.join(own, "io"), mode=0o700)
        _mount(f"/proc/self/fd/{io}", os.path.join(own, "io"), None, MS_BIND)
        _mount(f"/proc/self/fd/{box}", WORK, None, MS_BIND)
        if os.path.isdir("/dev/shm"):
            _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    finally:
        os.close(box)
        os.close(io)


MOUNT_FLAGS = {"ro": 1, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": 8, "noatime": 1024,
               "nodiratime": 2048, "relatime": 1 << 21, "strictatime": 1 << 24}


def read_only_mounts(keep=()) -> None:
    """Make every mount of this (new) mount namespace read-only but those at a path in `keep`: what the
    server's sandbox has writable (bubblewrap's root and /dev are tmpfs) is the same for all its kernels.
    A mount's other flags are kept (those inherited from the server's namespace are locked)."""
    with open("/proc/self/mountinfo") as f:
        entries = [line.split(" - ")[0].split() for line in f]
    for fields in entries:
        target = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
        options = fields[5].split(",")
        if "ro" in options or target in keep:
            continue
        flags = MS_REMOUNT | MS_BIND | MOUNT_FLAGS["ro"]
        for option in options:
            flags |= MOUNT_FLAGS.get(option, 0) if option != "ro" else 0
        try:
            _mount(None, target, None, flags)
        except OSError:
            if target == "/" or os.path.ismount(target):
                raise


def drop_capabilities() -> None:
    """No capability in any set, for good (no_new_privs: nothing executed later can gain one)."""
    for cap in range(64):
        if _prctl(PR_CAPBSET_DROP, cap) != 0:
            break                      # past the last capability this kernel knows
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    header = struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0)
    data = ctypes.create_string_buffer(24)      # two {effective, permitted, inheritable}, all empty
    _check(_libc.capset(ctypes.c_char_p(header), data), "capset")


def _run_kernel(request: dict, stdio: list[int]) -> None:
    """The fork's child: become the grading kernel (autograder.kernel.main); never returns."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for fd, target in zip(stdio, (0, 1, 2)):
        os.dup2(fd, target)
    os.closerange(3, 1 << 16)
    drop_capabilities()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(WORK)
    os.environ.clear()
    os.environ.update(request["env"])
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    # As `python -m autograder.kernel ARGS` would run it: its functions (the output limits that wrap every
    # write) belong to __main__, as in a kernel started on its own, not to the autograder package, which
    # the checks forbid an answer to call.
    import runpy

    sys.argv = ["autograder.kernel", *request["argv"]]
    runpy.run_module("autograder.kernel", run_name="__main__", alter_sys=True)
    os._exit(0)


def _fork_kernel(conn: socket.socket, spool: str, base_env: dict) -> None:
    """In the server's fork: read the request, wait for the client to put us in the kernel's cgroup, build
    the namespaces, fork the kernel and wait for it (or kill it when the client goes); never returns."""
    code = 70
    try:
        data, fds, _flags, _addr = socket.recv_fds(conn, MAX_REQUEST, 3)
        if len(fds) != 3 or not data.endswith(b"\n"):
            raise ValueError("the client sent no complete request")
        request = json.loads(data)
        if not _valid_name(request.get("name")) or not all(isinstance(a, str) for a in request.get("argv", [None])):
            raise ValueError("malformed request")
        env = dict(base_env)
        env.update({str(k): str(v) for k, v in request.get("env", {}).items()})
        request["env"] = env
        creds = struct.pack("iII", os.getpid(), os.getuid(), os.getgid())
        conn.sendmsg([b"pid\n"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds)])
        if conn.recv(16) != b"go\n":
            raise ValueError("the client did not confirm the kernel's cgroup")
        isolate(spool, request["name"])
        _prctl(PR_SET_CHILD_SUBREAPER, 1)   # what the kernel starts and leaves is reparented here
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            conn.close()
            try:
                _run_kernel(request, fds)
            finally:
                os._exit(71)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        while True:
            ready, _, _ = select.select([conn, pidfd], [], [])
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
                code = os.waitstatus_to_exitcode(status)
                break
            if not conn.recv(16):        # the client is gone: so is the kernel
                os.kill(pid, signal.SIGKILL)
                kill_children()
                os._exit(1)
        kill_children()
        conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
    except BaseException as error:  # noqa: BLE001 (said to the client, which says it to nbgrader's log)
        try:
            conn.sendall(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode() + b"\n")
        except OSError:
            pass
    os._exit(0 if code >= 0 else 1)


def _children() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                found.append(int(entry))
    return found


def _reap() -> None:
    """Reap every child that has ended, without waiting for the others."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def _others() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]


def _kill_until_none(find, rounds: int) -> None:
    """SIGKILL and reap what `find()` lists, again and again, until it lists nothing (or `rounds` is up)."""
    import time

    for _ in range(rounds):
        found = find()
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if found:
            time.sleep(0.005)
        _reap()
        if not found:
            return


def kill_all_but_me() -> None:
    """The server (PID 1 of its sandbox), before it forks a kernel: kill every other process there."""
    _kill_until_none(_others, rounds=100)


def kill_children() -> None:
    """Kill and reap every child left (the kernel's orphans, reparented to this subreaper), until none is."""
    _kill_until_none(_children, rounds=1000)


def probe(spool: str) -> str | None:
    """Can a fork build a kernel's namespaces here? None, or why not (the server says so and stops)."""
    name = "probe"
    for folder in ("box", "io"):
        os.makedirs(os.path.join(spool, name, folder), exist_ok=True)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        message = b"ok"
        try:
            isolate(spool, name)
            inner = os.fork()
            if inner == 0:
                try:
                    drop_capabilities()
                    with open("/proc/self/status") as f:
                        caps = [line.split()[1] for line in f if line.startswith("CapEff")]
                    os._exit(0 if caps == ["0000000000000000"] else 3)
                except BaseException:  # noqa: BLE001
                    os._exit(4)
            _, status = os.waitpid(inner, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                message = f"the kernel's capabilities ({os.waitstatus_to_exitcode(status)})".encode()
        except BaseException as error:  # noqa: BLE001
            message = f"{error}".encode()
        os.write(write, message[:500])
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        message = f.read().decode(errors="replace")
    os.waitpid(pid, 0)
    return None if message == "ok" else message or "the probe died"


def serve(socket_path: str) -> None:
    """The server, inside its sandbox: import the libraries once, then fork a kernel per connection."""
    _prctl(PR_SET_DUMPABLE, 0)        # a kernel may not read this process's memory, environment or files
    spool = os.path.dirname(socket_path)
    base_env = dict(os.environ)
    problem = probe(spool)
    if problem:
        print(f"unavailable: {problem}", flush=True)
        return
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except Exception as error:  # noqa: BLE001 (the kernel imports it again, and says what fails)
                print(f"preload {name}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    os.environ.clear()
    os.environ.update(base_env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # PID 1 gets only the signals it handles: none
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(8)
    print(READY, flush=True)
    while True:
        conn, _ = listener.accept()
        kill_all_but_me()   # one kernel at a time: whatever an earlier one left (stopped, hidden) goes now
        pid = os.fork()
        if pid == 0:
            listener.close()
            _fork_kernel(conn, spool, base_env)
        conn.close()
        _reap()   # the forks that are done


# --- the client: what nbgrader starts as the kernel ---------------------------------------------------

def connect(socket_path: str, procs: str, name: str, env: dict, argv: list[str]) -> int:
    """Have the server fork the kernel for box `name`; its exit status (the kernel's)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    conn.connect(socket_path)
    request = json.dumps({"name": name, "env": env, "argv": argv}).encode() + b"\n"
    socket.send_fds(conn, [request], [0, 1, 2])
    data, ancillary, _flags, _addr = conn.recvmsg(64, socket.CMSG_SPACE(12))
    pid = next((struct.unpack("iII", d[:12])[0] for level, kind, d in ancillary
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS), None)
    if data != b"pid\n" or pid is None:
        print(f"the kernel server refused: {data[:500]!r}", file=sys.stderr, flush=True)
        return 70
    if procs != "-":
        with open(procs, "w") as f:   # the fork, and the kernel it starts, in the kernel's pids cgroup
            f.write(str(pid))
    conn.sendall(b"go\n")
    answer = b""
    while not answer.endswith(b"\n") and len(answer) < MAX_REQUEST:
        chunk = conn.recv(4096)
        if not chunk:
            break
        answer += chunk
    try:
        result = json.loads(answer)
    except ValueError:
        print("the kernel server closed the connection", file=sys.stderr, flush=True)
        return 70
    if "error" in result:
        print(f"the kernel server could not start the kernel: {result['error']}", file=sys.stderr, flush=True)
        return 70
    return int(result.get("exit", 70))


def main(args: list[str]) -> int:
    if args[:1] == ["serve"] and len(args) == 2:
        serve(args[1])
        return 0
    if args[:1] == ["connect"] and "--" in args:
        split = args.index("--")
        head, argv = args[1:split], args[split + 1:]
        socket_path, procs, name, pairs = head[0], head[1], head[2], head[3:]
        env = dict(zip(pairs[0::2], pairs[1::2]))
        return connect(socket_path, procs, name, env, argv)
    print("usage: zygote.py serve SOCKET | connect SOCKET PROCS|- NAME [KEY VALUE]... -- KERNEL-ARGS...",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
