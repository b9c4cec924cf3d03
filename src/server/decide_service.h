// DecideService: next-best-action decisions over HTTP, their rewards and their log.
//
//   POST /v1/decide          write or admin key; {"userId"|"anonymousId", "decisionPoint",
//                            "slots", "channels": [...], "context": {...}}: decides
//                            (decide/decider.h), writes the decision to the log, then answers
//                            it with its id, each slot's action, treatment, priority terms,
//                            probability, explore/exploit, confidence, autonomy and
//                            explanation, and every filtered candidate with its reason.
//   POST /v1/rewards         write or admin key; {"decisionId", "slot", "value" | "outcome",
//                            "rewardId"}: the outcome of one slot, learned by the decision
//                            point's bandit. Idempotent: with `rewards.aggregate: first` a
//                            slot's first reward counts and later ones are acknowledged
//                            without effect; with `sum` every distinct rewardId adds up.
//   GET /v1/decisions/{id}   admin key; the decision as logged, with its rewards
//   GET /v1/decisions        admin key; ?profile=&from=&to=&limit=&cursor=: logged decisions in
//                            time order, with the features each slot was scored on (what
//                            offline evaluation needs)
//   GET /v1/approvals        admin key; ?status=pending|approved|rejected|expired|all: the
//                            approvals of held decisions (a decision with a slot whose
//                            confidence is below `thresholds.supervised`), oldest first, each
//                            held slot with what its action kind's review template shows
//   GET /v1/approvals/{id}   admin key; one approval (its id is the decision's)
//   POST /v1/approvals/{id}/approve, /reject
//                            admin key; {"reviewer", "note"}: closes a pending approval; the
//                            held slots' bandit learns `approvals.feedback.approve|reject`.
//                            409 approval_closed when it is no longer pending
// A pending approval expires after `approvals.expire_after` (ExpireApprovals, every second)
// into the decision point's `fallback` action, or none.
//
// Budgets (filter reason budget_exhausted): an action's `budget.per_day` and `budget.total_spend`
// count the slots acted on (at once, or when approved), across customers; kept in the store beside
// the log.
//
// Contact policy (decide/contacts.h): with any limit configured, each customer's contact history
// is read before a decision and extended in its write (the slots acted on), on approval (the
// held slots) and on a negative outcome, under a stripe of mutexes by customer.
//
// The log is written before the answer: an answered decision is never lost, and a reward is
// stored before it is learned. Each decision point's bandit (learn::LinearPosterior) is held in
// memory and written every 30 seconds when it learned something (SaveBandits) and at shutdown;
// a crash loses what it learned since (the rewards themselves are in the log).
//
// Thread-safety: handlers run on any server thread. A decision point's bandit is read under a
// shared lock and updated under an exclusive one; rewards are checked and written under one
// mutex, so two retries of a reward cannot both count.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "api/auth.h"
#include "common/clock.h"
#include "decide/catalog.h"
#include "learn/bandit.h"
#include "net/http_server.h"
#include "server/workspaces.h"
#include "state/device.h"
#include "storage/store.h"

namespace whisperer::server {

class DecideService {
 public:
  DecideService(const api::KeyRing* keys, const std::vector<Workspace>* workspaces,
                storage::Store* store, const state::DeviceDetector* detector, const Clock* clock);

  // Loads each decision point's stored bandit (a changed `bandit.bits` starts it afresh).
  absl::Status Start();
  void Register(net::Router* router);
  // Writes the bandits that learned since they were last written.
  absl::Status SaveBandits();
  // Closes the pending approvals whose time has passed, as expired, with their fallback.
  absl::Status ExpireApprovals();

 private:
  struct Point {
    std::shared_mutex mu;
    learn::LinearPosterior posterior;
    bool dirty = false;  // learned since written
    explicit Point(const learn::PosteriorOptions& o) : posterior(o) {}
  };
  // An action's budget use: acted on in UTC day `day`, and the cost spent in all.
  struct BudgetUse {
    int64_t day = 0;
    int64_t count = 0;
    double spent = 0;
  };
  struct State {
    const Workspace* workspace = nullptr;
    std::map<std::string, std::unique_ptr<Point>, std::less<>> points;
    // Per catalog action. With budgets, decisions of the workspace are made one at a time from
    // reading these to writing them (in the decision's batch), so none overspends.
    std::vector<BudgetUse> budgets;
    std::mutex budget_mu;
  };
  // Puts the use of the actions `acted` (catalog indexes) into `batch` and returns the new
  // uses, to be installed once the batch is written. Call under budget_mu.
  absl::StatusOr<std::vector<std::pair<size_t, BudgetUse>>> SpendBudgets(
      State& state, const std::vector<size_t>& acted, int64_t now_ms, rocksdb::WriteBatch* batch);

  void HandleDecide(net::RequestContext& ctx, net::Responder respond);
  void HandleReward(net::RequestContext& ctx, net::Responder respond);
  void HandleGet(net::RequestContext& ctx, net::Responder respond);
  void HandleList(net::RequestContext& ctx, net::Responder respond);
  void HandleApprovals(net::RequestContext& ctx, net::Responder respond);
  void HandleApproval(net::RequestContext& ctx, net::Responder respond);
  void HandleReview(net::RequestContext& ctx, net::Responder respond, bool approve);
  // Adds the contacts of `slots` (1-based; action and channel) of a decision, or a negative
  // outcome of `action`, to the customer's contact history, in `batch`.
  absl::Status RecordContacts(const decide::Catalog& catalog, uint32_t workspace_id,
                              uint64_t customer, int64_t now_ms,
                              const std::vector<std::pair<std::string, std::string>>& contacts,
                              const std::string& negative_action, rocksdb::WriteBatch* batch);
  // Teaches the bandit of decision point `point` `reward` for each of `features` (the logged
  // slots' features); a decision point since removed learns nothing.
  void Teach(State& state, std::string_view point,
             const std::vector<const std::vector<learn::Feature>*>& features, double reward);
  // The workspace's decision state; 404 decisions_not_configured without a `decisions` block.
  absl::StatusOr<State*> StateOf(uint32_t workspace_id);

  const api::KeyRing* keys_;
  storage::Store* store_;
  const state::DeviceDetector* detector_;
  const Clock* clock_;
  std::map<uint32_t, State> states_;
  // Rewards and approvals are read, checked and written under it: two retries of a reward, or
  // a review racing the expiry, cannot both count.
  std::mutex log_mu_;
  // The contact history of one customer is read, decided on and written under the stripe of
  // its hash, so that two decisions at once cannot both pass a limit.
  std::array<std::mutex, 64> contact_mu_;
};

}  // namespace whisperer::server
