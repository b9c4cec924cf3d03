#include "eval/eval.h"

#include "common/strings.h"

namespace whisperer::eval {

absl::StatusOr<std::string> Run(const std::string& task, const std::string& data_dir) {
  if (task == "telco_churn") return RunTelcoChurn(data_dir);
  if (task == "cdnow") return RunCdnow(data_dir);
  if (task == "banking77") return RunBanking77(data_dir);
  if (task == "bitext") return RunBitext(data_dir);
  if (task == "sentiment") return RunSentiment(data_dir);
  if (task == "ope_synthetic") return RunOpeSynthetic(data_dir);
  if (task == "hillstrom") return RunHillstrom(data_dir);
  if (task == "open_bandit") return RunOpenBandit(data_dir);
  return absl::InvalidArgumentError(
      ToAbsl(StrCat("unknown evaluation task '", task,
                    "' (expected telco_churn, cdnow, banking77, bitext, sentiment, ope_synthetic, "
                    "hillstrom or open_bandit)")));
}

}  // namespace whisperer::eval
