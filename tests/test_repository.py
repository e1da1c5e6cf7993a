"""The repository's own files: the citation metadata and the README's promises."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def test_citation_cff_is_valid_cff_1_2_0():
    jsonschema = pytest.importorskip("jsonschema")
    # The official CFF 1.2.0 schema (citation-file-format/citation-file-format, CC-BY-4.0).
    schema = json.loads((REPO / "tests" / "data" / "cff-1.2.0.schema.json").read_text())
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    # YAML reads the date as a date; CFF validators compare its ISO string.
    citation["date-released"] = str(citation["date-released"])
    jsonschema.validate(citation, schema)
    for key in ("title", "authors", "abstract", "keywords", "license", "repository-code", "references"):
        assert citation.get(key), f"CITATION.cff lacks {key}"
    ids = [ident["value"] for ref in citation["references"] for ident in ref.get("identifiers", [])]
    assert "arXiv:2511.14460" in ids  # Agent-R1
    assert any("Gymnasium" in ref["title"] for ref in citation["references"])


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one_in_a_fresh_venv():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, re.DOTALL)
    assert len(blocks) >= 3
    venv, main_job, tests = (block.strip() for block in blocks[:3])
    assert re.fullmatch(r"python3 -m venv (\S+) && \. \1/bin/activate", venv), "README opens with the venv step"
    assert "pip install" in main_job and "toolgym" in main_job
    assert "pip install" in tests and "pytest" in tests
    ci = (REPO / ".ci" / "run").read_text()
    assert tests in ci, ".ci/run must run the README's test command as written"
    # ... inside a virtualenv it makes fresh, without the system's packages, and has activated
    made = re.search(r'^python3 -m venv --clear "?([^"\s]+)"?$', ci, re.M)
    assert made, ".ci/run must make a fresh virtualenv with `python3 -m venv --clear DIR`"
    assert "--system-site-packages" not in ci
    activated = re.search(rf'^\. "?{re.escape(made.group(1))}/bin/activate"?$', ci, re.M)
    assert activated and made.start() < activated.start() < ci.index(tests), \
        ".ci/run must activate its venv before the test command"


def test_every_registered_id_is_in_the_readme():
    from toolgym.envs.registration import env_ids

    readme = (REPO / "README.md").read_text()
    missing = [env_id for env_id in env_ids() if f"`{env_id}`" not in readme]
    assert not missing, f"README's env table lacks {missing}"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_links_between_the_docs_resolve():
    broken = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.read_text()):
                broken.append(f"{page.name}: {target} (no such heading in {linked.name})")
    assert not broken, "broken links:\n" + "\n".join(broken)
