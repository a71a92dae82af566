"""The README's code runs as written: its python blocks and the `jaxres ...` lines of its shell
blocks, in the README's order, in one fresh folder (so `runs/demo` is the one its training made).

A block that cannot run here (it downloads weights, needs a dataset in /data or a cluster) has an
HTML comment `<!-- not run: REASON -->` just before it, naming a twin that runs; there are few.
`jaxres train` lines run with `--config.num_train_steps=2 --config.eval_steps=1` appended (their
figures are checked by tests/test_demo.py and tests/test_sr_demo.py), and every command the runs
print afterwards (`tensorboard --logdir`, `jaxres evaluate`, `jaxres upscale`) is run too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from jaxres import cli

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
NOT_RUN = re.compile(r"^\s*<!-- not run: (.+) -->\s*$")
SHORT_TRAINING = [
  "--config.num_train_steps=2",
  "--config.eval_every_steps=0",
  "--config.eval_steps=1",
  "--config.checkpoint.async_save=False",
  "--config.progress_bar=False",
]


def readme_blocks(path: str = README) -> list[dict]:
  """The fenced code blocks of `path`: `{"lang", "code", "line", "not_run"}` each, in order.

  `not_run` is the reason of a `<!-- not run: REASON -->` line just before the fence, else "".
  """
  blocks, lines = [], open(path).read().splitlines()
  i = 0
  while i < len(lines):
    fence = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
    if not fence:
      i += 1
      continue
    indent, start = len(fence.group(1)), i
    body = []
    i += 1
    while not lines[i].strip().startswith("```"):
      body.append(lines[i][indent:])
      i += 1
    previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
    reason = NOT_RUN.match(previous)
    blocks.append(
      dict(
        lang=fence.group(2),
        code="\n".join(body) + "\n",
        line=start + 1,
        not_run=reason.group(1) if reason else "",
      )
    )
    i += 1
  return blocks


def jaxres_lines(code: str) -> list[str]:
  """The lines of a shell block that run jaxres (continuations joined), with the shell variables
  they use (`name=$(jaxres ...)`); comments dropped."""
  joined = re.sub(r"\\\n\s*", " ", code)
  kept = []
  for line in joined.splitlines():
    line = re.sub(r"\s+#.*$", "", line).strip()
    if line.startswith("jaxres ") or re.match(r"^\w+=\$\(jaxres ", line):
      kept.append(line)
  return kept


def test_every_block_runs_or_names_why_not_and_its_twin():
  blocks = readme_blocks()
  python = [b for b in blocks if b["lang"] == "python"]
  shell = [b for b in blocks if b["lang"] == "bash" and jaxres_lines(b["code"])]
  skipped = [b for b in blocks if b["not_run"]]
  assert len(python) >= 8 and len(shell) >= 6
  assert len(skipped) <= 10, [b["line"] for b in skipped]  # few, each with its reason and twin
  for block in skipped:
    assert "twin" in block["not_run"] or "offline" in block["not_run"], block
  for block in blocks:  # /data/... appears only in blocks marked not run, or as a comment
    if not block["not_run"]:
      code = "\n".join(re.sub(r"#.*$", "", line) for line in block["code"].splitlines())
      paths = re.findall(r"/data/\S*", code)
      assert not paths or block["lang"] == "python" and "load_config" in code, (
        block["line"],
        paths,
      )


def test_every_jaxres_command_the_readme_runs_exists():
  for block in readme_blocks():
    for line in jaxres_lines(block["code"]) if block["lang"] == "bash" else []:
      command = line.split("$(jaxres ", 1)[-1].split()[0] if "=$(" in line else line.split()[1]
      assert command in cli.COMMANDS, (block["line"], line)


def test_printed_commands_are_installed():
  # `jaxres train` ends with `tensorboard --logdir ...`: the video extra installs it.
  bin_dir = os.path.dirname(sys.executable)
  assert os.path.exists(os.path.join(bin_dir, "tensorboard"))
  from tensorboard.plugins.hparams import api  # noqa: F401  the HParams tab is written with it


def _run(args, cwd, **kwargs):
  env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
  done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)
  assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
  return done.stdout


def _shell_script(code: str) -> str:
  lines = []
  for line in jaxres_lines(code):
    if line.startswith("jaxres train"):
      line = " ".join([line, *SHORT_TRAINING])
    lines.append(line)
  return "set -euo pipefail\n" + "\n".join(lines) + "\n"


def _check_printed_commands(output: str, cwd: str) -> int:
  """Runs what a `jaxres` command printed for the user to run next; returns how many."""
  ran = 0
  for line in output.splitlines():
    board = re.search(r"tensorboard --logdir (\S+)", line)
    if board:
      inspected = _run(["tensorboard", "--inspect", "--logdir", board.group(1)], cwd)
      assert "_hparams_" in inspected or "profile" in board.group(1), inspected[-2000:]
      ran += 1
    follow = re.match(r"^(whole held-out frames|upscale a video): (jaxres .+)$", line)
    if follow:
      _run(["bash", "-c", follow.group(2)], cwd)
      ran += 1
  return ran


def readme_chains(blocks=None) -> dict[str, list[dict]]:
  """The runnable blocks grouped into chains that run apart (in parallel under xdist), in README
  order within each: the SR blocks ("sr"); the blocks that train the demo or use its run
  (`runs/demo`, `exported/demo`: "demo", which trains it once, as a reader going down the README
  does); any other block that trains; and every other block on its own."""
  chains = {}
  for block in readme_blocks() if blocks is None else blocks:
    if block["not_run"] or not _runs(block):
      continue
    code = block["code"]
    lines = jaxres_lines(code) if block["lang"] == "bash" else []
    if "sr_edsr" in code:
      key = "sr"
    elif re.search(r"\b(runs|exported)/demo\b(?!_)", code) or re.search(
      r"^jaxres train( |$)(?!.*--workdir)", "\n".join(lines), re.M
    ):
      key = "demo"
    elif any(line.startswith("jaxres train") for line in lines):
      key = f"train@{block['line']}"
    else:
      key = f"{block['lang']}@{block['line']}"
    chains.setdefault(key, []).append(block)
  return chains


def _runs(block) -> bool:
  return block["lang"] == "python" or block["lang"] == "bash" and bool(jaxres_lines(block["code"]))


def test_readme_chains_hold_every_runnable_block_once():
  blocks = readme_blocks()
  chains = readme_chains(blocks)
  grouped = [b["line"] for chain in chains.values() for b in chain]
  assert sorted(grouped) == [b["line"] for b in blocks if not b["not_run"] and _runs(b)]
  assert "demo" in chains and "sr" in chains and len(chains) >= 6
  first = jaxres_lines(chains["demo"][0]["code"])[0]
  assert first == "jaxres train", first  # the chain's run/demo is the README's own
  assert any(line.startswith("jaxres train") for line in jaxres_lines(chains["sr"][0]["code"]))


@pytest.mark.slow  # trains the README's configs for 2 steps each, converts, exports, upscales
@pytest.mark.parametrize("chain", sorted(readme_chains()))
def test_readme_blocks_run_as_written(chain, tmp_path):
  pytest.importorskip("torch")  # the conversion blocks need the torch extra
  printed = 0
  for block in readme_chains()[chain]:
    if block["lang"] == "python":
      _run([sys.executable, "-c", block["code"]], str(tmp_path))
    else:
      out = _run(["bash", "-c", _shell_script(block["code"])], str(tmp_path))
      printed += _check_printed_commands(out, str(tmp_path))
  if chain == "sr":
    assert printed >= 3  # the SR run's tensorboard, evaluate and upscale lines
  elif chain == "demo" or chain.startswith("train@"):
    assert printed >= 1  # each run's tensorboard line


def test_cpu_torch_line_fits_the_pins():
  # PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/setup.sh video,torch (README)
  # resolves the pins to PyTorch's X+cpu wheels only if the pins leave the local version open.
  from packaging.specifiers import SpecifierSet

  constraints = os.path.join(os.path.dirname(README), "requirements", "constraints.txt")
  pins = dict(
    re.match(r"^([\w-]+)==(\S+)", line).groups()
    for line in open(constraints)
    if re.match(r"^(torch|torchvision)==", line)
  )
  assert set(pins) == {"torch", "torchvision"}
  for version in pins.values():
    assert SpecifierSet(f"=={version}").contains(f"{version}+cpu"), version
  assert "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/setup.sh" in open(
    README
  ).read().replace("\n  ", " ")
