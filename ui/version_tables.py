"""Tables of model versions from their model cards (admin Model versions page)."""
from __future__ import annotations

from collections.abc import Mapping

from core import registry

__all__ = ["flat_metrics", "classifier_rows", "sr_rows", "SR_FORMATS", "slot_of",
           "headline_metrics",
           "confidence_statement", "eval_sets", "set_label", "change_summary", "EVAL_METRICS",
           "METRIC_LABELS", "metric_label", "CLASSIFIER_COLUMNS", "recipe_line", "progress_text",
           "segmentation_rows"]

CLASSIFIER_METRICS = ("accuracy", "macro_f1", "ece_calibrated")
EVAL_METRICS = ("accuracy", "macro_f1", "ece")   # figures compared on one evaluation set
# The one table of metric names as the pages show them (chart axes, change tables, messages).
METRIC_LABELS = registry.METRIC_LABELS
NO_VALUE = "—"


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def flat_metrics(metrics: Mapping, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested metrics dict, keys joined with '.'."""
    out: dict[str, float] = {}
    for k, v in (metrics or {}).items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flat_metrics(v, name + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[name] = float(v)
    return out


def _acc_cell(m: Mapping) -> str:
    acc, n = m.get("accuracy"), m.get("n")
    if not isinstance(acc, (int, float)) or isinstance(acc, bool):
        return NO_VALUE
    return f"{acc:.3f}" + (f" (n={n})" if isinstance(n, int) else "")


# Column labels and widths (px) of the versions table: together they fit the page's content
# width at a 1280 px window (about 820 px), so nothing is cut at the right.
CLASSIFIER_COLUMNS = {
    "version": ("version", 264), "status": ("status", 70), "stored": ("stored", 128),
    "created": ("created", 80), "model": ("model", 94),
    "test acc (card)": ("test acc (card)", 92), "val acc (card)": ("val acc (card)", 92)}


def classifier_rows(cards: list[dict], status: Mapping[str, Mapping] | None = None
                    ) -> list[dict]:
    """One row per version, every cell a short text (a missing figure is "—", never None).
    ``status``: ``registry.version_rows`` by version (status, where). Card figures keep their
    set in the column name (``test …`` = the card's recorded test set, ``val …`` = its own
    validation split) and their image count in the cell: they are never merged into one
    column. Calibration and pretraining are in :func:`recipe_line` (one version at a time)."""
    rows = []
    for c in cards:
        metrics = c.get("metrics") or {}
        info = (status or {}).get(c["version"], {})
        size = c.get("input_size")
        row = {"version": c["version"], "status": info.get("status") or NO_VALUE,
               "stored": info.get("where") or NO_VALUE,
               "created": str(c.get("created_at") or NO_VALUE)[:10],
               "model": " · ".join(str(x) for x in (
                   c.get("architecture") if c.get("architecture") != "ensemble" else
                   f"ensemble of {len(c.get('members') or [])}",
                   f"{size}²" if size else None) if x)
               or NO_VALUE}
        for split, label in (("test", "test"), ("validation", "val")):
            m = metrics.get(split) if isinstance(metrics.get(split), Mapping) else {}
            row[f"{label} acc (card)"] = _acc_cell(m)
        rows.append(row)
    return rows


def recipe_line(card: Mapping) -> str:
    """Pretraining, flip averaging and calibration of one version, in words (an ensemble's
    members first)."""
    t = (card.get("calibration") or {}).get("temperature")
    members = [m.get("version") for m in card.get("members") or [] if isinstance(m, Mapping)]
    return " · ".join((
        *([f"ensemble: mean of the logits of {', '.join(map(str, members))}"] if members else []),
        "pretrained (ImageNet)" if card.get("pretrained") else "trained from scratch",
        "flip-averaged" if (card.get("preprocessing") or {}).get("tta") else "no flip averaging",
        f"temperature {t:.2f}" if isinstance(t, (int, float)) else "not calibrated"))


def progress_text(progress: Mapping, status: str = "") -> str:
    """One line for a job's progress bar: phase, epoch/step, loss, time left and the message,
    with server paths left out (``version=X saved /srv/...`` reads ``version X``)."""
    import re

    p = progress or {}
    msg = str(p.get("message") or "")
    msg = re.sub(r"\s*\bsaved\s+\S+", "", msg)
    msg = re.sub(r"\bversion=(\S+)", r"version \1", msg)
    msg = re.sub(r"(?<![\w.])/(?:[^\s/]+/)+([^\s/]+)", r"…/\1", msg)   # other paths: last part
    return " · ".join(x for x in (
        p.get("phase"), f"epoch {p['epoch']}/{p['epochs']}" if p.get("epochs") else "",
        f"step {p['step']}/{p['steps']}" if p.get("steps") else "",
        f"loss {p['loss']:.4f}" if isinstance(p.get("loss"), (int, float)) else "",
        f"about {p['eta_s'] / 60:.0f} min left" if p.get("eta_s") else "",
        msg.strip()) if x) or status


def set_label(report: Mapping) -> str:
    """``"<folder name> · n=160 · sha256:a875…"`` for an evaluation-set report."""
    from pathlib import PurePath

    name = PurePath(str(report.get("data") or "?")).name or str(report.get("data"))
    fp = str(report.get("data_fingerprint", ""))
    return f"{name} · n={report.get('n', '?')} · {fp[:14]}…"


def eval_sets(reports: list[dict]) -> list[dict]:
    """Evaluation-set reports grouped by set (fingerprint), newest set first:
    ``{"fingerprint", "label", "n", "data", "reports": {version: report}}``."""
    sets: dict[str, dict] = {}
    for r in sorted(reports, key=lambda r: r.get("recorded_at", ""), reverse=True):
        fp = r.get("data_fingerprint")
        if not fp:
            continue
        entry = sets.setdefault(fp, {"fingerprint": fp, "label": set_label(r), "n": r.get("n"),
                                     "data": r.get("data"), "reports": {}})
        entry["reports"].setdefault(r.get("version"), r)
    return list(sets.values())


def change_summary(cmp: Mapping, previous: str | None) -> str:
    """Words for the success message after an activation: version and metric deltas."""
    head = f"Activated {cmp['candidate']} (was {previous or 'none'})."
    if not cmp.get("set"):
        return (head + " No evaluation set was shared with the previous version: no metric "
                "change to report.")
    parts = [f"{metric_label(r['metric'])} {r['reference']:.3f} → {r['candidate']:.3f} "
             f"({r['delta']:+.3f})" for r in cmp["rows"] if r["metric"] in EVAL_METRICS]
    text = head + f" On the evaluation set ({cmp['set']['n']} images): " + ", ".join(parts) + "."
    if cmp.get("warnings"):
        text += " Activated despite: " + " ".join(cmp["warnings"])
    return text


def slot_of(card: Mapping) -> str | None:
    method, scale = card.get("method"), card.get("scale")
    return f"{method}_x{scale}" if method and scale else None


#: How SR tables show their figures (``st.dataframe(column_config=...)``: the Model versions
#: tables and the Super-resolution page's PSNR / SSIM table): every row with the same decimals.
SR_FORMATS = {"PSNR (dB)": "%.2f", "SSIM": "%.4f", "bicubic PSNR": "%.2f",
              "bicubic SSIM": "%.4f"}


def sr_rows(cards: list[dict], active: str | None) -> tuple[list[dict], list[str]]:
    rows = []
    for c in cards:
        methods = (c.get("metrics") or {}).get("methods") or {}
        own = methods.get(c.get("method"), {})
        base = methods.get("bicubic", {})
        net = c.get("network") or {}
        rows.append({"version": c["version"], "active": c["version"] == active,
                     "created": str(c.get("created_at", ""))[:16].replace("T", " "),
                     # RRDB's names, then SRResNet's
                     "blocks": net.get("num_block", net.get("num_blocks")),
                     "features": net.get("num_feat", net.get("features")),
                     "PSNR (dB)": own.get("psnr"), "SSIM": own.get("ssim"),
                     "bicubic PSNR": base.get("psnr"), "bicubic SSIM": base.get("ssim")})
    return rows, ["PSNR (dB)", "SSIM"]


def headline_metrics(card: Mapping) -> tuple[str, dict] | None:
    """``(split, metrics)`` of the card's held-out test metrics, else its validation metrics."""
    metrics = card.get("metrics") or {}
    for split in ("test", "validation"):
        m = metrics.get(split)
        if isinstance(m, Mapping) and isinstance(m.get("accuracy"), (int, float)):
            return split, dict(m)
    return None


def confidence_statement(bins, threshold: float = 0.9) -> str | None:
    """Plain words from reliability bins: how often the model was right when it was at least
    ``threshold`` confident (bins whose lower edge reaches the threshold)."""
    high = [b for b in bins or [] if b.get("count") and b["lo"] >= threshold - 1e-9]
    n = sum(int(b["count"]) for b in high)
    if not n:
        return None
    right = round(sum(b["count"] * b["accuracy"] for b in high))
    return (f"When it said {threshold:.0%} or more, it was right in {right} of {n} images "
            f"({right / n:.0%}).")


def segmentation_rows(cards: list[dict], status: dict[str, str]) -> list[dict]:
    """One row per segmentation version: status, input, test Dice / IoU (with the Dice
    interval), per-class Dice, created."""
    rows = []
    for c in cards:
        test = (c.get("metrics") or {}).get("test") or {}
        ci = test.get("dice_ci95")
        per = test.get("per_class") or {}
        rows.append({
            "version": c["version"], "status": status.get(c["version"], ""),
            "input": f"{c.get('input_size', '?')}²",
            "test Dice": (f"{test['dice']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]"
                                                  if isinstance(ci, list) else ""))
            if isinstance(test.get("dice"), (int, float)) else "—",
            "test IoU": f"{test['iou']:.3f}" if isinstance(test.get("iou"), (int, float)) else "—",
            "per class (Dice)": ", ".join(f"{k} {v['dice']:.2f}" for k, v in per.items()
                                          if isinstance(v, dict) and "dice" in v) or "—",
            "n": test.get("n", "—"), "created": str(c.get("created_at", ""))[:16]})
    return rows
