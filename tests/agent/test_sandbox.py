"""The Python-execution tool's sandbox: ordinary computation works; process creation, ctypes,
network, `__subclasses__` walks, imports off the allow-list and files outside the scratch
directory fail; runaway time and memory are stopped."""

from __future__ import annotations

import pytest

from lmstack.agent.sandbox import check_code, python_tool, run_python
from lmstack.chat.types import ToolCall


@pytest.fixture
def scratch(tmp_path):
    return tmp_path / "scratch"


def test_ordinary_code_runs_and_can_use_its_scratch_directory(scratch):
    out = run_python("import math, json\nprint(17 * 23, math.sqrt(16))\n"
                     "open('notes.txt', 'w').write('kept')\nprint(open('notes.txt').read())",
                     scratch)
    assert out == "391 4.0\nkept\n"
    assert (scratch / "notes.txt").read_text() == "kept"


def test_the_tool_is_an_agent_tool(scratch):
    python = python_tool(scratch)
    assert python.schema()["function"]["parameters"]["required"] == ["code"]
    assert python.run(ToolCall("python", '{"code": "print(2 ** 10)"}').arguments) == "1024\n"


@pytest.mark.parametrize("code, words", [
    ("import os\nos.system('echo pwned')", "import of 'os' is not allowed"),
    ("import subprocess\nsubprocess.run(['ls'])", "import of 'subprocess' is not allowed"),
    ("import ctypes\nctypes.CDLL(None)", "import of 'ctypes' is not allowed"),
    ("import socket\nsocket.create_connection(('example.com', 80))", "not allowed"),
    ("for c in ().__class__.__base__.__subclasses__():\n    print(c)", "'__subclasses__'"),
    ("print(__import__('os').getcwd())", "'__import__'"),
])
def test_escapes_are_refused(scratch, code, words):
    out = run_python(code, scratch)
    assert out.startswith("error:") or "error:" in out, out
    assert words in out
    assert "pwned" not in out


def test_runtime_hooks_stop_what_the_static_check_cannot_see(scratch, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    # Dunder names built at run time pass the static check; the audit hook and the import
    # allow-list still refuse what they would reach.
    walk = ("k = getattr(getattr(getattr((), '_'+'_class__'), '_'+'_base__'), "
            "'_'+'_subclasses__')()\n"
            "w = [c for c in k if getattr(c, '_'+'_name__') == '_wrap_close']\n"
            "g = getattr(getattr(w[0], '_'+'_init__'), '_'+'_globals__')\n"
            "g['system']('echo pwned')\n")
    out = run_python(walk, scratch)
    assert "os.system is not allowed" in out and "pwned" not in out
    out = run_python(f"print(open({str(secret)!r}).read())", scratch)
    assert "outside the scratch directory" in out and "do not read" not in out
    out = run_python("print(open('../secret.txt').read())", scratch)
    assert "outside the scratch directory" in out


def test_time_and_memory_are_bounded(scratch):
    assert "stopped" in run_python("while True:\n    pass", scratch, timeout=2)
    out = run_python("x = bytearray(2 * 1024 ** 3)\nprint(len(x))", scratch, memory_mb=256)
    assert out.startswith("error:") and "MemoryError" in out


def test_static_check_reports_syntax_errors():
    assert check_code("print(1") .startswith("SyntaxError")
    assert check_code("print(1)") is None
