// Size and start-up figures of the single binary, printed by `npm run build`
// and checked by test/build/single-binary.test.ts.
import { spawnSync } from 'node:child_process';
import { createReadStream, statSync } from 'node:fs';
import { createGzip, constants } from 'node:zlib';

export interface Figures {
  rawBytes: number;
  rawMiB: number;
  gzipBytes: number;
  gzipMiB: number;
  versionMs: number; // median wall time of `BINARY --version`
  runs: number;
}

const MiB = 1024 * 1024;

export async function gzipSize(path: string): Promise<number> {
  let bytes = 0;
  const gz = createGzip({ level: constants.Z_BEST_COMPRESSION });
  gz.on('data', (chunk: Buffer) => (bytes += chunk.length));
  const done = new Promise<void>((resolve, reject) => {
    gz.on('end', resolve);
    gz.on('error', reject);
  });
  createReadStream(path).pipe(gz);
  await done;
  return bytes;
}

export function medianWallMs(command: string, args: string[], runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(command, args, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${r.status}`);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** `run` turns the arguments into the command to time (an arm64 binary runs under qemu). */
export async function measure(binary: string, runs = 7, run: (args: string[]) => [string, string[]] = (args) => [binary, args]): Promise<Figures> {
  const rawBytes = statSync(binary).size;
  const gzipBytes = await gzipSize(binary);
  const [command, args] = run(['--version']);
  return { rawBytes, rawMiB: rawBytes / MiB, gzipBytes, gzipMiB: gzipBytes / MiB, versionMs: medianWallMs(command, args, runs), runs };
}
