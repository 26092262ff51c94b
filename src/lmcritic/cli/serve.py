"""``lmcritic serve --model M``: serve any model over an OpenAI-compatible HTTP API; ``--upstream URL``:
proxy another OpenAI-compatible server instead (with guards); ``--log PATH``: record the traffic for
``lmcritic monitor ingest``."""
from __future__ import annotations

import argparse


def add_to(sub: argparse._SubParsersAction) -> None:
    from lmcritic.serve import MAX_QUEUE, MAX_TOKENS_CAP, REQUEST_TIMEOUT_S, YIELD_AFTER_S

    p = sub.add_parser("serve", help="serve a model over an OpenAI-compatible HTTP API (/v1/completions, ...)")
    p.add_argument("--model", default=None, help="known name (see `lmcritic models`), local dir, .gguf, hub id "
                   "(default: the default model)")
    p.add_argument("--backend", help="hf | openai | python | vllm | ray (inferred when omitted)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only; "
                   ":: for every IPv6 and IPv4 address)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--api-key-env", metavar="VAR",
                   help="require 'Authorization: Bearer $VAR' on every request (the key is read from VAR)")
    p.add_argument("--log", metavar="PATH", help="append every completion to a JSONL traffic log "
                   "(the format `lmcritic monitor ingest` reads)")
    p.add_argument("--upstream", metavar="URL", help="proxy this OpenAI-compatible server (e.g. "
                   "http://127.0.0.1:8001/v1) instead of loading a model")
    p.add_argument("--upstream-key-env", metavar="VAR", help="send 'Authorization: Bearer $VAR' upstream")
    p.add_argument("--guard", action="append", default=[], metavar="NAME",
                   help="with --upstream: apply a guard (output_filter, injection_guard, harm_guard, "
                   "adversarial_guard) or the guards of a mitigated model spec DIR/model.yaml; repeatable")
    p.add_argument("--guard-option", action="append", default=[], metavar="NAME.KEY=VALUE",
                   help="a guard's option, e.g. injection_guard.threshold=0.8")
    p.add_argument("--max-tokens-cap", type=int, default=MAX_TOKENS_CAP, metavar="N",
                   help=f"refuse requests for more than N new tokens (default {MAX_TOKENS_CAP})")
    p.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT_S, metavar="S",
                   help=f"a request's deadline in seconds from arrival: past it, 504 (default {REQUEST_TIMEOUT_S:g})")
    p.add_argument("--max-queue", type=int, default=MAX_QUEUE, metavar="N",
                   help=f"requests queued or running before new ones get 503 + Retry-After (default {MAX_QUEUE})")
    p.add_argument("--yield-after", type=float, default=YIELD_AFTER_S, metavar="S",
                   help="a generation that has run S seconds pauses between tokens for a waiting request that "
                   f"needs at most half its remaining tokens (default {YIELD_AFTER_S:g}; inf: never pauses)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmcritic.backends import DEFAULT_MODEL, ModelSpec
    from lmcritic.errors import ConfigError
    from lmcritic.serve import Limits, serve

    api = None
    if args.upstream:
        from lmcritic.serve_proxy import ProxyAPI, build_guards

        api = ProxyAPI(args.upstream, args.api_key_env, args.upstream_key_env,
                       build_guards(args.guard, args.guard_option))
    elif args.guard:
        raise ConfigError("--guard applies to the --upstream proxy",
                          "to guard a local model, serve it and put `lmcritic serve --upstream` in front")
    elif args.model is None and args.backend not in (None, "hf"):
        raise ConfigError(f"--backend {args.backend} needs --model (the callable or the served model's name)",
                          "e.g. --backend python --model package.module:function")
    spec = ModelSpec(name=args.upstream or args.model or DEFAULT_MODEL, backend=args.backend)
    limits = Limits(max_tokens_cap=args.max_tokens_cap, request_timeout=args.request_timeout,
                    max_queue=args.max_queue, yield_after=args.yield_after)
    return serve(spec, host=args.host, port=args.port, api_key_env=args.api_key_env, limits=limits,
                 log_path=args.log, api=api)
