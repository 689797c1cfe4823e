#!/usr/bin/env python3
"""A scripted multi-turn agent for fixbench: one fixed conversation per trial, no model judgement.

It sends one conversation of --turns turns (default 4) to the server fixbench gives it
($FIXBENCH_BASE_URL, or --base-url {base_url}): a short system prompt, a first user message
of a few hundred tokens, then a short follow-up question per turn, each request carrying the
whole history so far (temperature 0, a few answer tokens). It changes no files, so its trials
grade at the starter's baseline; what it is for is the server's prompt cache. Every turn after
the first could find the previous turn's prompt in the cache, so `reprefilled_tokens` in the
trial's requests shows whether the server kept it (see sweeps/overlap.toml).

The first user message begins with the trial's own tag (a hash of its workdir, then the
problem; or --tag), so that two trials running at once share no prefix beyond the short system
prompt and llama-server does not take one conversation's slot for the other's.

Standard library only. Each request is printed on stdout as one JSON line: turn, status, and
the server's prompt_n / cache_n / prompt_ms. The exit status is 1 when a request failed.

    fixbench run --problem expr_calc --repeat 2 --jobs 2 \\
        --server http://127.0.0.1:8080 --cmd "python3 agents/scripted-multiturn.py"
"""

import argparse
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

SYSTEM = "You are a terse code reviewer. Answer in a few words."

# The first user message's body: about 300 tokens, the same for every trial.
NOTES = (
    "Here are my notes on the package before we start. The calculator reads an expression, "
    "splits it into tokens, parses the tokens into a tree and evaluates the tree. The tokenizer "
    "handles numbers, names, operators and parentheses, and it reports the position of any "
    "character it does not know. The parser is a precedence climber: addition and subtraction "
    "bind loosest, then multiplication, division, floor division and remainder, then the power "
    "operator, which groups to the right, then unary minus. The evaluator walks the tree, looks "
    "names up among the constants and the caller's variables, and calls the few functions it "
    "knows with their arguments. Errors are raised as the package's own exception classes, each "
    "with a message that says where the problem is. The tests cover the tokenizer, the parser "
    "and the evaluator separately, and a few of them run whole expressions from end to end. "
    "Some reports say that chained subtraction and division give the wrong answer, that powers "
    "group the wrong way, that floor division of negative numbers rounds toward zero, and that "
    "expressions spread over several lines do not tokenize at all. "
)

QUESTIONS = [
    "Which file should I read first?",
    "Which test would you run next?",
    "What is the riskiest change here?",
    "How do I know the fix is complete?",
    "What should the commit message say?",
    "Anything else to check before merging?",
]


def trial_tag(args):
    """What the first message begins with: a short hash of the trial's workdir, then its problem.
    The distinct part comes first so that two trials' prompts part right after the system prompt."""
    if args.tag:
        return args.tag
    workdir = os.environ.get("FIXBENCH_WORKDIR") or os.getcwd()
    problem = os.environ.get("FIXBENCH_PROBLEM") or "no problem"
    return "[%s] %s" % (hashlib.sha1(workdir.encode()).hexdigest()[:8], problem)


def post(url, body, timeout):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read())
            text = data["choices"][0]["message"].get("content") or ""
            return resp.status, text, data.get("timings") or {}, None
    except urllib.error.HTTPError as e:
        return e.code, "", {}, e.read().decode(errors="replace")[:200]
    except (urllib.error.URLError, ConnectionError, OSError, ValueError, KeyError, IndexError) as e:
        return 0, "", {}, str(e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default=os.environ.get("FIXBENCH_BASE_URL"), help="default: $FIXBENCH_BASE_URL")
    ap.add_argument("--model", default=os.environ.get("FIXBENCH_MODEL", "local"), help="default: $FIXBENCH_MODEL")
    ap.add_argument("--turns", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=16, help="answer tokens per turn")
    ap.add_argument("--notes", type=int, default=1, help="copies of the ~300-token notes in the first message")
    ap.add_argument("--tag", help="what makes this trial's conversation its own [default: a hash of the workdir, and the problem]")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    args = ap.parse_args()
    if not args.base_url:
        sys.exit("scripted-multiturn.py: no server: set FIXBENCH_BASE_URL or pass --base-url {base_url}")
    url = args.base_url.rstrip("/") + "/chat/completions"

    history = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "%s. %sQuestion 1: %s" % (trial_tag(args), NOTES * args.notes, QUESTIONS[0])},
    ]
    failures = 0
    for turn in range(args.turns):
        if turn > 0:
            q = QUESTIONS[turn % len(QUESTIONS)]
            history.append({"role": "user", "content": "Question %d: %s" % (turn + 1, q)})
        body = {
            "model": args.model,
            "messages": history,
            "max_tokens": args.max_tokens,
            "temperature": 0,
            "seed": 1,
            "stream": False,
        }
        status, text, timings, error = post(url, body, args.timeout)
        line = {"turn": turn + 1, "status": status, "error": error}
        line.update({k: timings.get(k) for k in ("prompt_n", "cache_n", "prompt_ms", "predicted_n")})
        print(json.dumps(line), flush=True)
        if status != 200 or error:
            failures += 1
        history.append({"role": "assistant", "content": text})
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
