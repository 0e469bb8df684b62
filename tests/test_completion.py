"""Shell completion: commands and options (Typer's), channel names from the config and run ids
from its state store (ours), through the callbacks and through the protocol a shell speaks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.cli.completion import channel_names, push_run_ids, run_ids, source_names

ROOT = Path(__file__).resolve().parents[1]
AT = "2026-11-23T12:00:00+01:00"
#: The channels of config.example.yaml, in the file's order.
EXAMPLE_CHANNELS = [
    "webshop",
    "shopify",
    "webshop-api",
    "shopware",
    "magento",
    "pos",
    "pos-db",
    "medusa",
    "vendure",
    "google",
    "catalogue-print",
    "google-xml",
    "idealo",
    "catalogue-export",
]
OMNISYNC = Path(sys.executable).with_name("omnisync")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example config and data; the working directory, as a user's would be."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "config.example.yaml", tmp_path / "omnisync.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OMNISYNC_CONFIG", raising=False)
    return tmp_path


def _context(**params: object) -> typer.Context:
    """A context as the completion of a command sees it: the parameters parsed so far."""
    ctx = typer.Context(get_command(app))
    ctx.params = dict(params)
    return ctx


def _names(found: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in found]


def _run(*args: str) -> None:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output


def _complete(words: str, **env: str) -> list[str]:
    """What bash gets for ``words`` (the cursor at their end), through Click's protocol."""
    result = CliRunner().invoke(
        app,
        [],
        prog_name="omnisync",
        env={
            "_OMNISYNC_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split(" ")) - 1),
            **env,
        },
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout.split()


# ---------------------------------------------------------------- the callbacks


def test_channel_names_come_from_the_config_given_with_c(project: Path) -> None:
    config = project / "omnisync.yaml"
    found = channel_names(_context(config=config), "")
    assert _names(found) == EXAMPLE_CHANNELS
    assert ("shopify", "connector shopify") in found
    assert _names(channel_names(_context(config=config), "webs")) == ["webshop", "webshop-api"]


def test_channel_names_fall_back_to_omnisync_config_then_omnisync_yaml(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _names(channel_names(_context(), "pos")) == ["pos", "pos-db"]  # ./omnisync.yaml
    other = project / "other.yaml"
    other.write_text("channels: {outlet: {connector: csv}}\n", encoding="utf-8")
    monkeypatch.setenv("OMNISYNC_CONFIG", str(other))
    assert _names(channel_names(_context(), "")) == ["outlet"]


def test_a_config_with_mistakes_still_completes_its_channels(project: Path) -> None:
    config = project / "omnisync.yaml"
    config.write_text(
        "canonical: {connector: nosuch}\nchannels:\n  shop: {connector: csv, optoins: {}}\n"
        '  feed: {connector: tsv, options: {page_size: "${UNSET_VARIABLE}"}}\n',
        encoding="utf-8",
    )
    assert _names(channel_names(_context(config=config), "")) == ["shop", "feed"]


@pytest.mark.parametrize(
    "text",
    [
        None,  # no file
        "channels: [shop, feed\n",  # not YAML
        "- a list\n",  # not a mapping
        "channels: shop\n",  # channels not a mapping
        "\xff\xfe garbage",  # not UTF-8
    ],
)
def test_a_missing_or_broken_config_completes_nothing_and_says_nothing(
    project: Path, text: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "broken.yaml"
    if text is not None:
        config.write_bytes(text.encode("latin-1"))
    assert channel_names(_context(config=config), "") == []
    assert source_names(_context(config=config), "") == []
    assert run_ids(_context(config=config), "") == []
    assert capsys.readouterr() == ("", "")


def test_source_names_offer_canonical_first(project: Path) -> None:
    assert _names(source_names(_context(), ""))[:3] == ["canonical", "webshop", "shopify"]
    assert _names(source_names(_context(), "ca")) == [
        "canonical",
        "catalogue-print",
        "catalogue-export",
    ]


def test_run_ids_are_read_from_the_configs_store_newest_first(project: Path) -> None:
    assert run_ids(_context(), "") == []  # nothing recorded yet ...
    assert not (project / ".omnisync").exists()  # ... and a Tab created no store
    _run("check", "--at", AT, "-f", "json", "-o", "report.json")
    _run("check", "--at", AT, "-f", "json", "-o", "report.json")
    result = CliRunner().invoke(app, ["runs"], catch_exceptions=False, env={"COLUMNS": "200"})
    recorded = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ 2")]
    assert len(recorded) == 2
    found = run_ids(_context(), "")
    assert _names(found) == ["last", *recorded]  # `runs` lists newest first too
    assert found[1][1].startswith("check ")
    assert _names(run_ids(_context(), recorded[1][:-2])) == [recorded[1]]
    assert push_run_ids(_context(), "") == []  # no push yet


def test_run_ids_of_another_store(project: Path, tmp_path: Path) -> None:
    _run("check", "--at", AT, "-f", "json", "-o", "report.json", "--state", "elsewhere.db")
    assert run_ids(_context(), "") == []  # the config's own store is empty
    assert len(run_ids(_context(state="elsewhere.db"), "")) == 2  # last + the run
    settings = (project / "omnisync.yaml").read_text(encoding="utf-8")
    (project / "moved.yaml").write_text(
        settings.replace("state: .omnisync/state.db", "state: elsewhere.db"), encoding="utf-8"
    )
    assert len(run_ids(_context(config=project / "moved.yaml"), "")) == 2


def test_push_run_ids_offer_push_runs_only(project: Path) -> None:
    _run("check", "--at", AT, "-f", "json", "-o", "report.json")
    result = CliRunner().invoke(app, ["sync", "--at", AT], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    push = result.stdout.split()[2].rstrip(":")
    assert _names(push_run_ids(_context(), "")) == ["last", push]
    # sync records the check it pushes from as a run of its own
    kinds = [help_.split()[0] for _, help_ in run_ids(_context(), "")[1:]]
    assert kinds == ["push", "check", "check"]


def test_a_store_that_is_no_database_completes_nothing(project: Path) -> None:
    (project / ".omnisync").mkdir()
    (project / ".omnisync" / "state.db").write_text("not a database", encoding="utf-8")
    assert run_ids(_context(), "") == []


# ---------------------------------------------------------------- the shell protocol


def test_bash_completes_commands_and_options(project: Path) -> None:
    assert _complete("omnisync ch") == ["check"]
    assert _complete("omnisync s") == ["schema", "show", "sync"]
    assert "--channel" in _complete("omnisync check --ch")
    assert "--install-completion" in _complete("omnisync --")


def test_bash_completes_channels_of_the_config_named_by_c(project: Path) -> None:
    other = project / "other.yaml"
    other.write_text("channels: {outlet: {connector: csv}, web: {connector: csv}}\n")
    for command in ("check", "plan", "sync", "publish"):
        assert _complete(f"omnisync {command} -C we") == ["webshop", "webshop-api"]
        assert _complete(f"omnisync {command} -c other.yaml --channel ") == ["outlet", "web"]
    assert _complete("omnisync check -C x -c missing.yaml -C ") == []
    assert _complete("omnisync outbox -s ca") == [
        "canonical",
        "catalogue-print",
        "catalogue-export",
    ]


def test_bash_completes_run_ids(project: Path) -> None:
    _run("check", "--at", AT, "-f", "json", "-o", "report.json")
    found = _complete("omnisync show ")
    assert found[0] == "last"
    assert len(found) == 2
    assert found[1].startswith("2")
    assert _complete("omnisync undo ") == []  # no push runs
    assert _complete("omnisync apply --resume ") == []


def test_zsh_and_fish_get_the_channels_with_their_connector(project: Path) -> None:
    env = {**os.environ, "_TYPER_COMPLETE_ARGS": "omnisync check -C pos"}
    zsh = subprocess.run(
        [str(OMNISYNC)],
        env={**env, "_OMNISYNC_COMPLETE": "complete_zsh"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"pos":"connector csv"' in zsh.stdout
    assert '"pos-db":"connector sql"' in zsh.stdout
    fish = subprocess.run(
        [str(OMNISYNC)],
        env={
            **env,
            "_OMNISYNC_COMPLETE": "complete_fish",
            "_TYPER_COMPLETE_FISH_ACTION": "get-args",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert fish.stdout.splitlines() == ["pos\tconnector csv", "pos-db\tconnector sql"]
    assert zsh.stderr == fish.stderr == ""


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o default -F _omnisync_completion omnisync"),
        ("zsh", "compdef _omnisync_completion omnisync"),
        ("fish", "complete --command omnisync"),
    ],
)
def test_each_shell_gets_its_completion_script(
    shell: str, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--show-completion` prints the script of the shell it runs in (detected by Typer).
    monkeypatch.setattr("typer.completion._get_shell_name", lambda: shell)
    result = CliRunner().invoke(app, ["--show-completion"], prog_name="omnisync")
    assert result.exit_code == 0
    assert marker in result.stdout
    assert "_OMNISYNC_COMPLETE=complete_" in result.stdout
    # ... and Click's protocol prints any shell's, as the README says.
    source = subprocess.run(
        [str(OMNISYNC)],
        env={**os.environ, "_OMNISYNC_COMPLETE": f"source_{shell}"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert marker in source.stdout


def test_help_lists_the_completion_options() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "160"})
    assert "--install-completion" in result.stdout
    assert "--show-completion" in result.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_itself_completes_through_the_installed_script(project: Path) -> None:
    """The script `--show-completion` prints, sourced in a real bash, as a Tab runs it."""
    script = """
        source <(_OMNISYNC_COMPLETE=source_bash omnisync)
        COMP_WORDS=(omnisync sync -C pos); COMP_CWORD=3
        _omnisync_completion omnisync pos sync
        printf '%s\\n' "${COMPREPLY[@]}"
    """
    path = f"{OMNISYNC.parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == ["pos", "pos-db"]
    assert done.stderr == ""
