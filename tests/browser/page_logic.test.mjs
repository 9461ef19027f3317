// The page's plain-JavaScript helpers (daemon/dashboard/web/src/api.js) under Node, no browser:
// the caps that keep a page open for a day from growing, and the proto3 JSON decoding.
import assert from 'node:assert/strict';
import test from 'node:test';
import { capped, fmtDuration, fmtNumber, jobState, num, query } from '../../daemon/dashboard/web/src/api.js';

test('capped keeps the newest `cap` items however many arrive', () => {
  let list = [];
  for (let i = 0; i < 5000; ++i) list = capped(list, i, 1000);
  assert.equal(list.length, 1000);
  assert.equal(list[0], 4000);
  assert.equal(list[999], 4999);
  assert.deepEqual(capped([1, 2], 3, 1000), [1, 2, 3]);
});

test('proto3 JSON: enum names, int64 strings and omitted zeros', () => {
  assert.equal(jobState('JOB_STATE_KILLED'), 'killed');
  assert.equal(jobState(undefined), 'unknown');
  assert.equal(jobState('JOB_STATE_UNSPECIFIED'), 'unknown');
  assert.equal(num('1765000000000'), 1765000000000);
  assert.equal(num(undefined), 0);
  assert.equal(fmtNumber(0.45), '0.4500');
  assert.equal(fmtNumber(1), '1');
  assert.equal(fmtDuration(3725), '1h 2m');
  assert.equal(query({ state: 'running', owner: '', q: undefined, limit: 50 }), '?state=running&limit=50');
  assert.equal(query({}), '');
});
