"""The page digest in C (native/incr_digest.c) against the blake3 package, the reference the
store's format names: every page of every store is found by it, so one wrong bit anywhere would
make every page new (or, worse, mismatch on restore)."""

from __future__ import annotations

import random

import blake3
import pytest

from incr.pagestore.digest import DIGEST_SIZE, PAGE_SIZE, ZERO_DIGEST, first_mismatch, page_digests


def _reference(page: bytes) -> bytes:
    return ZERO_DIGEST if page == bytes(PAGE_SIZE) else blake3.blake3(page).digest(DIGEST_SIZE)


def _pages(n: int, seed: int) -> bytearray:
    rng = random.Random(seed)
    buf = bytearray(rng.randbytes(n * PAGE_SIZE))
    # Pages that differ from another in one bit of each chunk, all-zero pages, pages zero but a byte.
    for i in range(0, n, 7):
        buf[i * PAGE_SIZE : (i + 1) * PAGE_SIZE] = bytes(PAGE_SIZE)
    for i in range(3, n, 11):
        buf[i * PAGE_SIZE : (i + 1) * PAGE_SIZE] = bytes(PAGE_SIZE)
        buf[i * PAGE_SIZE + rng.randrange(PAGE_SIZE)] = 1
    for i in range(5, n - 1, 13):
        buf[(i + 1) * PAGE_SIZE : (i + 2) * PAGE_SIZE] = buf[i * PAGE_SIZE : (i + 1) * PAGE_SIZE]
        buf[(i + 1) * PAGE_SIZE + rng.randrange(PAGE_SIZE)] ^= 0x80
    return buf


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 17, 64, 333])
def test_digests_are_blake3_of_each_page(n: int) -> None:
    buf = _pages(n, seed=n)
    got = page_digests(memoryview(buf))
    want = b"".join(_reference(bytes(buf[i * PAGE_SIZE : (i + 1) * PAGE_SIZE])) for i in range(n))
    assert got == want


def test_digests_of_chosen_pages_in_their_order() -> None:
    buf = _pages(40, seed=1)
    pages = [39, 0, 7, 7, 12, 3, 38, 21, 1]
    got = page_digests(memoryview(buf), pages)
    assert got == b"".join(_reference(bytes(buf[i * PAGE_SIZE : (i + 1) * PAGE_SIZE])) for i in pages)
    assert page_digests(memoryview(buf), []) == b""
    with pytest.raises(ValueError):
        page_digests(memoryview(buf), [40])


def test_every_chunk_and_block_counts() -> None:
    """A flipped bit in any 64-byte block of any chunk changes the digest (a lane or block skipped
    would not)."""
    base = bytearray(random.Random(2).randbytes(PAGE_SIZE))
    variants = [bytes(base)]
    for block in range(PAGE_SIZE // 64):
        page = bytearray(base)
        page[block * 64 + 17] ^= 1
        variants.append(bytes(page))
    buf = bytearray(b"".join(variants))
    got = page_digests(memoryview(buf))
    digests = [got[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE] for i in range(len(variants))]
    assert len(set(digests)) == len(variants)
    assert digests == [_reference(v) for v in variants]


def test_first_mismatch_finds_the_bad_page_and_skips_zero_entries() -> None:
    n = 23
    buf = _pages(n, seed=3)
    digests = bytearray(page_digests(memoryview(buf)))
    assert first_mismatch(memoryview(buf), bytes(digests)) == -1
    assert first_mismatch(memoryview(buf), bytes(digests), [22, 4, 9]) == -1
    buf[9 * PAGE_SIZE + 100] ^= 4                   # page 9 goes bad
    assert first_mismatch(memoryview(buf), bytes(digests)) == 9
    assert first_mismatch(memoryview(buf), bytes(digests), [22, 4, 9, 1]) == 2
    assert first_mismatch(memoryview(buf), bytes(digests), [22, 4, 1]) == -1
    # An entry of the zero digest is never checked: its page is not read into the buffer.
    digests[9 * DIGEST_SIZE : 10 * DIGEST_SIZE] = ZERO_DIGEST
    assert first_mismatch(memoryview(buf), bytes(digests)) == -1
    with pytest.raises(ValueError):
        first_mismatch(memoryview(buf), bytes(digests[:-1]))
