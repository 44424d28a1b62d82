// JavaScript surface of the reader: `new Target(pid, options)`, then
// `target.info()` and `target.dump({blocking})`. Errors are thrown as JS
// Errors whose `code` is the ReaderError code.
#include <napi.h>

#include <cstring>
#include <memory>

#include "asyncio_tasks.h"
#include "errors.h"
#include "interpreter.h"
#include "proc.h"
#include "ptrace_pause.h"
#include "sampler.h"
#include "stack_walker.h"

using namespace periscope;

namespace {

// Both classes take (pid, options?): checks the pid and reads the options they
// share. Returns false (with a JS exception pending) when the pid is missing.
bool target_arguments(const Napi::CallbackInfo& info, const char* what, pid_t* pid, AttachOptions* attach) {
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(info.Env(), std::string(what) + "(pid, options?): pid must be a number").ThrowAsJavaScriptException();
    return false;
  }
  *pid = info[0].As<Napi::Number>().Int32Value();
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    if (o.Has("ignoreSymbols")) attach->ignore_symbols = o.Get("ignoreSymbols").ToBoolean();
  }
  return true;
}

// What both classes report about an attached process.
Napi::Object process_info(Napi::Env env, const PythonProcess& p) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", p.pid());
  out.Set("version", p.version().text);
  out.Set("major", p.version().major);
  out.Set("minor", p.version().minor);
  out.Set("executable", p.executable());
  out.Set("binary", p.binary_path());
  out.Set("cmdline", p.cmdline());
  out.Set("locatedBy", p.locate_method());
  out.Set("freeThreaded", p.layout().features.free_threaded);
  out.Set("gilEnabled", p.gil_enabled());
  out.Set("memoryReader", p.memory().method());
  return out;
}

Napi::Error to_js_error(Napi::Env env, const ReaderError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, e.code()));
  return err;
}

class Target : public Napi::ObjectWrap<Target> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Target",
                       {InstanceMethod("info", &Target::Info), InstanceMethod("dump", &Target::Dump)});
  }

  explicit Target(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Target>(info) {
    Napi::Env env = info.Env();
    pid_t pid = 0;
    AttachOptions opts;
    if (!target_arguments(info, "Target", &pid, &opts)) return;
    try {
      proc_ = std::make_unique<PythonProcess>(pid, opts);
      walker_ = std::make_unique<StackWalker>(*proc_);
    } catch (const ReaderError& e) {
      to_js_error(env, e).ThrowAsJavaScriptException();
    }
  }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) { return process_info(info.Env(), *proc_); }

  static Napi::Array frames_to_js(Napi::Env env, const std::vector<FrameSample>& frames) {
    Napi::Array out = Napi::Array::New(env, frames.size());
    for (size_t j = 0; j < frames.size(); ++j) {
      Napi::Object f = Napi::Object::New(env);
      const FrameSample& fs = frames[j];
      f.Set("name", fs.code ? fs.code->name : "<unknown>");
      f.Set("filename", fs.code ? fs.code->filename : "<unknown>");
      f.Set("line", fs.line);
      out.Set(j, f);
    }
    return out;
  }

  static Napi::Array threads_to_js(Napi::Env env, const std::vector<ThreadSample>& threads) {
    Napi::Array arr = Napi::Array::New(env, threads.size());
    for (size_t i = 0; i < threads.size(); ++i) {
      const ThreadSample& t = threads[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("threadId", Napi::Number::New(env, static_cast<double>(t.thread_id)));
      o.Set("osThreadId", Napi::Number::New(env, static_cast<double>(t.os_tid)));
      o.Set("name", t.name.empty() ? env.Null() : Napi::String::New(env, t.name));
      o.Set("active", t.active);
      o.Set("ownsGil", t.owns_gil);
      o.Set("truncated", t.truncated);
      o.Set("frames", frames_to_js(env, t.frames));
      arr.Set(i, o);
    }
    return arr;
  }

  static Napi::Array tasks_to_js(Napi::Env env, const std::vector<TaskSample>& tasks) {
    Napi::Array arr = Napi::Array::New(env, tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) {
      const TaskSample& t = tasks[i];
      Napi::Object o = Napi::Object::New(env);
      // Addresses are user-space pointers (< 2^47): exact as doubles.
      o.Set("address", Napi::Number::New(env, static_cast<double>(t.address)));
      o.Set("threadId", Napi::Number::New(env, static_cast<double>(t.thread_id)));
      o.Set("name", t.has_name ? Napi::Value(Napi::String::New(env, t.name)) : env.Null());
      o.Set("running", t.running);
      o.Set("truncated", t.truncated);
      o.Set("frames", frames_to_js(env, t.frames));
      Napi::Array ab = Napi::Array::New(env, t.awaited_by.size());
      for (size_t j = 0; j < t.awaited_by.size(); ++j) ab.Set(j, Napi::Number::New(env, static_cast<double>(t.awaited_by[j])));
      o.Set("awaitedBy", ab);
      arr.Set(i, o);
    }
    return arr;
  }

  // dump({blocking, asyncio}): the threads; with asyncio, an object
  // {threads, tasks, tasksUnavailable, tasksTruncated} read in the same
  // snapshot (and the same pause).
  Napi::Value Dump(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bool blocking = false, with_tasks = false;
    if (info.Length() > 0 && info[0].IsObject()) {
      Napi::Object opts = info[0].As<Napi::Object>();
      blocking = opts.Get("blocking").ToBoolean();
      with_tasks = opts.Get("asyncio").ToBoolean();
    }
    std::vector<ThreadSample> threads;
    const std::vector<TaskSample>* tasks = nullptr;
    std::string unavailable;
    bool tasks_truncated = false;
    try {
      std::unique_ptr<PtracePause> pause;
      if (blocking) pause = std::make_unique<PtracePause>(proc_->pid());
      threads = walker_->sample(true, 0, pause ? &pause->running_before() : nullptr);
      if (with_tasks) {
        // The _asyncio extension may be imported after attach: look until found.
        if (!asyncio_found_) asyncio_found_ = find_asyncio_offsets(*proc_, &asyncio_, &unavailable);
        if (asyncio_found_) tasks = &walker_->sample_tasks(asyncio_, &tasks_truncated);
      }
    } catch (const ReaderError& e) {
      to_js_error(env, e).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array arr = threads_to_js(env, threads);
    if (!with_tasks) return arr;
    Napi::Object out = Napi::Object::New(env);
    out.Set("threads", arr);
    out.Set("tasks", tasks ? Napi::Value(tasks_to_js(env, *tasks)) : env.Null());
    out.Set("tasksUnavailable", tasks ? env.Null() : Napi::Value(Napi::String::New(env, unavailable)));
    out.Set("tasksTruncated", tasks_truncated);
    return out;
  }

  AsyncioOffsets asyncio_;
  bool asyncio_found_ = false;
  std::unique_ptr<PythonProcess> proc_;
  std::unique_ptr<StackWalker> walker_;
};

template <class T, class Arr>
Arr typed(Napi::Env env, const std::vector<T>& v) {
  Arr a = Arr::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(T));
  return a;
}

class SamplerWrap : public Napi::ObjectWrap<SamplerWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Sampler",
                       {InstanceMethod("start", &SamplerWrap::Start), InstanceMethod("stop", &SamplerWrap::Stop),
                        InstanceMethod("drain", &SamplerWrap::Drain), InstanceMethod("info", &SamplerWrap::Info)});
  }

  explicit SamplerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SamplerWrap>(info) {
    Napi::Env env = info.Env();
    pid_t pid = 0;
    SamplerOptions opts;
    if (!target_arguments(info, "Sampler", &pid, &opts.attach)) return;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object o = info[1].As<Napi::Object>();
      if (o.Has("rate")) opts.rate_hz = o.Get("rate").ToNumber().DoubleValue();
      if (o.Has("duration")) opts.duration_s = o.Get("duration").ToNumber().DoubleValue();
      if (o.Has("subprocesses")) opts.subprocesses = o.Get("subprocesses").ToBoolean();
      if (o.Has("blocking")) opts.blocking = o.Get("blocking").ToBoolean();
    }
    if (!(opts.rate_hz > 0 && opts.rate_hz <= 100000) || !(opts.duration_s >= 0)) {
      Napi::RangeError::New(env, "Sampler: rate must be in (0, 100000] Hz and duration >= 0").ThrowAsJavaScriptException();
      return;
    }
    try {
      sampler_ = std::make_unique<Sampler>(pid, opts);
    } catch (const ReaderError& e) {
      to_js_error(env, e).ThrowAsJavaScriptException();
    }
  }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    sampler_->start();
    return info.Env().Undefined();
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    sampler_->stop();
    return info.Env().Undefined();
  }
  Napi::Value Info(const Napi::CallbackInfo& info) { return process_info(info.Env(), sampler_->root()); }
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SampleBatch b = sampler_->drain();
    Napi::Object out = Napi::Object::New(env);
    Napi::Array codes = Napi::Array::New(env, b.codes.size());
    for (size_t i = 0; i < b.codes.size(); ++i) {
      Napi::Object c = Napi::Object::New(env);
      c.Set("id", b.codes[i].id);
      c.Set("name", b.codes[i].name);
      c.Set("filename", b.codes[i].filename);
      c.Set("firstLine", b.codes[i].first_line);
      codes.Set(i, c);
    }
    Napi::Array threads = Napi::Array::New(env, b.threads.size());
    for (size_t i = 0; i < b.threads.size(); ++i) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("pid", b.threads[i].pid);
      t.Set("tid", b.threads[i].tid);
      t.Set("ident", Napi::Number::New(env, static_cast<double>(b.threads[i].ident)));
      t.Set("name", b.threads[i].name);
      threads.Set(i, t);
    }
    Napi::Array processes = Napi::Array::New(env, b.processes.size());
    for (size_t i = 0; i < b.processes.size(); ++i) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("pid", b.processes[i].pid);
      p.Set("event", b.processes[i].event);
      p.Set("cmdline", b.processes[i].cmdline);
      p.Set("version", b.processes[i].version);
      processes.Set(i, p);
    }
    out.Set("codes", codes);
    out.Set("threads", threads);
    out.Set("processes", processes);
    out.Set("timeUs", typed<double, Napi::Float64Array>(env, b.time_us));
    out.Set("pid", typed<int32_t, Napi::Int32Array>(env, b.pid));
    out.Set("tid", typed<int32_t, Napi::Int32Array>(env, b.tid));
    out.Set("flags", typed<uint8_t, Napi::Uint8Array>(env, b.flags));
    out.Set("nframes", typed<uint32_t, Napi::Uint32Array>(env, b.nframes));
    out.Set("frames", typed<int32_t, Napi::Int32Array>(env, b.frames));
    Napi::Object stats = Napi::Object::New(env);
    stats.Set("samples", static_cast<double>(b.samples));
    stats.Set("ticks", static_cast<double>(b.ticks));
    stats.Set("late", static_cast<double>(b.late));
    stats.Set("errors", static_cast<double>(b.errors));
    stats.Set("dropped", static_cast<double>(b.dropped));
    stats.Set("samplerCpuUs", b.sampler_cpu_us);
    stats.Set("walkUs", b.walk_us);
    out.Set("stats", stats);
    if (!b.last_error_code.empty()) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("code", b.last_error_code);
      e.Set("message", b.last_error_message);
      out.Set("lastError", e);
    } else {
      out.Set("lastError", env.Null());
    }
    out.Set("ended", b.ended);
    out.Set("endReason", b.ended ? Napi::Value(Napi::String::New(env, b.end_reason)) : env.Null());
    return out;
  }

  std::unique_ptr<Sampler> sampler_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Target", Target::Init(env));
  exports.Set("Sampler", SamplerWrap::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(periscope_native, Init)
