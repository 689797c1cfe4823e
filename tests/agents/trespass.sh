#!/usr/bin/env bash
# An agent that tries to write outside its trial: each argument is a file it tries to create
# or overwrite (in the results store, the user's home, /etc). It reports every attempt.
for target in "$@"; do
  if (mkdir -p "$(dirname "$target")" && printf 'trespassed\n' > "$target") 2>/dev/null; then
    echo "wrote $target"
  else
    echo "refused $target"
  fi
done
