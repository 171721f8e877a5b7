"""The Bloom filter of strings that a batch's merge and its count of repeats keep."""

from __future__ import annotations

from hashlib import sha256

from apps.kernel.bloom import BloomFilter

KEYS = [sha256(str(i).encode()).hexdigest() for i in range(20_000)]


def test_members_never_forgets_a_key_and_rarely_lets_another_through() -> None:
    seen = BloomFilter(len(KEYS))
    seen.update(KEYS[:10_000])
    assert seen.members(KEYS[:10_000]) == KEYS[:10_000]
    assert len(seen.members(KEYS[10_000:])) < 100  # false positives: < 1 %


def test_add_returns_the_keys_it_may_have_had_also_earlier_in_the_same_call() -> None:
    seen = BloomFilter(len(KEYS))
    assert len(seen.add(KEYS[:10_000])) < 100
    again = seen.add([KEYS[1], KEYS[10_001], KEYS[10_001], KEYS[2]])
    assert again[0] == KEYS[1] and again[-1] == KEYS[2]
    assert again.count(KEYS[10_001]) >= 1  # its second copy, whatever the first found
    assert seen.members([*KEYS[:10_000], KEYS[10_001]]) == [*KEYS[:10_000], KEYS[10_001]]
