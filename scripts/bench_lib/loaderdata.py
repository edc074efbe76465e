"""loaderdata.py - the deterministic inputs of scripts/bench's loader-shaped
reads: the safetensors layout, the parquet-style ranges, the small files.

Every choice comes from a fixed seed through random.Random.random() (the
Mersenne Twister's double, the same on every Python 3) or from SHA-256 of
a counter, so the bytes and their sha256 are the same on every machine.
The tensor data itself is not made here: scripts/bench appends the
AES-CTR keystream it uses for the big file after the header this returns.
"""
import hashlib
import json
import math
import random

KiB = 1 << 10
MiB = 1 << 20

ST_SEED = 1729
ST_MIN = 64 * KiB          # smallest tensor
ST_MAX = 64 * MiB          # largest tensor
ST_ALIGN = 4 * KiB         # every tensor's size is a multiple of this
ST_LAYER_PARTS = ["input_layernorm", "mlp.down_proj", "mlp.gate_proj", "mlp.up_proj",
                  "post_attention_layernorm", "self_attn.k_proj", "self_attn.o_proj",
                  "self_attn.q_proj", "self_attn.v_proj"]
SHUFFLE_SEED = 4242

# parquet-style read: (fraction of the file, length) of each column chunk
PARQUET_FOOTER = 8
PARQUET_META = 64 * KiB
PARQUET_COLUMNS = [(0.113, 1 * MiB), (0.371, 3 * MiB), (0.619, 5 * MiB), (0.857, 8 * MiB)]

FILES_DIR = "small"        # the small files' directory in the repo
FILES_SHARDS = 100
FILES_SHARD_MIN = 1 * KiB
FILES_SHARD_MAX = 64 * KiB
TOKENIZER_BYTES = 2 * MiB


def tensor_sizes(data_bytes, seed=ST_SEED):
    """Sizes (multiples of ST_ALIGN in [ST_MIN, ST_MAX], log-scale, more small ones than
    large as in a model: exp of lo + r^1.5 (hi - lo)) adding up to data_bytes rounded down
    to ST_ALIGN."""
    rng = random.Random(seed)
    total = data_bytes // ST_ALIGN * ST_ALIGN
    lo, hi = math.log(ST_MIN), math.log(min(ST_MAX, max(ST_MIN, total)))
    sizes = []
    left = total
    while left > 0:
        n = int(math.exp(lo + rng.random() ** 1.5 * (hi - lo))) // ST_ALIGN * ST_ALIGN
        n = max(ST_MIN, n)
        if left - n < ST_MIN:
            n = left
        sizes.append(n)
        left -= n
    return sizes


def tensor_name(i):
    layer, part = divmod(i, len(ST_LAYER_PARTS))
    return "model.layers.%d.%s.weight" % (layer, ST_LAYER_PARTS[part])


def safetensors_header(data_bytes, seed=ST_SEED):
    """(header bytes: 8-byte LE length + JSON padded with spaces to 8 bytes, data length).
    Tensors are laid out in the order of their names, as the header lists them, so the
    header's order is the file's order."""
    sizes = tensor_sizes(data_bytes, seed)
    names = sorted(tensor_name(i) for i in range(len(sizes)))
    meta = {"__metadata__": {"format": "pt", "generator": "hfmount scripts/bench"}}
    off = 0
    for name, n in zip(names, sizes):
        if "layernorm" in name:
            dtype, item = "F32", 4
        else:
            dtype, item = "BF16", 2
        elems = n // item
        meta[name] = {"dtype": dtype, "shape": [elems // 1024, 1024],
                      "data_offsets": [off, off + n]}
        off += n
    raw = json.dumps(meta, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw, off


def shuffled(n, seed=SHUFFLE_SEED):
    """A permutation of range(n): Fisher-Yates on Random.random() only."""
    rng = random.Random(seed)
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = int(rng.random() * (i + 1))
        order[i], order[j] = order[j], order[i]
    return order


def parquet_ranges(size):
    """[(offset, length)] in the order a parquet reader asks for them: the 8-byte footer,
    the metadata block before it, then the column chunks."""
    out = [(size - PARQUET_FOOTER, PARQUET_FOOTER),
           (size - PARQUET_FOOTER - PARQUET_META, PARQUET_META)]
    for frac, n in PARQUET_COLUMNS:
        n = min(n, max(1, size // 16))
        off = min(int(size * frac), size - PARQUET_FOOTER - PARQUET_META - n)
        out.append((max(0, off), n))
    return out


def _text(tag, nbytes):
    """nbytes of printable JSON-string-safe text from SHA-256 of tag and a counter."""
    parts = []
    have = 0
    i = 0
    while have < nbytes:
        h = hashlib.sha256(b"%s/%d" % (tag.encode(), i)).hexdigest()
        parts.append(h)
        have += len(h)
        i += 1
    return "".join(parts)[:nbytes]


def _json_of(obj, nbytes):
    """obj as indented JSON, padded through a "_pad" member to exactly nbytes (obj's
    own JSON must be shorter)."""
    obj = dict(obj, _pad="")
    base = len(json.dumps(obj, indent=2).encode()) + 1
    obj["_pad"] = _text("pad%d" % nbytes, max(0, nbytes - base))
    raw = json.dumps(obj, indent=2).encode() + b"\n"
    return raw if len(raw) >= nbytes else raw + b" " * (nbytes - len(raw))


def small_files():
    """{repo path: bytes}: a loader's small files under FILES_DIR: tokenizer.json, four
    configs (1-10 KiB), a model.safetensors.index.json and FILES_SHARDS shard files of
    FILES_SHARD_MIN..FILES_SHARD_MAX in shards/."""
    d = FILES_DIR + "/"
    out = {}
    vocab = {}
    have = 0
    i = 0
    while have < TOKENIZER_BYTES - 64 * KiB:
        tok = _text("tok%d" % i, 4 + i % 9)
        vocab[tok] = i
        have += len(tok) + 18  # indent, quotes, ": ", id, ",\n"
        i += 1
    tok = {"version": "1.0", "model": {"type": "BPE", "vocab": vocab}}
    out[d + "tokenizer.json"] = _json_of(tok, TOKENIZER_BYTES)
    out[d + "config.json"] = _json_of({"architectures": ["BenchForCausalLM"],
                                       "hidden_size": 4096, "num_hidden_layers": 32}, 4 * KiB)
    out[d + "generation_config.json"] = _json_of({"do_sample": True, "temperature": 0.6},
                                                 1 * KiB)
    out[d + "tokenizer_config.json"] = _json_of({"model_max_length": 131072,
                                                 "tokenizer_class": "BenchTokenizer"},
                                                10 * KiB)
    out[d + "special_tokens_map.json"] = _json_of({"bos_token": "<s>", "eos_token": "</s>"},
                                                  2 * KiB)
    weight_map = {}
    rng = random.Random(ST_SEED + 1)
    for t in range(FILES_SHARDS * 9):
        weight_map[tensor_name(t)] = "shards/part-%03d.json" % (t // 9)
    out[d + "model.safetensors.index.json"] = (json.dumps(
        {"metadata": {"total_size": 16 << 30}, "weight_map": weight_map}, indent=2)
        + "\n").encode()
    lo, hi = math.log(FILES_SHARD_MIN), math.log(FILES_SHARD_MAX)
    for s in range(FILES_SHARDS):
        n = int(math.exp(lo + rng.random() * (hi - lo)))
        names = [tensor_name(s * 9 + k) for k in range(9)]
        out[d + "shards/part-%03d.json" % s] = _json_of({"shard": s, "tensors": names},
                                                        max(n, 1 * KiB))
    return out


def files_order(paths):
    """The order a loader reads them in: configs, tokenizer, index, then the shards."""
    first = [FILES_DIR + "/" + n for n in ("config.json", "generation_config.json",
                                           "tokenizer_config.json", "special_tokens_map.json",
                                           "tokenizer.json", "model.safetensors.index.json")]
    rest = sorted(p for p in paths if p not in first)
    return [p for p in first if p in paths] + rest
