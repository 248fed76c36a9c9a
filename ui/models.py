"""Tables of model versions from their model cards (admin Model versions page)."""
from __future__ import annotations

from collections.abc import Mapping

__all__ = ["flat_metrics", "classifier_rows", "sr_rows", "slot_of", "headline_metrics",
           "confidence_statement"]

CLASSIFIER_METRICS = ("accuracy", "macro_f1", "ece_calibrated")  # test split, else validation


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


def classifier_rows(cards: list[dict], active: str | None) -> tuple[list[dict], list[str]]:
    rows, names = [], []
    for c in cards:
        flat = flat_metrics(c.get("metrics") or {})
        row = {"version": c["version"], "active": c["version"] == active,
               "created": str(c.get("created_at", ""))[:16].replace("T", " "),
               "architecture": c.get("architecture"), "input": c.get("input_size"),
               "pretrained": bool(c.get("pretrained")),
               "flip-averaged": bool((c.get("preprocessing") or {}).get("tta")),
               "temperature": (c.get("calibration") or {}).get("temperature"),
               "metrics from": ("test" if any(k.startswith("test.") for k in flat) else
                                "validation" if any(k.startswith("validation.") for k in flat)
                                else "")}
        for short in CLASSIFIER_METRICS:
            # held-out test metrics when the card has them, else validation
            value = flat.get(f"test.{short}", flat.get(f"validation.{short}"))
            if value is None:
                value = next((v for k, v in flat.items() if k.split(".")[-1] == short), None)
            row[short] = None if value is None else round(value, 4)
            if value is not None and short not in names:
                names.append(short)
        rows.append(row)
    return rows, names


def slot_of(card: Mapping) -> str | None:
    method, scale = card.get("method"), card.get("scale")
    return f"{method}_x{scale}" if method and scale else None


def sr_rows(cards: list[dict], active: str | None) -> tuple[list[dict], list[str]]:
    rows = []
    for c in cards:
        methods = (c.get("metrics") or {}).get("methods") or {}
        own = methods.get(c.get("method"), {})
        base = methods.get("bicubic", {})
        rows.append({"version": c["version"], "active": c["version"] == active,
                     "created": str(c.get("created_at", ""))[:16].replace("T", " "),
                     "blocks": (c.get("network") or {}).get("num_block"),
                     "features": (c.get("network") or {}).get("num_feat"),
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
