// whisperer: the command line. Parses flags, builds the Config (defaults < file < environment <
// flags), and runs one command from server/server.h. Exit codes: 0 success, 1 runtime failure,
// 2 bad usage or configuration.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "CLI/CLI.hpp"
#include "common/status.h"
#include "common/strings.h"
#include "config/config.h"
#include "eval/eval.h"
#include "eval/ope_log.h"
#include "obs/log.h"
#include "server/server.h"

namespace {

using whisperer::config::Config;

int Fail(const absl::Status& status, int code) {
  std::cerr << "whisperer: " << status.message() << " [" << whisperer::ErrorCodeOf(status) << "]\n";
  return code;
}

// A command's exit once it succeeded: 1 when what it printed could not be written (a full
// disk, a closed pipe), since its output is its result.
int Done() {
  std::cout.flush();
  if (!std::cout) {
    return Fail(whisperer::MakeError(absl::StatusCode::kUnavailable, "cannot_write",
                                     "writing standard output failed (disk full or closed pipe?)"),
                1);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Output to a closed pipe (`whisperer export | head`) fails the write, which the command
  // reports (cannot_write, exit 1), instead of killing the process without a word.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"Whisperer: real-time customer intelligence and decision engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "whisperer 0.1.0");

  std::string config_file;
  std::string data_dir;
  std::string host;
  int port = -1;

  // --data "" is a mistake (an unset shell variable, say), not a request for ./data; --host ""
  // is one too, not a request for every interface, and --config "" not one for the defaults.
  const auto not_empty = [](const char* what) {
    return CLI::Validator(
        [](std::string& value) { return value.empty() ? std::string("must not be empty") : ""; },
        what);
  };
  auto add_data = [&](CLI::App* cmd) {
    cmd->add_option("--data", data_dir, "data directory (default ./data; env WHISPERER_DATA)")
        ->check(not_empty("DIR"));
  };
  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("--config", config_file, "YAML config file (env WHISPERER_CONFIG)")
        ->check(not_empty("FILE"));
    add_data(cmd);
  };

  CLI::App* serve = app.add_subcommand("serve", "Start the HTTP server");
  add_common(serve);
  serve->add_option("--port", port, "port to listen on, 0 for any free port (default 8080)")
      ->check(CLI::Range(0, 65535));
  serve->add_option("--host", host, "address to listen on (default 0.0.0.0)")
      ->check(not_empty("ADDRESS"));

  whisperer::server::ImportCommand import_cmd;
  CLI::App* import = app.add_subcommand("import", "Load Segment-format events from NDJSON(.gz)");
  add_common(import);
  import->add_option("file", import_cmd.file, "file of one event per line, .gz or plain")
      ->required();
  import->add_option("--workspace", import_cmd.workspace, "workspace to load into")
      ->capture_default_str();

  whisperer::server::ReplayCommand replay_cmd;
  CLI::App* replay = app.add_subcommand(
      "replay", "Run a file of events through the configured journeys; print their funnels");
  replay->add_option("--config", config_file, "YAML config file (env WHISPERER_CONFIG)")
      ->check(not_empty("FILE"));
  replay
      ->add_option("file", replay_cmd.file,
                   "file of one event per line, .gz or plain, in time order")
      ->required();
  replay->add_option("--workspace", replay_cmd.workspace, "workspace whose journeys to run")
      ->capture_default_str();

  whisperer::server::ExportCommand export_cmd;
  CLI::App* exp = app.add_subcommand("export", "Write the event log as NDJSON");
  add_data(exp);
  exp->add_option("--out", export_cmd.out_file, "file to write (default, or -: standard output)")
      ->check(not_empty("FILE"));
  exp->add_option("--workspace", export_cmd.workspace, "workspace to export")
      ->capture_default_str();

  whisperer::server::DiscoverCommand discover_cmd;
  CLI::App* personas = app.add_subcommand("personas", "Help write persona rules");
  personas->require_subcommand(1);
  CLI::App* discover = personas->add_subcommand(
      "discover", "Cluster the stored profiles and describe each cluster (k-means, silhouette)");
  add_data(discover);
  discover->add_option("--workspace", discover_cmd.workspace, "workspace whose profiles to read")
      ->capture_default_str();
  discover->add_option("--max-k", discover_cmd.max_k, "most clusters to try")
      ->check(CLI::Range(2, 20))
      ->capture_default_str();
  discover
      ->add_option("--event-names", discover_cmd.event_names,
                   "most frequent event names whose counts are features")
      ->check(CLI::Range(0, 50))
      ->capture_default_str();
  discover->add_option("--seed", discover_cmd.seed, "random seed of k-means")
      ->capture_default_str();
  discover->add_flag("--json", discover_cmd.json, "print one JSON object");

  whisperer::server::FitClvCommand fit_clv_cmd;
  CLI::App* models = app.add_subcommand("models", "Fit and train the models offline");
  models->require_subcommand(1);
  CLI::App* fit = models->add_subcommand("fit", "Fit a model on the stored data");
  fit->require_subcommand(1);
  CLI::App* fit_clv = fit->add_subcommand(
      "clv", "Lifetime value (BG/NBD + Gamma-Gamma) on the stored profiles' orders");
  add_data(fit_clv);
  fit_clv->add_option("--workspace", fit_clv_cmd.workspace, "workspace whose profiles to fit on")
      ->capture_default_str();

  whisperer::server::TrainIntentCommand train_intent_cmd;
  CLI::App* train = models->add_subcommand("train", "Train a model from labelled examples");
  train->require_subcommand(1);
  CLI::App* train_intent = train->add_subcommand(
      "intent", "Message intent (fastText) from a CSV of texts and their intents");
  train_intent->add_option("file", train_intent_cmd.file, "CSV file with a header row")->required();
  train_intent->add_option("--text-column", train_intent_cmd.text_column, "column of the texts")
      ->capture_default_str();
  train_intent->add_option("--label-column", train_intent_cmd.label_column, "column of the intents")
      ->capture_default_str();
  add_data(train_intent);
  train_intent->add_option("--workspace", train_intent_cmd.workspace, "workspace to train for")
      ->capture_default_str();

  std::string eval_task;
  std::string eval_data;
  CLI::App* eval = app.add_subcommand(
      "eval", "Train and score the models on a public dataset; print the figures as JSON");
  eval->add_option("task", eval_task,
                   "telco_churn, cdnow, banking77, bitext, sentiment, ope_synthetic, hillstrom, "
                   "open_bandit, or ope (a decision log: --log, --policy)")
      ->required()
      ->check(CLI::IsMember({"telco_churn", "cdnow", "banking77", "bitext", "sentiment",
                             "ope_synthetic", "hillstrom", "open_bandit", "ope"}));
  eval->add_option("--data", eval_data,
                   "the datasets folder (default $WHISPERER_DATA, else ../shared/data)")
      ->check(not_empty("DIR"));
  // `eval ope`: the value of a policy estimated from a decision log (eval/ope_log.h).
  whisperer::eval::OpeCommand ope_cmd;
  const char* ope_options[] = {"--log",       "--policy",      "--train",
                               "--bootstrap", "--seed",        "--priors",
                               "--campaign",  "--simulations", "--marginal-positions"};
  eval->add_option("--log", ope_cmd.log,
                   "ope: the decision log, NDJSON of one logged slot per line (as GET "
                   "/v1/decisions/export writes it)");
  eval->add_option("--policy", ope_cmd.policy,
                   "ope: the policy to evaluate: uniform, logged, greedy, thompson or bts");
  eval->add_option("--train", ope_cmd.train,
                   "ope: the first fraction of the lines trains the reward model (and greedy's "
                   "and thompson's policy), the rest are evaluated; 0: train on every line and "
                   "evaluate every line")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  eval->add_option("--bootstrap", ope_cmd.bootstrap, "ope: resamples of the 95 % intervals")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  eval->add_option("--seed", ope_cmd.seed, "ope: seed of the bootstrap and of bts's draws")
      ->capture_default_str();
  eval->add_option("--priors", ope_cmd.priors,
                   "ope, bts: Beta priors per action, campaign: {alpha: [...], beta: [...]} "
                   "(actions named by their index)");
  eval->add_option("--campaign", ope_cmd.campaign, "ope, bts: the campaign of --priors");
  eval->add_option("--simulations", ope_cmd.simulations,
                   "ope, bts: draws that estimate the policy's probabilities")
      ->check(CLI::Range(1, 100'000'000))
      ->capture_default_str();
  eval->add_flag("--marginal-positions", ope_cmd.marginal_positions,
                 "ope: the log's propensities are each action's probability at its position, not "
                 "given the earlier positions (as in the Open Bandit Dataset)");

  // A word that is no command where one is needed (`whisperer bogus`, `models fit churn`): say
  // so, with the commands there are (CLI11 would say only that one is required).
  CLI::App* level = &app;
  std::string said = "whisperer";
  for (int i = 1; i < argc && argv[i][0] != '-' && level->get_require_subcommand_min() > 0; ++i) {
    CLI::App* next = nullptr;
    std::string commands;
    for (CLI::App* sub : level->get_subcommands({})) {
      if (sub->get_name() == argv[i]) next = sub;
      commands += (commands.empty() ? "" : ", ") + sub->get_name();
    }
    if (next == nullptr) {
      return Fail(whisperer::MakeError(
                      absl::StatusCode::kInvalidArgument, "bad_usage",
                      whisperer::StrCat("unknown command '", argv[i], "' for ", said,
                                        "; the commands are ", commands, " (run with --help)")),
                  2);
    }
    said = whisperer::StrCat(said, " ", argv[i]);
    level = next;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print and succeed; any other parse error is bad usage: one line in
    // the format of every error, exit 2 (README), not one of CLI11's own codes (105 and up).
    if (e.get_exit_code() == 0) return app.exit(e);
    return Fail(whisperer::MakeError(absl::StatusCode::kInvalidArgument, "bad_usage",
                                     whisperer::StrCat(e.what(), " (run with --help)")),
                2);
  }

  if (*eval) {
    if (eval_task == "ope") {
      if (ope_cmd.log.empty() || ope_cmd.policy.empty()) {
        return Fail(whisperer::MakeError(absl::StatusCode::kInvalidArgument, "bad_usage",
                                         "eval ope needs --log FILE and --policy NAME (uniform, "
                                         "logged, greedy, thompson or bts)"),
                    2);
      }
      absl::StatusOr<std::string> figures = whisperer::eval::RunOpeCommand(ope_cmd);
      if (!figures.ok()) {
        return Fail(figures.status(),
                    figures.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
      }
      std::cout << *figures << "\n";
      return Done();
    }
    for (const char* option : ope_options) {
      if (eval->count(option) > 0) {
        return Fail(whisperer::MakeError(absl::StatusCode::kInvalidArgument, "bad_usage",
                                         whisperer::StrCat(option, " is an option of eval ope")),
                    2);
      }
    }
    // Here --data and WHISPERER_DATA name the datasets folder, not a server's data directory.
    if (eval_data.empty()) {
      const char* env = std::getenv("WHISPERER_DATA");
      eval_data = env ? env : "../shared/data";
    }
    std::error_code ec;
    if (eval_task != "ope_synthetic" && !std::filesystem::is_directory(eval_data, ec)) {
      return Fail(whisperer::InvalidInput(
                      "invalid_argument",
                      whisperer::StrCat(eval_data,
                                        " is no directory: --data (or WHISPERER_DATA) names the "
                                        "datasets folder, with one folder per dataset")),
                  2);
    }
    absl::StatusOr<std::string> figures = whisperer::eval::Run(eval_task, eval_data);
    // A dataset file that is not what it should be is bad input (2), as for the other commands.
    if (!figures.ok()) {
      return Fail(figures.status(),
                  figures.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
    }
    std::cout << *figures << "\n";
    return Done();
  }

  // Defaults < file < environment < flags.
  if (config_file.empty()) {
    if (const char* env = std::getenv("WHISPERER_CONFIG")) {
      if (*env == '\0') {
        return Fail(whisperer::MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                                         "environment variable WHISPERER_CONFIG: may not be "
                                         "empty (unset it to run with the defaults)"),
                    2);
      }
      config_file = env;
    }
  }
  Config config;
  if (!config_file.empty()) {
    absl::StatusOr<Config> loaded = whisperer::config::LoadConfigFile(config_file);
    if (!loaded.ok()) return Fail(loaded.status(), 2);
    config = *std::move(loaded);
  }
  if (auto s = whisperer::config::ApplyEnvironment(&std::getenv, &config); !s.ok()) {
    return Fail(s, 2);
  }
  if (!data_dir.empty()) {
    config.storage.path = data_dir;
    config.origin["storage.path"] = "--data";
  }
  if (port >= 0) config.server.port = static_cast<uint16_t>(port);
  if (!host.empty()) {
    config.server.host = host;
    config.origin["server.host"] = "--host";
  }
  if (auto s = whisperer::config::Validate(config); !s.ok()) return Fail(s, 2);

  // The other commands print their results on stdout: what the store logs (a recovery, a
  // failed write) goes to stderr, as one line of text each, warnings and errors only.
  if (!*serve) {
    const bool quieter = config.log.level == "error" || config.log.level == "off";
    if (auto s = whisperer::obs::InitLogging(quieter ? config.log.level : "warn", "text");
        !s.ok()) {
      return Fail(s, 2);
    }
  }
  absl::Status result;
  if (*serve) {
    result = whisperer::server::Serve(config, std::cout);
  } else if (*import) {
    result =
        whisperer::server::Import(config, import_cmd, std::cout, std::cerr, isatty(STDERR_FILENO));
  } else if (*replay) {
    result =
        whisperer::server::Replay(config, replay_cmd, std::cout, std::cerr, isatty(STDERR_FILENO));
  } else if (*exp) {
    export_cmd.data_dir = config.storage.path;
    result = whisperer::server::Export(export_cmd, std::cout, std::cerr);
  } else if (*discover) {
    discover_cmd.data_dir = config.storage.path;
    result = whisperer::server::DiscoverPersonas(discover_cmd, std::cout, std::cerr);
  } else if (*fit_clv) {
    fit_clv_cmd.data_dir = config.storage.path;
    result = whisperer::server::FitClv(fit_clv_cmd, std::cout);
  } else if (*train_intent) {
    train_intent_cmd.data_dir = config.storage.path;
    result = whisperer::server::TrainIntent(train_intent_cmd, std::cout, std::cerr);
  }
  if (!result.ok()) {
    int code = result.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
    if (*serve && whisperer::obs::LoggingStarted() &&
        spdlog::default_logger()->should_log(spdlog::level::err)) {
      // The server's stderr is its log by now (one JSON object per line by default): why it
      // stops is the log's last event, in its format, so that a collector reads it too. With
      // the log turned off, it is the plain line below: a failure is never silent.
      whisperer::obs::LogEvent(spdlog::level::err, "exiting",
                               {{"error", whisperer::ToStd(result.message())},
                                {"code", whisperer::ErrorCodeOf(result)},
                                {"exit_code", std::to_string(code)}});
      spdlog::default_logger()->flush();
      return code;
    }
    return Fail(result, code);
  }
  return *serve ? 0 : Done();  // the server's output is a log, not its result
}
