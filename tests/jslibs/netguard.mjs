// netguard.mjs: cuts a Node process off the network so a test can prove a
// library loaded everything from local files (tests/e2e/test_jslibs.py).
//
// Importing this module, before the library under test, replaces every way
// JavaScript in Node reaches the network with a function that records the
// attempt in `attempts` and throws: the global fetch/WebSocket/EventSource
// (transformers.js binds globalThis.fetch when it is first imported, which is
// why this must come first), http/https/http2 requests, net and tls sockets
// (every TCP connection in Node goes through net.Socket.prototype.connect),
// DNS lookups, UDP sockets and child processes (a curl or wget). The ESM
// views of the built-in modules are re-synced so named imports see the
// guards too. Native add-ons opening sockets in C are not covered.
//
// A library may catch the thrown error, so callers check `attempts`, not
// just whether loading succeeded.
import child_process from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import module from 'node:module';
import net from 'node:net';
import tls from 'node:tls';

export const attempts = [];

function describe(args) {
  const a = args[0];
  if (a === undefined || a === null) return '';
  if (typeof a === 'string') return a;
  if (a instanceof URL) return a.href;
  if (typeof a === 'object') {
    if (typeof a.url === 'string') return a.url; // a Request
    if (a.host || a.hostname || a.port || a.path) {
      return `${a.protocol || ''}//${a.hostname || a.host || ''}:${a.port || ''}${a.path || ''}`;
    }
    if (Array.isArray(a)) return describe(a);
  }
  return String(a);
}

function blocker(via) {
  return function blocked(...args) {
    const target = describe(args);
    attempts.push({ via, target });
    throw new Error(`netguard: network access blocked (${via} ${target})`);
  };
}

function patch(obj, name, via) {
  if (obj && typeof obj[name] === 'function') obj[name] = blocker(via);
}

// Globals: fetch and the streaming clients built on Node's undici.
for (const name of ['fetch', 'WebSocket', 'EventSource']) {
  if (name in globalThis) {
    Object.defineProperty(globalThis, name, {
      value: blocker(name), writable: true, configurable: true,
    });
  }
}

for (const [mod, tag] of [[http, 'http'], [https, 'https']]) {
  patch(mod, 'request', `${tag}.request`);
  patch(mod, 'get', `${tag}.get`);
}
patch(http2, 'connect', 'http2.connect');
patch(net, 'connect', 'net.connect');
patch(net, 'createConnection', 'net.createConnection');
patch(net.Socket.prototype, 'connect', 'net.Socket.connect');
patch(tls, 'connect', 'tls.connect');
for (const name of ['lookup', 'lookupService', 'resolve', 'resolve4', 'resolve6', 'resolveAny']) {
  patch(dns, name, `dns.${name}`);
  patch(dns.promises, name, `dns.promises.${name}`);
}
patch(dgram, 'createSocket', 'dgram.createSocket');
for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
  patch(child_process, name, `child_process.${name}`);
}
module.syncBuiltinESMExports();
