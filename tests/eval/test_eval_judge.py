"""The Video-ChatGPT judge: exact messages, reply parsing, aggregation, cache, HTTP backend with retries, local LM."""

import json
from types import SimpleNamespace

import pytest

from pite.eval.judge import (
    SYSTEM_MESSAGE,
    Judgment,
    JudgmentCache,
    QASample,
    aggregate_judgments,
    judge_messages,
    judge_qa,
    parse_judge_reply,
    user_message,
)
from pite.eval.judge_backends import JudgeRequestError, OpenAIChatJudge, TransformersJudge

SAMPLES = [
    QASample("q1", "what is the man doing?", "running", "running"),
    QASample("q2", "what color is the car?", "red", "blue"),
    QASample("q3", "is it raining?", "yes", "yes"),
]


def test_messages_are_video_chatgpt_verbatim():
    assert SYSTEM_MESSAGE == (
        "You are an intelligent chatbot designed for evaluating the correctness of generative outputs for "
        "question-answer pairs. Your task is to compare the predicted answer with the correct answer and determine if "
        "they match meaningfully. Here's how you can accomplish the task:------##INSTRUCTIONS: - Focus on the "
        "meaningful match between the predicted answer and the correct answer.\n- Consider synonyms or paraphrases as "
        "valid matches.\n- Evaluate the correctness of the prediction compared to the answer."
    )
    message = user_message("Q?", "A", "P")
    assert message.startswith(
        "Please evaluate the following video-based question-answer pair:\n\nQuestion: Q?\nCorrect Answer: A\n"
        "Predicted Answer: P\n\nProvide your evaluation only as a yes/no and score where the score is an integer "
        "value between 0 and 5, with 5 indicating the highest meaningful match. "
    )
    assert "value of 'pred' is  a string of 'yes' or 'no'" in message  # the original's double space
    assert message.endswith("For example, your response should look like this: {'pred': 'yes', 'score': 4.8}.")
    assert [m["role"] for m in judge_messages("Q?", "A", "P")] == ["system", "user"]


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("{'pred': 'yes', 'score': 4}", ("yes", 4)),
        ("  {'pred': 'yes', 'score': 4.8}\n", ("yes", 4)),  # int() truncates, as Video-ChatGPT does
        ('{"pred": "No", "score": 1}', ("no", 1)),
        ("{'pred': 'yes', 'score': '3'}", ("yes", 3)),
        ("{'pred': 'maybe', 'score': 2}", ("neither", 2)),
    ],
)
def test_parse_usable_replies(reply, expected):
    assert parse_judge_reply(reply) == expected


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("yes", "not a Python literal"),
        ("Sure! {'pred': 'yes', 'score': 4}", "not a Python literal"),
        ("['yes', 4]", "not a dict but a list"),
        ("{'pred': 'yes'}", "without 'pred' and 'score'"),
        ("{'pred': 1, 'score': 4}", "'pred' is not a string"),
        ("{'pred': 'yes', 'score': 'four'}", "not an integer"),
        ("{'pred': 'yes', 'score': None}", "not a number"),
        ("{'pred': 'yes', 'score': 7}", "outside 0-5"),
        ("", "not a Python literal"),
    ],
)
def test_unusable_replies_are_explained(reply, reason):
    assert reason in parse_judge_reply(reply, protocol="corrected")


def test_score_range_is_checked_only_under_corrected():
    # Video-ChatGPT's evaluate_activitynet_qa.py takes int(score) whatever it is
    assert parse_judge_reply("{'pred': 'yes', 'score': 7}", protocol="reference") == ("yes", 7)
    assert "outside 0-5" in parse_judge_reply("{'pred': 'yes', 'score': 7}", protocol="corrected")


def test_aggregate_hand_worked():
    def judgment(verdict, score):
        return Judgment("id", "raw", "judge", 0.0, verdict=verdict, score=score)

    judgments = [judgment("yes", 4), judgment("yes", 5), judgment("no", 1), judgment("neither", 2)]
    judgments.append(Judgment("id", "garbage", "judge", 0.0, skipped_reason="not a dict"))
    result = aggregate_judgments(judgments, "judge", 0.0)
    assert result.accuracy == pytest.approx(100 * 2 / 3)  # yes / (yes + no): "neither" and skipped left out
    assert result.score == pytest.approx((4 + 5 + 1 + 2) / 4)  # parsed replies, "neither" included
    assert (result.num_yes, result.num_no, result.num_neither, result.num_skipped) == (2, 1, 1, 1)
    empty = aggregate_judgments([], "judge", 0.0)
    assert empty.accuracy is None and empty.score is None


def test_http_judge_end_to_end(chat_server, monkeypatch, tmp_path):
    monkeypatch.setenv("TEST_JUDGE_KEY", "secret-123")
    judge = OpenAIChatJudge(chat_server.base_url, "judge-model", api_key_env="TEST_JUDGE_KEY", temperature=0.2)
    result = judge_qa(SAMPLES, judge, JudgmentCache(tmp_path / "cache.sqlite"))
    assert result.accuracy == pytest.approx(100 * 2 / 3)
    assert result.score == pytest.approx((5 + 1 + 5) / 3)
    assert result.judge_model == "judge-model" and result.temperature == 0.2
    assert all(j.judge_model == "judge-model" and j.temperature == 0.2 for j in result.judgments)
    request = chat_server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer secret-123"
    assert request["body"]["model"] == "judge-model" and request["body"]["temperature"] == 0.2
    assert request["body"]["messages"] == judge_messages(
        *(SAMPLES[0].question, SAMPLES[0].answer, SAMPLES[0].prediction)
    )


def test_cache_makes_reruns_free_and_keys_on_temperature(chat_server, tmp_path):
    cache_path = tmp_path / "cache.sqlite"
    first = judge_qa(SAMPLES, OpenAIChatJudge(chat_server.base_url, "judge-model"), JudgmentCache(cache_path))
    assert len(chat_server.requests) == 3
    chat_server.respond = lambda body: pytest.fail("a cached judgment was requested again")
    second = judge_qa(SAMPLES, OpenAIChatJudge(chat_server.base_url, "judge-model"), JudgmentCache(cache_path))
    assert second.summary() == first.summary() and second.judgments == first.judgments
    chat_server.respond = chat_server.default_respond
    judge_qa(
        SAMPLES[:1], OpenAIChatJudge(chat_server.base_url, "judge-model", temperature=1.0), JudgmentCache(cache_path)
    )
    judge_qa(SAMPLES[:1], OpenAIChatJudge(chat_server.base_url, "other-judge"), JudgmentCache(cache_path))
    assert len(chat_server.requests) == 5  # another temperature or another judge is another judgment
    assert len(JudgmentCache(cache_path)) == 5


def test_retry_after_failures_then_success(chat_server):
    failures = iter([(503, b'{"error": "overloaded"}', 0.0), (429, b"{}", 0.0)])
    chat_server.respond = lambda body: next(failures, None) or chat_server.default_respond(body)
    waits = []
    judge = OpenAIChatJudge(chat_server.base_url, "judge-model", backoff=0.5, sleep=waits.append)
    result = judge_qa(SAMPLES[:1], judge)
    assert result.num_yes == 1 and len(chat_server.requests) == 3
    assert waits == [0.5, 1.0]  # exponential backoff


def test_timeout_is_retried(chat_server):
    delays = iter([0.6])
    chat_server.respond = lambda body: (*chat_server.default_respond(body)[:2], next(delays, 0.0))
    judge = OpenAIChatJudge(chat_server.base_url, "judge-model", timeout=0.2, sleep=lambda s: None)
    assert judge_qa(SAMPLES[:1], judge).num_yes == 1
    assert len(chat_server.requests) == 2


def test_unretryable_and_exhausted_failures(chat_server, tmp_path):
    chat_server.respond = lambda body: (400, b'{"error": "bad model"}', 0.0)
    judge = OpenAIChatJudge(chat_server.base_url, "judge-model", sleep=lambda s: None)
    with pytest.raises(JudgeRequestError, match="HTTP 400.*bad model"):
        judge.complete(judge_messages("q", "a", "p"))
    assert len(chat_server.requests) == 1

    chat_server.respond = lambda body: (200, b"not json", 0.0)
    with pytest.raises(JudgeRequestError, match="not a chat-completions response"):
        judge.complete(judge_messages("q", "a", "p"))

    # the second sample keeps failing: the first one's judgment is in the cache, and a rerun asks only the second
    def flaky(body):
        return (500, b"{}", 0.0) if "blue" in body["messages"][1]["content"] else chat_server.default_respond(body)

    chat_server.respond = flaky
    cache = JudgmentCache(tmp_path / "cache.sqlite")
    judge = OpenAIChatJudge(chat_server.base_url, "judge-model", max_retries=2, sleep=lambda s: None)
    with pytest.raises(JudgeRequestError, match="giving up after 3 attempts"):
        judge_qa(SAMPLES[:2], judge, cache)
    assert len(cache) == 1
    chat_server.requests.clear()
    chat_server.respond = chat_server.default_respond
    assert judge_qa(SAMPLES[:2], judge, cache).num_no == 1
    assert len(chat_server.requests) == 1


def test_connection_refused_is_retried_then_reported(chat_server):
    url = chat_server.base_url
    chat_server.close()
    waits = []
    judge = OpenAIChatJudge(url, "judge-model", max_retries=2, backoff=0.1, sleep=waits.append)
    with pytest.raises(JudgeRequestError, match="giving up after 3 attempts"):
        judge.complete(judge_messages("q", "a", "p"))
    assert waits == [0.1, 0.2]


def test_non_dict_replies_are_skipped_and_kept(chat_server):
    replies = iter(["I think yes.", "{'pred': 'yes', 'score': 5}", "['no']"])
    chat_server.respond = lambda body: (200, chat_server.completion(next(replies)), 0.0)
    result = judge_qa(SAMPLES, OpenAIChatJudge(chat_server.base_url, "judge-model"))
    assert result.num_skipped == 2 and result.num_yes == 1 and result.accuracy == 100.0
    skipped = [j for j in result.judgments if j.verdict is None]
    assert [j.raw_reply for j in skipped] == ["I think yes.", "['no']"]
    assert all(j.skipped_reason for j in skipped)


def test_concurrent_requests_give_the_same_result(chat_server):
    judge = OpenAIChatJudge(chat_server.base_url, "judge-model")
    assert judge_qa(SAMPLES, judge, num_workers=3).summary() == judge_qa(SAMPLES, judge).summary()


def test_judge_qa_bad_input():
    class Nameless:
        model_name, temperature = "", 0.0

        def complete(self, messages):
            return "{}"

    with pytest.raises(ValueError, match="model_name"):
        judge_qa(SAMPLES, Nameless())
    with pytest.raises(ValueError, match="unique"):
        judge_qa([SAMPLES[0], SAMPLES[0]], Nameless())


@pytest.fixture(scope="module")
def tiny_judge():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from pite.demo.tokenizer import train_llama_tokenizer

    tokenizer = train_llama_tokenizer(["question answer correct predicted yes no score pred"] * 20, vocab_size=300)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    return TransformersJudge(
        LlamaForCausalLM(config).eval(), tokenizer, model_name="tiny-llama-judge", max_new_tokens=8
    )


def test_local_transformers_judge_is_greedy_and_never_crashes(tiny_judge, tmp_path):
    messages = judge_messages("q", "a", "p")
    assert tiny_judge.complete(messages) == tiny_judge.complete(messages)  # greedy: deterministic
    result = judge_qa(SAMPLES[:2], tiny_judge, JudgmentCache(tmp_path / "c.sqlite"))
    assert result.judge_model == "tiny-llama-judge" and result.temperature == 0.0
    # a random model does not write a dict: counted as skipped, raw reply kept
    assert result.num_skipped + result.num_yes + result.num_no + result.num_neither == 2
    assert all(
        j.raw_reply == tiny_judge.complete(judge_messages(s.question, s.answer, s.prediction))
        for j, s in zip(result.judgments, SAMPLES)
    )


def test_local_judge_uses_the_chat_template(tiny_judge):
    template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant]"
    tiny_judge.tokenizer.chat_template = template
    try:
        ids = tiny_judge._prompt_ids(judge_messages("q", "a", "p"))["input_ids"][0]
        assert "[system]" in tiny_judge.tokenizer.decode(ids) and "[assistant]" in tiny_judge.tokenizer.decode(ids)
    finally:
        tiny_judge.tokenizer.chat_template = None
    with pytest.raises(ValueError, match="model_name"):
        TransformersJudge(tiny_judge.model.__class__(tiny_judge.model.config), tiny_judge.tokenizer)


def test_summary_is_json_ready(chat_server):
    result = judge_qa(SAMPLES, OpenAIChatJudge(chat_server.base_url, "judge-model"))
    assert json.loads(json.dumps(result.summary()))["judge_model"] == "judge-model"


def test_run_judge_keeps_the_cache_and_stops_with_where_it_is(tmp_path):
    from pite.eval.judge import Judgment, JudgmentCache, QASample
    from pite.eval.judge_options import JudgeStopped, judgment_rows, run_judge

    cache_path = tmp_path / "qa.judgments.sqlite"
    sample = QASample("s1", "What colour?", "red", "red")

    def judge(cache: JudgmentCache) -> str:
        cache.put("judge", 0.0, sample, "{'pred': 'yes', 'score': 5}")
        raise JudgeRequestError("HTTP 400: bad model")

    with pytest.raises(
        JudgeStopped, match=f"HTTP 400: bad model; the replies received so far are cached in {cache_path}"
    ):
        run_judge(cache_path, judge)
    reopened = JudgmentCache(cache_path)  # closed by run_judge, and the reply received before the failure is kept
    assert reopened.get("judge", 0.0, sample) == "{'pred': 'yes', 'score': 5}"
    reopened.close()
    assert run_judge(cache_path, lambda cache: cache.get("judge", 0.0, sample)) == "{'pred': 'yes', 'score': 5}"

    judged = SimpleNamespace(judgments=[Judgment("s1", "{'pred': 'yes', 'score': 5}", "judge", 0.0, "yes", 5)])
    assert judgment_rows(judged) == [
        {
            "sample_id": "s1",
            "verdict": "yes",
            "score": 5,
            "skipped_reason": None,
            "raw_reply": "{'pred': 'yes', 'score': 5}",
        }
    ]
