"""A Bloom filter of strings that lives as long as one task of one process (a batch's merge, a batch's hashes)."""

from __future__ import annotations

from collections.abc import Iterable


class BloomFilter:
    """The strings added, as a Bloom filter: `members` never leaves out one that was added, and rarely (< 1 % at
    the expected size) lets one through that was not. Its two bit positions come from the str hash, which Python
    computes once per string and keeps: per process, so a filter must not outlive the process that made it."""

    def __init__(self, expected: int) -> None:
        size = 1 << min(29, max(16, (max(expected, 1) * 24).bit_length()))  # ≥ 24 bits a key, at most 64 MB
        self._mask = size - 1
        self._bits = bytearray(size // 8)

    def members(self, keys: Iterable[str]) -> list[str]:
        """The keys that may have been added."""
        mask, bits = self._mask, self._bits
        return [
            key
            for key in keys
            if bits[((h := hash(key)) & mask) >> 3] & (1 << (h & 7))
            and bits[((h >> 32) & mask) >> 3] & (1 << ((h >> 32) & 7))
        ]

    def add(self, keys: Iterable[str]) -> list[str]:
        """Add the keys; return those that may have been added before (also earlier in `keys`): `members` and
        `update` in one pass."""
        mask, bits = self._mask, self._bits
        found = []
        for key in keys:
            h = hash(key)
            low, high = h & mask, (h >> 32) & mask
            low_bit, high_bit = 1 << (low & 7), 1 << (high & 7)
            if bits[low >> 3] & low_bit and bits[high >> 3] & high_bit:
                found.append(key)
            else:
                bits[low >> 3] |= low_bit
                bits[high >> 3] |= high_bit
        return found

    def update(self, keys: Iterable[str]) -> None:
        mask, bits = self._mask, self._bits
        for key in keys:
            h = hash(key)
            bits[(h & mask) >> 3] |= 1 << (h & 7)
            bits[((h >> 32) & mask) >> 3] |= 1 << ((h >> 32) & 7)
