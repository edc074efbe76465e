#!/usr/bin/python3
"""Builds and checks the PyTorch and ONNX models that tests/e2e/test_torch.py
and tests/e2e/test_jslibs.py publish on a fake Hub and load through an
hfmount mount.

Runs under Debian's python3-torch (`apt-get install -y python3-torch`;
Debian 12 ships torch 1.13); the tests call it in a /usr/bin/python3
subprocess because importing torch is slow. Everything is seeded, so two
runs (and two processes) build the same tensors. Subcommands, each printing
one JSON line on stdout:

  checkpoint DIR        torch.save a state dict to DIR/pytorch_model.bin:
                        tensors of several dtypes, one of 20 MiB (several of
                        hfmount's 4 MiB chunks); prints name -> dtype/shape.
  load FILE             torch.load FILE (mmap=True when this torch has it,
                        torch >= 2.1; else weights_only=True when it has
                        that; else a plain load) and compares every tensor
                        with a fresh build of the same state dict
                        (torch.equal, dtype, shape).
  bert DIR TEXT         a tiny BERT-shaped encoder (embeddings, a linear
                        layer, layer norm) exported with torch.onnx.export to
                        DIR/onnx/model.onnx with the names transformers.js
                        uses for model_type "bert" (input_ids,
                        attention_mask, token_type_ids -> last_hidden_state),
                        plus config.json, tokenizer.json (lowercasing
                        WordPiece, [CLS] ... [SEP]) and tokenizer_config.json;
                        prints TEXT's ids and torch's output for them.

torch.onnx.export writes the ONNX protobuf itself: the `onnx` Python
package is not needed.
"""
import inspect
import json
import os
import re
import sys

try:
    import torch
except ImportError:
    sys.exit('make_torch.py needs PyTorch: apt-get install -y python3-torch')

CHECKPOINT = 'pytorch_model.bin'
SEED = 20240601
GITATTRIBUTES = ('*.bin filter=lfs diff=lfs merge=lfs -text\n'
                 '*.onnx filter=lfs diff=lfs merge=lfs -text\n')


# ------------------------------------------------------------ checkpoint ---

def state_dict():
    """The checkpoint's tensors, the same in every process."""
    g = torch.Generator().manual_seed(SEED)
    sd = {}
    # 1280 x 4096 float32 = 20 MiB: five 4 MiB chunks.
    sd['embed.weight'] = torch.randn(1280, 4096, generator=g)
    sd['proj.weight'] = torch.randn(64, 96, generator=g).to(torch.float16)
    sd['proj.bias'] = torch.randn(96, generator=g).to(torch.bfloat16)
    sd['norm.weight'] = torch.rand(96, generator=g, dtype=torch.float64)
    sd['positions'] = torch.randint(-2**40, 2**40, (7, 11), generator=g,
                                    dtype=torch.int64)
    sd['codes'] = torch.randint(-128, 128, (300,), generator=g,
                                dtype=torch.int8)
    sd['mask'] = torch.rand(5, 5, generator=g) > 0.5
    sd['step'] = torch.tensor(12345, dtype=torch.int32)  # a 0-d tensor
    return sd


def describe(t):
    return {'dtype': str(t.dtype), 'shape': list(t.shape)}


def cmd_checkpoint(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    sd = state_dict()
    torch.save(sd, os.path.join(out_dir, CHECKPOINT))
    with open(os.path.join(out_dir, '.gitattributes'), 'w') as f:
        f.write(GITATTRIBUTES)
    return {'torch': torch.__version__,
            'tensors': {k: describe(v) for k, v in sd.items()}}


def load_kwargs():
    """How this torch can load a checkpoint without copying it whole."""
    params = inspect.signature(torch.load).parameters
    if 'mmap' in params:
        return {'mmap': True, 'weights_only': True}
    if 'weights_only' in params:
        return {'weights_only': True}
    return {}


def cmd_load(path):
    kw = load_kwargs()
    got = torch.load(path, map_location='cpu', **kw)
    want = state_dict()
    tensors = {}
    for k, v in got.items():
        d = describe(v) if isinstance(v, torch.Tensor) else {'type': repr(type(v))}
        if isinstance(v, torch.Tensor) and k in want:
            d['equal'] = bool(torch.equal(v, want[k]))
        tensors[k] = d
    return {'torch': torch.__version__, 'load_kwargs': sorted(kw),
            'keys': list(got.keys()), 'tensors': tensors,
            'want': {k: describe(v) for k, v in want.items()}}


# ------------------------------------------------------------------ bert ---

WORDS = ['hello', 'world', 'the', 'tiny', 'bert', 'reads', 'from', 'a',
         'mount', 'model', 'hub', 'onnx', 'torch', 'read', 'only', '!', ',',
         '.']
SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
VOCAB = {w: i for i, w in enumerate(SPECIAL + WORDS)}
HIDDEN = 32
MAX_POS = 64


class TinyBert(torch.nn.Module):
    """Embeddings (word + position + token type), one tanh linear layer and
    a layer norm, zeroed at padded positions: BERT's inputs and output."""

    def __init__(self):
        super().__init__()
        self.word = torch.nn.Embedding(len(VOCAB), HIDDEN)
        self.pos = torch.nn.Embedding(MAX_POS, HIDDEN)
        self.segment = torch.nn.Embedding(2, HIDDEN)
        self.dense = torch.nn.Linear(HIDDEN, HIDDEN)
        self.norm = torch.nn.LayerNorm(HIDDEN, eps=1e-12)

    def forward(self, input_ids, attention_mask, token_type_ids):
        positions = torch.arange(input_ids.shape[1]).unsqueeze(0)
        h = (self.word(input_ids) + self.pos(positions)
             + self.segment(token_type_ids))
        h = self.norm(h + torch.tanh(self.dense(h)))
        return h * attention_mask.unsqueeze(-1).to(h.dtype)


def encode(text):
    """What the tokenizer.json below gives: lowercase, split off
    punctuation, whole words only (no ## pieces: unknown words are [UNK]),
    [CLS] ... [SEP]."""
    pieces = re.findall(r'\w+|[^\w\s]', text.lower())
    return ([VOCAB['[CLS]']] + [VOCAB.get(p, VOCAB['[UNK]']) for p in pieces]
            + [VOCAB['[SEP]']])


def tokenizer_json():
    added = [{'id': VOCAB[t], 'content': t, 'single_word': False,
              'lstrip': False, 'rstrip': False, 'normalized': False,
              'special': True} for t in SPECIAL]
    return {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': added,
        'normalizer': {'type': 'BertNormalizer', 'clean_text': True,
                       'handle_chinese_chars': True, 'strip_accents': None,
                       'lowercase': True},
        'pre_tokenizer': {'type': 'BertPreTokenizer'},
        'post_processor': {'type': 'BertProcessing',
                           'sep': ['[SEP]', VOCAB['[SEP]']],
                           'cls': ['[CLS]', VOCAB['[CLS]']]},
        'decoder': {'type': 'WordPiece', 'prefix': '##', 'cleanup': True},
        'model': {'type': 'WordPiece', 'unk_token': '[UNK]',
                  'continuing_subword_prefix': '##',
                  'max_input_chars_per_word': 100, 'vocab': VOCAB},
    }


def cmd_bert(out_dir, text):
    torch.manual_seed(SEED)
    model = TinyBert().eval()
    os.makedirs(os.path.join(out_dir, 'onnx'), exist_ok=True)
    names = ['input_ids', 'attention_mask', 'token_type_ids']
    sample = torch.tensor([[2, 5, 6, 3]])
    dynamic = {n: {0: 'batch', 1: 'sequence'}
               for n in names + ['last_hidden_state']}
    torch.onnx.export(model, (sample, torch.ones_like(sample),
                              torch.zeros_like(sample)),
                      os.path.join(out_dir, 'onnx', 'model.onnx'),
                      input_names=names, output_names=['last_hidden_state'],
                      dynamic_axes=dynamic, opset_version=14)
    files = {
        'config.json': {'architectures': ['BertModel'], 'model_type': 'bert',
                        'hidden_size': HIDDEN, 'vocab_size': len(VOCAB),
                        'max_position_embeddings': MAX_POS,
                        'num_hidden_layers': 1, 'num_attention_heads': 1,
                        'type_vocab_size': 2, 'layer_norm_eps': 1e-12,
                        'pad_token_id': VOCAB['[PAD]']},
        'tokenizer.json': tokenizer_json(),
        'tokenizer_config.json': {
            'tokenizer_class': 'BertTokenizer', 'do_lower_case': True,
            'model_max_length': MAX_POS, 'unk_token': '[UNK]',
            'cls_token': '[CLS]', 'sep_token': '[SEP]',
            'pad_token': '[PAD]', 'mask_token': '[MASK]',
            'clean_up_tokenization_spaces': True},
    }
    for name, obj in files.items():
        with open(os.path.join(out_dir, name), 'w') as f:
            json.dump(obj, f, indent=1)
    with open(os.path.join(out_dir, '.gitattributes'), 'w') as f:
        f.write(GITATTRIBUTES)
    ids = encode(text)
    x = torch.tensor([ids])
    with torch.no_grad():
        h = model(x, torch.ones_like(x), torch.zeros_like(x))
    return {'torch': torch.__version__, 'ids': ids, 'dims': list(h.shape),
            'data': h.flatten().tolist(), 'config': files['config.json']}


def main(argv):
    if len(argv) >= 2 and argv[0] == 'checkpoint':
        out = cmd_checkpoint(argv[1])
    elif len(argv) >= 2 and argv[0] == 'load':
        out = cmd_load(argv[1])
    elif len(argv) >= 3 and argv[0] == 'bert':
        out = cmd_bert(argv[1], argv[2])
    else:
        sys.exit('usage: make_torch.py checkpoint DIR | load FILE | '
                 'bert DIR TEXT')
    print(json.dumps(out))


if __name__ == '__main__':
    main(sys.argv[1:])
