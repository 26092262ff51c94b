"""The upstream model of bench_proxy.py: answers at once, so the timings measure HTTP and the proxy only."""


def echo(prompt):  # chat: the message dicts; completions: the prompt text
    text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
    return f"You asked: {text[:200]}. Here is a short answer with a contact: help@example.com."
