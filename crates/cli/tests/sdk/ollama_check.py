"""The `ollama` Python package against `nullgate proxy` (OLLAMA_HOST pointed at it): the
model list, `chat` unstreamed and streamed, and `generate`, each answered and charged.

Usage: python ollama_check.py http://127.0.0.1:PORT   (the proxy's root)

Run by crates/cli/tests/agent_sdks.rs with the virtualenv of .ci/steps/10-python.sh. Prints
one JSON summary line on success; exits non-zero with the reason on any failure.
"""

import importlib.metadata
import json
import sys

import httpx
import ollama

from checks import check, fail

MODEL = "nullgate-example-1"



def listed(client):
    models = [m.model for m in client.list().models]
    check(MODEL in models, f"list: {MODEL} not in {models}")
    return {"models": models}


def chat_unstreamed(client):
    response = client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "Say something short about volcanoes."}],
        options={"num_predict": 32},
    )
    check(response.done, f"chat: not done: {response!r}")
    check(bool(response.message.content), f"chat: no content: {response!r}")
    check(response.eval_count and response.eval_count > 0, f"chat: eval_count {response!r}")
    return {"text_chars": len(response.message.content), "eval_count": response.eval_count}


def chat_streamed(client):
    parts, done = [], None
    for part in client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "Say something short about meadows."}],
        stream=True,
    ):
        check(done is None, "chat stream: a part after the one that was done")
        if part.done:
            done = part
        parts.append(part.message.content or "")
    text = "".join(parts)
    check(done is not None, "chat stream: no part with done = true")
    check(bool(text), f"chat stream: no text in {len(parts)} parts")
    check(done.eval_count and done.eval_count > 0, f"chat stream: eval_count {done!r}")
    return {"parts": len(parts), "text_chars": len(text), "eval_count": done.eval_count}


def generate(client):
    response = client.generate(model=MODEL, prompt="Say something short about caves.")
    check(response.done, f"generate: not done: {response!r}")
    check(bool(response.response), f"generate: no response: {response!r}")
    return {"text_chars": len(response.response)}


def charged(host):
    """The charge header of one more paid call, made with httpx: the package hides headers."""
    response = httpx.post(
        f"{host}/api/chat",
        json={"model": MODEL, "messages": [{"role": "user", "content": "Hi."}], "stream": False},
        timeout=300.0,
    )
    check(response.status_code == 200, f"raw chat: status {response.status_code}: {response.text}")
    value = response.headers.get("x-nullgate-charged", "")
    check(value.isdigit() and int(value) > 0, f"raw chat: x-nullgate-charged {value!r}")
    return int(value)


def main():
    if len(sys.argv) != 2:
        fail("usage: ollama_check.py HOST (the proxy's root, e.g. http://127.0.0.1:PORT)")
    host = sys.argv[1]
    client = ollama.Client(host=host, timeout=300.0)
    try:
        summary = {
            "ollama": importlib.metadata.version("ollama"),
            "list": listed(client),
            "chat": chat_unstreamed(client),
            "chat_streamed": chat_streamed(client),
            "generate": generate(client),
            "charged": charged(host),
        }
    except ollama.ResponseError as error:
        fail(f"ResponseError: status {error.status_code}: {error.error}")
    print(json.dumps(summary, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
