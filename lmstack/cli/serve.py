"""`lmstack serve`: models behind the OpenAI API, as a replica ready for a load balancer.

The port opens at once and the models load on a thread (/health answers, /ready waits); every
option also comes from its LMSTACK_* environment variable; SIGTERM drains (README, "Deploying").
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from lmstack.cli.args import (
    DEFAULT_MODEL,
    UserError,
    check_port_free,
    model_path,
    parse_adapter,
)

console = Console()


def serve(
    paths: list[Path] | None = typer.Argument(
        None, envvar="LMSTACK_MODEL", show_envvar=True,
        help="models (folders, GGUF files, short names): generators and/or encoders; "
        "default smollm2; in the environment, separated by spaces"),
    host: str = typer.Option("127.0.0.1", envvar="LMSTACK_HOST",
                             help="interface; 0.0.0.0 exposes it to the network"),
    port: int = typer.Option(8000, envvar="LMSTACK_PORT", help="TCP port"),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="LMSTACK_API_KEY",
        help="require `Authorization: Bearer KEY` on /v1; prefer setting LMSTACK_API_KEY, "
             "since a key on the command line is visible to every user in `ps`"),
    name: list[str] | None = typer.Option(
        None, "--name", envvar="LMSTACK_NAME", help="served name per PATH, in order (default: "
        "the short name, the file's stem or the folder's name)"),
    max_num_seqs: int = typer.Option(64, envvar="LMSTACK_MAX_NUM_SEQS",
                                     help="sequences decoded together in one step"),
    prefix_caching: bool = typer.Option(
        True, envvar="LMSTACK_PREFIX_CACHING",
        help="reuse the KV blocks of prompt prefixes seen before (same outputs)"),
    speculative_tokens: int = typer.Option(
        0, envvar="LMSTACK_SPECULATIVE_TOKENS",
        help="greedy requests guess this many tokens by prompt lookup and check them in one "
        "pass (same outputs; pays on answers that quote their prompt); 0 turns it off"),
    max_model_len: int | None = typer.Option(None, envvar="LMSTACK_MAX_MODEL_LEN",
                                             help="context limit (default: model's)"),
    max_queue: int = typer.Option(256, envvar="LMSTACK_MAX_QUEUE",
                                  help="waiting requests beyond which new ones get 503"),
    max_body_mb: float = typer.Option(4.0, envvar="LMSTACK_MAX_BODY_MB",
                                      help="largest request body in MB (larger: 413)"),
    allowed_hosts: list[str] | None = typer.Option(
        None, "--allowed-hosts", envvar="LMSTACK_ALLOWED_HOSTS",
        help="accept only these Host headers (repeat the option); "
        "guards a keyless local server against DNS rebinding, e.g. localhost and 127.0.0.1"),
    grace: float = typer.Option(
        30.0, "--grace-seconds", envvar="LMSTACK_GRACE_SECONDS",
        help="on SIGTERM, how long in-flight requests may take to finish before the process "
        "exits (keep it below Kubernetes' terminationGracePeriodSeconds)"),
    log_format: str = typer.Option("text", envvar="LMSTACK_LOG_FORMAT",
                                   help="text, or json (one object per line, for shippers)"),
    log_level: str = typer.Option("info", envvar="LMSTACK_LOG_LEVEL",
                                  help="debug (probes too), info, warning or error"),
    adapter: list[str] | None = typer.Option(
        None, "--adapter", help="NAME=FOLDER: a PEFT LoRA adapter served as model "
        "`BASE:NAME` (repeat the option); requests with different adapters share one batch"),
    image_model: list[Path] | None = typer.Option(
        None, "--image-model", envvar="LMSTACK_IMAGE_MODEL",
        help="a diffusion model folder drawn from at /v1/images/generations, named by its "
        "folder (repeat the option); alone, no language model is loaded"),
    caption_model: list[Path] | None = typer.Option(
        None, "--caption-model", envvar="LMSTACK_CAPTION_MODEL",
        help="an image captioner folder (clip/ + decoder/, written by benchmarks/clip.py or "
        "`lmstack demo`) served at POST /v1/images/captions and in the page's Image tab "
        "(repeat the option); given alone, no language model is loaded"),
) -> None:
    """Serve models over the OpenAI API (/v1/...), with a chat page at / (default: SmolLM2).

    Every option can come from its LMSTACK_* environment variable (shown in --help); an
    option on the command line wins. The port opens at once: /health answers while the models
    load, /ready once they serve; SIGTERM drains (see README, "Deploying").
    """
    check_port_free(host, port)  # before loading models: a busy port fails in a second
    from lmstack.serve import create_app, load_entries
    from lmstack.serve import serve as run_server
    from lmstack.serve.logs import setup_logging
    from lmstack.serve.replica import Replica

    captioner_folders = caption_model or []
    paths = paths or ([] if image_model or captioner_folders else [DEFAULT_MODEL])
    for folder in image_model or []:
        if not (folder / "config.json").is_file():
            raise UserError(f"--image-model {folder}: no config.json there; give a folder "
                            "saved by a diffusion model (benchmarks/diffusion.py, lmstack demo)")
    for folder in captioner_folders:
        if not (folder / "clip").is_dir() or not (folder / "decoder").is_dir():
            raise UserError(f"--caption-model {folder} is not a captioner folder: it needs "
                            "clip/ and decoder/ (written by benchmarks/clip.py or lmstack demo)")
    for path in paths:
        model_path(path)  # all present before any loads: a typo fails at once
    if max_num_seqs < 1 or max_queue < 1:
        # --max-queue 0 would answer every request with 503: a server that serves nothing.
        raise UserError("--max-num-seqs and --max-queue must be >= 1")
    if not max_body_mb > 0:
        raise UserError("--max-body-mb must be > 0")
    if speculative_tokens < 0:
        raise UserError("--speculative-tokens must be >= 0")
    if not grace >= 0:
        raise UserError("--grace-seconds must be >= 0")
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise UserError(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    if name and len(name) != len(paths):  # before the port opens: a typo fails at once
        raise UserError(f"got {len(name)} --name for {len(paths)} model folders; give one "
                        "name per folder, in the same order")
    adapters = dict(parse_adapter(item) for item in adapter or [])
    if adapters and len(paths) > 1:
        raise UserError("--adapter serves LoRA adapters on one base model; give one PATH")
    setup_logging(log_format, log_level.lower())

    def build() -> object:  # runs on a thread while the port already answers /health
        from lmstack.multimodal.caption_train import Captioner
        from lmstack.multimodal.diffusion import load_diffusion

        images = {folder.resolve().name: load_diffusion(folder) for folder in image_model or []}
        captioners = {f.resolve().name: Captioner.load(f) for f in captioner_folders}
        for caption_name in captioners:
            console.print(f"[bold]{caption_name}[/] (caption)")
        models = load_entries(paths, name, max_num_seqs=max_num_seqs,
                              max_model_len=max_model_len, max_queue=max_queue,
                              enable_prefix_caching=prefix_caching,
                              speculative_tokens=speculative_tokens,
                              adapters=adapters or None) if paths else {}
        for entry in models.values():
            console.print(f"[bold]{entry.name}[/] ({entry.kind}) from {entry.path}")
        return create_app(models, api_key=api_key,
                          max_body_bytes=int(max_body_mb * 2**20),
                          allowed_hosts=allowed_hosts or None, image_models=images,
                          captioners=captioners)

    console.print(f"chat page: http://{host}:{port}/   API: http://{host}:{port}/v1"
                  + ("   (API key required)" if api_key else "") + "   (loading models)")
    run_server(Replica(build, grace_s=grace), host=host, port=port)
    # Drained, and every log line written: exit now. The interpreter's teardown of torch and
    # the engines' memory takes seconds on a busy machine (measured: 9-13 s at load 18), time a
    # Kubernetes grace period would otherwise have to cover.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
