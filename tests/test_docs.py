"""Documentation generated from the code stays in step with it."""
from pathlib import Path

from click.testing import CliRunner

from handlers.errors import CATALOGUE
from webhooks import config
from webhooks.cli import main
from webhooks.docs import errors_markdown
from webhooks.errors import HTTP_ERRORS

ROOT = Path(__file__).resolve().parents[1]


def test_errors_md_is_up_to_date():
    path = ROOT / "docs" / "errors.md"
    assert path.exists(), "docs/errors.md is missing: run `xinma docs errors`"
    assert path.read_text(encoding="utf-8") == errors_markdown(), (
        "docs/errors.md is out of date with handlers/errors.py or webhooks/errors.py: run `xinma docs errors`")


def test_every_code_is_documented_with_its_status_and_message():
    text = errors_markdown()
    assert "| `bad_check_digit` | 422 | 证件号码校验位错误 |" in text
    assert "| `malformed_json` | 400 |" in text
    for code, (_kind, message) in CATALOGUE.items():
        assert f"| `{code}` |" in text and message.replace("|", "\\|") in text
    for code, message in HTTP_ERRORS.values():
        assert f"| `{code}` |" in text and message in text


def test_docs_errors_command_writes_and_checks(tmp_path):
    out = tmp_path / "docs" / "errors.md"
    runner = CliRunner()
    stale = runner.invoke(main, ["docs", "errors", "--check", "-o", str(out)])
    assert stale.exit_code == 1 and "xinma docs errors" in stale.output
    written = runner.invoke(main, ["docs", "errors", "-o", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text(encoding="utf-8") == errors_markdown()
    assert runner.invoke(main, ["docs", "errors", "--check", "-o", str(out)]).exit_code == 0


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [config.PREFIX + name for name in config.DEFAULTS if f"`{config.PREFIX}{name}`" not in readme]
    assert not missing, f"README.md's configuration table lacks {missing}"
