"""Every command and option the README's CLI section shows exists in the CLI."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from auth_service.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _cli_block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The CLI", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    # Join continued lines, drop comments.
    joined = block.replace("\\\n", " ")
    return [line.split("#", 1)[0].strip() for line in joined.splitlines() if line.strip()]


def _invocations(line: str) -> list[tuple[list[str], list[str]]]:
    """(command path, options) for each command a README line shows.

    ``users disable|enable --email E`` is two commands; ``backup list | backup verify ID``
    is two invocations on one line."""
    found = []
    for part in re.split(r" \| ", line):
        words = part.split()
        if words[:1] == ["auth-service"]:
            words = words[1:]
        path = []
        for word in words:
            if word.startswith("-") or word.startswith("[") or word.isupper():
                break
            path.append(word)
        options = re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", part)
        if not path:
            continue
        first, *rest = path
        if len(rest) == 1 and "|" in rest[0]:
            found += [([first, sub], options) for sub in rest[0].split("|")]
        else:
            found.append((path[:2] if len(path) > 1 and "|" not in path[1] else path[:1], options))
    return found


def test_every_command_and_option_in_the_readme_exists() -> None:
    runner = CliRunner()
    checked = 0
    for line in _cli_block():
        if not line.startswith("auth-service"):
            continue
        for path, options in _invocations(line):
            # Wide enough that rich never shortens a long option name with an ellipsis.
            result = runner.invoke(
                app, [*path, "--help"], terminal_width=200, env={"COLUMNS": "200"}
            )
            assert result.exit_code == 0, (line, path, result.output)
            for option in options:
                assert option in result.output, (line, path, option)
            checked += 1
    assert checked >= 20
