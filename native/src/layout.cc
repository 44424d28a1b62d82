#include "layout.h"

namespace periscope {

namespace {
using F = FrameModel;
using G = GilSource;
using D = InstanceDict;
using L = Locate;

// Generator frame states: 3.14 {CREATED -3, SUSPENDED -2, SUSPENDED_YIELD_FROM
// -1, EXECUTING 0, COMPLETED 1, CLEARED 4}; 3.15 {CREATED 0, SUSPENDED 1,
// SUSPENDED_YIELD_FROM 2, ..._LOCKED 3, EXECUTING 4, CLEARED 5}. Only 3.14+
// rows carry them (asyncio task stacks need 3.14's AsyncioDebug section).
// Frame owners (enum _frameowner): 3.12-3.13 put C-stack shims at 3; 3.14
// inserted FRAME_OWNED_BY_INTERPRETER at 3 and moved the C stack to 4; 3.15
// dropped the C-stack owner and ends each chain at a base frame instead.
constexpr VersionTraits kVersions[] = {
    // major minor locate frames     lines          lasti gil                    instance dict         cstack interp tagged base  ftbyte
    {2, 7, L::kInterpHead, F::kFrameObjects, kLnotab27, 1, G::kThreadStateGlobal, D::kDict27, -1, -1, false, false, false},
    {3, 6, L::kInterpHead, F::kFrameObjects, kLnotab36, 1, G::kThreadStateGlobal, D::kDictKeys36, -1, -1, false, false, false},
    {3, 7, L::kRuntime, F::kFrameObjects, kLnotab36, 1, G::kRuntimeGilstate, D::kDictKeys36, -1, -1, false, false, false},
    {3, 8, L::kRuntime, F::kFrameObjects, kLnotab36, 1, G::kRuntimeGilstate, D::kDictKeys36, -1, -1, false, false, false},
    {3, 9, L::kRuntime, F::kFrameObjects, kLnotab36, 1, G::kRuntimeGilstate, D::kDictKeys36, -1, -1, false, false, false},
    {3, 10, L::kRuntime, F::kFrameObjects, kLinetable310, 2, G::kRuntimeGilstate, D::kDictKeys36, -1, -1, false, false, false},
    {3, 11, L::kRuntime, F::kCFrame, kLocations311, 1, G::kRuntimeGilstate, D::kManaged311, -1, -1, false, false, false},
    {3, 12, L::kRuntime, F::kCFrame, kLocations311, 1, G::kInterpreterGil, D::kDictOrValues312, 3, -1, false, false, false},
    {3, 13, L::kDebugOffsets, F::kCurrentFrame, kLocations311, 1, G::kInterpreterGil, D::kInlineValues313, 3, -1, false, false, false},
    {3, 14, L::kDebugOffsets, F::kCurrentFrame, kLocations311, 1, G::kInterpreterGil, D::kInlineValues313, 4, 3, true, false, true, -1, -1, 1, 1},
    {3, 15, L::kDebugOffsets, F::kCurrentFrame, kLocations311, 1, G::kThreadFlag, D::kInlineValues313, -1, 3, true, true, true, 2, 3, 5, 2},
};
}  // namespace

const VersionTraits* traits_for(int major, int minor) {
  for (const VersionTraits& t : kVersions)
    if (t.major == major && t.minor == minor) return &t;
  const VersionTraits& newest = kVersions[sizeof kVersions / sizeof kVersions[0] - 1];
  if (major == newest.major && minor > newest.minor) return &newest;
  return nullptr;
}

Features features_for(const VersionTraits& t, bool free_threaded, const DebugOnlyOffsets& dbg) {
  Features f;
  f.traits = t;
  f.free_threaded = free_threaded;
  f.per_thread_bytecode = free_threaded && dbg.code_tlbc > 0 && dbg.iframe_tlbc_index > 0;
  // _PyStackRef keeps tag bits in the low two bits; objects are 8-aligned.
  f.executable_mask = t.tagged_stackrefs ? ~3ULL : ~0ULL;
  // state is {interned:2, kind:3, compact:1, ascii:1, ...}; free-threaded
  // 3.14+ makes interned a whole byte so it can be read atomically.
  f.unicode_kind_shift = free_threaded && t.ft_interned_byte ? 8 : 2;
  f.bytes_strings = t.major == 2;
  // A newer version read with the 3.15 row whose table lacks holds_gil
  // still has the interpreter's GIL struct.
  if (t.gil == GilSource::kThreadFlag && dbg.tstate_holds_gil < 0) f.traits.gil = GilSource::kInterpreterGil;
  return f;
}

}  // namespace periscope
