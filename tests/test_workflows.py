"""The GitHub Actions workflows: valid against the workflow JSON schema, and safe and
complete by their structure (triggers, permissions, concurrency, caches, steps); the
contributor documents link to files that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tools.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
PR = WORKFLOWS / "pull-request.yml"
PUBLISH = WORKFLOWS / "publish.yml"
RELEASE = WORKFLOWS / "release.yml"
# Actions outside actions/*, each pinned as its maintainers document it.
OTHER_ACTIONS = {"pypa/gh-action-pypi-publish@release/v1"}


class Yaml12Loader(yaml.SafeLoader):
    """YAML as GitHub reads it: ``on`` is a key, not the boolean True (YAML 1.1)."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                   re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))


def load(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=Yaml12Loader)


def steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


def runs(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for job in workflow["jobs"].values()
                     for step in job.get("steps", []))


def uses(workflow: dict, job: str, action: str) -> dict:
    found = [s for s in steps(workflow, job) if s.get("uses", "").startswith(action + "@")]
    assert found, f"{job} does not use {action}"
    return found[0]


@pytest.mark.parametrize("path", [PR, PUBLISH, WORKFLOWS / "publish-full.yml", RELEASE],
                         ids=lambda p: p.name)
def test_valid_against_the_github_workflow_schema(path):
    import check_jsonschema  # pinned in the test extra: a missing install fails
    import jsonschema

    vendor = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor"
    schema = json.loads((vendor / "github-workflows.json").read_text(encoding="utf-8"))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(load(path))]
    assert errors == []


@pytest.mark.parametrize("path", [PR, PUBLISH, WORKFLOWS / "publish-full.yml", RELEASE],
                         ids=lambda p: p.name)
def test_actions_pinned_and_no_injection_in_scripts(path):
    workflow = load(path)
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            if "uses" in step:
                assert re.fullmatch(r"actions/[\w-]+(/[\w-]+)?@v\d+", step["uses"]) \
                    or step["uses"] in OTHER_ACTIONS, step
    # untrusted values reach scripts through env, never spliced into the script text
    assert not re.search(r"\$\{\{\s*github\.(event|head_ref)", runs(workflow))


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.y*ml")), ids=lambda p: p.name)
def test_no_workflow_runs_on_pull_request_target(path):
    assert "pull_request_target" not in load(path)["on"]


def test_pull_request_is_read_only_and_cancels_superseded_runs():
    workflow = load(PR)
    assert list(workflow["on"]) == ["pull_request"]
    assert workflow["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in workflow["jobs"].values())
    assert "secrets." not in json.dumps(workflow)  # comments aside
    assert workflow["concurrency"]["cancel-in-progress"] is True
    assert "github.event.pull_request.number" in workflow["concurrency"]["group"]
    checkout = uses(workflow, "check", "actions/checkout")
    assert checkout["with"]["persist-credentials"] is False
    assert checkout["with"]["fetch-depth"] == 0  # `tools changed` needs the base branch


@pytest.mark.parametrize("path", [PR, PUBLISH], ids=lambda p: p.name)
def test_python_pip_cache_and_execution_cache(path):
    workflow = load(path)
    job = next(iter(workflow["jobs"]))
    python = uses(workflow, job, "actions/setup-python")
    assert python["with"]["python-version"] == "3.11"
    assert python["with"]["cache"] == "pip"
    cache = uses(workflow, job, "actions/cache")
    assert cache["with"]["path"] == "_build/.jupyter_cache"
    key = cache["with"]["key"]
    assert "hashFiles(" in key and "'chapters/**'" in key and "'dlbook/**'" in key
    assert cache["with"]["restore-keys"].strip() == key.split("${{")[0]


def test_pull_request_steps_in_order():
    script = runs(load(PR))
    order = ["make setup", "make check", "-m tools lib --check", "-m tools changed --base",
             "-m tools execute --profile smoke", "make html PROFILE=smoke"]
    positions = [script.index(command) for command in order]
    assert positions == sorted(positions)
    assert '"origin/$BASE_REF"' in script and 'if [ -z "$affected" ]' in script
    upload = uses(load(PR), "check", "actions/upload-artifact")
    assert upload["with"]["path"] == "_build/html"


def test_publish_builds_everything_and_publishes_with_least_privilege():
    workflow = load(PUBLISH)
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["build"]["concurrency"]["cancel-in-progress"] is True
    script = "\n".join(s.get("run", "") for s in jobs["build"]["steps"])
    for command in ("make pdf-deps", "make setup", "make check", "tools lib --check",
                    "make html", "make pdf", "make notebooks"):
        assert command in script, command
    assert uses(workflow, "build", "actions/upload-pages-artifact")["with"]["path"] == \
        "_build/html"
    assert jobs["deploy-pages"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert uses(workflow, "deploy-pages", "actions/deploy-pages")
    assert jobs["publish-notebooks"]["permissions"] == {"contents": "write"}
    push = "\n".join(s.get("run", "") for s in jobs["publish-notebooks"]["steps"])
    assert "git push --force origin HEAD:notebooks" in push
    # no code from the repository runs while the token can write
    assert not re.search(r"^\s*(make|\.venv|python)", push, re.MULTILINE)
    for job in ("deploy-pages", "publish-notebooks"):
        assert jobs[job]["needs"] == "build"
        assert jobs[job]["concurrency"]["cancel-in-progress"] is False


@pytest.mark.parametrize("path", [PR, PUBLISH, WORKFLOWS / "publish-full.yml", RELEASE],
                         ids=lambda p: p.name)
def test_commands_named_in_workflows_exist(path):
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z-]+):", makefile, re.MULTILINE))
    script = runs(load(path))
    for target in re.findall(r"\bmake ([a-z-]+)", script):
        assert target in targets, target
    for command in re.findall(r"-m tools ([a-z-]+)", script):
        assert command in COMMANDS, command


@pytest.mark.parametrize("doc", ["CONTRIBUTING.md", ".github/pull_request_template.md"])
def test_contributor_documents_link_to_existing_files(doc):
    text = (REPO / doc).read_text(encoding="utf-8")
    base = (REPO / doc).parent
    links = [link.split("#")[0] for link in re.findall(r"\]\(([^)\s]+)\)", text)
             if not link.startswith(("http://", "https://", "#", "mailto:"))]
    assert links, "no relative links"
    missing = [link for link in links if not (base / link).exists()]
    assert missing == []
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for target in set(re.findall(r"`make ([a-z-]+)", text)):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target


FULL = WORKFLOWS / "publish-full.yml"


def test_full_profile_workflow_shards_on_gpu_runners_and_renders_the_merged_cache():
    workflow = load(FULL)
    assert set(workflow["on"]) == {"workflow_dispatch", "schedule"}
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    execute = jobs["execute"]
    assert "vars.GPU_RUNNER" in execute["runs-on"] and "gpu" in execute["runs-on"]
    assert execute["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.shards) }}"
    shard = "\n".join(s.get("run", "") for s in execute["steps"])
    assert '-m tools execute --profile full --shard "$SHARD/$COUNT"' in shard
    assert "-m tools cache export --profile full" in shard
    merge = "\n".join(s.get("run", "") for s in jobs["merge"]["steps"])
    order = ["-m tools cache import --profile full", "--profile full --dry-run",
             "make html PROFILE=full", "make pdf PROFILE=full", "make notebooks PROFILE=full"]
    assert [merge.index(c) for c in order] == sorted(merge.index(c) for c in order)
    assert uses(workflow, "merge", "actions/cache/save")["with"]["key"].startswith(
        "jupyter-cache-full-")
    for job in ("deploy-pages", "publish-notebooks"):
        assert jobs[job]["needs"] == "merge"
    assert jobs["deploy-pages"]["permissions"] == {"pages": "write", "id-token": "write"}


def test_pushes_reuse_a_full_cache_only_when_it_covers_every_notebook():
    build = load(PUBLISH)["jobs"]["build"]
    restore = uses(load(PUBLISH), "build", "actions/cache/restore")
    assert restore["with"]["restore-keys"].strip() == "jupyter-cache-full-"
    script = "\n".join(s.get("run", "") for s in build["steps"])
    assert "-m tools execute --profile full --dry-run" in script
    assert 'echo "PROFILE=smoke" >> "$GITHUB_ENV"' in script
    smoke = uses(load(PUBLISH), "build", "actions/cache")
    assert smoke["if"] == "env.PROFILE == 'smoke'"


def test_release_builds_on_version_tags_and_publishes_with_trusted_publishing():
    workflow = load(RELEASE)
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert uses(workflow, "build", "actions/checkout")["with"]["persist-credentials"] is False
    script = "\n".join(s.get("run", "") for s in jobs["build"]["steps"])
    order = ['"$TAG" != "v$version"', "make setup", "-m tools lib --check",
             "pytest -p no:cacheprovider tests/test_wheel.py", "-m build --outdir dist"]
    assert [script.index(c) for c in order] == sorted(script.index(c) for c in order)
    tag_check = next(s for s in jobs["build"]["steps"] if "$TAG" in s.get("run", ""))
    assert tag_check["env"] == {"TAG": "${{ github.ref_name }}"}
    upload = uses(workflow, "build", "actions/upload-artifact")["with"]
    download = uses(workflow, "publish", "actions/download-artifact")["with"]
    assert (upload["name"], upload["path"]) == (download["name"], download["path"])
    publish = jobs["publish"]
    assert publish["needs"] == "build"
    # trusted publishing: an OIDC token of the `pypi` environment, no stored secret
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    action = uses(workflow, "publish", "pypa/gh-action-pypi-publish")
    assert not {"password", "user", "username"} & set(action.get("with", {}))
    assert "secrets." not in json.dumps(workflow) and "token" not in json.dumps(action)
    # the job that can publish runs no code from the repository
    assert [s for s in publish["steps"] if "run" in s] == []
    assert not any(s.get("uses", "").startswith("actions/checkout@") for s in publish["steps"])
