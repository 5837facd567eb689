"""Live partial text stays append-only: what `agreed_words` and `extension` send never has to be taken back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.transcription.live import agreed_words, extension

WORDS = st.lists(st.sampled_from(["it", "was", "the", "best", "of", "times,", "worst", "age."]), max_size=8)


@given(st.lists(WORDS, min_size=1, max_size=6), WORDS)
def test_deltas_only_ever_extend_what_was_sent(hypotheses: list[list[str]], final: list[str]) -> None:
    sent, previous = "", ""
    for words in hypotheses:
        text = " ".join(words)
        delta = extension(sent, agreed_words(previous, text))
        assert (sent + delta).startswith(sent)
        if delta:
            assert (sent + delta).split() == text.split()[: len((sent + delta).split())]  # words of this decode
        sent, previous = sent + delta, text
    final_text = " ".join(final)
    rest = extension(sent, final_text)
    if rest:
        assert sent + rest == final_text


def test_a_word_the_decodes_disagree_on_is_held_back() -> None:
    assert agreed_words("it was the best", "it was the beast of") == "it was the"
    assert extension("it was", "it was the") == " the"
    assert extension("it was the be", "it was the best") == ""  # never split a word
    assert extension("and sure", "in short, the period") == ""  # a changed start adds nothing
