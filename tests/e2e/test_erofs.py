"""Every kind of write gets EROFS, and nothing changes.

write(2) itself needs a writable descriptor, which the open cases below
already refuse; ftruncate likewise."""
import errno
import os

import pytest

import util

R = 'acme/tiny'
OPS = {
    'open-wronly': lambda p: os.open(p('config.json'), os.O_WRONLY),
    'open-rdwr': lambda p: os.open(p('config.json'), os.O_RDWR),
    'open-append': lambda p: os.open(p('config.json'),
                                     os.O_WRONLY | os.O_APPEND),
    'open-trunc': lambda p: os.open(p('config.json'),
                                    os.O_WRONLY | os.O_TRUNC),
    'open-rdwr-lfs': lambda p: os.open(p('model.safetensors'), os.O_RDWR),
    'create': lambda p: os.open(p('new.txt'),
                                os.O_CREAT | os.O_WRONLY, 0o644),
    'create-rdonly': lambda p: os.open(p('new.txt'),
                                       os.O_CREAT | os.O_RDONLY, 0o644),
    'create-nested': lambda p: os.open(p('nested/a/new.txt'),
                                       os.O_CREAT | os.O_WRONLY, 0o644),
    'create-at-root': lambda p: os.open(p('../../new.txt'),
                                        os.O_CREAT | os.O_WRONLY, 0o644),
    'truncate': lambda p: os.truncate(p('config.json'), 0),
    'truncate-grow': lambda p: os.truncate(p('config.json'), 1 << 20),
    'unlink': lambda p: os.unlink(p('config.json')),
    'unlink-nested': lambda p: os.unlink(p('nested/a/b/deep.txt')),
    'mkdir': lambda p: os.mkdir(p('newdir')),
    'mkdir-nested': lambda p: os.mkdir(p('nested/newdir')),
    'mkdir-namespace': lambda p: os.mkdir(p('../../new-namespace-e2e')),
    'rmdir': lambda p: os.rmdir(p('nested/a/b')),
    'rmdir-repo': lambda p: os.rmdir(p('')),
    'rename': lambda p: os.rename(p('config.json'), p('config2.json')),
    'rename-over': lambda p: os.rename(p('README.md'), p('config.json')),
    'rename-dir': lambda p: os.rename(p('nested'), p('nested2')),
    'chmod': lambda p: os.chmod(p('config.json'), 0o644),
    'chmod-dir': lambda p: os.chmod(p('nested'), 0o755),
    'chown': lambda p: os.chown(p('config.json'), 1, 1),
    'utime': lambda p: os.utime(p('config.json'), (1, 1)),
    'utime-now': lambda p: os.utime(p('config.json')),
    'setxattr': lambda p: os.setxattr(p('config.json'), 'user.x', b'1'),
    'setxattr-replace': lambda p: os.setxattr(p('config.json'),
                                              'user.hf.commit', b'0' * 40),
    'setxattr-dir': lambda p: os.setxattr(p(''), 'user.x', b'1'),
    'removexattr': lambda p: os.removexattr(p('config.json'),
                                            'user.hf.commit'),
    'symlink': lambda p: os.symlink('config.json', p('link')),
    'link': lambda p: os.link(p('config.json'), p('hardlink')),
    'mkfifo': lambda p: os.mkfifo(p('fifo')),
}


@pytest.mark.parametrize('op', sorted(OPS))
def test_write_is_erofs(mount, hub, op):
    m = mount()
    top = m.path(*R.split('/'))
    files = hub.files('model', R, 'main')
    # Look everything up first, so the write reaches a known inode.
    util.check_content(util.read_bytes(os.path.join(top, 'config.json')),
                       files['config.json'], 'config.json')
    util.listdir(os.path.join(top, 'nested', 'a', 'b'))

    def path(rel):
        """rel from the repo directory ('../../x' is MNT/x)."""
        return os.path.normpath(os.path.join(top, rel)) if rel else top

    util.expect_errno(errno.EROFS, OPS[op], path, what=op)

    # Nothing changed.
    assert sorted(util.listdir(top)) == hub.children('model', R, 'main')
    assert sorted(util.listdir(m.mnt)) == ['acme', 'datasets', 'spaces']
    util.check_content(util.read_bytes(os.path.join(top, 'config.json')),
                       files['config.json'], 'config.json after ' + op)
    s = util.stat(os.path.join(top, 'config.json'))
    assert s.st_mode & 0o7777 == 0o444 and s.st_uid == os.getuid()
    assert int(s.st_mtime) == hub.date('model', R, 'main')
    assert util.getxattr(os.path.join(top, 'config.json'),
                         'user.hf.commit') == \
        hub.commit('model', R, 'main').encode()
