"""`make install` (issue 16): into a fresh prefix, the two programs (outliers bench
finds outliers-bench next to it), a man page per program written by
swift-argument-parser's generate-manual plugin, and bash, zsh and fish completions.
Also: the README's apt list is the Makefile's.

Takes a release build and the plugin's first build (about two minutes on a fresh
clone; `make test` builds the release binary anyway).

Run:  .venv/bin/python -m pytest Tests/interop/test_install.py
"""

import re
import subprocess

from conftest import REPO


def test_make_install_puts_programs_manuals_and_completions_under_prefix(tmp_path):
    prefix = tmp_path / "prefix"
    result = subprocess.run(["make", "--no-print-directory", "install", f"PREFIX={prefix}"], cwd=REPO,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    outliers = prefix / "bin" / "outliers"
    version = subprocess.run([str(outliers), "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and version.stdout.strip() == "0.1.0", version
    bench = subprocess.run([str(outliers), "bench", "--detection", "--quick"], capture_output=True, text=True,
                           timeout=120)
    assert bench.returncode == 0 and "MAD (two medians)" in bench.stdout, bench.stderr

    manual = prefix / "share" / "man" / "man1" / "outliers.1"
    text = manual.read_text()
    assert ".Dt OUTLIERS 1" in text
    for command in ("serve", "backend", "gateway", "detect"):
        assert command in text, command
    rendered = subprocess.run(["man", "-l", str(manual)], capture_output=True, text=True, timeout=60,
                              env={"MANPAGER": "cat", "MANWIDTH": "100", "PATH": "/usr/bin:/bin"})
    assert rendered.returncode == 0 and "OUTLIERS" in rendered.stdout and "--http-port" in rendered.stdout, \
        rendered.stderr
    assert ".Dt \"OUTLIERS BENCH\" 1" in (prefix / "share" / "man" / "man1" / "outliers-bench.1").read_text()

    bash = prefix / "share" / "bash-completion" / "completions" / "outliers"
    assert subprocess.run(["bash", "-n", str(bash)], timeout=30).returncode == 0
    words = subprocess.run(["bash", "-c", f"source {bash}; COMP_WORDS=(outliers s); COMP_CWORD=1; "
                            "_outliers; printf '%s\\n' \"${COMPREPLY[@]}\""],
                           capture_output=True, text=True, timeout=30)
    assert "serve" in words.stdout.split(), (words.stdout, words.stderr)
    assert "_outliers" in (prefix / "share" / "zsh" / "site-functions" / "_outliers").read_text()
    assert "complete -c 'outliers'" in (prefix / "share" / "fish" / "vendor_completions.d" / "outliers.fish").read_text()


def test_the_readmes_apt_list_is_the_makefiles():
    makefile = (REPO / "Makefile").read_text()
    listed = re.search(r"APT_PACKAGES := ((?:.*\\\n)*.*)", makefile).group(1)
    apt = set(listed.replace("\\\n", " ").split())
    browser = set(re.search(r"BROWSER_PACKAGES := (.*)", makefile).group(1).split())
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    prose = re.sub(r"```.*?```", "", section, flags=re.S)
    named = set(re.findall(r"`([^`]+)`", prose))
    words = {word for group in named for word in group.split()}
    assert apt | browser <= words, sorted((apt | browser) - words)


def test_the_readmes_command_table_lists_every_flag():
    """The table is written from --help by scripts/readme-commands; --check fails when
    a flag was added or renamed without rewriting it."""
    from test_client_grpc import binary
    result = subprocess.run([str(REPO / "scripts" / "readme-commands"), "--check", binary()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    table = (REPO / "README.md").read_text().split("<!-- commands:", 1)[1].split("<!-- /commands -->", 1)[0]
    for flag in ("--http-port <http-port>", "--no-ui", "--access-log <access-log>", "--method <method>",
                 "--backend <backend>", "--detection"):
        assert flag in table, flag
