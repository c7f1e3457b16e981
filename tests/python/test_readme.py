"""The README's "From Python" example, run as written on a random gpt2-tiny checkpoint
(GPT-2's vocabulary, so the embedded GPT-2 tokenizer reads the prompts)."""
import os
import re

import mechlens
from conftest import SOURCE


def readme_example() -> str:
    text = open(os.path.join(SOURCE, "README.md"), encoding="utf-8").read()
    section = text.split("## From Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README's From Python section has no python block"
    return blocks[0]


def test_readme_python_example_runs(tmp_path, capsys):
    folder = tmp_path / "gpt2-tiny"
    mechlens.HookedTransformer.from_config("gpt2-tiny", seed=0).save(str(folder))
    code = readme_example()
    assert '"path/to/model"' in code
    exec(compile(code.replace('"path/to/model"', repr(str(folder))), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "logit diff" in out and "0_pre" in out
