#!/usr/bin/env python3
"""A scripted multi-turn "agent" for fixbench's telemetry tests (standard library only).

It talks to $FIXBENCH_BASE_URL (fixbench's recording proxy) for N turns, each turn sending
the whole conversation so far plus a new user message, streaming or not. Several
conversations can be interleaved (turn 1 of each, then turn 2 of each, ...), which forces
cache misses when there are more conversations than server slots. It changes no files.

Each request is printed on stdout as one JSON line: conversation, turn, status, timings (for
`--api ollama`, the counts and nanosecond durations of Ollama's final `done` object) and usage.

`--include-usage` asks a stream for its `usage` (`stream_options.include_usage`). `--api ollama`
talks Ollama's native `/api/chat` (at the base URL without its trailing `/v1`) instead of the
OpenAI chat endpoint: NDJSON when streaming, else one JSON object (`"stream": false`).
"""

import argparse
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

FILLER = (
    "The calculator reads an expression, splits it into tokens, parses the tokens into a tree "
    "and evaluates the tree. Operator precedence, unary minus and parentheses all matter. "
)


OLLAMA_FINAL = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
                "eval_duration")


def headers(api_key):
    h = {"Content-Type": "application/json"}
    if api_key is not None:
        h["Authorization"] = "Bearer " + api_key
    return h


def post(url, body, stream, timeout, api="openai", api_key=None):
    """Returns (status, text, timings, usage, error)."""
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers(api_key), method="POST"
    )
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        return e.code, None, None, None, e.read().decode(errors="replace")[:200]
    except (urllib.error.URLError, ConnectionError, OSError) as e:
        return 0, None, None, None, str(e)
    with resp:
        if api == "ollama":
            return ollama_answer(resp, stream)
        if not stream:
            data = json.loads(resp.read())
            text = data["choices"][0]["message"].get("content") or ""
            return resp.status, text, data.get("timings"), data.get("usage"), None
        text, timings, usage = [], None, None
        try:
            for raw in resp:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                event = json.loads(payload)
                for choice in event.get("choices") or []:
                    text.append((choice.get("delta") or {}).get("content") or "")
                timings = event.get("timings") or timings
                usage = event.get("usage") or usage
        except (ConnectionError, OSError, ValueError) as e:
            return resp.status, "".join(text), timings, usage, "stream broke off: %s" % e
        return resp.status, "".join(text), timings, usage, None


def ollama_answer(resp, stream):
    """Ollama's native answer: NDJSON objects ending with `done: true` when streamed, else one
    object. The final object's counts and durations are returned as the timings."""
    text, final = [], None
    try:
        if stream:
            for raw in resp:
                line = raw.decode().strip()
                if not line:
                    continue
                event = json.loads(line)
                text.append((event.get("message") or {}).get("content") or "")
                if event.get("done"):
                    final = event
        else:
            final = json.loads(resp.read())
            text.append((final.get("message") or {}).get("content") or "")
    except (ConnectionError, OSError, ValueError) as e:
        return resp.status, "".join(text), None, None, "answer broke off: %s" % e
    if final is None or not final.get("done"):
        return resp.status, "".join(text), None, None, "no final `done` object"
    timings = {k: final[k] for k in OLLAMA_FINAL if k in final}
    return resp.status, "".join(text), timings, None, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default=os.environ.get("FIXBENCH_BASE_URL"))
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--conversations", type=int, default=1, help="interleaved conversations")
    ap.add_argument("--stream", action="store_true", help="stream every answer")
    ap.add_argument(
        "--include-usage", action="store_true", help="ask streams for their usage (stream_options.include_usage)"
    )
    ap.add_argument(
        "--api", choices=["openai", "ollama"], default="openai", help="ollama: Ollama's native /api/chat"
    )
    ap.add_argument(
        "--api-key", default=None, help="send `Authorization: Bearer KEY` (agents' presets send a placeholder)"
    )
    ap.add_argument("--no-cache-prompt", action="store_true", help="send cache_prompt: false")
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--filler", type=int, default=3, help="filler sentences per user message")
    ap.add_argument("--think", type=float, default=0.0, help="seconds of 'tool work' between turns")
    ap.add_argument("--kill-pid", type=int, help="SIGKILL this process after --kill-after requests")
    ap.add_argument("--kill-after", type=int, default=1)
    ap.add_argument("--model", default=os.environ.get("FIXBENCH_MODEL", "local"))
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    if not args.base_url:
        sys.exit("multiturn.py: no base URL: set FIXBENCH_BASE_URL or pass --base-url")
    base = args.base_url.rstrip("/")
    if args.api == "ollama":
        url = (base[: -len("/v1")] if base.endswith("/v1") else base) + "/api/chat"
    else:
        url = base + "/chat/completions"

    histories = [
        [
            {"role": "system", "content": "You are a terse assistant. Answer in a few words."},
            {"role": "user", "content": "Session %d. %s Question 1: what comes first?" % (c, FILLER * args.filler)},
        ]
        for c in range(args.conversations)
    ]
    sent = failures = 0
    for turn in range(args.turns):
        for c, history in enumerate(histories):
            if turn > 0:
                history.append(
                    {"role": "user", "content": "%s Question %d: and then?" % (FILLER * args.filler, turn + 1)}
                )
            if args.api == "ollama":
                body = {
                    "model": args.model,
                    "messages": history,
                    "stream": args.stream,
                    "options": {"num_predict": args.max_tokens, "temperature": 0, "seed": 1},
                }
            else:
                body = {
                    "model": args.model,
                    "messages": history,
                    "max_tokens": args.max_tokens,
                    "temperature": 0,
                    "seed": 1,
                    "stream": args.stream,
                    "cache_prompt": not args.no_cache_prompt,
                }
                if args.stream and args.include_usage:
                    body["stream_options"] = {"include_usage": True}
            status, text, timings, usage, error = post(url, body, args.stream, args.timeout, args.api, args.api_key)
            sent += 1
            line = {"conversation": c, "turn": turn, "status": status, "timings": timings, "usage": usage}
            print(json.dumps(dict(line, error=error)))
            sys.stdout.flush()
            if status != 200 or error:
                failures += 1
            history.append({"role": "assistant", "content": text or ""})
            if args.kill_pid and sent == args.kill_after:
                os.kill(args.kill_pid, signal.SIGKILL)
                time.sleep(0.5)
        if args.think:
            time.sleep(args.think)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
