"""Holds the fake Hub to a client nobody here wrote: the official @huggingface/hub (JS).

Runs tests/js/check_fakehub.mjs with node against a fresh fakehub. Needs
`npm install --prefix tests/js` first (CI does it); without node_modules the test fails and
says so, rather than skipping, so a missing install step cannot pass unnoticed.
"""

import os
import shutil
import subprocess

import pytest

from test_fakehub import ALICE, Hub

HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.normpath(os.path.join(HERE, "..", "js"))
NODE_TIMEOUT = 120


@pytest.fixture
def hub(tmp_path):
    h = Hub(str(tmp_path))
    try:
        yield h
    finally:
        h.stop()


def test_official_js_client_agrees_with_the_fixture(hub):
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@huggingface", "hub")):
        pytest.fail("tests/js/node_modules is missing: run `npm install --prefix tests/js` "
                    "(or `npm ci --prefix tests/js` with a lock file) first")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH; install nodejs and npm, then "
                    "`npm install --prefix tests/js`")
    proc = subprocess.run([node, os.path.join(JS_DIR, "check_fakehub.mjs"), hub.urls["api"]],
                          cwd=JS_DIR, capture_output=True, text=True, timeout=NODE_TIMEOUT)
    assert proc.returncode == 0, "check_fakehub.mjs failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    assert "checks passed" in proc.stdout

    # The client really went through the routes it claims to test.
    rows = hub.ctl("requests")
    assert any("cursor=" in r["query"] and "/tree/main/many" in r["path"] for r in rows), \
        "listFiles followed the Link header"
    assert any(r["origin"] == "cdn" and r["status"] == 206 for r in rows), "CDN range probe"
    assert any(r["path"].startswith("/api/resolve-cache/") for r in rows), "307 followed"
    assert any(r["path"] == "/api/whoami-v2" and r["token"] == ALICE and r["status"] == 200
               for r in rows)
    assert all(r["status"] != 500 for r in rows)
    assert "Traceback" not in hub.read_stderr()
