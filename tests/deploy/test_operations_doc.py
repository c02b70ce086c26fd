"""Every command docs/operations.md tells an operator to run exists, with the options shown."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from services.cli import build_parser
from tests.deploy.manifests import COMPOSE_FILE, ROOT, load_yaml

DOC = (ROOT / "docs" / "operations.md").read_text("utf-8")
# Placeholders the document uses, and a value of the right kind for each.
PLACEHOLDERS = {"VERSION": "v0001"}


def code_snippets() -> list[str]:
    """Lines of code blocks and inline code spans (which may wrap), as one-line strings."""
    blocks = re.findall(r"^```\w*\n(.*?)^```", DOC, re.S | re.M)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    prose = re.sub(r"^```\w*\n.*?^```", "", DOC, flags=re.S | re.M)
    spans = re.findall(r"`([^`]+)`", prose)
    return lines + [" ".join(span.split()) for span in spans]


def doc_commands(program: str) -> list[list[str]]:
    """Each `program ...` command line, alone or after `exec <target>` or `--`."""
    found = []
    for snippet in code_snippets():
        match = re.search(rf"(?:^|exec \S+ |-- ){re.escape(program)}(?: (.*))?$", snippet)
        if match:
            line = (match.group(1) or "").split("#")[0]
            found.append(shlex.split(line))
    assert found, f"no `{program}` commands in the document"
    return found


def sub_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return actions[0].choices if actions else {}


def subcommand_path(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    """Walks the sub-commands named by `words`; fails on one that does not exist."""
    walked: list[str] = []
    for word in words:
        choices = sub_commands(parser)
        if not choices or word.startswith("-") or word in PLACEHOLDERS:
            break
        assert word in choices, f"`touchpoint {' '.join([*walked, word])}` is unknown"
        parser = choices[word]
        walked.append(word)
    return parser


# A bare `touchpoint` names the program, not a command line.
TOUCHPOINT_COMMANDS = sorted({tuple(words) for words in doc_commands("touchpoint") if words})


@pytest.mark.parametrize("words", TOUCHPOINT_COMMANDS, ids=" ".join)
def test_touchpoint_commands_exist_with_their_options(words: tuple[str, ...]) -> None:
    parser = build_parser()
    last = subcommand_path(parser, list(words))
    if "--help" in words or sub_commands(last):
        return  # a help request, or a command group named in prose
    argv = [PLACEHOLDERS.get(word, word) for word in words]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"`touchpoint {' '.join(words)}` is refused by the parser ({exc})")
    assert getattr(args, "handler", None) is not None


def test_the_procedures_are_all_covered() -> None:
    lines = {" ".join(words) for words in TOUCHPOINT_COMMANDS}
    for command in ("dlq list", "dlq replay --dry-run", "dlq replay", "models rollback",
                    "replay --help"):
        assert command in lines, command
    assert "DELETE http://localhost:8002/v1/profiles/" in DOC and "profiles:erase" in DOC


def test_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"\bmake (\w+)", DOC)):
        assert re.search(rf"^{target}:", makefile, re.M), f"make {target}"


def test_compose_services_named_in_commands_exist() -> None:
    services = load_yaml(COMPOSE_FILE)["services"]
    for name in re.findall(r"docker compose exec (\S+)", DOC):
        assert name in services, name
    for name in re.findall(r"deploy/(\w+)\b(?! )", DOC):
        assert (ROOT / "deploy" / name).exists() or name in {"ingestion", "profile",
                                                             "recommender"}, name
    for name in re.findall(r"deployment/(\w+)", DOC):
        assert name in {"ingestion", "profile", "recommender"}, name
