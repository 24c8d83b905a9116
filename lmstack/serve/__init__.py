"""An OpenAI-compatible HTTP server for lmstack models, with a small web chat page.

Follows the OpenAI API reference and vLLM's server; see app.py for the routes.
"""

from lmstack.serve.app import create_app
from lmstack.serve.registry import ModelEntry, load_entries, load_entry
from lmstack.serve.server import BackgroundServer, serve

__all__ = ["BackgroundServer", "ModelEntry", "create_app", "load_entries", "load_entry",
           "serve"]
