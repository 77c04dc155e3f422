"""The documentation points at things that exist: every relative link (and its anchor) in README.md,
docs/*.md and bench/RESULTS.md resolves, every repository path they name (``kaggle_kit/...``,
``kaggle_local/...``, ``tests/...``, ``bench/...``) exists, every dotted ``kaggle_kit.x.y`` name is a
module (or a name a module defines), and every ``python`` example parses and imports only names
that exist."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kaggle_kit", "kaggle_local")

FENCE = re.compile(r"^(```|~~~)(.*)$")
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w.-])(?:kaggle_kit|kaggle_local|tests|bench)/[\w./-]*")
DOTTED = re.compile(r"(?<![\w./-])(?:kaggle_kit|kaggle_local)(?:\.\w+)+")


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "bench" / "RESULTS.md"]


def split_fences(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The prose lines, and the (language, body) of each fenced code block."""
    prose: list[str] = []
    blocks: list[tuple[str, str]] = []
    lang, body = None, []
    for line in text.splitlines():
        m = FENCE.match(line.strip())
        if lang is None and m:
            lang, body = m.group(2).strip().lower(), []
        elif lang is not None and m and not m.group(2).strip():
            blocks.append((lang, "\n".join(body)))
            lang = None
        elif lang is None:
            prose.append(line)
        else:
            body.append(line)
    return prose, blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for line in prose:
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def top_level_names(module: Path) -> set[str]:
    """What ``from <module> import X`` can import: definitions, assignments, imports, ``__all__``."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                names.update(ast.literal_eval(node.value))   # lazily exported names count
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def module_file(root: Path, dotted: str) -> Path | None:
    """The file of module ``dotted`` (``a/b.py`` or ``a/b/__init__.py``), or None."""
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return base if base.is_dir() else None      # a namespace package


def check_dotted(root: Path, dotted: str) -> str | None:
    """None when ``dotted`` is a module, or a module followed by one name it defines."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        found = module_file(root, ".".join(parts[:n]))
        if found is None:
            continue
        rest = parts[n:]
        if not rest:
            return None
        if len(rest) == 1 and found.is_file() and rest[0] in top_level_names(found):
            return None
        return f"{'.'.join(parts[:n])} has no {'.'.join(rest)!r}"
    return "no such module"


def check_python(root: Path, code: str) -> list[str]:
    """A python example parses, and its ``from kaggle_kit... import`` names exist."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        return [f"python example does not parse: {e.msg} (line {e.lineno} of the block)"]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            if node.module in PACKAGES and "__all__" not in top_level_names(module_file(root, node.module)):
                continue        # the public API: checked by test_public_api_names once it declares __all__
            found = module_file(root, node.module)
            if found is None:
                out.append(f"from {node.module} import ...: no such module")
                continue
            names = top_level_names(found) if found.is_file() else set()
            for alias in node.names:
                if alias.name not in names and module_file(root, f"{node.module}.{alias.name}") is None:
                    out.append(f"from {node.module} import {alias.name}: {found.relative_to(root)} has no {alias.name}")
    return out


def problems(doc: Path, root: Path = ROOT) -> list[str]:
    """Everything in ``doc`` that points at nothing, one line each."""
    text = doc.read_text(encoding="utf-8")
    prose, blocks = split_fences(text)
    out: list[str] = []
    for line in prose:
        for target in LINK.findall(re.sub(r"`[^`]*`", "``", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue                                    # http:, https:, mailto:, file:
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            if not dest.exists():
                out.append(f"link {target}: {path} does not exist")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                out.append(f"link {target}: no heading with anchor #{anchor} in {dest.relative_to(root)}")
    for token in sorted(set(PATH.findall(text))):
        path = token.rstrip(".,:;")
        if not (root / path).exists():
            out.append(f"path {path} does not exist")
    for token in sorted(set(DOTTED.findall(text))):
        why = check_dotted(root, token)
        if why:
            out.append(f"name {token}: {why}")
    for lang, body in blocks:
        if lang in ("python", "py"):
            out.extend(check_python(root, body))
    return out


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_points_at_things_that_exist(doc: Path) -> None:
    assert doc.is_file(), f"{doc.relative_to(ROOT)} is missing"
    assert problems(doc) == [], f"{doc.relative_to(ROOT)}: " + "; ".join(problems(doc))


def test_public_api_names() -> None:
    """``from kaggle_kit import X`` in the docs imports only what ``kaggle_kit.__all__`` exports."""
    init = ROOT / "kaggle_kit" / "__init__.py"
    if "__all__" not in top_level_names(init):
        pytest.skip("kaggle_kit/__init__.py declares no __all__ yet (the public API has not landed)")
    exported = set(ast.literal_eval(next(
        n.value for n in ast.parse(init.read_text()).body
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets))))
    missing = []
    for doc in doc_files():
        for lang, body in split_fences(doc.read_text(encoding="utf-8"))[1]:
            if lang not in ("python", "py"):
                continue
            for node in ast.walk(ast.parse(body)):
                if isinstance(node, ast.ImportFrom) and node.module == "kaggle_kit":
                    missing += [f"{doc.relative_to(ROOT)}: {a.name}" for a in node.names if a.name not in exported]
    assert missing == [], "not in kaggle_kit.__all__: " + ", ".join(missing)


def test_the_checker_finds_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "kaggle_kit" / "data").mkdir(parents=True)
    (tmp_path / "kaggle_kit" / "__init__.py").write_text("")
    (tmp_path / "kaggle_kit" / "data" / "grouping.py").write_text("def duplicate_groups(): ...\n")
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## The `new` command — here\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\n"
        "[ok](docs/a.md) [ok anchor](docs/a.md#the-new-command--here) [self](#title) [web](https://x.org)\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#nowhere)\n\n"
        "`kaggle_kit/data/grouping.py` exists, `kaggle_kit/data/audit.py` does not;\n"
        "`kaggle_kit.data.grouping.duplicate_groups` is defined, `kaggle_kit.data.grouping.nothing` is not.\n\n"
        "```python\nfrom kaggle_kit.data.grouping import duplicate_groups, missing_name\n```\n"
        "```python\ndef broken(:\n```\n")
    assert problems(readme, tmp_path) == [
        "link docs/b.md: docs/b.md does not exist",
        "link docs/a.md#nowhere: no heading with anchor #nowhere in docs/a.md",
        "path kaggle_kit/data/audit.py does not exist",
        "name kaggle_kit.data.grouping.nothing: kaggle_kit.data.grouping has no 'nothing'",
        "from kaggle_kit.data.grouping import missing_name: kaggle_kit/data/grouping.py has no missing_name",
        "python example does not parse: invalid syntax (line 1 of the block)",
    ]


def test_anchor_slugs_follow_github() -> None:
    assert slug("`kaggle-kit fetch` (and `make fetch COMP=<slug>`) — the competition's data") == \
        "kaggle-kit-fetch-and-make-fetch-compslug--the-competitions-data"
    assert slug("The local server: `kaggle_local/`") == "the-local-server-kaggle_local"


def test_architecture_page_lists_every_module():
    """docs/architecture.md's folder table names every module of the package, so it cannot fall behind."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    stage_packages = {p for p in (ROOT / "kaggle_kit").glob("*/__init__.py")}   # rows of their own: "**data**"
    missing = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "kaggle_kit").rglob("*.py"))
               if p not in stage_packages and f"`{p.relative_to(ROOT)}`" not in text]
    assert missing == [], "not in docs/architecture.md: " + ", ".join(missing)
