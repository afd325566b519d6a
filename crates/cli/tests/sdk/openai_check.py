"""The official `openai` Python package against `nullgate proxy`: one unstreamed and one
streamed chat completion, each answered, and the unstreamed one charged.

Usage: python openai_check.py http://127.0.0.1:PORT/v1

Run by crates/cli/tests/openai_sdk.rs with the virtualenv of .ci/steps/10-python.sh. Prints
one JSON summary line on success; exits non-zero with the reason on any failure.
"""

import json
import sys

import openai

MODEL = "nullgate-example-1"


def fail(message):
    print(f"openai_check: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def charged_header(headers, required):
    """The `x-nullgate-charged` header as a positive integer (None if absent and not required)."""
    value = headers.get("x-nullgate-charged")
    if value is None:
        check(not required, "no x-nullgate-charged header on the response")
        return None
    check(
        value.isdigit() and int(value) > 0,
        f"x-nullgate-charged is not a positive integer: {value!r}",
    )
    return int(value)


def unstreamed(client):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say something short about lighthouses."}],
    )
    check(raw.status_code == 200, f"unstreamed: status {raw.status_code}")
    charged = charged_header(raw.headers, required=True)
    completion = raw.parse()
    check(completion.choices, "unstreamed: no choices in the completion")
    answer = completion.choices[0].message.content
    check(bool(answer), f"unstreamed: empty answer: {completion!r}")
    check(completion.usage is not None, "unstreamed: no usage in the completion")
    check(
        completion.usage.total_tokens > 0,
        f"unstreamed: usage.total_tokens is {completion.usage.total_tokens}",
    )
    return {
        "answer_chars": len(answer),
        "total_tokens": completion.usage.total_tokens,
        "charged": charged,
        "class": raw.headers.get("x-nullgate-class"),
    }


def streamed(client):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say something short about the sea."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    check(raw.status_code == 200, f"streamed: status {raw.status_code}")
    # The charge is known only once the body has been sent: on a stream the header may be absent.
    charged = charged_header(raw.headers, required=False)
    text, chunks, usage, after_usage = [], 0, None, 0
    for chunk in raw.parse():
        chunks += 1
        if usage is not None:
            after_usage += 1
        for choice in chunk.choices:
            if choice.delta is not None and choice.delta.content:
                text.append(choice.delta.content)
        if chunk.usage is not None:
            check(usage is None, "streamed: more than one usage chunk")
            check(not chunk.choices, f"streamed: the usage chunk has choices: {chunk!r}")
            usage = chunk.usage
    answer = "".join(text)
    check(bool(answer), f"streamed: no text in {chunks} chunks")
    check(usage is not None, "streamed: include_usage was asked for but no usage chunk arrived")
    check(after_usage == 0, f"streamed: {after_usage} chunks after the usage chunk")
    check(usage.total_tokens > 0, f"streamed: usage.total_tokens is {usage.total_tokens}")
    return {
        "chunks": chunks,
        "text_chars": len(answer),
        "total_tokens": usage.total_tokens,
        "charged": charged,
    }


def main():
    if len(sys.argv) != 2:
        fail("usage: openai_check.py BASE_URL (e.g. http://127.0.0.1:PORT/v1)")
    # No retries: a paid call is never repeated behind the test's back; a failure shows as is.
    client = openai.OpenAI(
        base_url=sys.argv[1], api_key="unused", max_retries=0, timeout=300.0
    )
    try:
        summary = {
            "openai": openai.__version__,
            "unstreamed": unstreamed(client),
            "streamed": streamed(client),
        }
    except openai.APIStatusError as error:
        fail(f"{type(error).__name__}: status {error.status_code}: {error.response.text}")
    except openai.APIError as error:
        fail(f"{type(error).__name__}: {error}")
    print(json.dumps(summary, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
