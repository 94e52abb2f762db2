"""Every command documents itself; --version and -h work."""

import pytest

from advbench import __version__
from advbench.cli import app


def _commands():
    return [c.name or c.callback.__name__ for c in app.registered_commands]


def test_top_level_help_lists_the_four_commands(runner):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("train", "harden", "attack", "report"):
        assert cmd in result.output


@pytest.mark.parametrize("cmd", _commands())
def test_every_command_has_help_text(runner, cmd):
    command = next(c for c in app.registered_commands if (c.name or c.callback.__name__) == cmd)
    assert (command.callback.__doc__ or "").strip(), f"{cmd} has no docstring"
    result = runner.invoke(app, [cmd, "-h"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_every_option_has_help(runner):
    import typer.main

    click_app = typer.main.get_command(app)
    for name, cmd in click_app.commands.items():
        for param in cmd.params:
            if getattr(param, "help", None) is None and param.name not in ("help",):
                raise AssertionError(f"{name} --{param.name} has no help text")


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_texts_survive_rich_markup():
    """Typer renders help as rich markup, which drops anything that reads as a tag: every
    "[default: ...]" hint and the `.[browse]` of an install line vanished from -h. Each
    help text must come out of the markup whole (a literal bracket written as `\\[`)."""
    import typer.main
    from rich.text import Text

    click_app = typer.main.get_command(app)
    texts = [(name, "", cmd.help or "") for name, cmd in click_app.commands.items()]
    texts += [(name, p.name, getattr(p, "help", None) or "")
              for name, cmd in click_app.commands.items() for p in cmd.params]  # fmt: skip
    assert any("\\[default:" in text for _, _, text in texts)  # the escape is what keeps them
    for name, param, text in texts:
        assert Text.from_markup(text).plain == text.replace("\\[", "["), (name, param, text)


def test_a_default_hint_shows_in_help(runner):
    res = runner.invoke(app, ["reproduce", "-h"], env={"COLUMNS": "200"})
    text = " ".join(res.output.replace("│", " ").split())
    assert "[default: PAPER/ beside the database at the cpu scale" in text
    assert "so a smoke run never overwrites a reference page]" in text
    res = runner.invoke(app, ["browse", "-h"], env={"COLUMNS": "200"})
    assert "pip install -e '.[browse]'" in " ".join(res.output.split())
