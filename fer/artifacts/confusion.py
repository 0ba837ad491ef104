"""What a confusion matrix says, as data: counts, row-normalized rates, and the most confused pairs, over the
run's `classes` in label order."""

from __future__ import annotations

import numpy as np


def row_normalized(counts: np.ndarray) -> np.ndarray:
    """Each true class's row as fractions; a class with no example stays a row of zeros."""
    support = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, support, out=np.zeros_like(counts, dtype=float), where=support > 0)


def confusion_json(counts: np.ndarray, classes: tuple[str, ...]) -> dict:
    counts = np.asarray(counts)
    return {
        "classes": list(classes),
        "rows": "true class",
        "columns": "predicted class",
        "counts": counts.astype(int).tolist(),
        "normalized": np.round(row_normalized(counts), 6).tolist(),
    }


def confused_pairs(counts: np.ndarray, classes: tuple[str, ...]) -> list[dict]:
    """For each true class, the class it is most often mistaken for (None when it never is)."""
    counts = np.asarray(counts)
    rates = row_normalized(counts)
    pairs = []
    for i, cls in enumerate(classes):
        off = counts[i].copy()
        off[i] = -1
        j = int(off.argmax())
        support = int(counts[i].sum())
        mistaken = off[j] > 0
        pairs.append({
            "true": cls, "support": support, "recall": float(rates[i, i]),
            "confused_with": classes[j] if mistaken else None,
            "count": int(off[j]) if mistaken else 0, "rate": float(rates[i, j]) if mistaken else 0.0,
        })
    return pairs


def confused_pairs_markdown(counts: np.ndarray, classes: tuple[str, ...]) -> str:
    lines = [
        "# Most confused classes",
        "",
        "For each true class, the class it is most often predicted as instead (test split).",
        "",
        "| true class | examples | recall | most often mistaken for | count | share of the class |",
        "|---|---:|---:|---|---:|---:|",
    ]
    pairs = confused_pairs(counts, classes)
    for p in pairs:
        other = p["confused_with"] or "—"
        lines.append(f"| {p['true']} | {p['support']} | {p['recall']:.1%} | {other} | {p['count']} | {p['rate']:.1%} |")
    worst = max(pairs, key=lambda p: p["rate"])
    if worst["confused_with"]:
        lines += ["", f"Largest confusion: {worst['true']} → {worst['confused_with']} "
                  f"({worst['count']} of {worst['support']}, {worst['rate']:.1%})."]
    return "\n".join(lines) + "\n"
