# ruff: noqa: RUF001 - the samples are text in other scripts on purpose
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import tiktoken

from bot.tokens import TokenCounter, encoding_name_for, estimate_tokens, seed_encoding
from tests.support.imports import imported


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A tiktoken cache with nothing in it: only the shipped files can help."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_counts_exactly_offline_from_an_empty_cache(empty_cache: Path) -> None:
    counter = TokenCounter()
    assert counter.count("Hello, world!", "gpt-4o-mini") == 4
    assert counter.exact("gpt-4o-mini")
    assert counter.count("Hello, world!", "gpt-4") == 4
    assert counter.count("", "gpt-4o") == 0
    assert len(list(empty_cache.iterdir())) == 2, "o200k_base and cl100k_base were seeded"


def test_special_token_text_is_counted_not_refused(empty_cache: Path) -> None:
    assert TokenCounter().count("<|endoftext|>", "gpt-4o") > 1


def test_model_names_map_to_encodings() -> None:
    assert encoding_name_for("gpt-4o-mini") == "o200k_base"
    assert encoding_name_for("gpt-4") == "cl100k_base"
    assert encoding_name_for("llama3.1:8b") == "o200k_base"


def test_seeded_file_is_what_tiktoken_verifies(empty_cache: Path) -> None:
    assert seed_encoding("o200k_base")
    assert seed_encoding("o200k_base"), "seeding twice is harmless"
    assert not seed_encoding("r50k_base"), "only shipped encodings can be seeded"
    encoding = tiktoken.get_encoding("o200k_base")
    assert encoding.decode(encoding.encode("paella valenciana")) == "paella valenciana"


def test_falls_back_to_an_estimate_when_no_encoding_can_be_had(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")

    def unavailable(name: str) -> tiktoken.Encoding:
        raise ConnectionError(f"cannot download {name}")

    monkeypatch.setattr(tiktoken, "get_encoding", unavailable)
    counter = TokenCounter()
    assert counter.count("x" * 40, "gpt-4o") == estimate_tokens("x" * 40) == 6
    assert not counter.exact("gpt-4o")
    assert "estimating" in caplog.text


def test_repeated_texts_are_counted_once(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = TokenCounter(cache_size=2)
    counter.warm("gpt-4o")
    calls: list[str] = []
    real = counter._encoder

    def spying(name: str) -> Callable[[str], int]:
        calls.append(name)
        return real(name)

    monkeypatch.setattr(counter, "_encoder", spying)
    system_prompt = "You are a Mediterranean chef. " * 20
    assert counter.count(system_prompt, "gpt-4o") == counter.count(system_prompt, "gpt-4o")
    assert len(calls) == 1, "the second count came from the cache"
    counter.count("a", "gpt-4o")
    counter.count("b", "gpt-4o")
    counter.count(system_prompt, "gpt-4o")
    assert len(calls) == 4, "the cache is bounded: the oldest entry was evicted"
    huge = "x " * 10_000
    counter.count(huge, "gpt-4o")
    counter.count(huge, "gpt-4o")
    assert len(calls) == 6, "texts over 16 KB are not kept"


# One sample a kind of text people send (our own sentences, not a published corpus): the
# estimate must stay near o200k_base's exact count on every one, and lean high.
SAMPLES = {
    "English": "Could you suggest a quick dinner for four people? We have chickpeas, spinach, "
    "a lemon and some feta in the fridge, and I would rather not go shopping tonight.",
    "chat": "ok thx!! can u remind me tmrw at 9am about the standup? also what's the wifi pw",
    "code": "def fetch(url: str, *, retries: int = 3) -> bytes:\n    for attempt in "
    "range(retries):\n        try:\n            return urlopen(url, timeout=5).read()\n"
    "        except OSError as exc:\n            log.warning('attempt %d: %s', attempt, exc)\n",
    "JSON": '{"reply": "Try a chickpea and spinach stew.", "mood": "helpful", '
    '"confidence": 0.82, "tags": ["dinner", "vegetarian"], "steps": [1, 2, 3]}',
    "URL": "See https://example.com/recipes/2024/11/chickpea-stew?utm_source=slack&ref=abc123",
    "numbers": "Order 48213: 3 x 12.50 = 37.50; tax 3.00; total 40.50 (2026-12-07 17:42:10 UTC)",
    "French": "Pourriez-vous me proposer un dîner rapide pour quatre personnes ? Nous avons "
    "des pois chiches, des épinards, un citron et un peu de feta.",
    "German": "Könntest du mir ein schnelles Abendessen für vier Personen vorschlagen? Wir "
    "haben Kichererbsen, Spinat, eine Zitrone und etwas Feta im Kühlschrank.",
    "Russian": "Не могли бы вы предложить быстрый ужин на четырёх человек? У нас есть нут, "
    "шпинат, лимон и немного феты в холодильнике.",
    "Greek": "Μπορείτε να μου προτείνετε ένα γρήγορο δείπνο για τέσσερα άτομα; Έχουμε "
    "ρεβίθια, σπανάκι, ένα λεμόνι και λίγη φέτα στο ψυγείο.",
    "Arabic": "هل يمكنك أن تقترح عشاءً سريعاً لأربعة أشخاص؟ لدينا حمص وسبانخ وليمونة "
    "وبعض جبنة الفيتا في الثلاجة.",
    "Hebrew": "תוכל להציע ארוחת ערב מהירה לארבעה אנשים? יש לנו חומוס, תרד, לימון וקצת פטה במקרר.",
    "Hindi": "क्या आप चार लोगों के लिए जल्दी बनने वाला रात का खाना सुझा सकते हैं? हमारे पास "
    "फ्रिज में छोले, पालक, एक नींबू और थोड़ा फेटा है।",
    "Chinese": "你能推荐一份四个人吃的快手晚餐吗？冰箱里有鹰嘴豆、菠菜、一个柠檬和一些羊奶酪，"
    "我今晚不太想出去买东西。",
    "Japanese": "四人分の簡単な夕食を提案してもらえますか？冷蔵庫にはひよこ豆、ほうれん草、"
    "レモン一個、それにフェタチーズが少しあります。",
    "Korean": "네 명이 먹을 간단한 저녁 메뉴를 추천해 줄 수 있나요? 냉장고에 병아리콩, 시금치, "
    "레몬 하나, 그리고 페타 치즈가 조금 있어요.",
    "Thai": "คุณช่วยแนะนำอาหารเย็นแบบง่ายๆ สำหรับสี่คนได้ไหม เรามีถั่วลูกไก่ ผักโขม "
    "มะนาวหนึ่งลูก และชีสเฟต้านิดหน่อยในตู้เย็น",
    "Vietnamese": "Bạn có thể gợi ý một bữa tối nhanh cho bốn người không? Chúng tôi có đậu "
    "gà, rau bina, một quả chanh và một ít phô mai feta trong tủ lạnh.",
    "emoji": "🎉🎉 great job team!! 🚀🔥 see you at the party 🥳🍕🍻 👍👍👍",
    "mixed": "The meeting is at 3pm 会议室 B, please bring the 資料 for Q3 review.",
}


@pytest.mark.parametrize("kind", SAMPLES)
def test_the_estimate_stays_near_the_exact_count(empty_cache: Path, kind: str) -> None:
    text = SAMPLES[kind]
    exact = TokenCounter("exact").count(text, "gpt-4o-mini")
    estimate = estimate_tokens(text)
    assert 0.85 * exact <= estimate <= 1.5 * exact, f"{kind}: {estimate} for {exact}"


def test_the_estimate_leans_high_over_all_the_samples(empty_cache: Path) -> None:
    counter = TokenCounter("exact")
    exact = sum(counter.count(text, "gpt-4o-mini") for text in SAMPLES.values())
    estimate = sum(estimate_tokens(text) for text in SAMPLES.values())
    assert exact < estimate < 1.25 * exact


def test_the_estimate_grows_with_the_text() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("hi") == 2, "one piece, rounded up after the margin"
    assert estimate_tokens("word " * 1000) > estimate_tokens("word " * 100) * 9
    assert estimate_tokens("<|endoftext|>") > 1


def test_counting_by_estimate_loads_no_table(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(name: str) -> Callable[[str], int]:
        raise AssertionError(f"an estimate must not load {name}")

    counter = TokenCounter("estimate")
    monkeypatch.setattr(counter, "_load", refused)
    counter.warm("gpt-4o-mini")
    assert counter.count(SAMPLES["English"], "gpt-4o-mini") == estimate_tokens(SAMPLES["English"])
    assert counter.count(SAMPLES["Chinese"], "gpt-4") == estimate_tokens(SAMPLES["Chinese"])
    assert not counter.exact("gpt-4o-mini")


def test_the_bot_imports_no_tokenizer_to_estimate() -> None:
    script = (
        "import bot.cli, bot.runtime\n"
        "from bot.tokens import TokenCounter\n"
        "counter = TokenCounter('estimate')\n"
        "counter.warm('gpt-4o-mini')\n"
        "counter.count('hello there', 'gpt-4o-mini')\n"
    )
    assert imported(script, "tiktoken") == []
