"""`make test` first checks the programs the tests call (tools/render/systemdeps.py): all
present, nothing is installed; missing as root on Debian, apt-get installs them; missing
elsewhere, it stops with each missing program and the command that installs it.

No test changes this machine: each describes a machine by hand (its PATH, root or not,
its kind), with a temporary PATH of fake programs; the fake apt-get and dpkg-query only
write and read files in the test's folder.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.render import systemdeps
from tools.render.systemdeps import (
    TOOLS,
    Machine,
    advice,
    ensure,
    listed_packages,
    system_kind,
)

REPO = Path(__file__).resolve().parents[1]
PROGRAMS = [tool.names[0] for tool in TOOLS]


def fake(bin_dir: Path, name: str, body: str = "") -> Path:
    """An executable Python script ``bin_dir/name`` running ``body``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / name
    script.write_text(f"#!{sys.executable}\nimport json, sys\nfrom pathlib import Path\n"
                      f"{body}\n", encoding="utf-8")
    script.chmod(0o755)
    return script


def fake_dpkg(bin_dir: Path, installed: set[str]) -> Path:
    """dpkg-query answering from ``bin_dir/../installed.json``."""
    state = bin_dir.parent / "installed.json"
    state.write_text(json.dumps(sorted(installed)), encoding="utf-8")
    fake(bin_dir, "dpkg-query", f"""
installed = json.loads(Path({str(state)!r}).read_text())
for name in sys.argv[3:]:
    if name in installed:
        print(name + "\\tinstall ok installed")
sys.exit(0 if all(name in installed for name in sys.argv[3:]) else 1)""")
    return state


def fake_apt(bin_dir: Path, status: int = 0) -> Path:
    """apt-get that logs its arguments; ``install`` marks the packages installed (for
    the fake dpkg-query) and puts their programs on ``bin_dir``, as the real one would."""
    log = bin_dir.parent / "apt.log"
    programs = {tool.debian: list(tool.names[:1]) for tool in TOOLS}
    fake(bin_dir, "apt-get", f"""
with open({str(log)!r}, "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
if {status}:
    sys.exit({status})
if sys.argv[1] == "install":
    state = Path({str(bin_dir.parent / "installed.json")!r})
    names = [a for a in sys.argv[2:] if not a.startswith("-")]
    if state.exists():
        state.write_text(json.dumps(json.loads(state.read_text()) + names))
    for name in names:
        for program in {programs!r}.get(name, []):
            script = Path({str(bin_dir)!r}) / program
            script.write_text("#!/bin/true\\n")
            script.chmod(0o755)""")
    return log


def apt_calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def all_tools(bin_dir: Path) -> None:
    for tool in TOOLS:
        fake(bin_dir, tool.names[-1])  # chromium-browser: the alternative name will do


def test_missing_tools_stop_with_sudo_command_and_nothing_installed(tmp_path):
    bin_dir = tmp_path / "bin"
    log = fake_apt(bin_dir)
    machine = Machine(str(bin_dir), root=False, system="debian")
    packages = listed_packages()
    outcome = ensure(machine, packages, install=True)
    assert not outcome.report.ok and outcome.apt_status is None
    assert apt_calls(log) == []  # not root: nothing installed
    assert [tool.names[0] for tool in outcome.report.tools] == PROGRAMS
    text = "\n".join(advice(machine, outcome, packages))
    for line, program in zip(text.splitlines()[1:], PROGRAMS, strict=False):
        assert line.strip().startswith(program), (line, program)
    assert "chromium or chromium-browser" in text
    assert "install them once as root: sudo make test-deps" in text
    # without dpkg-query the whole of both lists is the command's answer
    assert "sudo apt-get install --no-install-recommends " + " ".join(packages) in text


def test_no_apt_get_names_the_packages_and_installs_nothing(tmp_path):
    bin_dir = tmp_path / "bin"
    fake(bin_dir, "xelatex")
    machine = Machine(str(bin_dir), root=True, system="debian")
    assert not machine.can_install
    outcome = ensure(machine, listed_packages(), install=True)
    assert outcome.apt_status is None
    names = [tool.names[0] for tool in outcome.report.tools]
    assert "xelatex" not in names and names == PROGRAMS[1:]
    text = "\n".join(advice(machine, outcome, listed_packages()))
    assert "no apt-get on PATH" in text and "poppler-utils" in text and "chromium" in text


@pytest.mark.parametrize(("system", "commands"), [
    ("fedora", ["sudo dnf install texlive-xetex latexmk texlive-xindy librsvg2-tools "
                "poppler-utils chromium"]),
    ("macos", ["brew install --cask mactex-no-gui", "brew install librsvg",
               "brew install poppler", "brew install --cask chromium"]),
    ("other", ["TeX Live (xelatex, latexmk, xindy), librsvg (rsvg-convert), poppler "
               "(pdftotext, pdfinfo), Chromium"]),
])
def test_other_systems_get_their_install_commands(tmp_path, system, commands):
    bin_dir = tmp_path / "bin"
    log = fake_apt(bin_dir)  # even an apt-get on PATH is not used off Debian
    machine = Machine(str(bin_dir), root=True, system=system)
    outcome = ensure(machine, listed_packages(), install=True)
    assert apt_calls(log) == [] and len(outcome.report.tools) == len(TOOLS)
    text = "\n".join(advice(machine, outcome, listed_packages()))
    for command in commands:
        assert command in text
    assert "sudo make test-deps" not in text and "apt-get" not in text


def test_command_fails_before_running_anything_when_programs_are_missing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run([sys.executable, "-m", "tools", "test-deps", "--install"],
                            cwd=REPO, env={"PATH": str(empty)}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    for tool in TOOLS:
        assert f"{tool.label}: for " in result.stderr
    assert "no test was run" in result.stderr
    assert re.search(r"install (them|the Debian packages)", result.stderr)  # any platform


def test_present_tools_pass_without_installing(tmp_path):
    bin_dir = tmp_path / "bin"
    all_tools(bin_dir)
    log = fake_apt(bin_dir)
    fake_dpkg(bin_dir, set(listed_packages()))
    machine = Machine(str(bin_dir), root=True, system="debian")
    outcome = ensure(machine, listed_packages(), install=True)
    assert outcome.report.ok and outcome.report.dpkg and outcome.apt_status is None
    result = subprocess.run([sys.executable, "-m", "tools", "test-deps", "--install"],
                            cwd=REPO, env={"PATH": str(bin_dir)}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "are present" in result.stderr
    assert apt_calls(log) == []


def test_root_on_debian_installs_only_what_is_missing(tmp_path):
    bin_dir = tmp_path / "bin"
    for tool in TOOLS:
        if tool.debian != "chromium":
            fake(bin_dir, tool.names[0])
    log = fake_apt(bin_dir)
    fake_dpkg(bin_dir, set(listed_packages()) - {"chromium", "fonts-freefont-otf"})
    machine = Machine(str(bin_dir), root=True, system="debian")
    before = ensure(machine, listed_packages(), install=False)
    assert [tool.label for tool in before.report.tools] == ["chromium or chromium-browser"]
    assert before.report.packages == ("fonts-freefont-otf", "chromium")  # no PATH shows fonts
    assert apt_calls(log) == []
    outcome = ensure(machine, listed_packages(), install=True)
    assert outcome.report.ok and outcome.apt_status == 0
    assert apt_calls(log) == [
        ["update", "-q"],
        ["install", "-y", "-q", "--no-install-recommends", "fonts-freefont-otf", "chromium"],
    ]


def test_failed_apt_get_is_reported(tmp_path):
    bin_dir = tmp_path / "bin"
    log = fake_apt(bin_dir, status=100)
    machine = Machine(str(bin_dir), root=True, system="debian")
    outcome = ensure(machine, listed_packages(), install=True)
    assert outcome.apt_status == 100 and not outcome.report.ok
    assert apt_calls(log) == [["update", "-q"]]  # stopped at the first failure
    text = "\n".join(advice(machine, outcome, listed_packages()))
    assert "apt-get failed (exit status 100" in text
    assert "install them once: make test-deps" in text  # root: no sudo


def test_every_program_the_tests_call_is_checked_and_listed():
    """The programs of tests/test_pdf.py and tests/browser.py are in TOOLS, and each
    tool's Debian package is in requirements/apt-pdf.txt or apt-test.txt."""
    called = set(re.findall(r'run\(\["([\w-]+)"', (REPO / "tests" / "test_pdf.py")
                            .read_text(encoding="utf-8")))
    called |= set(re.findall(r'which\("([\w-]+)"\)', (REPO / "tests" / "browser.py")
                             .read_text(encoding="utf-8")))
    assert {"pdftotext", "pdfinfo", "chromium", "chromium-browser"} <= called
    checked = {name for tool in TOOLS for name in tool.names}
    assert called <= checked, called - checked
    packages = set(listed_packages())
    assert {tool.debian for tool in TOOLS} <= packages
    assert {"chromium", "poppler-utils"} <= set(systemdeps.read_list(systemdeps.TEST_LIST))


def test_make_test_checks_first_and_the_stamp_follows_the_lists():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^test: setup \$\(TEST_DEPS\)", makefile, re.MULTILINE)
    rule = re.search(r"^\$\(TEST_DEPS\):(.*?[^\\])\n\t(.*?)\n", makefile,
                     re.MULTILINE | re.DOTALL)  # prerequisites (continued lines), recipe
    assert rule, "no rule for the test-deps stamp"
    for prerequisite in ("requirements/apt-pdf.txt", "requirements/apt-test.txt"):
        assert prerequisite in rule.group(1)
    assert rule.group(2) == "$(PY) -m tools test-deps --install"
    assert "requirements/apt-test.txt" in makefile.split("test-deps:")[0]  # TEST_DEBS
    assert "BROWSER_DEBS" not in makefile


@pytest.mark.parametrize(("release", "kind"), [
    ('ID=debian\nVERSION_ID="12"\n', "debian"),
    ("ID=ubuntu\nID_LIKE=debian\n", "debian"),
    ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "debian"),
    ('ID=fedora\n', "fedora"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "fedora"),
    ("ID=arch\n", "other"),
])
def test_system_kind_from_os_release(tmp_path, release, kind):
    path = tmp_path / "os-release"
    path.write_text(release, encoding="utf-8")
    assert system_kind(path, platform="linux") == kind


def test_system_kind_without_os_release_and_on_macos(tmp_path):
    assert system_kind(tmp_path / "missing", platform="linux") == "other"
    assert system_kind(tmp_path / "missing", platform="darwin") == "macos"
