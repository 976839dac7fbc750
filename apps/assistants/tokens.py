"""Token counting that works offline.

tiktoken downloads its encodings at run time, which fails without internet, and companies use
models with different tokenizers anyway. The history window only needs a safe estimate, so
this counts word pieces the way BPE tokenizers roughly do: one token per short word or
punctuation mark, more for long words, plus a per-message overhead. It over-counts Spanish and
English prose slightly compared with cl100k/o200k, which errs on the side of a smaller window.
"""

from __future__ import annotations

import re

_PIECES = re.compile(r"\w+|[^\w\s]", re.UNICODE)
MESSAGE_OVERHEAD = 4


def count_tokens(text: str) -> int:
    total = 0
    for piece in _PIECES.findall(text):
        total += 1 + len(piece) // 6
    return total


def count_message_tokens(content: str) -> int:
    return count_tokens(content) + MESSAGE_OVERHEAD
