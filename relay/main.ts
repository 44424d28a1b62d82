// `npm start`: run the relay with configuration from the environment.
import { closeSync, writeSync } from 'node:fs';
import { loadConfig, publicUrlWarning } from './config.ts';
import { startRelay } from './relay.ts';
import { isPeriscopeError } from '../shared/errors.ts';

// Everything the relay writes (database, WAL, key, chunk files) is for its own user only.
process.umask(0o077);

async function runRelay(): Promise<void> {
  const relay = await startRelay(loadConfig());
  console.log(`periscope relay listening on ${relay.url}`);
  console.log(`open ${relay.publicUrl} and sign in as admin`);
  if (relay.generatedAdminPassword !== undefined) {
    console.log(`admin password (generated now, shown only this once): ${relay.generatedAdminPassword}`);
  } else if (relay.adminCreated) {
    console.log('admin password: the one in PERISCOPE_ADMIN_PASSWORD');
  }
  console.log("then create a support session and paste its command into the customer's container");
  if (!relay.publicUrlConfigured) {
    for (const line of publicUrlWarning(relay.publicUrl)) console.log(line);
  }
  // For harnesses (test/helpers/relay.ts): a pipe that gets one JSON line once listening, after the banner.
  const readyFd = Number(process.env.PERISCOPE_READY_FD);
  if (readyFd > 2) {
    writeSync(readyFd, `${JSON.stringify({ url: relay.url, publicUrl: relay.publicUrl, pid: process.pid })}\n`);
    closeSync(readyFd);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`periscope relay: ${signal}, shutting down`);
    relay.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`periscope relay: error while shutting down: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

try {
  if (process.argv.includes('--demo')) await (await import('./demo/demo.ts')).runDemo();
  else await runRelay();
} catch (err) {
  if (isPeriscopeError(err)) {
    console.error(`periscope relay: ${err.code}: ${err.message}`);
  } else {
    console.error(`periscope relay: could not start: ${(err as Error).stack ?? String(err)}`);
  }
  process.exit(1);
}
