// Drives the native Sampler at RATE Hz for SECONDS on PID, draining it like
// Capture does, and prints `samples N ticks M`: the program bench/callgrind.ts
// runs under valgrind.
//   node bench/lib/sampler-driver.ts PID SECONDS RATE
import { loadNative } from '../../agent/native.ts';

interface Batch {
  stats: { samples: number; ticks: number };
}
interface NativeSampler {
  start(): void;
  stop(): void;
  drain(): Batch;
}
type SamplerCtor = new (pid: number, o: { rate: number; duration: number; subprocesses: boolean; blocking: boolean }) => NativeSampler;

const [pid, seconds, rate] = process.argv.slice(2).map(Number);
const { Sampler } = loadNative() as unknown as { Sampler: SamplerCtor };
const sampler = new Sampler(pid!, { rate: rate!, duration: 0, subprocesses: false, blocking: false });
sampler.start();
const timer = setInterval(() => sampler.drain(), 100);
await new Promise((resolve) => setTimeout(resolve, seconds! * 1000));
sampler.stop();
clearInterval(timer);
const last = sampler.drain();
console.log(`samples ${last.stats.samples} ticks ${last.stats.ticks}`);
