"""``tools notebooks`` and the Sphinx extension ``tools.sphinx.notebooks``: executed,
Colab-ready notebooks, and the page buttons that point at them."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from conftest import REPO, build, make_book, output_of
from IPython.core.inputtransformer2 import TransformerManager

from tools.core.notebook import MYST_FRONT_MATTER
from tools.library.generate import project_version
from tools.render.colab import INSTALL_TAG, SAVED_NOTE, colab_ready, install_source, uses_gpu
from tools.render.install import library_requirement, requirement

VERSION = project_version(REPO)
URL = "https://github.com/dl-by-doing/dl-by-doing"  # repository: url: of _config.yml
SHA = "0123456789abcdef0123456789abcdef01234567"  # GITHUB_SHA of the fixture's build
GPU_PAGE = MYST_FRONT_MATTER + """
(sec-gpu)=
# On a GPU

```{code-cell} ipython3
#@save
import torch
```

```{code-cell} ipython3
def try_gpu(i=0):  #@save
    \"\"\"The i-th GPU if there is one, else the CPU.\"\"\"
    count = torch.cuda.device_count()
    return torch.device(f"cuda:{i}") if count > i else torch.device("cpu")


#@save
def ones(device):
    return torch.ones(2, device=device)
```

```{code-cell} ipython3
print("on", ones(try_gpu()).device.type)
```
"""


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["jupytext"] = {"text_representation": {"format_name": "myst"}}
    nb.cells = [nbformat.v4.new_markdown_cell("# Title")]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_colab_ready_install_cell_marks_and_metadata():
    nb = notebook("#@save\nimport torch", "def f(x):  # noqa: B006  #@save\n    return x")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="kept\n")]
    ready = colab_ready(nb, "dlbook==1.2.3")
    first = ready.cells[0]
    assert first.cell_type == "code" and first.id == INSTALL_TAG
    assert first.metadata["tags"] == [INSTALL_TAG]
    assert "%pip install --quiet dlbook==1.2.3\n" in first.source
    assert [c.source for c in ready.cells[2:]] == [
        f"{SAVED_NOTE}\nimport torch", f"def f(x):  # noqa: B006  {SAVED_NOTE}\n    return x"]
    assert ready.cells[2].outputs[0]["text"] == "kept\n"
    assert "jupytext" not in ready.metadata
    assert ready.metadata["colab"] == {"provenance": []}
    assert "accelerator" not in ready.metadata
    assert "#@" not in json.dumps(ready)
    nbformat.validate(ready)
    again = colab_ready(ready, "dlbook==1.2.3")  # idempotent: still one install cell
    assert nbformat.writes(again) == nbformat.writes(ready)
    assert "#@save" in nb.cells[1].source  # the input is left alone


@pytest.mark.parametrize(("source", "gpu"), [
    ("dlbook.try_gpu()", True),
    ("devices = dlbook.try_all_gpus()", True),
    ("x = x.cuda()", True),
    ("torch.cuda.device_count()", True),
    ("x.to('cuda:0')", True),
    ("torch.device('cuda')", True),
    ("%time y = x.cuda()", True),
    ("trainer = dlbook.Trainer(max_epochs=3, num_gpus=1)", True),
    ("trainer = dlbook.Trainer(max_epochs=3, num_gpus=0)", False),
    ("trainer = dlbook.Trainer(max_epochs=3)", False),
    ("torch.device('cpu'); x.to('cpu')", False),
    ("print('cuda')", False),
    ("this is not python", False),
])
def test_gpu_use_found_with_ast(source, gpu):
    assert uses_gpu(["import torch", source]) is gpu


def test_gpu_notebook_asks_colab_for_a_gpu():
    ready = colab_ready(notebook("dlbook.try_gpu()"), "dlbook==0.1.0")
    assert ready.metadata["accelerator"] == "GPU"
    assert ready.metadata["colab"]["gpuType"] == "T4"


class FakeShell:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def run_line_magic(self, name: str, line: str) -> None:
        self.calls.append((name, line))


@pytest.mark.parametrize(("wanted", "line"), [
    ("dlbook==0.1.0", "install --quiet dlbook==0.1.0"),
    (f"dlbook @ git+{URL}@{SHA}", f'install --quiet "dlbook @ git+{URL}@{SHA}"'),
])
@pytest.mark.parametrize("importable", [True, False])
def test_install_cell_installs_only_where_dlbook_is_missing(monkeypatch, importable, wanted,
                                                            line):
    shell = FakeShell()
    if not importable:
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name == "dlbook" else real(name, *a))
    code = TransformerManager().transform_cell(install_source(wanted))
    exec(code, {"get_ipython": lambda: shell})
    assert shell.calls == ([] if importable else [("pip", line)])


@pytest.mark.parametrize("wrong", ["0.1.0", "torch==2.13.0", 'dlbook @ git+"x"'])
def test_install_cell_refuses_anything_but_a_dlbook_requirement(wrong):
    with pytest.raises(ValueError, match="not a requirement for dlbook"):
        install_source(wrong)


def test_a_release_installs_from_pypi_anything_else_the_exact_commit():
    assert requirement("1.2.0", URL, SHA, ["v1.2.0", "latest"]) == "dlbook==1.2.0"
    assert requirement("1.2.0", URL, SHA, ["v1.1.0"]) == f"dlbook @ git+{URL}@{SHA}"
    assert requirement("1.2.0", URL, SHA, []) == f"dlbook @ git+{URL}@{SHA}"
    assert requirement("1.2.0", URL, None, []) == "dlbook==1.2.0"  # no commit known
    assert requirement("1.2.0", None, SHA, []) == "dlbook==1.2.0"  # no repository known


def git(folder, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org",
                           *args], cwd=folder, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_library_requirement_from_git_tags_and_github_sha(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above
    book = tmp_path / "book"
    book.mkdir()
    (book / "pyproject.toml").write_text('[project]\nname = "dlbook"\nversion = "2.0.1"\n')
    (book / "_config.yml").write_text(f"repository:\n  url: {URL}/\n")
    assert library_requirement(book, {}) == "dlbook==2.0.1"  # not a git checkout
    git(book, "init", "-q")
    git(book, "add", "-A")
    git(book, "commit", "-q", "-m", "first")
    head = git(book, "rev-parse", "HEAD")
    assert library_requirement(book, {}) == f"dlbook @ git+{URL}@{head}"
    git(book, "tag", "v2.0.0")  # another version's tag
    assert library_requirement(book, {}) == f"dlbook @ git+{URL}@{head}"
    git(book, "tag", "v2.0.1")
    assert library_requirement(book, {}) == "dlbook==2.0.1"
    # in CI the commit is GITHUB_SHA; a commit without the release tag is not the release
    assert library_requirement(book, {"GITHUB_SHA": SHA}) == f"dlbook @ git+{URL}@{SHA}"
    assert library_requirement(book, {"GITHUB_SHA": head}) == "dlbook==2.0.1"
    (book / "_config.yml").write_text("repository:\n  url: 'https://x/$(id)'\n")
    assert library_requirement(book, {"GITHUB_SHA": SHA}) == "dlbook==2.0.1"  # not usable


def tools(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The good fixture book plus a GPU page, built with the extension, then exported, as
    GitHub Actions would for the commit ``SHA`` (not a release)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GITHUB_SHA", SHA)
        return _build_and_export(tmp_path_factory)


def _build_and_export(tmp_path_factory):
    book = make_book(tmp_path_factory.mktemp("nbbook") / "book", "good")
    (book / "chapter" / "gpu.md").write_text(GPU_PAGE)
    toc = (book / "_toc.yml").read_text()
    (book / "_toc.yml").write_text(toc.replace("          - file: chapter/sample\n",
                                               "          - file: chapter/sample\n"
                                               "          - file: chapter/gpu\n"))
    config = (book / "_config.yml").read_text()
    if "tools.sphinx.notebooks" not in config:
        config = config.replace("    - tools.sphinx.site\n",
                                "    - tools.sphinx.site\n    - tools.sphinx.notebooks\n")
        (book / "_config.yml").write_text(config)
    result = build(book)
    assert result.returncode == 0, output_of(result)[-4000:]
    exported = tools("notebooks", "--book", str(book))
    assert exported.returncode == 0, exported.stderr
    return book


def read(path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_exported_notebooks_are_executed_and_colab_ready(built):
    out = built / "_build" / "notebooks"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.ipynb")) == [
        "chapter/gpu.ipynb", "chapter/sample.ipynb"]
    sample = read(out / "chapter/sample.ipynb")
    assert sample.cells[0].id == INSTALL_TAG
    assert f'%pip install --quiet "dlbook @ git+{URL}@{SHA}"\n' in sample.cells[0].source
    assert f"dlbook=={VERSION}" not in sample.cells[0].source  # SHA is not a release
    assert sample.cells[1].cell_type == "markdown"
    texts = [o.get("text", "") for c in sample.cells if c.cell_type == "code" for o in c.outputs]
    assert "minimum value: 1.0\n" in texts
    figure = sample.cells[3].outputs
    assert any("image/svg+xml" in o.get("data", {}) for o in figure)
    assert "accelerator" not in sample.metadata
    gpu_text = (out / "chapter/gpu.ipynb").read_text()
    assert "#@save" not in gpu_text and "#@" not in gpu_text
    assert SAVED_NOTE in gpu_text
    gpu = read(out / "chapter/gpu.ipynb")
    assert gpu.metadata["accelerator"] == "GPU"
    assert gpu.metadata["colab"]["gpuType"] == "T4"
    assert gpu.cells[-1].outputs[0]["text"] in ("on cpu\n", "on cuda\n")


def test_page_buttons_point_at_the_notebooks(built):
    html = (built / "_build/html/chapter/sample.html").read_text()
    assert ("https://colab.research.google.com/github/dl-by-doing/dl-by-doing/blob/notebooks/"
            "chapter/sample.ipynb") in html
    assert re.search(r'href="\.\./_notebooks/chapter/sample\.ipynb"', html)
    assert "blob/main/chapter/sample.md" not in html
    served = built / "_build/html/_notebooks/chapter/sample.ipynb"
    exported = built / "_build/notebooks/chapter/sample.ipynb"
    assert read(served).cells == read(exported).cells  # the download is the Colab notebook
    assert "_notebooks/chapter/gpu.ipynb" in (built / "_build/html/chapter/gpu.html").read_text()
    assert not (built / "_build/html/_notebooks/index.ipynb").exists()  # not a notebook page


def test_export_refuses_pages_without_cached_outputs(built, tmp_path):
    copy = tmp_path / "book"
    shutil.copytree(built, copy, ignore=shutil.ignore_patterns(".jupyter_cache", "html",
                                                               ".work-*"))
    (copy / "chapter/sample.md").write_text((copy / "chapter/sample.md").read_text()
                                            .replace("41)", "42)"))
    before = sorted((copy / "_build/notebooks").rglob("*"))
    result = tools("notebooks", "--book", str(copy))
    assert result.returncode == 1
    assert f"{copy}/chapter/sample.md:1: no executed outputs in the cache: run `make " \
           "execute`" in result.stderr
    assert sorted((copy / "_build/notebooks").rglob("*")) == before


def test_build_only_front_matter_stays_out_of_the_reader_s_notebook():
    from tools.render.colab import colab_ready

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.metadata.update(smoke={"max_epochs": 2}, data_files=["a.csv"], source_map=[3],
                       kernelspec={"name": "python3", "display_name": "Python 3"})
    ready = colab_ready(nb, "dlbook==0.1.0")
    assert not {"smoke", "data_files", "source_map"} & set(ready.metadata)
    assert ready.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["smoke"] == {"max_epochs": 2}  # the source notebook is untouched
