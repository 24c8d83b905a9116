"""The command line's argument checks: which model a path names, whether a port is free.

Each failure is a `UserError` whose one line says what to pass instead (the CLI prints it and
exits 2); follows click's own `BadParameter` convention of naming the fix.
"""

from __future__ import annotations

from pathlib import Path


class UserError(ValueError):
    """Raised by commands for mistakes the user can fix; printed as one line, exit code 2."""


DEFAULT_MODEL = Path("smollm2")  # = lmstack.models.default.DEFAULT_MODEL, whose import is torch's
MODEL_HELP = "a model folder, GGUF file or short name (smollm2)"


def model_path(arg: Path) -> Path:
    """The folder or file a model argument names; a short name whose package is missing, or a
    path that is not there, is one line saying what to pass or install."""
    from lmstack.models.default import resolve_model_path

    path = resolve_model_path(arg)
    if not path.exists():
        raise UserError(f"no such model folder or GGUF file: {arg}; pass a folder, a .gguf "
                        "file or smollm2")
    return path


def check_port_free(host: str, port: int) -> None:
    """Fail now, in one line, if the server could not listen on host:port."""
    import errno
    import socket

    if not 0 < port < 65536:
        raise UserError("--port must be between 1 and 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UserError(f"--host {host} is not an address or name this machine knows") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # As uvicorn binds: SO_REUSEADDR lets a port in TIME_WAIT be reused, not a live one.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {host} is already in use (another server?); "
                                "stop it or pick another with --port") from None
            raise UserError(f"cannot listen on {host}:{port} ({e.strerror}); "
                            "pick another --host or --port") from None


def parse_adapter(item: str) -> tuple[str, Path]:
    """`lmstack serve --adapter NAME=FOLDER` -> (name, folder), the folder checked to exist and
    to hold a LoRA adapter (before the models load: a wrong folder fails at once)."""
    from lmstack.adapt.multi_lora import check_servable
    from lmstack.adapt.peft_folder import read_adapter

    name, sep, folder = item.partition("=")
    if not sep or not name or not folder:
        raise UserError(f"--adapter takes NAME=FOLDER (a PEFT LoRA adapter folder), got {item!r}")
    if not Path(folder).is_dir():
        raise UserError(f"--adapter {name}: no such folder: {folder}")
    check_servable(folder, read_adapter(folder)[0])
    return name, Path(folder)
