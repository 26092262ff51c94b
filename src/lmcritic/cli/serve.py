"""``lmcritic serve --model M``: serve any model over an OpenAI-compatible HTTP API."""
from __future__ import annotations

import argparse


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a model over an OpenAI-compatible HTTP API (/v1/completions, ...)")
    p.add_argument("--model", default=None, help="known name (see `lmcritic models`), local dir, .gguf, hub id "
                   "(default: the default model)")
    p.add_argument("--backend", help="hf | openai | python (inferred when omitted)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--api-key-env", metavar="VAR",
                   help="require 'Authorization: Bearer $VAR' on every request (the key is read from VAR)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmcritic.backends import DEFAULT_MODEL, ModelSpec
    from lmcritic.serve import serve

    spec = ModelSpec(name=args.model or DEFAULT_MODEL, backend=args.backend)
    return serve(spec, host=args.host, port=args.port, api_key_env=args.api_key_env)
