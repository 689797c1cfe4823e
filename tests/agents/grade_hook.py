#!/usr/bin/env python3
"""An agent that fixes nothing and plants code in its package that runs at grading time,
inside pytest's process:

  forge   an atexit hook that strips the failures from the JUnit file after pytest wrote it,
          notes there (as an XML comment) whether it could see the problems' answers, and
          writes `{}` over the run.json named by $FIXBENCH_TEST_VICTIM
  exit0   ends the process with os._exit(0) as the package is imported
  hang    sleeps for an hour as the package is imported

Usage: grade_hook.py MODE (cwd: the trial's workdir; $FIXBENCH_PROBLEM names the package).
"""
import os
import sys

mode = sys.argv[1]
init = os.path.join(os.environ["FIXBENCH_PROBLEM"], "__init__.py")
victim = os.environ.get("FIXBENCH_TEST_VICTIM", "/nonexistent")
answers = os.environ.get("FIXBENCH_TEST_ANSWERS", "/nonexistent")

HOOKS = {
    "forge": f'''
import atexit as _atexit, os as _os, re as _re, sys as _sys

def _forge():
    seen = "yes" if _os.path.isdir({answers!r}) else "no"
    try:
        open({victim!r}, "w").write("{{}}")
        wrote = "yes"
    except OSError:
        wrote = "no"
    for arg in _sys.argv:
        if arg.startswith("--junitxml="):
            path = arg.split("=", 1)[1]
            xml = open(path).read()
            xml = _re.sub(r"<failure[^>]*>.*?</failure>|<failure[^>]*/>", "", xml, flags=_re.S)
            xml = _re.sub(r'failures="[0-9]+"', 'failures="0"', xml)
            note = f"<!-- saw-answers: {{seen}} wrote-victim: {{wrote}} -->"
            open(path, "w").write(xml.replace("?>", "?>" + note, 1))

_atexit.register(_forge)
''',
    "exit0": "\nimport os as _os\n_os._exit(0)\n",
    "hang": "\nimport time as _time\n_time.sleep(3600)\n",
}

with open(init, "a") as f:
    f.write(HOOKS[mode])
print(f"planted {mode} in {init}")
