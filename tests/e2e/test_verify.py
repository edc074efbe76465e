"""Whole-file sha256 check of LFS files: a CDN that serves the right length
with one wrong byte is caught when the file is read end to end (EIO and one
log line), its chunks are dropped, and the next read is right."""
import errno
import json
import subprocess

import pytest

import util
from util import read_bytes

MODEL = ('model', 'acme/tiny')


@pytest.mark.parametrize('memory', [None, '16M'])
def test_corrupt_cdn_bytes_fail_the_whole_file_check(mount, hub, memory):
    """With --cache-memory 16M the 5-chunk file does not fit in the 4
    chunk buffers: the check must still see every chunk in order."""
    info = hub.files(*MODEL, 'main')['model.safetensors']
    m = mount('acme/tiny', args=['--cache-memory', memory] if memory else [])
    path = m.path('model.safetensors')
    # every CDN answer for this blob has one byte flipped in the middle
    hub.fault(info['sha256'], action='corrupt', origin='cdn', count=1000)
    r = subprocess.run(['cat', path], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60, text=True)
    assert r.returncode != 0 and 'Input/output error' in r.stderr, (
        'a corrupted file read end to end must fail with EIO, got status '
        '%d, stderr %r' % (r.returncode, r.stderr))
    lines = [l for l in m.log_text().splitlines()
             if "do not match the file's sha256" in l]
    assert len(lines) == 1, 'want one log line, got:\n' + m.log_text()
    assert 'model.safetensors' in lines[0] and info['sha256'] in lines[0]
    st = json.loads(util.getxattr(m.mnt, 'user.hf.stats'))
    assert st['files_checked'] == 0, st

    hub.reset()
    # the kernel may keep pages of the failed read: drop them
    with open('/proc/sys/vm/drop_caches', 'w') as f:
        f.write('3\n')
    util.check_content(read_bytes(path), info, 'model.safetensors after the '
                       'corruption ended')


@pytest.mark.parametrize('memory', [None, '16M'])
def test_clean_file_passes_the_check(mount, hub, memory):
    """The check runs to the end (files_checked), also when the file's
    chunks do not all fit in memory."""
    info = hub.files(*MODEL, 'main')['model.safetensors']
    m = mount('acme/tiny', args=['--cache-memory', memory] if memory else [])
    util.check_content(read_bytes(m.path('model.safetensors')), info,
                       'model.safetensors')
    assert "sha256" not in m.log_text().replace(info['sha256'], ''), \
        m.log_text()
    st = json.loads(util.getxattr(m.mnt, 'user.hf.stats'))
    assert st['files_checked'] == 1, st


def test_random_reads_are_not_checked_but_right(mount, hub):
    """Out-of-order reads never finish the in-order hash: no false alarm."""
    info = hub.files(*MODEL, 'main')['model.safetensors']
    m = mount('acme/tiny')
    fd = util.open_fd(m.path('model.safetensors'))
    try:
        size = info['size']
        tail = util.pread(fd, 4096, size - 4096)
        head = util.pread(fd, 4096, 0)
    finally:
        util.close_fd(fd)
    assert len(tail) == 4096 and len(head) == 4096
    assert "do not match" not in m.log_text()
    st = json.loads(util.getxattr(m.mnt, 'user.hf.stats'))
    assert st['files_checked'] == 0, st
