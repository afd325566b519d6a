"""The official `openai` Python package against `nullgate proxy`: chat completions unstreamed
and streamed, the Responses API unstreamed and streamed, and embeddings, each answered and
charged.

Usage: python openai_check.py http://127.0.0.1:PORT/v1

Run by crates/cli/tests/openai_sdk.rs with the virtualenv of .ci/steps/10-python.sh. Prints
one JSON summary line on success; exits non-zero with the reason on any failure.
"""

import json
import sys

import openai

from checks import check, fail

MODEL = "nullgate-example-1"



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


def responses_unstreamed(client):
    raw = client.responses.with_raw_response.create(
        model=MODEL,
        input="Say something short about bridges.",
        user="user-1234",
    )
    check(raw.status_code == 200, f"responses: status {raw.status_code}")
    response = raw.parse()
    check(bool(response.output_text), f"responses: no output_text: {response!r}")
    check(response.usage is not None and response.usage.output_tokens > 0,
          f"responses: usage {response.usage!r}")
    return {
        "text_chars": len(response.output_text),
        "output_tokens": response.usage.output_tokens,
        "charged": charged_header(raw.headers, required=True),
    }


def responses_streamed(client):
    raw = client.responses.with_raw_response.create(
        model=MODEL,
        input="Say something short about harbours.",
        stream=True,
    )
    check(raw.status_code == 200, f"responses stream: status {raw.status_code}")
    charged = charged_header(raw.headers, required=False)
    text, events, completed = [], 0, None
    for event in raw.parse():
        events += 1
        if event.type == "response.output_text.delta":
            text.append(event.delta)
        elif event.type == "response.completed":
            completed = event.response
    answer = "".join(text)
    check(bool(answer), f"responses stream: no text in {events} events")
    check(completed is not None, "responses stream: no response.completed event")
    check(completed.usage.output_tokens > 0, f"responses stream: usage {completed.usage!r}")
    return {"events": events, "text_chars": len(answer), "charged": charged}


def embeddings(client):
    raw = client.embeddings.with_raw_response.create(
        model=MODEL, input=["rivers", "forests"], user="user-1234"
    )
    check(raw.status_code == 200, f"embeddings: status {raw.status_code}")
    result = raw.parse()
    check(len(result.data) == 2, f"embeddings: {len(result.data)} vectors for 2 inputs")
    check(all(len(d.embedding) > 0 for d in result.data), "embeddings: an empty vector")
    check(result.usage.prompt_tokens > 0, f"embeddings: usage {result.usage!r}")
    return {
        "dimensions": len(result.data[0].embedding),
        "prompt_tokens": result.usage.prompt_tokens,
        "charged": charged_header(raw.headers, required=True),
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
            "responses": responses_unstreamed(client),
            "responses_streamed": responses_streamed(client),
            "embeddings": embeddings(client),
        }
    except openai.APIStatusError as error:
        fail(f"{type(error).__name__}: status {error.status_code}: {error.response.text}")
    except openai.APIError as error:
        fail(f"{type(error).__name__}: {error}")
    print(json.dumps(summary, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
