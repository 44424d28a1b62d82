// JavaScript surface of the reader: `new Target(pid, options)`, then
// `target.info()` and `target.dump({blocking})`. Errors are thrown as JS
// Errors whose `code` is the ReaderError code.
#include <napi.h>

#include <memory>

#include "errors.h"
#include "interpreter.h"
#include "proc.h"
#include "ptrace_pause.h"
#include "stack_walker.h"

using namespace periscope;

namespace {

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
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "Target(pid, options?): pid must be a number").ThrowAsJavaScriptException();
      return;
    }
    AttachOptions opts;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object o = info[1].As<Napi::Object>();
      if (o.Has("ignoreSymbols")) opts.ignore_symbols = o.Get("ignoreSymbols").ToBoolean();
    }
    try {
      proc_ = std::make_unique<PythonProcess>(info[0].As<Napi::Number>().Int32Value(), opts);
      walker_ = std::make_unique<StackWalker>(*proc_);
    } catch (const ReaderError& e) {
      to_js_error(env, e).ThrowAsJavaScriptException();
    }
  }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("pid", proc_->pid());
    out.Set("version", proc_->version().text);
    out.Set("major", proc_->version().major);
    out.Set("minor", proc_->version().minor);
    out.Set("executable", proc_->executable());
    out.Set("binary", proc_->binary_path());
    out.Set("cmdline", proc_->cmdline());
    out.Set("locatedBy", proc_->locate_method());
    return out;
  }

  Napi::Value Dump(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bool blocking = false;
    if (info.Length() > 0 && info[0].IsObject()) blocking = info[0].As<Napi::Object>().Get("blocking").ToBoolean();
    std::vector<ThreadSample> threads;
    try {
      std::unique_ptr<PtracePause> pause;
      if (blocking) pause = std::make_unique<PtracePause>(proc_->pid());
      threads = walker_->sample(true);
    } catch (const ReaderError& e) {
      to_js_error(env, e).ThrowAsJavaScriptException();
      return env.Undefined();
    }
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
      Napi::Array frames = Napi::Array::New(env, t.frames.size());
      for (size_t j = 0; j < t.frames.size(); ++j) {
        Napi::Object f = Napi::Object::New(env);
        const FrameSample& fs = t.frames[j];
        f.Set("name", fs.code ? fs.code->name : "<unknown>");
        f.Set("filename", fs.code ? fs.code->filename : "<unknown>");
        f.Set("line", fs.line);
        frames.Set(j, f);
      }
      o.Set("frames", frames);
      arr.Set(i, o);
    }
    return arr;
  }

  std::unique_ptr<PythonProcess> proc_;
  std::unique_ptr<StackWalker> walker_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Target", Target::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(periscope_native, Init)
