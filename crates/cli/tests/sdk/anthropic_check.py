"""The official `anthropic` Python package against `nullgate proxy`: one unstreamed and one
streamed message, each answered and charged.

Usage: python anthropic_check.py http://127.0.0.1:PORT   (the proxy's root, no /v1)

Run by crates/cli/tests/agent_sdks.rs with the virtualenv of .ci/steps/10-python.sh. Prints
one JSON summary line on success; exits non-zero with the reason on any failure.
"""

import json
import sys

import anthropic

from checks import check, fail

MODEL = "nullgate-example-1"



def charged(headers):
    value = headers.get("x-nullgate-charged")
    check(value is not None, "no x-nullgate-charged header on the response")
    check(value.isdigit() and int(value) > 0, f"x-nullgate-charged is not positive: {value!r}")
    return int(value)


def unstreamed(client):
    raw = client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "Say something short about glaciers."}],
        metadata={"user_id": "user-1234"},
    )
    check(raw.status_code == 200, f"unstreamed: status {raw.status_code}")
    message = raw.parse()
    check(message.type == "message", f"unstreamed: not a message: {message!r}")
    text = "".join(block.text for block in message.content if block.type == "text")
    check(bool(text), f"unstreamed: no text in {message!r}")
    check(message.usage.output_tokens > 0, f"unstreamed: usage {message.usage!r}")
    return {
        "text_chars": len(text),
        "input_tokens": message.usage.input_tokens,
        "output_tokens": message.usage.output_tokens,
        "charged": charged(raw.headers),
        "class": raw.headers.get("x-nullgate-class"),
    }


def streamed(client):
    events = 0
    with client.messages.stream(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "Say something short about deserts."}],
    ) as stream:
        text = []
        for event in stream:
            events += 1
            if event.type == "text":
                text.append(event.text)
        final = stream.get_final_message()
        headers = stream.response.headers
    answer = "".join(text)
    check(bool(answer), f"streamed: no text in {events} events")
    check(final.usage.output_tokens > 0, f"streamed: usage {final.usage!r}")
    return {
        "events": events,
        "text_chars": len(answer),
        "output_tokens": final.usage.output_tokens,
        "charged": charged(headers),
    }


def main():
    if len(sys.argv) != 2:
        fail("usage: anthropic_check.py BASE_URL (the proxy's root, e.g. http://127.0.0.1:PORT)")
    # No retries: a paid call is never repeated behind the test's back.
    client = anthropic.Anthropic(
        base_url=sys.argv[1], api_key="unused", max_retries=0, timeout=300.0
    )
    try:
        summary = {
            "anthropic": anthropic.__version__,
            "unstreamed": unstreamed(client),
            "streamed": streamed(client),
        }
    except anthropic.APIStatusError as error:
        fail(f"{type(error).__name__}: status {error.status_code}: {error.response.text}")
    except anthropic.APIError as error:
        fail(f"{type(error).__name__}: {error}")
    print(json.dumps(summary, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
