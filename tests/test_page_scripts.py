"""The Prompt SAM page's own scripts: their pure functions under Node's test runner, and the prompt
the page builds from a click list held to the one the server builds (`Prompts.to_sam`) on shared
cases, by the rules the server sends (`seg.sam.rules.rules`)."""

import json
import subprocess

from conftest import ROOT
from seg.sam.prompts import Prompts
from seg.sam.rules import rules


def test_the_pure_functions_under_nodes_test_runner(node):
    done = subprocess.run([node, "--test", str(ROOT / "tests" / "js")], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "# pass 6" in done.stdout and "# fail 0" in done.stdout, done.stdout[-1000:]


CASES = [
    [],
    [[10, 20, "positive"]],
    [[10, 20, "positive"], [30.5, 40, "negative"]],
    [[5, 5, "box"]],
    [[90, 80, "box"], [50, 60, "box"]],
    [[90, 80, "box"], [50, 60, "box"], [1, 2, "positive"]],
    [[0, 0, "box"], [10, 10, "box"], [50, 50, "box"]],
    [[0, 0, "box"], [10, 10, "box"], [50, 50, "box"], [40, 70, "box"], [3, 4, "negative"]],
    [[7, 7, "negative"], [8, 9, "box"]],
]


def test_the_page_builds_the_prompt_the_server_builds(node):
    script = ("const {promptOf} = require('./ui/tabs/sam/prompt.js');"
              "const {cases, rules} = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "process.stdout.write(JSON.stringify(cases.map((c) => promptOf(c, null, null, rules))));")
    sent = json.dumps({"cases": CASES, "rules": rules(clicks_per_object=20)})
    done = subprocess.run([node, "-e", script], input=sent, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    page = json.loads(done.stdout)
    for clicks, theirs in zip(CASES, page, strict=True):
        ours = Prompts(tuple(tuple(c) for c in clicks)).to_sam()
        if ours["points"] is None and ours["box"] is None:
            assert theirs is None, (clicks, theirs)
            continue
        points = [[x, y, label] for (x, y), label in zip(ours["points"] or [], ours["labels"] or [])]
        box = list(ours["box"]) if ours["box"] is not None else None
        assert theirs == {"points": points, "box": box}, clicks
