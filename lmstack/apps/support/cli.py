"""`lmstack apps support init|chat|serve`: the customer-service desk in a terminal or a page."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

support_app = typer.Typer(no_args_is_help=True, help="The customer-service system: orders, "
                          "tickets and a refund policy, answered by a team of agents.")
console = Console()
HOME = Path("runs/support")


def _model(model: str, url: str | None, api_key: str | None):
    """An OpenAI-compatible endpoint when configured (flag or env), else lmstack's own."""
    if url:
        from lmstack.chat import OpenAIChatModel

        return OpenAIChatModel(url, api_key=api_key, model=None if model == "smollm2" else model)
    from lmstack.engine.chat_model import EngineChatModel

    return EngineChatModel(model, temperature=0, max_tokens=256)


def _desk(home: Path, model: str, url: str | None, api_key: str | None, fresh: bool):
    from lmstack.apps.support.agents import support_team
    from lmstack.apps.support.db import SupportDB
    from lmstack.apps.support.desk import Desk

    db = SupportDB(home / "shop.db")
    if fresh or db.order("A-1001") is None:
        db.seed()
    team = support_team(_model(model, url, api_key), db)
    return Desk(team, home / "memory.db", home / "trace.jsonl")


URL = typer.Option(None, "--url", envvar="LMSTACK_CHAT_URL", help="an OpenAI-compatible "
                   "endpoint (e.g. http://127.0.0.1:8000/v1); default: lmstack's own model")
KEY = typer.Option(None, "--api-key", envvar="OPENAI_API_KEY", help="for --url")
MODEL = typer.Option("smollm2", "--model", help="local model (folder, GGUF or short name), or "
                     "the model name at --url")
HOME_OPT = typer.Option(HOME, "--home", help="folder for shop.db, memory.db and trace.jsonl")


@support_app.command("init")
def init(home: Path = HOME_OPT) -> None:
    """Create (or reset) the sample shop database."""
    from lmstack.apps.support.db import SupportDB

    db = SupportDB(home / "shop.db").seed()
    n = db.db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    console.print(f"{home / 'shop.db'}: 3 customers, {n} orders (A-1001 .. A-100{n})")


@support_app.command("chat")
def chat(model: str = MODEL, url: str | None = URL, api_key: str | None = KEY,
         home: Path = HOME_OPT, session: str = typer.Option("terminal", help="session id")
         ) -> None:
    """Talk to the desk in the terminal (/exit quits); the conversation is remembered."""
    desk = _desk(home, model, url, api_key, fresh=False)
    console.print("Ask about an order (A-1001 .. A-1007) or the refund policy. /exit quits.")
    while True:
        try:
            text = console.input("[bold]you>[/] ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if text in ("/exit", "/quit"):
            break
        if text:
            answer, trace = desk.ask(session, text)
            tools = [f"{e['agent']}:{e['name']}" for e in trace.of("tool")]
            console.print(f"[green]desk>[/] {answer}")
            if tools:
                console.print(f"[dim]({', '.join(tools)})[/]")


@support_app.command("serve")
def serve(model: str = MODEL, url: str | None = URL, api_key: str | None = KEY,
          home: Path = HOME_OPT, host: str = typer.Option("127.0.0.1"),
          port: int = typer.Option(8010)) -> None:
    """The web chat at http://HOST:PORT/support."""
    import uvicorn

    from lmstack.apps.support.web import create_support_app

    app = create_support_app(_desk(home, model, url, api_key, fresh=False))
    console.print(f"support desk: http://{host}:{port}/support")
    uvicorn.run(app, host=host, port=port, log_level="warning")
