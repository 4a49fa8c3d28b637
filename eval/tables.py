"""Results tables laid out like the PiTe paper's Table 3 (video QA) and Table 4 (ActivityNet Captions), in Markdown,
and a trajectory-accuracy table (not in the paper: it reports no trajectory numbers) for `pite eval trajectory`.

Values print with one decimal (as in the paper; trajectory L1 with three); a missing number prints "-". The QA table
ends with a line naming the judge model(s) and temperature(s), because QA numbers mean nothing without them; the
ActivityNet and QA tables end with a line naming the scoring protocol(s) of their numbers (`pite.eval.protocols`).

Usage:
    >>> grounding = {"R@0.3": 30.4, "R@0.5": 17.8, "R@0.7": 7.8, "mIoU": 22.0}
    >>> print(activitynet_table({"PiTe-7B": {"grounding": grounding}}))
    | Model | R@0.3 | R@0.5 | R@0.7 | mIoU | SODA_c | CIDEr | METEOR |
    |---|---|---|---|---|---|---|---|
    | PiTe-7B | 30.4 | 17.8 | 7.8 | 22.0 | - | - | - |
    <BLANKLINE>
    Protocol: -
"""

from __future__ import annotations

from collections.abc import Mapping

from pite.eval.judge import QAJudgeResult

QA_DATASETS = ("MSVD-QA", "MSRVTT-QA", "ActivityNet-QA")
GROUNDING_COLUMNS = ("R@0.3", "R@0.5", "R@0.7", "mIoU")
CAPTIONING_COLUMNS = ("SODA_c", "CIDEr", "METEOR")
TRAJECTORY_COLUMNS = {"L1": 3, "PCK@0.05": 1, "PCK@0.1": 1}  # column -> decimals


def _number(value: object, decimals: int = 1) -> str:
    return "-" if value is None else f"{float(value):.{decimals}f}"


PROTOCOL_DESCRIPTIONS = {
    "reference": "reference (VTimeLLM's evaluation code / Video-ChatGPT's judge script, quirks included)",
    "corrected": "corrected (pite's fixes of the reference scripts, see eval/README.md)",
}


def protocol_line(protocols: Mapping[str, None] | list[str]) -> str:
    """ "Protocol: ..." naming every protocol in `protocols` (in order, without repeats), "-" if none is known."""
    names = [PROTOCOL_DESCRIPTIONS.get(str(p), str(p)) for p in dict.fromkeys(protocols) if p is not None]
    return "Protocol: " + ("; ".join(names) or "-")


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def activitynet_table(results: Mapping[str, Mapping[str, Mapping[str, object] | None]]) -> str:
    """Table 4: per model, grounding R@0.3 / R@0.5 / R@0.7 / mIoU and dense captioning SODA_c / CIDEr / METEOR.

    Args:
        results: `{model: {"grounding": grounding_scores(...), "dense_captioning": dense_captioning_scores(...)}}`;
            either part may be absent.
    """
    rows, protocols = [], []
    for model, parts in results.items():
        grounding = parts.get("grounding") or {}
        captioning = parts.get("dense_captioning") or {}
        protocols += [part.get("protocol") for part in (grounding, captioning) if part]
        rows.append(
            [model]
            + [_number(grounding.get(column)) for column in GROUNDING_COLUMNS]
            + [_number(captioning.get(column)) for column in CAPTIONING_COLUMNS]
        )
    return _markdown(["Model", *GROUNDING_COLUMNS, *CAPTIONING_COLUMNS], rows) + "\n\n" + protocol_line(protocols)


def qa_table(results: Mapping[str, Mapping[str, QAJudgeResult | Mapping[str, object]]], datasets=QA_DATASETS) -> str:
    """Table 3: per model and dataset, accuracy (percent) / judge score.

    Args:
        results: `{model: {dataset: QAJudgeResult or its summary() dict}}`; missing datasets print "-".
        datasets: the column order.
    """
    header = ["Model"] + [f"{name} {column}" for name in datasets for column in ("Acc.", "Score")]
    rows, judges, protocols = [], {}, []
    for model, per_dataset in results.items():
        row = [model]
        for name in datasets:
            result = per_dataset.get(name)
            if isinstance(result, QAJudgeResult):
                result = result.summary()
            result = result or {}
            row += [_number(result.get("accuracy")), _number(result.get("score"))]
            if result:
                judges[(result.get("judge_model"), result.get("temperature"))] = None
                protocols.append(result.get("protocol"))
        rows.append(row)
    judge_line = "; ".join(f"{model} (temperature {temperature})" for model, temperature in judges) or "-"
    return _markdown(header, rows) + f"\n\nJudge: {judge_line}\n" + protocol_line(protocols)


def trajectory_table(results: Mapping[str, Mapping[str, object]]) -> str:
    """Trajectory accuracy per row: masked L1 (normalised units), PCK@5% / 10% of the diagonal (percent), points.

    Args:
        results: `{row name: trajectory_scores(...)}`, e.g. the model and the constant-centre baseline.

    >>> print(trajectory_table({"tiny": {"L1": 0.1234, "PCK@0.05": 20.0, "PCK@0.1": 45.04, "num_points": 96}}))
    | Model | L1 | PCK@5% | PCK@10% | Points |
    |---|---|---|---|---|
    | tiny | 0.123 | 20.0 | 45.0 | 96 |
    """
    rows = []
    for name, scores in results.items():
        points = scores.get("num_points")
        rows.append(
            [name]
            + [_number(scores.get(column), decimals) for column, decimals in TRAJECTORY_COLUMNS.items()]
            + ["-" if points is None else str(int(points))]
        )
    return _markdown(["Model", "L1", "PCK@5%", "PCK@10%", "Points"], rows)


PHRASE_POSITION_ROWS = {
    "model": "{model}",
    "constant_centre": "constant centre (0.5, 0.5)",
    "scene_mean": "every point at the video's mean target point",
    "object_mean": "every point at its object's mean position",
    "held_still": "held still at best: the video's median point, the object's once named",
}


def phrase_position_table(by_phrase_position: Mapping[str, Mapping[str, Mapping[str, object]]], model: str) -> str:
    """Trajectory L1 by the place of the token in its phrase (`TrajectoryEvalResult.by_phrase_position`).

    >>> scores, unscored = {"L1": 0.25, "num_points": 4}, {"L1": None, "num_points": 0}
    >>> print(phrase_position_table({"all": {"model": scores}, "last": {"model": unscored}}, "tiny"))
    | L1 | all tokens | last token |
    |---|---|---|
    | tiny | 0.250 | - |
    """
    places = [place for place in ("all", "first", "inner", "last") if place in by_phrase_position]
    headers = {"all": "all tokens", "first": "first token", "inner": "inner tokens", "last": "last token"}
    rows = []
    for key, label in PHRASE_POSITION_ROWS.items():
        if any(key in by_phrase_position[place] for place in places):
            cells = [_number(by_phrase_position[place].get(key, {}).get("L1"), 3) for place in places]
            rows.append([label.format(model=model), *cells])
    return _markdown(["L1", *(headers[place] for place in places)], rows)
