// relay/http/error-status.ts is the one table from error code to HTTP status;
// docs/api.md's table of statuses is what clients were promised. They must agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HTTP_STATUS } from '../../relay/http/error-status.ts';

const API_MD = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'api.md'), 'utf8');

/** `| 409 | `USERNAME_TAKEN`, `SESSION_CLOSED` |` rows of the "Errors" table: code → status. */
function documentedStatuses(markdown: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const row of markdown.matchAll(/^\| (\d{3}) \| (.+) \|$/gm)) {
    for (const code of row[2]!.matchAll(/`([A-Z][A-Z_]+)`/g)) out.set(code[1]!, Number(row[1]));
  }
  return out;
}

test('the documented status of every error code is the one the relay answers with', () => {
  const documented = documentedStatuses(API_MD);
  assert.ok(documented.size >= 20, `only ${documented.size} codes found in docs/api.md's table`);
  const table = new Map(Object.entries(HTTP_STATUS));
  const wrong = [...documented].filter(([code, status]) => table.get(code) !== status).map(([code, status]) => `${code}: docs ${status}, relay ${table.get(code)}`);
  assert.deepEqual(wrong, []);
  const undocumented = [...table.keys()].filter((code) => !documented.has(code));
  assert.deepEqual(undocumented, [], 'add these to the table in docs/api.md');
});
