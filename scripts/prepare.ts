// Builds what `npm start` serves and `npm test` exercises: the native reader,
// the web client bundle and the single-binary agent the relay hands to
// customers. Run by `npm install` (postinstall) and again, cheaply, before
// `npm start`: each step skips work that is already up to date.
import { ensureNativeBuilt } from './build-native.ts';
import { buildWeb } from './build-web.ts';
import { ensureAgentBinary } from './build-agent/index.ts';
import { missingCrossTools } from './build-agent/cross.ts';
import { ensureGlibcRuntime } from './build-agent/glibc-runtime.ts';

const log = (line: string) => console.log(`prepare: ${line}`);
ensureNativeBuilt();
log('native reader ready');
await buildWeb();
log('web client built');
await ensureAgentBinary(log);
log('agent binary ready');
ensureGlibcRuntime(log);
log('glibc runtime for machines without glibc ready');
// The arm64 agent needs Debian's cross compiler and qemu; npm install does
// not install system packages (npm run build does, as root), so without them
// the relay serves x64 only and says so for arm64.
const missing = missingCrossTools();
if (missing.length === 0) {
  await ensureAgentBinary(log, 'arm64');
  log('arm64 agent binary ready');
} else {
  log(`arm64 agent binary not built: it needs Debian's ${missing.join(' and ')} (\`npm run build\` installs them as root)`);
}
