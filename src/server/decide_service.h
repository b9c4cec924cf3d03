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
//                            With "deferActivation": true nothing is acted on (no contact, no
//                            budget, no reward accepted) until the decision is activated.
//   POST /v1/decisions/{id}/activate
//                            write or admin key: a deferred decision was shown; its slots are
//                            acted on now. Idempotent (activated: false, reason).
//   GET /v1/decisions/{id}   admin key; the decision as logged, with its activation and rewards
//   GET /v1/decisions        admin key; ?profile=&from=&to=&limit=&cursor=: logged decisions in
//                            time order, with the customer's features and, per slot, the
//                            actions it was chosen among and the features it was scored on
//   GET /v1/decisions/lift   admin key; ?decisionPoint=&from=&to=: the mean reward per slot acted
//                            on of the engine's decisions and of the control group's, with 95 %
//                            intervals, and the lift between them (at most 1,000,000 decisions)
//   GET /v1/actions, /v1/actions/{id}; PUT, DELETE /v1/actions/{id}
//                            admin key; the action catalog, edited with the config's rules:
//                            stored (the `decisions` column family, K rows), compiled into a new
//                            catalog and used from the next decision; kept across restarts
//   GET /v1/decisions/export admin key; the same selection (limit 1 to 100,000, default 10,000;
//                            the next page's cursor in the Whisperer-Next-Cursor header) as
//                            NDJSON, a line per slot with what offline evaluation reads
//                            (`whisperer eval ope --log`): position, action, candidates,
//                            propensity, reward (null: none yet), context
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
// Rewards come from POST /v1/rewards, from goal events (`rewards.goals`: a track event folded
// into a profile rewards that profile's slots acted on within the goal's window), and from the
// decision point's `reward_wait`: a slot acted on with no reward by then gets the
// `default_reward` (ApplyDueRewards, every second). All three go through ApplyReward, so each
// is idempotent and aggregated alike. OnEvent, on the profile engine's thread, puts a goal
// event (key O) into the write that stores the event; ApplyDueRewards applies it within a
// second and deletes it, so a crash in between loses no goal: the next start applies it, and
// one applied but not yet deleted is applied again to no effect.
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
// stored before it is learned. A decision without a contact policy or budget is written
// through a storage::GroupWriter: when the other HTTP thread is writing, the decision is
// handed to it (it writes and answers it with its own) instead of waiting in RocksDB's write
// group. Decisions with a contact policy or budget write while holding their locks, as the
// next decision of that customer or workspace must read what they wrote. Each decision point's
// bandit (learn::LinearPosterior) is held in memory and written every 30 seconds when it learned
// something (SaveBandits) and at shutdown; a crash loses what it learned since (the rewards
// themselves are in the log).
//
// Thread-safety: handlers run on any server thread. A decision point's bandit is read under a
// shared lock and updated under an exclusive one; rewards are checked and written under one
// mutex, so two retries of a reward cannot both count.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.h"
#include "common/clock.h"
#include "common/gate.h"
#include "common/json_writer.h"
#include "config/config.h"
#include "decide/catalog.h"
#include "identity/resolver.h"
#include "learn/bandit.h"
#include "net/http_server.h"
#include "server/workspaces.h"
#include "state/device.h"
#include "state/profile.h"
#include "storage/group_writer.h"
#include "storage/store.h"

namespace whisperer::server {

struct LoggedDecision;  // a decision as read back from the log (decide_service.cc)

// A logged decision as GET /v1/decisions/{id} answers it, written to `w`: {"decision": the
// record, "activatedAt", "rewards": [{"slot", ...}]}. False, with nothing written, when the log
// has no decision `id`. `record`, when given, gets the stored record.
absl::StatusOr<bool> WriteLoggedDecision(const storage::Store& store, uint32_t workspace_id,
                                         uint64_t id, JsonWriter& w, std::string* record = nullptr);
// What the decision log keeps about the customer of `profile` (state::KeysOfCustomer: the
// profiles merged into it and the visitor it was included), as GET /v1/profiles/{id}/export
// lists it: the members "decisions" (each as WriteLoggedDecision writes it, in time order),
// "approvals" (of those held, as stored now), "contactHistory" and "engagement" (decide/
// contacts.h, decide/engagement.h, also those kept under identifiers a first-time visitor's
// decision was made for; null when none) of the open object of `w`.
absl::Status WriteCustomerDecisions(const storage::Store& store, uint32_t workspace_id,
                                    const state::Profile& profile, JsonWriter& w);

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
  // Gives the slots whose reward wait has passed their default reward, and applies the goal
  // events stored since the last call.
  absl::Status ApplyDueRewards();
  // A profile's event, from the profile engine's thread (state::ProfileEngine::SetEventSink):
  // a track event that is a goal is put into `batch`, the write that stores the event, for
  // ApplyDueRewards. Cheap: no lock, no read.
  void OnEvent(uint32_t workspace_id, uint64_t profile_id, uint64_t sequence,
               const state::EventFacts& facts, rocksdb::WriteBatch* batch);
  // Whether any workspace has goal events (else OnEvent need not be called).
  bool HasGoals() const;
  // The gate a profile's erasure closes (ProfileService::SetErasureGate): every write of the
  // decision log about a customer passes through it from its first read to its write, so none
  // straddles an erasure and leaves a decision, approval or contact of an erased customer.
  Gate* erasure_gate() { return &erasures_; }

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
    std::map<std::string, BudgetUse, std::less<>> budgets;  // by action id
    std::mutex budget_mu;
    // The catalog decisions are made with: the config's, with the actions edited through
    // /v1/actions, compiled from `config` and replaced whole by an edit (requests keep the
    // snapshot they started with: CatalogOf). `edited`: the ids defined or changed over HTTP.
    std::shared_ptr<const decide::Catalog> catalog;
    config::DecisionsConfig config;
    std::set<std::string, std::less<>> edited;
    mutable std::mutex catalog_mu;  // guards catalog, config and edited
    std::mutex edit_mu;             // one edit at a time, from compiling to installing
    // Delivery learning (decide/engagement.h): the workspace's engagement counts per channel and
    // hour, and its content variants' counts; read under a shared lock while deciding, changed
    // under an exclusive one, written with the bandits.
    std::shared_mutex delivery_mu;
    decide::Engagement engagement;
    decide::VariantStats variants;
    bool delivery_dirty = false;
  };
  // A slot acted on: its action, channel and content variant ("" for none).
  struct Acted {
    std::string action, channel, variant;
  };
  // OK when acting now on `acted` (slots numbered `slot_numbers`, from 1) of a decision for the
  // customer whose contacts are kept under `customer` (and `contact_rows`: ContactRows, each
  // identifier of a first-time visitor) keeps within the contact policy, counting the contacts made
  // since the decision (kept under every key of `profile` too); else 409 contact_limit_reached, its
  // message naming the slot, the reason, when the decision was `made` ("held" or "made") and what
  // to do `instead`. Call under the customer's contact lock.
  absl::Status CheckContactPolicy(const decide::Catalog& catalog, uint32_t ws, uint64_t customer,
                                  std::span<const uint64_t> contact_rows,
                                  const state::Profile& profile, const std::vector<Acted>& acted,
                                  const std::vector<size_t>& slot_numbers, int64_t now,
                                  std::string_view made, std::string_view instead) const;
  // Whether action `a`, with `use` so far, has no budget left on `day` for one more use: its
  // day's count reached, or its cost would take it past its total spend.
  static bool BudgetSpent(const decide::Action& a, const BudgetUse& use, int64_t day);
  // Puts the use of the actions `acted` (catalog indexes) into `batch` and returns the new
  // uses, to be installed once the batch is written. Call under budget_mu.
  absl::StatusOr<std::vector<std::pair<std::string, BudgetUse>>> SpendBudgets(
      State& state, const decide::Catalog& catalog, const std::vector<size_t>& acted,
      int64_t now_ms, rocksdb::WriteBatch* batch);

  struct RewardResult {
    bool applied = false;
    double total = 0;  // of the slot's rewards
  };

  void HandleDecide(net::RequestContext& ctx, net::Responder respond);
  void HandleActions(net::RequestContext& ctx, net::Responder respond);
  void HandleAction(net::RequestContext& ctx, net::Responder respond);
  void HandlePutAction(net::RequestContext& ctx, net::Responder respond);
  void HandleDeleteAction(net::RequestContext& ctx, net::Responder respond);
  // The catalog to decide with now (it stays valid however the catalog is edited meanwhile).
  std::shared_ptr<const decide::Catalog> CatalogOf(const State& state) const;
  // Applies the stored action edits to the config's catalog (each that no longer compiles
  // against the config is skipped, with a warning).
  absl::Status LoadActionEdits(State& state);
  void HandleActivate(net::RequestContext& ctx, net::Responder respond);
  void HandleExport(net::RequestContext& ctx, net::Responder respond);
  void HandleLift(net::RequestContext& ctx, net::Responder respond);
  void HandleReward(net::RequestContext& ctx, net::Responder respond);
  void HandleGet(net::RequestContext& ctx, net::Responder respond);
  void HandleList(net::RequestContext& ctx, net::Responder respond);
  void HandleApprovals(net::RequestContext& ctx, net::Responder respond);
  void HandleApproval(net::RequestContext& ctx, net::Responder respond);
  void HandleReview(net::RequestContext& ctx, net::Responder respond, bool approve);
  // Adds the contacts of `slots` (1-based; action and channel) of decision `decision`, or a
  // negative outcome of `action`, to the customer's contact history kept under each of `rows`,
  // in `batch`.
  absl::Status RecordContacts(const decide::Catalog& catalog, uint32_t workspace_id,
                              std::span<const uint64_t> rows, uint64_t decision, int64_t now_ms,
                              const std::vector<std::pair<std::string, std::string>>& contacts,
                              const std::string& negative_action, rocksdb::WriteBatch* batch);
  // Under log_mu_: stores `value` as a reward of `slot` (1-based) of the logged decision `id`
  // unless the slot has one already (aggregate first) or one with this `reward_id` (sum), counts
  // a negative outcome towards suppression, and teaches the bandit. `source`: api, goal or
  // default.
  absl::StatusOr<RewardResult> ApplyReward(State& state, uint64_t id, const LoggedDecision& logged,
                                           uint64_t slot, double value, std::string_view outcome,
                                           std::string_view reward_id, std::string_view source);
  absl::Status ApplyGoals();
  // When the deferred decision `id` was activated; nullopt when it was not.
  absl::StatusOr<std::optional<int64_t>> ActivatedAt(uint32_t workspace_id, uint64_t id);
  // Puts into `batch` what acting on `slots` of decision `id` does: their contacts in the
  // customer's history, their delivery in the engagement counts, their actions' budget use
  // (returned in `spent`, to install once the batch is written) and the reward wait of `point`
  // (may be null). The contacts are kept under each of `contact_rows` (ContactRows: the
  // customer's, and each identifier of a first-time visitor). The caller holds the customer's
  // contact stripes (Settings::PerCustomer) and budget_mu where the catalog has those policies.
  absl::Status Act(State& state, const decide::Catalog& catalog, const decide::DecisionPoint* point,
                   uint64_t id, uint64_t customer, std::span<const uint64_t> contact_rows,
                   int64_t now, const std::vector<Acted>& slots, rocksdb::WriteBatch* batch,
                   std::vector<std::pair<std::string, BudgetUse>>* spent);
  // Reads the customer's engagement counts, applies `fn` and puts them into `batch`, under the
  // customer's contact stripe.
  absl::Status UpdateEngagement(uint32_t workspace_id, uint64_t customer,
                                rocksdb::WriteBatch* batch,
                                const std::function<void(decide::Engagement&)>& fn);
  // Teaches the bandit of the logged decision's point `reward` for each of its `slots`
  // (0-based), on the features each was scored on; a decision point since removed learns
  // nothing.
  void Teach(State& state, const LoggedDecision& logged, const std::vector<size_t>& slots,
             double reward);
  // The workspace's decision state; 404 decisions_not_configured without a `decisions` block.
  absl::StatusOr<State*> StateOf(uint32_t workspace_id);
  // The state of the admin key's workspace (401 without one).
  absl::StatusOr<State*> AdminState(const net::RequestContext& ctx);

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
  // Writes the decisions that hold no lock (see above).
  storage::GroupWriter log_writer_;
  // See erasure_gate(). Entered before log_mu_ and the stripes, never while holding them.
  Gate erasures_;
};

}  // namespace whisperer::server
