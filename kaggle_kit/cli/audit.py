"""``kaggle-kit inspect``: audit a competition's data and show what could mislead a model."""
from __future__ import annotations

import argparse

from kaggle_kit.cli.base import arg, command, competition_arg, console

__all__ = []


@command("inspect", "audit the data: per-class sizes and modes, unreadable files, duplicates, train/test "
                    "near-copies, and properties other than the content that predict the class",
         competition_arg(),
         arg("--threshold", type=float, default=None,
             help="near-duplicates: at most this share of perceptual-hash signs differ (default 0.06)"),
         arg("--show", type=int, default=10, metavar="N", help="rows listed per finding (audit.json has all)"),
         arg("--hash-only", action="store_true",
             help="find copies by perceptual hash only: no backbone pass, no count of the originals"))
def inspect_cmd(args: argparse.Namespace) -> int:
    from kaggle_kit.tools.audit import run_audit, save_audit
    from kaggle_kit.project import Project
    from kaggle_kit.progress import ProgressView

    project = Project.find()
    comp = project.competition(args.competition)
    out = console()
    options = {"threshold": args.threshold} if args.threshold is not None else {}
    options["features"] = not args.hash_only
    with ProgressView(out) as view:
        audit = run_audit(project, comp, report=view, **options)
    path = save_audit(audit, project, comp)
    render_audit(out, audit, args.show)
    where = "" if path.parent == project.data_root(comp.slug) else " (the data folder is read-only)"
    out.print(f"\nsaved {path}{where}")
    return 0


def render_audit(out, audit, show: int = 10) -> None:
    """Print an :class:`~kaggle_kit.data.audit_record.Audit` as tables."""
    from rich.table import Table

    n_test = audit.test.count if audit.test else 0
    out.print(f"[bold]{audit.slug}[/]: {audit.train_count} train images in {len(audit.classes)} classes, "
              f"{n_test} test images ({audit.data_root})\n")
    table = Table("class", "images", "width min/med/max", "height min/med/max", "aspect min/med/max",
                  "KB median", "most common sizes", "modes", "formats", box=None)
    for i, s in enumerate([*audit.classes, *([audit.test] if audit.test else [])]):
        table.add_row(s.name, str(s.count), _span(s.width, "{:.0f}"), _span(s.height, "{:.0f}"),
                      _span(s.aspect, "{:.2f}"), f"{s.kbytes.median:.1f}",
                      ", ".join(f"{size} ({n})" for size, n in s.sizes[:2]),
                      _counts(s.modes), _counts(s.formats), end_section=i == len(audit.classes) - 1)
    out.print(table)

    if audit.unreadable:
        out.print(f"\n[yellow]{len(audit.unreadable)} unreadable file(s), left out:[/]")
        for u in audit.unreadable[:show]:
            out.print(f"  {u.split}: {u.path}: {u.reason}")
    else:
        out.print("\nunreadable files: none")

    n_exact = sum(len(c.ids) for c in audit.exact_train)
    n_near = sum(len(c.ids) for c in audit.near_train)
    mixed = sum(c.mixed for c in audit.near_train)
    exact_test = sum(c.exact for c in audit.test_copies)
    out.print(f"\n[bold]duplicates[/] (perceptual hash: near = at most {audit.threshold:.0%} of its signs differ, "
              f"mirror images included)")
    out.print(f"  identical files in train:       {len(audit.exact_train)} group(s), {n_exact} images")
    out.print(f"  near-duplicate clusters, train: {len(audit.near_train)} cluster(s), {n_near} images, "
              f"{mixed} mixing classes")
    out.print(f"  test images with a train copy: {len(audit.test_copies)} of {n_test} ({exact_test} identical)")
    groups = audit.fold_groups
    how = ("copies turned, flipped, cropped or recoloured, by backbone features" if audit.originals
           else "copies shifted ~1%")
    out.print(f"  --group-duplicates would keep together: {len(groups)} group(s) of 2+ images, {sum(groups)} "
              f"images, largest {max(groups, default=0)} (also joins {how})")
    if audit.originals:
        out.print(f"  originals behind the {audit.train_count} train images: about {audit.originals}")
    if audit.test_copies:
        copies = Table("test image", "copy in train", "class", "differs", box=None, padding=(0, 2, 0, 4))
        for c in audit.test_copies[:show]:
            copies.add_row(c.test_id, c.train_id, c.label, "identical file" if c.exact else f"{c.difference:.1%}")
        out.print(copies)
        _more(out, len(audit.test_copies), show)
    if audit.near_train:
        clusters = Table("train cluster", "classes", box=None, padding=(0, 2, 0, 4))
        for c in audit.near_train[:show]:
            clusters.add_row(", ".join(c.ids[:4]) + (f" +{len(c.ids) - 4}" if len(c.ids) > 4 else ""),
                             ("[red]" if c.mixed else "") + ", ".join(sorted(set(c.labels))))
        out.print(clusters)
        _more(out, len(audit.near_train), show)

    if audit.shortcuts:
        out.print("\n[bold]shortcuts[/]: does one property, not the content, predict the class? "
                  "(5-fold CV, that property alone)")
        table = Table("property", "CV accuracy", "always-majority", "error removed", "", box=None)
        for s in audit.shortcuts:
            table.add_row(s.feature, f"{s.accuracy:.3f}", f"{s.baseline:.3f}", f"{s.lift:.0%}",
                          "[bold red]shortcut[/]" if s.flagged else "ok")
        out.print(table)
    else:
        out.print("\nshortcuts: not checked (too few images per class)")

    warnings = audit.warnings()
    if warnings:
        out.print()
        for w in warnings:
            out.print(f"[yellow]warning:[/] {w}")
    for r in audit.recommendations():
        out.print(f"[green]recommended:[/] {r}")


def _span(s, fmt: str) -> str:
    return "/".join(fmt.format(v) for v in (s.min, s.median, s.max))


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _more(out, total: int, show: int) -> None:
    if total > show:
        out.print(f"    ... and {total - show} more (see audit.json, or --show {total})")
