"""A real headless Chromium driven through the DevTools protocol, for page tests.

Chromium comes from the system's packages (scripts/setup.sh installs Debian's ``chromium``);
the protocol is spoken over one websocket (``websocket-client``). The browser starts with a
fresh profile and every background service off: the machine has no network, and the update
and sync services would flood the log with errors.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from typing import List, Optional

FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run',
         '--remote-debugging-port=0', '--window-size=1280,900']


def chromium_path() -> Optional[str]:
    return shutil.which('chromium') or shutil.which('chromium-browser')


class Browser:
    """``with Browser() as b: b.open(url); b.evaluate('1 + 1'); b.screenshot()``."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.errors: List[str] = []   # console errors, uncaught exceptions, failed loads
        self._ids = itertools.count(1)

    def __enter__(self) -> 'Browser':
        import websocket
        self.profile = tempfile.mkdtemp(prefix='mmcam-chromium-')
        self.proc = subprocess.Popen([chromium_path(), *FLAGS, f'--user-data-dir={self.profile}',
                                      'about:blank'], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, 'DevToolsActivePort')
        deadline = time.time() + self.timeout
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f'Chromium did not start (exit {self.proc.poll()})')
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        pages = json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list'))
        url = next(p for p in pages if p['type'] == 'page')['webSocketDebuggerUrl']
        self.ws = websocket.create_connection(url, timeout=self.timeout)
        for domain in ('Page', 'Runtime', 'Log', 'Network'):
            self.call(f'{domain}.enable')
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)

    def _event(self, msg: dict) -> None:
        method, params = msg.get('method'), msg.get('params', {})
        if method == 'Runtime.consoleAPICalled' and params.get('type') in ('error', 'assert'):
            self.errors.append('console: ' + ' '.join(str(a.get('value', a.get('description')))
                                                      for a in params.get('args', [])))
        elif method == 'Runtime.exceptionThrown':
            self.errors.append('exception: ' + params['exceptionDetails'].get('text', ''))
        elif method == 'Log.entryAdded' and params['entry'].get('level') == 'error':
            self.errors.append('log: ' + params['entry'].get('text', '') + ' ' +
                               params['entry'].get('url', ''))
        elif method == 'Network.loadingFailed':
            self.errors.append('load failed: ' + params.get('errorText', ''))

    def call(self, method: str, **params) -> dict:
        """Send one command and return its result (events met on the way are recorded)."""
        msg_id = next(self._ids)
        self.ws.send(json.dumps(dict(id=msg_id, method=method, params=params)))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get('id') == msg_id:
                if 'error' in msg:
                    raise RuntimeError(f'{method}: {msg["error"]}')
                return msg.get('result', {})
            self._event(msg)

    def open(self, url: str) -> None:
        """Navigate and wait for the load event (every image loaded or failed)."""
        self.call('Page.navigate', url=url)
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            msg = json.loads(self.ws.recv())
            self._event(msg)
            if msg.get('method') == 'Page.loadEventFired':
                return
        raise TimeoutError(f'{url} did not load within {self.timeout} s')

    def evaluate(self, expression: str):
        result = self.call('Runtime.evaluate', expression=expression, returnByValue=True)
        if 'exceptionDetails' in result:
            raise RuntimeError(f'{expression}: {result["exceptionDetails"]}')
        return result['result'].get('value')

    def screenshot(self) -> bytes:
        """PNG of the whole page."""
        height = self.evaluate('document.documentElement.scrollHeight')
        self.call('Emulation.setDeviceMetricsOverride', width=1280, height=min(int(height), 4000),
                  deviceScaleFactor=1, mobile=False)
        return base64.b64decode(self.call('Page.captureScreenshot', format='png')['data'])
