#!/usr/bin/python3
"""Writes a tiny llama-architecture GGUF v3 model that llama.cpp loads.

The loader tests (tests/e2e/test_llama.py) publish this file on the fake Hub
and let llama.cpp read it through an hfmount mount, so it has to be a real
model as far as llama.cpp is concerned: a SentencePiece-style vocabulary
(tokenizer.ggml.model "llama": tokens, scores, token types, all 256 byte
fallback tokens, bos/eos/unk ids), every llama hyperparameter key llama.cpp
reads, and F32 weights for every tensor of a 4-block llama with grouped-query
attention. The weights are pseudo-random from a seed, so the same seed always
gives the same bytes (and the same greedy generations). The file is about
14 MiB: it spans several of hfmount's 4 MiB cache chunks.

Python standard library only. Usage:

    /usr/bin/python3 tests/loaders/make_gguf.py OUT.gguf [--seed N]

or, from Python, write_gguf(path, seed) -> dict of the shape it wrote.
"""
import argparse
import array
import math
import os
import random
import struct
import sys

GGUF_MAGIC = b'GGUF'
GGUF_VERSION = 3
ALIGNMENT = 32

# GGUF metadata value types.
T_UINT32 = 4
T_INT32 = 5
T_FLOAT32 = 6
T_BOOL = 7
T_STRING = 8
T_ARRAY = 9

GGML_TYPE_F32 = 0
LLAMA_FTYPE_ALL_F32 = 0

# llama.cpp token types (llama_token_type).
TOK_NORMAL = 1
TOK_UNKNOWN = 2
TOK_CONTROL = 3
TOK_BYTE = 6

SPACE = '\u2581'  # SentencePiece's word-start marker

# The model's shape. 4 heads of 64, 2 KV heads (grouped-query attention).
N_EMBD = 256
N_HEAD = 4
N_HEAD_KV = 2
N_FF = 768
N_LAYER = 4
N_CTX_TRAIN = 512
RMS_EPS = 1e-5
ROPE_BASE = 10000.0

WORDS = ('the', 'a', 'of', 'and', 'to', 'in', 'is', 'it', 'that', 'was',
         'hello', 'world', 'once', 'upon', 'time', 'there', 'little', 'model',
         'mount', 'hub', 'read', 'only', 'file', 'cache', 'chunk', 'tiny',
         'story', 'said', 'llama', 'from')


def build_vocab():
    """(tokens, scores, types): <unk> <s> </s>, the 256 byte tokens, single
    characters, then every prefix of each "\u2581word" so SentencePiece's
    pair merges can reach whole words. Longer pieces score higher."""
    tokens = ['<unk>', '<s>', '</s>']
    types = [TOK_UNKNOWN, TOK_CONTROL, TOK_CONTROL]
    scores = [0.0, 0.0, 0.0]
    for b in range(256):
        tokens.append('<0x%02X>' % b)
        types.append(TOK_BYTE)
        scores.append(0.0)
    seen = set(tokens)
    pieces = [SPACE] + [chr(c) for c in range(ord('a'), ord('z') + 1)]
    pieces += [c for c in '.,!?']
    for w in WORDS:
        word = SPACE + w
        for i in range(2, len(word) + 1):
            pieces.append(word[:i])
        for i in range(2, len(w) + 1):
            pieces.append(w[:i])
    for p in pieces:
        if p in seen:
            continue
        seen.add(p)
        tokens.append(p)
        types.append(TOK_NORMAL)
        scores.append(-100.0 + 10.0 * len(p) - 0.001 * len(tokens))
    return tokens, scores, types


class Writer:
    """Little-endian GGUF primitives into a bytearray."""

    def __init__(self):
        self.buf = bytearray()

    def u32(self, v):
        self.buf += struct.pack('<I', v)

    def u64(self, v):
        self.buf += struct.pack('<Q', v)

    def string(self, s):
        b = s.encode('utf-8')
        self.u64(len(b))
        self.buf += b

    def kv(self, key, vtype, value, elem_type=None):
        self.string(key)
        self.u32(vtype)
        self.value(vtype, value, elem_type)

    def value(self, vtype, value, elem_type=None):
        if vtype == T_UINT32:
            self.u32(value)
        elif vtype == T_INT32:
            self.buf += struct.pack('<i', value)
        elif vtype == T_FLOAT32:
            self.buf += struct.pack('<f', value)
        elif vtype == T_BOOL:
            self.buf += struct.pack('<B', 1 if value else 0)
        elif vtype == T_STRING:
            self.string(value)
        elif vtype == T_ARRAY:
            self.u32(elem_type)
            self.u64(len(value))
            if elem_type == T_FLOAT32:
                self.buf += struct.pack('<%df' % len(value), *value)
            elif elem_type == T_INT32:
                self.buf += struct.pack('<%di' % len(value), *value)
            else:
                for v in value:
                    self.value(elem_type, v)
        else:
            raise ValueError('unsupported GGUF type %d' % vtype)


def tensor_shapes(n_vocab):
    """[(name, dims)] in llama.cpp's naming; dims are GGUF's ne[0], ne[1]."""
    head_dim = N_EMBD // N_HEAD
    kv_dim = head_dim * N_HEAD_KV
    out = [('token_embd.weight', (N_EMBD, n_vocab)),
           ('output_norm.weight', (N_EMBD,)),
           ('output.weight', (N_EMBD, n_vocab))]
    for i in range(N_LAYER):
        p = 'blk.%d.' % i
        out += [(p + 'attn_norm.weight', (N_EMBD,)),
                (p + 'attn_q.weight', (N_EMBD, N_EMBD)),
                (p + 'attn_k.weight', (N_EMBD, kv_dim)),
                (p + 'attn_v.weight', (N_EMBD, kv_dim)),
                (p + 'attn_output.weight', (N_EMBD, N_EMBD)),
                (p + 'ffn_norm.weight', (N_EMBD,)),
                (p + 'ffn_gate.weight', (N_EMBD, N_FF)),
                (p + 'ffn_up.weight', (N_EMBD, N_FF)),
                (p + 'ffn_down.weight', (N_FF, N_EMBD))]
    return out


def tensor_data(rng, name, dims):
    """F32 little-endian bytes: ones for norms, else uniform values in
    +-sqrt(3 / fan_in) (unit variance activations), from rng."""
    n = 1
    for d in dims:
        n *= d
    if len(dims) == 1:
        a = array.array('f', [1.0]) * n
    else:
        scale = math.sqrt(3.0 / dims[0])
        if name == 'token_embd.weight':
            scale = 1.0
        # 256 evenly spaced levels in [-scale, scale], picked by random bytes:
        # fast in pure Python and fully determined by the seed.
        levels = [scale * (2.0 * k / 255.0 - 1.0) for k in range(256)]
        a = array.array('f', [levels[b] for b in rng.randbytes(n)])
    if sys.byteorder == 'big':
        a.byteswap()
    return a.tobytes()


def write_gguf(path, seed=0):
    """Writes the model to path (atomically, via path + '.tmp'). Returns
    {'n_vocab', 'n_tensors', 'size', 'tokens'}."""
    rng = random.Random(seed)
    tokens, scores, types = build_vocab()
    n_vocab = len(tokens)
    shapes = tensor_shapes(n_vocab)

    w = Writer()
    w.buf += GGUF_MAGIC
    w.u32(GGUF_VERSION)
    kvs = [
        ('general.architecture', T_STRING, 'llama'),
        ('general.name', T_STRING, 'hfmount-tiny-llama-seed%d' % seed),
        ('general.alignment', T_UINT32, ALIGNMENT),
        ('general.file_type', T_UINT32, LLAMA_FTYPE_ALL_F32),
        ('llama.vocab_size', T_UINT32, n_vocab),
        ('llama.context_length', T_UINT32, N_CTX_TRAIN),
        ('llama.embedding_length', T_UINT32, N_EMBD),
        ('llama.block_count', T_UINT32, N_LAYER),
        ('llama.feed_forward_length', T_UINT32, N_FF),
        ('llama.attention.head_count', T_UINT32, N_HEAD),
        ('llama.attention.head_count_kv', T_UINT32, N_HEAD_KV),
        ('llama.attention.layer_norm_rms_epsilon', T_FLOAT32, RMS_EPS),
        ('llama.rope.dimension_count', T_UINT32, N_EMBD // N_HEAD),
        ('llama.rope.freq_base', T_FLOAT32, ROPE_BASE),
        ('tokenizer.ggml.model', T_STRING, 'llama'),
        ('tokenizer.ggml.tokens', T_ARRAY, tokens, T_STRING),
        ('tokenizer.ggml.scores', T_ARRAY, scores, T_FLOAT32),
        ('tokenizer.ggml.token_type', T_ARRAY, types, T_INT32),
        ('tokenizer.ggml.bos_token_id', T_UINT32, 1),
        ('tokenizer.ggml.eos_token_id', T_UINT32, 2),
        ('tokenizer.ggml.unknown_token_id', T_UINT32, 0),
        ('tokenizer.ggml.add_bos_token', T_BOOL, True),
        ('tokenizer.ggml.add_eos_token', T_BOOL, False),
    ]
    w.u64(len(shapes))
    w.u64(len(kvs))
    for kv in kvs:
        w.kv(*kv)

    offset = 0
    blobs = []
    for name, dims in shapes:
        data = tensor_data(rng, name, dims)
        w.string(name)
        w.u32(len(dims))
        for d in dims:
            w.u64(d)
        w.u32(GGML_TYPE_F32)
        w.u64(offset)
        pad = -len(data) % ALIGNMENT
        blobs.append(data + b'\0' * pad)
        offset += len(data) + pad
    w.buf += b'\0' * (-len(w.buf) % ALIGNMENT)

    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(w.buf)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    return {'n_vocab': n_vocab, 'n_tensors': len(shapes),
            'size': len(w.buf) + offset, 'tokens': tokens}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('out', help='path of the .gguf to write')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args(argv)
    info = write_gguf(args.out, args.seed)
    print('%s: %d bytes, %d tensors, %d tokens'
          % (args.out, info['size'], info['n_tensors'], info['n_vocab']))


if __name__ == '__main__':
    main()
