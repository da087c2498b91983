import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser } from './sse-reader.js';

const STREAM = '\ufeffretry: 250\r\n: connected\r\n\r\nid: e-1\r\nevent: order.paid\r\ndata: {"a":1}\r\n\r\n' +
  'id: e-2\rdata: line one\rdata:line two\r\r: heartbeat\n\nid: e-3\nevent: herald.reset\ndata: {}\n\n';

test('reads the same messages whatever the chunk boundaries, CR, LF or CRLF, with the retry hint and the last id', () => {
  const expected = [
    { id: 'e-1', event: 'order.paid', data: '{"a":1}' },
    { id: 'e-2', event: 'message', data: 'line one\nline two' },
    { id: 'e-3', event: 'herald.reset', data: '{}' },
  ];
  for (let size = 1; size <= STREAM.length; size++) {
    const parser = new SseParser();
    const got = [];
    for (let i = 0; i < STREAM.length; i += size) got.push(...parser.push(STREAM.slice(i, i + size)));
    assert.deepEqual(got, expected, `chunks of ${size}`);
    assert.equal(parser.retryMs, 250);
    assert.equal(parser.lastId, 'e-3');
  }
});

test('an id with no data moves the last id but dispatches nothing; an incomplete message waits', () => {
  const parser = new SseParser('start');
  assert.deepEqual(parser.push('id: e-9\n\ndata: half'), []);
  assert.equal(parser.lastId, 'e-9');
  assert.deepEqual(parser.push('\n\n'), [{ id: 'e-9', event: 'message', data: 'half' }]);
});
