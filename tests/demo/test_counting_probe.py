"""The stand-in probe: the demo's LLM architecture, trained on reading the span of a repeated word among N words."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from pite.demo.counting_probe import FILLER_WORDS, probe_corpus, score_span_answers, span_query, tokenize_query
from pite.demo.pipeline import DemoSettings, run_stand_in_probe


def test_a_query_repeats_its_word_exactly_over_the_answered_span():
    rng = np.random.default_rng(0)
    for _ in range(50):
        query = span_query(rng, 20)
        words, question = query.prompt.split(": ", 1)[1].split("\n")
        words = words.split(" ")
        queried = re.fullmatch(r"During which frames can we see (\w+)\?", question)[1]
        assert len(words) == 20 and queried in FILLER_WORDS
        assert [i for i, word in enumerate(words) if word == queried] == list(range(query.start, query.end + 1))
        assert query.start < query.end
        assert query.answer == f"From {query.start:02d} to {query.end:02d}."
    with pytest.raises(ValueError, match="num_positions >= 4"):
        span_query(rng, 3)


def test_the_loss_falls_on_the_answer_and_eos_only():
    from pite.demo.tokenizer import train_llama_tokenizer

    tokenizer = train_llama_tokenizer(probe_corpus(20), vocab_size=400)
    query = span_query(np.random.default_rng(1), 20)
    row = tokenize_query(tokenizer, query)
    answered = [token for token in row["labels"] if token != -100]
    assert row["input_ids"][0] == tokenizer.bos_token_id and answered[-1] == tokenizer.eos_token_id
    assert row["input_ids"][-len(answered) :] == answered  # the answer closes the row, and is all that is labelled
    assert row["labels"][: -len(answered)] == [-100] * (len(row["labels"]) - len(answered))
    assert tokenizer.decode(answered, skip_special_tokens=True).strip() == query.answer
    assert tokenizer.decode(row["input_ids"][: -len(answered)], skip_special_tokens=True).strip() == query.prompt


def test_answers_are_scored_as_the_demo_scores_grounding():
    rng = np.random.default_rng(1)
    queries = [span_query(rng, 100) for _ in range(10)]
    assert score_span_answers([q.answer for q in queries], queries, 100)["mIoU"] == 100.0
    wrong = score_span_answers(["From 00 to 00."] * 10, queries, 100)
    assert wrong["mIoU"] < 10
    assert score_span_answers(["no span"] * 10, queries, 100)["num_invalid"] == 10


def test_the_probe_trains_the_demo_stand_in_and_writes_its_scores(tmp_path):
    settings = DemoSettings.quick()
    result = run_stand_in_probe(tmp_path, settings, steps=40, num_positions=8)
    saved = json.loads((tmp_path / "stand_in_probe.json").read_text())
    assert saved["text_config"] == {
        "hidden_size": settings.text_hidden,
        "num_hidden_layers": settings.text_layers,
        "num_attention_heads": 4,
    }
    assert saved["steps"] == 40 and saved["num_positions"] == 8
    assert saved["loss_last"] < saved["loss_first"]  # it learns the answer format at least
    assert saved["model"]["num_queries"] == saved["constant_span"]["num_queries"] == 200
    assert saved["model"]["num_invalid"] < 200
    assert re.fullmatch(r"From \d\d to \d\d\.", saved["constant_span"]["answer"])
    assert result["model"]["mIoU"] == saved["model"]["mIoU"]


def test_pite_demo_probe_stand_in_runs_through_the_command(tmp_path):
    out = tmp_path / "probe"
    command = [sys.executable, "-m", "pite.cli.main", "demo", "--probe-stand-in", "--quick", "--out", str(out)]
    command += ["--probe-steps", "5", "--probe-positions", "8", "--probe-layers", "3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((out / "stand_in_probe.json").read_text())
    assert saved["steps"] == 5 and saved["num_positions"] == 8 and saved["text_config"]["num_hidden_layers"] == 3
    assert "stand-in span reading after 5 steps" in result.stdout


def test_the_probe_and_the_ablation_are_not_asked_together(tmp_path):
    command = [sys.executable, "-m", "pite.cli.main", "demo", "--probe-stand-in", "--ablation", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr and "Traceback" not in result.stderr
