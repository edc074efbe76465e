"""PyTorch loads a checkpoint straight from an hfmount mount.

tests/loaders/make_torch.py (under Debian's python3-torch) torch.saves a
state dict of eight tensors, float32/float16/bfloat16/float64/int64/int8/
bool/int32 and a 0-d one, the float32 one 20 MiB so the file spans five of
hfmount's 4 MiB chunks; the `repo_hub` fixture publishes it as model
acme/torchy (an LFS file, as on the Hub). A /usr/bin/python3 subprocess then
torch.loads the mounted file, with mmap=True where the installed torch has
it (torch >= 2.1), else weights_only=True (torch >= 1.13), and compares
every tensor with a fresh build of the same seeded state dict: torch.equal,
dtype and shape, and no tensor missing or extra. The fake Hub's request log
shows every byte of the file came from its CDN (by the file's sha256).

Torch runs in a subprocess with a timeout because importing it is slow and
must not hang pytest. Without python3-torch the test fails and says how to
install it.
"""
import json
import os
import re

import pytest

import util

MAKE_TORCH = os.path.join(util.REPO, 'tests', 'loaders', 'make_torch.py')
TORCH_TIMEOUT = 120
REPO_ID = 'acme/torchy'
CHECKPOINT = 'pytorch_model.bin'
INSTALL = 'apt-get install -y python3-torch'


def run_make_torch(*args):
    """make_torch.py ARGS under /usr/bin/python3: its JSON output."""
    r = util.run_cmd([util.PYTHON, MAKE_TORCH] + list(args),
                     timeout=TORCH_TIMEOUT)
    if 'needs PyTorch' in r.stderr:
        pytest.fail('PyTorch is missing for %s: %s' % (util.PYTHON, INSTALL),
                    pytrace=False)
    assert r.returncode == 0, 'make_torch.py %s exited %d:\n%s\n%s' % (
        ' '.join(args), r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def torch_version(s):
    m = re.match(r'(\d+)\.(\d+)', s)
    assert m, 'unparsable torch version %r' % s
    return int(m.group(1)), int(m.group(2))


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    d = str(tmp_path_factory.mktemp('torchy'))
    made = run_make_torch('checkpoint', d)
    size = os.path.getsize(os.path.join(d, CHECKPOINT))
    assert size > 16 << 20, 'checkpoint is only %d bytes' % size
    return d, made, size


def test_torch_load_from_mount(mount, repo_hub, checkpoint):
    src, made, size = checkpoint
    h = repo_hub({REPO_ID: src})
    m = mount(endpoint=h.api)
    path = m.path(*REPO_ID.split('/'), CHECKPOINT)
    assert util.stat(path).st_size == size

    got = run_make_torch('load', path)
    # The loader used the cheapest way this torch has.
    mmap_ok = torch_version(got['torch']) >= (2, 1)
    assert ('mmap' in got['load_kwargs']) == mmap_ok, (got['torch'],
                                                       got['load_kwargs'])
    if torch_version(got['torch']) >= (1, 13):
        assert 'weights_only' in got['load_kwargs'], got['load_kwargs']

    want = made['tensors']
    assert got['keys'] == list(want), (
        'keys %r, the checkpoint has %r' % (got['keys'], list(want)))
    for name, info in want.items():
        t = got['tensors'][name]
        assert (t.get('dtype'), t.get('shape')) == (info['dtype'],
                                                    info['shape']), (name, t)
        assert t.get('equal') is True, (
            '%s read from the mount differs from what torch.save wrote'
            % name)

    # Every byte came from the CDN: the rows for this file's sha256 cover it.
    with open(os.path.join(src, CHECKPOINT), 'rb') as f:
        digest = util.sha256(f.read())
    rows = h.requests()
    spans = []
    for r in rows:
        if (util.classify(r) != 'cdn' or digest not in (r.get('path') or '')
                or r.get('status') not in (200, 206)):
            continue
        rng = re.fullmatch(r'bytes=(\d+)-(\d*)', r.get('range') or '')
        if not rng:
            spans.append((0, size))
        else:
            end = int(rng.group(2)) + 1 if rng.group(2) else size
            spans.append((int(rng.group(1)), min(end, size)))
    covered = 0
    for a, b in sorted(spans):
        if a > covered:
            break
        covered = max(covered, b)
    assert covered == size, (
        '%s came through the CDN only up to byte %d of %d:\n%s'
        % (CHECKPOINT, covered, size, util.fmt_rows(rows)))
