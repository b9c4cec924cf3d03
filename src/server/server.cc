#include "server/server.h"

#include <signal.h>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <ostream>
#include <thread>

#include "common/status.h"
#include "common/strings.h"
#include "common/temp_files.h"
#include "net/http_server.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "server/collect_service.h"
#include "server/decide_service.h"
#include "server/experience_service.h"
#include "server/import_export.h"
#include "server/models_service.h"
#include "server/profile_service.h"
#include "server/request_context.h"
#include "server/workspaces.h"
#include "shard/shard_set.h"
#include "storage/store.h"

namespace whisperer {
extern const std::string_view kOpenApiDocument;  // docs/openapi.json, see src/CMakeLists.txt
}

namespace whisperer::server {
namespace {

namespace http = net::http;

storage::Store::Options StoreOptions(const config::Config& c) {
  storage::Store::Options o;
  o.path = c.storage.path;
  o.sync = c.storage.sync;
  // One of the three, checked when the config was read.
  o.background_priority = storage::BackgroundPriorityNamed(c.storage.background_priority)
                              .value_or(o.background_priority);
  o.dedupe_window_ms = c.ingest.dedupe_window_ms;
  o.min_free_bytes = c.storage.min_free_mb << 20;
  o.on_space_change = [min_free_mb = c.storage.min_free_mb](bool low, uint64_t free_bytes) {
    if (low) {
      obs::LogEvent(spdlog::level::err, "disk_space_low",
                    {{"free_mb", StrCat(free_bytes >> 20)},
                     {"min_free_mb", StrCat(min_free_mb)},
                     {"writes", "refused until space is freed"}});
    } else {
      obs::LogEvent(spdlog::level::info, "disk_space_ok",
                    {{"free_mb", StrCat(free_bytes >> 20)}, {"writes", "resumed"}});
    }
  };
  // A failing disk fails every write: the first is logged, then one line a second at most.
  o.on_write_error = [limiter = std::make_shared<obs::LogLimiter>(std::chrono::seconds(1))](
                         const absl::Status& error) {
    if (uint64_t failures = 0; limiter->Due(&failures)) {
      obs::LogEvent(spdlog::level::err, "storage_write_failed",
                    {{"error", ToStd(error.message())},
                     {"code", ErrorCodeOf(error)},
                     {"failures", StrCat(failures)}});
    }
  };
  return o;
}

api::Limits LimitsOf(const config::Config& c) {
  return api::Limits{c.ingest.max_event_bytes, c.ingest.max_request_bytes,
                     c.ingest.max_batch_events};
}

shard::ShardSet::Options ShardOptions(const config::Config& c) {
  return {.num_shards = c.ingest.shards, .max_queued_events = c.ingest.max_queued_events};
}

// The profile engine for `workspaces`, or null when profiles are off.
absl::StatusOr<std::unique_ptr<state::ProfileEngine>> MakeProfileEngine(
    const config::Config& c, storage::Store* store, const std::vector<Workspace>& workspaces,
    obs::Registry* metrics) {
  if (!c.ingest.profiles) return nullptr;
  auto engine = std::make_unique<state::ProfileEngine>(store, &SystemClock::Get(), metrics);
  for (const Workspace& ws : workspaces) engine->Configure(ws.id, ws.profiles);
  engine->SetCacheLimit(c.ingest.profile_cache_mb << 20);
  absl::StatusOr<std::unique_ptr<state::DeviceDetector>> detector = state::DeviceDetector::Create();
  if (!detector.ok()) return detector.status();
  engine->SetDeviceDetector(*std::move(detector));
  return engine;
}

// Runs `tick` on its own thread at once and then every `period` until stopped: journey timeouts and
// lifetime value refits.
class PeriodicThread {
 public:
  PeriodicThread(const char* name, std::chrono::milliseconds period, std::function<void()> tick)
      : thread_([this, name, period, tick = std::move(tick)] {
          pthread_setname_np(pthread_self(), name);
          std::unique_lock lock(mu_);
          do {
            lock.unlock();
            tick();
            lock.lock();
          } while (!cv_.wait_for(lock, period, [this] { return stopping_; }));
        }) {}
  ~PeriodicThread() { Stop(); }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

// Fires journey timeouts (state/journeys.h) as their deadlines pass, every 20 ms: under the
// commit lock through ShardSet::WriteExclusive, so they are ordered with the events being
// folded.
void FireJourneyTimeouts(state::ProfileEngine* engine, shard::ShardSet* shards) {
  int64_t now = SystemClock::Get().NowMillis();
  if (engine->NextDeadline() > now) return;
  absl::Status s = shards->WriteExclusive(
      [&](rocksdb::WriteBatch* batch) { return engine->FireDue(now, batch); });
  if (!s.ok()) {
    obs::LogEvent(spdlog::level::warn, "journey_timeouts_failed", {{"error", ToStd(s.message())}});
  }
}

// Writes what the models learned since their last checkpoint (state/models.h: every 30 s) and
// their pending examples, at the end of a serve or an import: after the shards stopped, so that
// every event written has been learned from.
void SaveModels(state::ProfileEngine* engine, shard::ShardSet* shards) {
  if (engine == nullptr) return;
  absl::Status saved = shards->WriteExclusive([&](rocksdb::WriteBatch* batch) {
    absl::Status s = engine->models().Checkpoint(batch, /*force=*/true);
    return s.ok() ? engine->models().SavePending(batch) : s;
  });
  if (!saved.ok()) {
    obs::LogEvent(spdlog::level::warn, "models_not_saved", {{"error", ToStd(saved.message())}});
  }
}

// The configured name of workspace `id`, for log lines (its number when it has none).
std::string WorkspaceName(const std::vector<Workspace>& workspaces, uint32_t id) {
  for (const Workspace& ws : workspaces) {
    if (ws.id == id) return ws.name;
  }
  return std::to_string(id);
}

// Refits each workspace's lifetime value when its models.clv.refit_every has passed since the
// last fit or attempt (checked at start and then every minute).
void RefitLifetimeValues(state::ProfileEngine* engine, shard::ShardSet* shards,
                         ModelService* models, const std::vector<Workspace>& workspaces) {
  int64_t now = SystemClock::Get().NowMillis();
  for (uint32_t workspace_id : engine->models().workspace_ids()) {
    bool due = false;
    // The schedule is engine state, read and marked under the commit lock.
    absl::Status checked = shards->WriteExclusive([&](rocksdb::WriteBatch*) {
      due = engine->models().ClvDueAt(workspace_id) <= now;
      if (due) engine->models().ClvAttempted(workspace_id, now);
      return absl::OkStatus();
    });
    if (!checked.ok() || !due) continue;
    absl::Status fitted = models->FitAndInstallClv(workspace_id, "scheduled");
    obs::LogEvent(fitted.ok() ? spdlog::level::info : spdlog::level::warn,
                  fitted.ok() ? "clv_refitted" : "clv_not_refitted",
                  {{"workspace", WorkspaceName(workspaces, workspace_id)},
                   {"result", fitted.ok() ? "ok" : ToStd(fitted.message())}});
  }
}

}  // namespace

absl::Status Serve(const config::Config& config, std::ostream& out) {
  // Block the stop signals before any thread starts so that every thread inherits the mask and
  // only sigwait() below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // a closed terminal: stop as gracefully as on SIGTERM
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // The config compiled first: a mistake in it is reported before the data directory is
  // created or locked, and before the log starts (a plain line, as a mistake found reading the
  // file is).
  absl::StatusOr<std::vector<Workspace>> workspaces = CompileWorkspaces(config);
  if (!workspaces.ok()) return workspaces.status();
  if (auto s = obs::InitLogging(config.log.level, config.log.format); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open(StoreOptions(config));
  if (!store.ok()) return store.status();
  if (absl::Status s = AssignFromStore(store->get(), &*workspaces); !s.ok()) return s;
  absl::StatusOr<api::KeyRing> keys = BuildKeyRing(*workspaces);
  if (!keys.ok()) return keys.status();

  obs::Registry metrics;
  storage::Store* store_ptr = store->get();
  metrics.AddGauge("whisperer_store_size_bytes",
                   "Bytes on disk of the data directory's tables, blob files and write-ahead log.",
                   [store_ptr] { return static_cast<double>(store_ptr->SizeBytes()); });
  metrics.AddGauge("whisperer_storage_free_bytes",
                   "Bytes free on the data directory's file system; below storage.min_free_mb "
                   "writes are refused.",
                   [store_ptr] { return static_cast<double>(store_ptr->FreeBytes()); });

  absl::StatusOr<std::unique_ptr<state::ProfileEngine>> profiles =
      MakeProfileEngine(config, store_ptr, *workspaces, &metrics);
  if (!profiles.ok()) return profiles.status();
  state::LiveViews live_views;
  // Device facts for the experience API: the engine's detector, or one of its own when
  // profiles are off.
  std::unique_ptr<state::DeviceDetector> own_detector;
  const state::DeviceDetector* detector = nullptr;
  if (*profiles != nullptr) {
    (*profiles)->SetLiveViews(&live_views);
    detector = (*profiles)->device_detector();
  } else {
    absl::StatusOr<std::unique_ptr<state::DeviceDetector>> d = state::DeviceDetector::Create();
    if (!d.ok()) return d.status();
    own_detector = *std::move(d);
    detector = own_detector.get();
  }
  DecideService decide_service(&*keys, &*workspaces, store_ptr, detector, &SystemClock::Get());
  if (auto s = decide_service.Start(); !s.ok()) return s;
  if (*profiles != nullptr && decide_service.HasGoals()) {  // goal events reward decisions
    (*profiles)->SetEventSink([&decide_service](uint32_t ws, uint64_t profile, uint64_t sequence,
                                                const state::EventFacts& facts,
                                                rocksdb::WriteBatch* batch) {
      decide_service.OnEvent(ws, profile, sequence, facts, batch);
    });
  }
  shard::ShardSet shards(store_ptr, &SystemClock::Get(), &metrics, ShardOptions(config));
  shards.SetProfileEngine(profiles->get());
  if (auto s = shards.Start(); !s.ok()) return s;

  std::atomic<bool> ready{false};
  net::Router router;
  CollectService collect(&*keys, &shards, store_ptr, LimitsOf(config), &SystemClock::Get(),
                         &metrics);
  collect.Register(&router);
  ProfileService profile_service(&*keys, &shards, profiles->get(), store_ptr, &SystemClock::Get());
  profile_service.Register(&router);
  ExperienceService experience(&*keys, &*workspaces, store_ptr, detector, &live_views,
                               &SystemClock::Get());
  experience.Register(&router);
  profile_service.OnErased([&experience](uint32_t workspace_id, const std::vector<uint64_t>& c) {
    experience.Forget(workspace_id, c);
  });
  profile_service.SetErasureGate(decide_service.erasure_gate());
  ModelService model_service(&*keys, &shards, profiles->get(), store_ptr, &SystemClock::Get());
  model_service.Register(&router);
  decide_service.Register(&router);
  auto save_bandits = [&decide_service] {
    if (absl::Status s = decide_service.SaveBandits(); !s.ok()) {
      obs::LogEvent(spdlog::level::warn, "bandits_not_saved", {{"error", ToStd(s.message())}});
    }
  };
  std::optional<PeriodicThread> timers, publishes, refits;
  PeriodicThread bandits("bandit-saves", std::chrono::seconds(30), save_bandits);
  PeriodicThread approvals("decision-timers", std::chrono::seconds(1), [&decide_service] {
    if (absl::Status s = decide_service.ExpireApprovals(); !s.ok()) {
      obs::LogEvent(spdlog::level::warn, "approvals_not_expired", {{"error", ToStd(s.message())}});
    }
    if (absl::Status s = decide_service.ApplyDueRewards(); !s.ok()) {
      obs::LogEvent(spdlog::level::warn, "rewards_not_applied", {{"error", ToStd(s.message())}});
    }
  });
  if (state::ProfileEngine* engine = profiles->get()) {
    timers.emplace("journey-timers", std::chrono::milliseconds(20),
                   [engine, &shards] { FireJourneyTimeouts(engine, &shards); });
    // While traffic is quiet no group commit refreshes the models' published copies (scores,
    // /v1/models) or writes them: this does, every second.
    publishes.emplace("model-publish", std::chrono::seconds(1), [engine, &shards] {
      (void)shards.WriteExclusive(
          [engine](rocksdb::WriteBatch* batch) { return engine->models().Checkpoint(batch); });
    });
    refits.emplace("clv-refits", std::chrono::minutes(1),
                   [engine, &shards, &model_service, &workspaces] {
                     RefitLifetimeValues(engine, &shards, &model_service, *workspaces);
                   });
  }
  // The operations routes read no query and take any: probes, scrapers and monitors may add
  // one (Prometheus' `params`, a cache-buster), and a refused probe would take the server out of
  // rotation.
  router.Add(
      http::verb::get, "/healthz",
      [](net::RequestContext&, net::Responder respond) {
        respond(net::JsonResponse(200, R"({"status":"ok"})"));
      },
      net::QueryParams::Any());
  router.Add(
      http::verb::get, "/readyz",
      [&ready](net::RequestContext&, net::Responder respond) {
        if (ready) return respond(net::JsonResponse(200, R"({"status":"ready"})"));
        respond(net::ErrorResponse(MakeError(absl::StatusCode::kUnavailable, "not_ready",
                                             "the server is starting or stopping")));
      },
      net::QueryParams::Any());
  router.Add(
      http::verb::get, "/metrics",
      [&metrics](net::RequestContext&, net::Responder respond) {
        net::Response res = net::JsonResponse(200, metrics.Render());
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        respond(std::move(res));
      },
      net::QueryParams::Any());
  router.Add(
      http::verb::get, "/openapi.json",
      [](net::RequestContext&, net::Responder respond) {
        respond(net::JsonResponse(200, std::string(kOpenApiDocument)));
      },
      net::QueryParams::Any());
  // Every other route takes an admin key, whose handler checks it; the guard checks it from the
  // header too, before anything else about the request is refused.
  router.GuardTheRest(AdminKeyGuard(&*keys), {"/healthz", "/readyz", "/metrics", "/openapi.json"});

  net::ServerOptions server_options;
  server_options.host = config.server.host;
  server_options.port = config.server.port;
  server_options.threads = config.server.threads;
  server_options.read_timeout = std::chrono::milliseconds(config.server.read_timeout_ms);
  server_options.shutdown_timeout = std::chrono::milliseconds(config.server.shutdown_timeout_ms);
  server_options.body_limit = config.ingest.max_request_bytes;
  server_options.trust_forwarded_for = config.server.trust_forwarded_for;
  net::HttpServer server(server_options, std::move(router), &metrics);
  if (auto s = server.Start(); !s.ok()) return s;
  ready = true;

  const std::string url = net::LocalUrl(config.server.host, server.port());
  out << "whisperer listening on " << url << " (data: " << config.storage.path << ")\n";
  for (const Workspace& ws : *workspaces) {
    out << "workspace " << ws.name << "\n";
    for (const auto& k : ws.write_keys) out << "  write key: " << k << "\n";
    for (const auto& k : ws.admin_keys) out << "  admin key: " << k << "\n";
  }
  out << "try: curl -u " << workspaces->front().write_keys.front() << ": " << url
      << "/v1/track -H 'Content-Type: application/json' -d "
         "'{\"userId\":\"u1\",\"event\":\"Signed Up\"}'\n"
      << std::flush;
  obs::LogEvent(
      spdlog::level::info, "listening",
      {{"url", url},
       {"data", config.storage.path},
       {"checksums", store_ptr->checksums_accelerated() ? "crc32 instruction" : "software"}});

  int received = 0;
  sigwait(&signals, &received);
  obs::LogEvent(spdlog::level::info, "stopping", {{"signal", strsignal(received)}});
  // A second signal while stopping (an operator's second Ctrl-C) exits at once, 128 + its
  // number, as a shell reports a process killed by it. Acknowledged events are in the
  // write-ahead log and replayed at the next start; what the bandits and models learned since
  // their last save, and rewards not yet applied, are lost.
  std::thread([signals] {
    int again = 0;
    if (sigwait(&signals, &again) != 0) return;
    obs::LogEvent(spdlog::level::warn, "stopping_now",
                  {{"signal", strsignal(again)},
                   {"note", "a second signal: exiting without finishing the stop"}});
    std::_Exit(128 + again);
  }).detach();
  ready = false;
  server.Stop();  // no new requests; requests in flight are answered
  if (refits) refits->Stop();
  if (publishes) publishes->Stop();
  if (timers) timers->Stop();
  approvals.Stop();
  bandits.Stop();
  shards.Stop();  // everything queued is written (and its goal events queued)
  if (absl::Status s = decide_service.ApplyDueRewards(); !s.ok()) {
    obs::LogEvent(spdlog::level::warn, "rewards_not_applied", {{"error", ToStd(s.message())}});
  }
  save_bandits();  // after the last request and goal: every reward answered is in
  SaveModels(profiles->get(), &shards);
  absl::Status flushed = (*store)->Flush();
  if (!flushed.ok()) return flushed;
  obs::LogEvent(spdlog::level::info, "stopped");
  return absl::OkStatus();
}

namespace {

// SIGINT, SIGTERM and SIGHUP while a command runs, taken by a thread instead of ending the
// process at once, so that the command can clean up; Finish() then ends the process by the
// signal as it would have (exit 130 for Ctrl-C). Construct it before any other thread starts:
// threads inherit the blocked signals.
class SignalStop {
 public:
  SignalStop() {
    sigemptyset(&set_);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set_, s);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    watcher_ = std::thread([this] {
      const timespec tick{0, 100'000'000};
      while (!done_.load()) {
        int s = sigtimedwait(&set_, nullptr, &tick);
        if (s > 0) {
          caught_ = s;
          stop_.store(true);
          return;
        }
      }
    });
  }
  ~SignalStop() { Finish(); }

  const std::atomic<bool>* stop() const { return &stop_; }

  void Finish() {
    if (!watcher_.joinable()) return;
    done_.store(true);
    watcher_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);  // a signal still pending ends us here
    if (caught_ != 0) {
      signal(caught_, SIG_DFL);
      raise(caught_);
    }
  }

 private:
  sigset_t set_, old_;
  std::atomic<bool> done_{false}, stop_{false};
  int caught_ = 0;  // written by the watcher before stop_, read after join
  std::thread watcher_;
};

// Loads `file` into the store of `config` through the shards (and the profile engine, when
// profiles are on); `prepare` may adjust the engine first, `inspect` reads the result before
// the store closes.
absl::Status LoadFile(const config::Config& config, const std::string& file,
                      const std::string& workspace, std::ostream& out, std::ostream& progress,
                      bool progress_is_terminal,
                      const std::function<void(state::ProfileEngine*)>& prepare,
                      const std::function<absl::Status(const storage::Store&, const Workspace&,
                                                       const state::ProfileEngine*)>& inspect,
                      const std::atomic<bool>* stop = nullptr, bool scratch = false,
                      uint64_t* stored = nullptr) {
  absl::StatusOr<std::vector<Workspace>> workspaces = CompileWorkspaces(config);
  if (!workspaces.ok()) return workspaces.status();
  // What can be checked without the data directory is, before it is opened (or created).
  if (absl::StatusOr<uint64_t> size = ImportFileSize(file); !size.ok()) return size.status();
  if (absl::Status s = CheckWorkspaceName(*workspaces, workspace); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open(StoreOptions(config));
  if (!store.ok()) {
    if (ErrorCodeOf(store.status()) == "data_dir_in_use") {
      return MakeError(absl::StatusCode::kFailedPrecondition, "data_dir_in_use",
                       StrCat(store.status().message(),
                              ". A server (or another command) is using this data directory: "
                              "stop it, or send the events to the server with POST /v1/import"));
    }
    return store.status();
  }
  if (absl::Status s = AssignFromStore(store->get(), &*workspaces); !s.ok()) return s;
  absl::StatusOr<uint32_t> ws = FindWorkspaceId(**store, workspace);
  if (!ws.ok()) return ws.status();
  obs::Registry metrics;
  absl::StatusOr<std::unique_ptr<state::ProfileEngine>> profiles =
      MakeProfileEngine(config, store->get(), *workspaces, &metrics);
  if (!profiles.ok()) return profiles.status();
  if (prepare && *profiles) prepare(profiles->get());
  shard::ShardSet shards(store->get(), &SystemClock::Get(), &metrics, ShardOptions(config));
  shards.SetProfileEngine(profiles->get());
  if (auto s = shards.Start(); !s.ok()) return s;
  ImportOptions options;
  options.file = file;
  options.progress = &progress;
  options.progress_is_terminal = progress_is_terminal;
  options.stop = stop;
  options.scratch = scratch;
  ImportSummary summary;
  absl::Status imported =
      ImportFile(options, LimitsOf(config), &shards, *ws, &SystemClock::Get(), &summary);
  SaveModels(profiles->get(), &shards);
  shards.Stop();
  if (stored != nullptr) *stored = summary.stored;
  if (!imported.ok() && scratch) return imported;  // a scratch store keeps nothing
  PrintImportSummary(summary, out);
  if (!imported.ok()) {
    // What was stored before the failure stays stored: the summary counts it, and the error
    // says so (importing the file again skips it: dedupe).
    if (summary.stored == 0) return imported;
    return MakeError(imported.code(), ErrorCodeOf(imported),
                     StrCat(imported.message(), "; the ", summary.stored,
                            " events read before it were stored, and importing the file again "
                            "skips them"));
  }
  // A file none of whose lines was an event (an empty one too) is a mistake (the wrong file, or
  // the wrong format), not a success: exit 2 after the summary, which says why.
  if (summary.stored == 0 && summary.duplicates == 0 && summary.suppressed == 0) {
    return InvalidInput(
        "no_valid_events",
        summary.rejected == 0
            ? StrCat(file, " holds no event: it is empty, or blank lines only")
            : StrCat("none of the ", summary.rejected, " lines of ", file, " is a valid event"));
  }
  if (inspect) {
    for (const Workspace& w : *workspaces) {
      if (w.id == *ws) {
        if (absl::Status s = inspect(**store, w, profiles->get()); !s.ok()) return s;
      }
    }
  }
  return (*store)->Flush();
}

}  // namespace

absl::Status Import(const config::Config& config, const ImportCommand& command, std::ostream& out,
                    std::ostream& progress, bool progress_is_terminal) {
  std::error_code ec;
  // Unknown (an error) counts as there: never remove what may be a directory of data.
  const bool existed = std::filesystem::exists(config.storage.path, ec) || ec;
  // Stopped by a signal, the import writes the lines it read and prints what it stored (then
  // dies of the signal, as a shell expects).
  SignalStop signals;
  uint64_t stored = 0;
  absl::Status s = LoadFile(config, command.file, command.workspace, out, progress,
                            progress_is_terminal, nullptr, nullptr, signals.stop(),
                            /*scratch=*/false, &stored);
  // An import that failed before it stored anything leaves no data directory it created.
  if (!existed && !s.ok() && stored == 0) std::filesystem::remove_all(config.storage.path, ec);
  out.flush();  // the summary, before a signal ends the process
  signals.Finish();
  return s;
}

namespace {

absl::Status ReplayInScratch(const config::Config& config, const ReplayCommand& command,
                             std::ostream& out, std::ostream& progress, bool progress_is_terminal,
                             const std::atomic<bool>* stop) {
  // A scratch store, removed afterwards: replay never touches the real data directory.
  absl::StatusOr<std::string> made = MakeTempDirectory("whisperer-replay");
  if (!made.ok()) return made.status();
  const std::string scratch = *std::move(made);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{scratch};
  config::Config c = config;
  c.storage.path = scratch + "/data";
  c.storage.sync = false;
  c.ingest.profiles = true;
  c.ingest.dedupe_window_ms = INT64_MAX / 4;  // history: a repeated messageId is a repeat
  return LoadFile(
      c, command.file, command.workspace, progress, progress, progress_is_terminal,
      [](state::ProfileEngine* engine) { engine->UseEventTimeForJourneys(); },
      [&](const storage::Store& store, const Workspace& ws,
          const state::ProfileEngine* engine) -> absl::Status {
        // Journeys run forward in event time: an event dated before its customer's latest move
        // moves no journey. In a file out of time order that changes the funnels: say so.
        const uint64_t late = engine->late_journey_events();
        if (late > 0) {
          progress << "replay: " << late
                   << " events were dated before their customer's latest move in a journey and "
                      "moved no journey: the file is not in time order (sort it by timestamp)\n";
        }
        std::string body;
        JsonWriter w(&body);
        w.StartObject();
        w.Key("workspace");
        w.String(ws.name);
        w.Key("lateEvents");
        w.Uint(late);
        w.Key("journeys");
        w.StartArray();
        for (const auto& journey : ws.profiles.journeys) {
          absl::StatusOr<std::vector<std::pair<std::string, state::FunnelCounts>>> groups =
              state::ProfileEngine::Funnel(store, ws.id, *journey, INT32_MIN, INT32_MAX,
                                           state::FunnelDimension::kAll);
          if (!groups.ok()) return groups.status();
          WriteFunnel(*journey, /*from_day=*/1, /*to_day=*/0, "all", *groups, w);
        }
        w.EndArray();
        w.EndObject();
        out << body << "\n";
        return absl::OkStatus();
      },
      stop, /*scratch=*/true);
}

}  // namespace

absl::Status Replay(const config::Config& config, const ReplayCommand& command, std::ostream& out,
                    std::ostream& progress, bool progress_is_terminal) {
  // Stopped by a signal, replay still removes its scratch store.
  SignalStop signals;
  absl::Status result =
      ReplayInScratch(config, command, out, progress, progress_is_terminal, signals.stop());
  signals.Finish();
  return result;
}

absl::Status Export(const ExportCommand& command, std::ostream& out, std::ostream& log) {
  const bool to_file = !command.out_file.empty() && command.out_file != "-";  // "-": stdout
  if (to_file) {
    // A file written inside the data directory could replace one of the store's (CURRENT, a
    // table file), which would then not open again.
    std::error_code data_error, file_error;
    const std::filesystem::path data =
        std::filesystem::weakly_canonical(command.data_dir, data_error);
    // A link to a file not there yet is not resolved by weakly_canonical, but followed by open.
    std::filesystem::path target = command.out_file;
    for (int hops = 0; hops < 40 && std::filesystem::is_symlink(target, file_error); ++hops) {
      const std::filesystem::path link = std::filesystem::read_symlink(target, file_error);
      if (file_error) break;
      target = link.is_absolute() ? link : target.parent_path() / link;
    }
    const std::filesystem::path file = std::filesystem::weakly_canonical(target, file_error);
    if (!data_error && !file_error &&
        std::mismatch(data.begin(), data.end(), file.begin(), file.end()).first == data.end()) {
      return MakeError(
          absl::StatusCode::kInvalidArgument, "bad_usage",
          StrCat("--out ", command.out_file, " is inside the data directory ", command.data_dir,
                 ", where it could overwrite the store's files: write the export "
                 "elsewhere"));
    }
  }
  absl::StatusOr<WorkspaceReader> reader = OpenWorkspaceReader(command.data_dir, command.workspace);
  if (!reader.ok()) return reader.status();
  std::ofstream file;
  std::ostream* sink = &out;
  if (to_file) {
    file.open(command.out_file, std::ios::binary | std::ios::trunc);
    if (!file) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "cannot_write",
                       StrCat("cannot write ", command.out_file, ": ", std::strerror(errno)));
    }
    sink = &file;
  }
  absl::StatusOr<uint64_t> count = ExportEvents(*reader->store, reader->workspace_id, *sink);
  if (count.ok()) sink->flush();
  if (!count.ok() || !*sink) {
    if (!to_file) {
      return count.ok() ? MakeError(absl::StatusCode::kUnavailable, "cannot_write",
                                    "writing the export failed (a full disk or a closed pipe?)")
                        : count.status();
    }
    // Not a file that looks like an export and is only part of one (a regular file only: the
    // path may name a device, such as /dev/full).
    file.close();
    std::error_code ec;
    const bool removed = std::filesystem::is_regular_file(command.out_file, ec) &&
                         std::filesystem::remove(command.out_file, ec);
    return MakeError(absl::StatusCode::kUnavailable, "cannot_write",
                     StrCat("writing ", command.out_file, " failed (a full disk?)",
                            removed ? ", and the part written was removed" : ""));
  }
  log << "exported " << *count << " events of workspace " << command.workspace << "\n";
  return absl::OkStatus();
}

}  // namespace whisperer::server
