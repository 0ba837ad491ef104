"""A Keras-style model summary (layer, output shape, parameters, three totals).

Shapes and counts come from Lightning's ModelSummary (its hooks run the example input); only the
layout is ours, because the homework asks for Keras's table.
"""

from __future__ import annotations

from pytorch_lightning.utilities.model_summary import ModelSummary

from fer.models import count_params


def model_summary(module) -> str:
    s = ModelSummary(module, max_depth=-1)
    names = s.layer_names
    rows = []
    for name, kind, out, n in zip(names, s.layer_types, s.out_sizes, s.param_nums, strict=True):
        is_leaf = not any(other.startswith(name + ".") for other in names)
        if is_leaf and (name == "normalizer" or name.startswith("net.")):
            shape = "(None, " + ", ".join(str(d) for d in out[1:]) + ")" if isinstance(out, list) else str(out)
            rows.append((f"{name} ({kind})", shape, f"{n:,}"))
    head = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(r[i]) for r in [head, *rows]) + 2 for i in range(3)]
    line = lambda r: "".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    rule = "=" * sum(widths)
    counts = count_params(module.net)
    buffers = sum(b.numel() for name, b in module.net.named_buffers() if not name.endswith("num_batches_tracked"))
    body = [rule, line(head), rule, *(line(r) for r in rows), rule,
            f"Total params: {counts['params_total']:,}",
            f"Trainable params: {counts['params_trainable']:,}",
            f"Non-trainable params: {counts['params_non_trainable']:,}",
            f"Buffers (batch-norm running statistics; Keras counts them as non-trainable params): {buffers:,}",
            rule]
    return "\n".join(body) + "\n"
