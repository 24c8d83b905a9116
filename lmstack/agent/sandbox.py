"""A Python-execution tool for code-writing agents: model-written code in a locked-down process.

Running model output in the agent's own interpreter (`exec`) is how agent frameworks get
remote code execution bugs, so the code runs in a separate, short-lived Python process with
several independent locks, any one of which stops the usual escapes:
- resource limits (rlimit): CPU seconds, address space (memory), no new processes, a few
  file descriptors, a bounded file size; and a wall-clock timeout enforced by the parent;
- a static check before anything runs: no dunder names or attributes (`__subclasses__`,
  `__globals__`, `__builtins__`, `__import__`: the gateways of the classic sandbox escapes);
- imports only from an allow-list of pure-computation modules, pre-imported before the lock;
- an audit hook (PEP 578), installed before the code runs and impossible to remove, that
  refuses process creation (os.system, subprocess, exec, fork), ctypes, sockets (no network),
  and any file access outside the scratch directory;
- an empty environment, the scratch directory as working directory, `python -I` (isolated).
Not a container: for hostile multi-tenant code use one (gVisor, Firecracker). This bounds what
a confused or prompt-injected small model can do on a developer's machine.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from lmstack.agent.tools import Tool, tool

ALLOWED_MODULES = ("math", "cmath", "statistics", "json", "re", "datetime", "collections",
                   "itertools", "functools", "random", "fractions", "decimal", "string",
                   "textwrap", "heapq", "bisect", "operator", "calendar", "unicodedata")

# Runs in the child: limits, pre-imports, the audit hook, then the checked code.
_RUNNER = r'''
import resource, sys
cfg = __import__("json").loads(sys.stdin.readline())
mb = cfg["memory_mb"] * 2**20
for limit, value in ((resource.RLIMIT_AS, mb), (resource.RLIMIT_CPU, cfg["cpu_s"]),
                     (resource.RLIMIT_NPROC, 0), (resource.RLIMIT_NOFILE, 16),
                     (resource.RLIMIT_FSIZE, 16 * 2**20)):
    resource.setrlimit(limit, (value, value))
import builtins, os.path
modules = {name: __import__(name) for name in cfg["modules"]}
scratch = os.path.realpath(cfg["scratch"])
code = sys.stdin.read()
BLOCKED = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
           "subprocess.Popen", "ctypes.", "socket.", "os.kill", "os.putenv", "os.unsetenv",
           "sys.addaudithook", "sys._getframe", "gc.", "object.__setattr__")

def inside(path):
    try:
        p = os.path.realpath(os.fsdecode(path) if not isinstance(path, int) else scratch)
    except (TypeError, ValueError):
        return False
    return p == scratch or p.startswith(scratch + os.sep)

def hook(event, args):
    if event.startswith(BLOCKED):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args[0].split(".")[0] not in cfg["modules"] + ["encodings"]:
        raise PermissionError(f"sandbox: import of {args[0]!r} is not allowed")
    if event in ("open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.mkdir",
                 "os.rmdir", "os.chdir", "shutil.rmtree") and args and not inside(args[0]):
        raise PermissionError(f"sandbox: {args[0]!r} is outside the scratch directory")

sys.addaudithook(hook)
env = dict(modules, __name__="__sandbox__", __builtins__=builtins)
exec(compile(code, "<agent code>", "exec"), env)
'''


def check_code(code: str) -> str | None:
    """Why the code may not run (before it runs), or None when it passes the static check."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        return f"SyntaxError: {e.msg} (line {e.lineno})"
    for node in ast.walk(tree):
        name = (node.attr if isinstance(node, ast.Attribute) else node.id
                if isinstance(node, ast.Name) else None)
        if name and name.startswith("__"):
            return f"names like {name!r} are not allowed in sandboxed code"
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]
            for mod in mods:
                if mod.split(".")[0] not in ALLOWED_MODULES:
                    return (f"import of {mod!r} is not allowed; available: "
                            f"{', '.join(ALLOWED_MODULES)}")
    return None


def run_python(code: str, scratch: str | Path, timeout: float = 10.0, memory_mb: int = 512,
               max_output: int = 8000) -> str:
    """Run code in the sandbox; its printed output (or the error) as an observation."""
    problem = check_code(code)
    if problem is not None:
        return f"error: {problem}"
    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    cfg = {"memory_mb": memory_mb, "cpu_s": max(1, int(timeout)), "scratch": str(scratch),
           "modules": list(ALLOWED_MODULES)}
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _RUNNER], input=json.dumps(cfg) + "\n" + code,
            capture_output=True, text=True, timeout=timeout, cwd=scratch, env={}, check=False)
    except subprocess.TimeoutExpired:
        return f"error: the code ran longer than {timeout:g} s and was stopped"
    out = proc.stdout[-max_output:]
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        why = lines[-1] if lines else f"the process was killed (exit {proc.returncode})"
        return f"{out}error: {why}" if out else f"error: {why}"
    return out or "(no output; print() what you want to see)"


def python_tool(scratch: str | Path, timeout: float = 10.0, memory_mb: int = 512) -> Tool:
    """A `python` tool for agents: runs code in the sandbox with `scratch` as its only folder."""
    def python(code: str) -> str:
        """Run Python code and return what it prints. Only the modules math, statistics,
        json, re, datetime, collections, itertools, functools, random, fractions and decimal
        can be imported; files can be read and written only in the working directory.

        Args:
            code: a complete Python program; print() the results you need.
        """
        return run_python(code, scratch, timeout, memory_mb)

    # The parent's own timeout is the sandbox's; the tool-level one only adds slack.
    return tool(python, timeout=timeout + 5)
