#!/usr/bin/env bash
# An agent that asks the server for a long answer and exits before it comes: its request is
# still running when it exits, and fixbench kills the curl that waits for it.
# usage: walk-away.sh BASE_URL (the proxy's, ending in /v1)
curl -s -o /dev/null "$1/chat/completions" -H 'content-type: application/json' \
  -d '{"messages":[{"role":"user","content":"Count from one to one thousand in words."}],"max_tokens":300,"ignore_eos":true}' &
sleep 1
