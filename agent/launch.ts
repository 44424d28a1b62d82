// `periscope record -- python3 app.py`: start the program, then attach once
// its interpreter is up (it is not, for the first milliseconds after exec).
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { PeriscopeError, isPeriscopeError } from '../shared/errors.ts';

export interface Launched {
  child: ChildProcess;
  exited: Promise<number>;
}

/** Starts the program; rejects with BAD_ARGUMENT when it cannot be started at all. */
export async function launch(command: string[]): Promise<Launched> {
  if (command.length === 0) throw new PeriscopeError('BAD_ARGUMENT', 'nothing to run after `--`');
  const child = spawn(command[0], command.slice(1), { stdio: 'inherit' });
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) =>
      reject(new PeriscopeError('BAD_ARGUMENT', `cannot start ${JSON.stringify(command[0])}: ${err.message}`)),
    );
  });
  return { child, exited };
}

/** Retries `attach` while the new process is still starting its interpreter. */
export async function attachWhenReady<T>(pid: number, attach: () => T, exited: Promise<number>, timeoutMs = 10_000): Promise<T> {
  let gone = false;
  void exited.then(() => (gone = true), () => (gone = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return attach();
    } catch (err) {
      // Until the interpreter is initialised it can look like anything from
      // "not Python" to "unreadable version data" (3.13's debug offsets).
      const retriable = isPeriscopeError(err) && ['NOT_PYTHON', 'READ_FAILED', 'UNSUPPORTED_VERSION'].includes(err.code);
      if (!retriable || gone || Date.now() > deadline) {
        if (gone) throw new PeriscopeError('PROCESS_EXITED', `the program (pid ${pid}) exited before its Python interpreter could be attached`);
        throw err;
      }
      await sleep(5);
    }
  }
}
