# fixbench's grading entry point, run as `python -I -B fixbench_grade.py FD ARGS...`: pytest with one
# extra plugin that writes every test report, as it happens, to file descriptor FD, a pipe whose
# other end fixbench holds. What arrived there cannot be taken back by code that runs later (an
# atexit hook rewriting the JUnit file), and fixbench checks it against the JUnit file and
# pytest's own summary line.
import json
import os
import re
import sys

import pytest


def junit_name(nodeid):
    # The name pytest's junitxml gives a node (mangle_test_address), as fixbench reads it back:
    # "classname::name", or "name" alone for a module (a collection error).
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    if len(names) == 1:
        return names[0]
    return ".".join(names[:-1]) + "::" + names[-1]


class FixbenchChannel:
    def __init__(self, fd):
        self.out = os.fdopen(fd, "w", buffering=1, encoding="utf-8", closefd=True)

    def send(self, **msg):
        self.out.write(json.dumps(msg) + "\n")
        self.out.flush()

    def pytest_runtest_logreport(self, report):
        self.send(t="report", name=junit_name(report.nodeid), when=report.when,
                  outcome=report.outcome, xfail=hasattr(report, "wasxfail"))

    def pytest_collectreport(self, report):
        if report.outcome == "failed":
            self.send(t="report", name=junit_name(report.nodeid), when="collect",
                      outcome="failed", xfail=False)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        self.send(t="end", exitstatus=int(exitstatus))
        self.out.close()


fd = int(sys.argv[1])
sys.exit(pytest.main(sys.argv[2:], plugins=[FixbenchChannel(fd)]))
