// No source map by default: the web build makes none, and the relay's static
// file handler never serves a .map file, even one a debugging build left in
// web/dist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildWeb } from '../../scripts/build-web.ts';
import { staticFiles } from '../../relay/http/static-files.ts';

test('the web build has no source map unless asked for one', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'periscope-web-build-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = await buildWeb({ outdir: join(dir, 'dist') });
  assert.deepEqual(readdirSync(out).filter((f) => f.endsWith('.map')), []);
  assert.doesNotMatch(readFileSync(join(out, 'main.js'), 'utf8'), /sourceMappingURL/);

  const debug = await buildWeb({ outdir: join(dir, 'debug'), sourcemap: true });
  assert.match(readFileSync(join(debug, 'main.js'), 'utf8'), /sourceMappingURL=data:/);
});

test('the relay does not serve .map files from web/dist', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'periscope-web-dist-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title>');
  writeFileSync(join(dir, 'main.js'), 'console.log(1);\n//# sourceMappingURL=main.js.map\n');
  writeFileSync(join(dir, 'main.js.map'), '{"version":3,"sources":["secret.ts"],"mappings":""}');
  const app = staticFiles(dir);
  assert.equal((await app.request('/main.js')).status, 200);
  for (const path of ['/main.js.map', '/MAIN.JS.MAP', '/main.js%2Emap']) {
    const res = await app.request(path);
    assert.equal(res.status, 404, path);
    assert.doesNotMatch(await res.text(), /secret\.ts/, path);
  }
});
