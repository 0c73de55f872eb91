// The analysis of one registered op: the code its Process / Next / BeginEpoch reach in the same
// file (and in the user's own headers), and the passes over it that collect evidence against
// the op's declared properties (docs/inspect.md). The passes live one file each: writes.cc
// (state), randomness.cc (random sources and the clock), io_calls.cc (I/O) and declared.cc (what
// properties() declares); op_analyzer.cc holds the walk and the helpers they share.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "inspect/clang_api.h"
#include "inspect/project.h"
#include "sluice/inspect/inspect.h"

namespace sluice::inspect::internal {

struct Node {
  CXCursor cursor;
  int parent = -1;  // -1: the root of a function body
  int function = 0;
  std::vector<int> children;
};

struct Function {
  CXCursor decl;
  std::vector<std::string> guards;  // inherited from the call site
  bool locked = false;              // called with a lock held
};
enum class RootKind { kMember, kStatic, kGlobal, kThreadLocal, kLocal, kParam, kOther };
struct Root {
  RootKind kind = RootKind::kOther;
  CXCursor decl = clang_getNullCursor();
  int ref_node = -1;  // the node naming it
};
// A definition whose code the inspector follows: in the file itself, or inline in a header of
// the user's own (helpers shared by several ops). The runtime's public headers
// (include/sluice/) are judged by the known-call lists instead, like system headers.
bool FollowableDefinition(CXCursor def);
// The parameters of a function or function template, in order.
std::vector<CXCursor> ParamsOf(CXCursor fn);

class OpAnalyzer {
 public:
  // `project`: where calls into other files of the project are summarized; null: nowhere.
  OpAnalyzer(CXTranslationUnit unit, CXCursor op_class, OpReport& report, Project* project)
      : unit_(unit), report_(report), project_(project) {
    AddClass(op_class);
  }
  // An analyzer for one function of the project, with no op (Summarize).
  OpAnalyzer(CXTranslationUnit unit, OpReport& scratch, Project* project)
      : unit_(unit), report_(scratch), project_(project) {}

  // Walks the entry points and what they call, runs every pass and fills the report.
  void Run();
  // What function `fn` (defined in this unit) and what it calls do, for its callers elsewhere.
  FunctionSummary Summarize(CXCursor fn);

 private:
  // ---- classes, methods, call following

  // Adds the op class `c` and its bases defined in this file or in a project header (not the
  // public API in include/sluice/).
  void AddClass(CXCursor c);
  // The definition of method `name` of the op class or a base; null when none.
  CXCursor FindMethod(const std::string& name) const;
  // Queues function `decl` for the walk once per set of guards (and lock held or not).
  void Queue(CXCursor decl, std::vector<std::string> guards, bool locked = false);
  // Walks everything queued.
  void Drain();
  // Adds the nodes of `f`'s body.
  void Walk(const Function& f);
  // Adds `c` and its subtree under `parent`, following the calls in it; returns its node.
  int Add(CXCursor c, int parent, int fn);

  // Queues the definition a call reaches when it is in this file; notes calls it cannot see.
  void Follow(int id);

  // ---- helpers over nodes

  CXCursorKind KindOf(int id) const { return clang_getCursorKind(nodes_[id].cursor); }
  CXCursor Cur(int id) const { return nodes_[id].cursor; }

  int FirstExprChild(int id) const;

  // The operator of a binary, compound-assignment or unary operator node ("=", "+=", "++").
  std::string OperatorOf(int id) const;
  // Whether `decl` is a field of the op class or a base.
  bool IsOpField(CXCursor decl) const;

  // The object a member call is made on (`x` in `x.f()`, the left operand of `x = y` when
  // `operator=` is a member); -1 for an implicit `this`.
  int ObjectOf(int call) const;
  // What kind of variable `decl` (named by node `ref_node`) is: member, static, local...
  Root ClassifyVar(CXCursor decl, int ref_node) const;

  // What an lvalue expression designates, for cursors outside the node list (initializers).
  Root RootOfCursor(CXCursor c) const;

  // What an lvalue expression node designates: `a_.b[i]` is member a_, `*out` is parameter out.
  Root RootOf(int id) const;
  std::string RootName(const Root& r) const { return Spelling(r.decl); }

  // Members of the op class read in a condition that decides whether node `id` runs.
  std::vector<std::string> GuardsOf(int id) const;

  // Where an if statement's branches begin: just after the `)` closing its condition.
  unsigned ThenStart(int if_node) const;
  // Whether an if statement's then-branch returns (`if (!random_) return;`): what follows the
  // statement runs only when its condition is false.
  bool ReturnsEarly(int if_node) const;
  // Whether the op fields that nodes `ids` read are all numbers, flags or enums (configuration).
  bool ReadsOnlyScalarFields(const std::vector<int>& ids) const;
  // Adds to `out` the conditions of the statements that decide whether node `child` of node
  // `p` runs: an if's condition, a conditional operator's, an earlier early return's.
  void ConditionsOver(int p, int child, std::vector<int>& out) const;
  void CollectFields(int id, std::set<std::string>& out) const;
  void AddEvidence(Property p, int id, std::string what);
  void AddEvidenceAt(Property p, const std::string& file, int line, std::string what,
                     std::vector<std::string> guards);
  // Takes in what a call `call` to `callee`, defined in another file of the project, does.
  void ApplySummary(int call, CXCursor callee, const FunctionSummary& s);

  // ---- references

  // Lists, per variable, the nodes that name it.
  void IndexRefs();

  // ---- state

  // Records that node `at` writes what node `target` designates (`verb`: "assigns", ...).
  void RecordWrite(int target, int at, const std::string& verb);
  // The state pass (writes.cc): writes and locks, evidence against `stateless`.
  void FindWrites();
  std::string RootKey(int target) const;
  bool WriteOnlyAtomic(const std::string& usr) const;
  void CheckCall(int i);
  // Notes the arguments of call `call` that the callee may write through (a non-const
  // reference or pointer, a mutating algorithm's iterators, an engine drawn from).
  void CheckArguments(int call);
  // Records the writes the noted arguments make: unconditionally for a callee outside the
  // code followed, and where a followed callee writes the parameter (directly or by passing it
  // on), composed to a fixpoint.
  void ResolveBindings();
  // "USR#index" of parameter `parm` of the function it belongs to.
  std::string ParamKey(CXCursor parm) const;

  // ---- races (races.cc)

  // Whether a lock is held at node `id`: taken earlier in an enclosing block, or by a caller.
  bool IsLocked(int id) const;
  // Whether statement node `stmt` takes a lock held to the end of its block.
  bool TakesLock(int stmt) const;
  // Evidence of a data race: shared state written by Process, without a lock or an atomic, in
  // an op declared parallelizable.
  void FindRaces();

  // ---- randomness

  // Why the value of expression `c` changes from epoch to epoch, or nullopt when it does not:
  // it reads the epoch, a random source, the clock, or state that processing code writes.
  std::optional<std::string> Varies(CXCursor c, std::set<std::string>& seen) const;
  // The randomness pass (randomness.cc): evidence against `deterministic`.
  void FindRandomness();
  void EngineUse(int i, CXCursor engine);

  // ---- the clock

  void ClockCall(int call, const std::string& name);
  bool IsInside(int id, int ancestor) const;

  // Whether any read of variable `usr` (outside node `except`) flows into data.
  bool UsesAsData(const std::string& usr, int except, std::set<std::string>& seen) const;

  // Follows the value of node `id` up the expression tree: comparisons, sleeps and waits are
  // timing; a variable it is stored in is followed; anything else (an argument, a return, an
  // element field) is data.
  bool ValueIsData(int id, std::set<std::string>& seen) const;

  // ---- I/O

  // The I/O pass (io_calls.cc): evidence of `io`.
  void FindIo();

  // ---- the declaration

  // Reads what properties() declares into the report (declared.cc).
  void ReadDeclared();
  // Reads field `field` of the declared OpProperties from `values` (its initializers) into
  // `out`; `fallback` is the field's default when properties() does not set it.
  void ReadDeclaredValue(const std::map<std::string, CXCursor>& values, const char* field,
                         DeclaredValue& out, bool fallback) const;
  // The verdicts from the evidence.
  void Conclude();

  // An argument the callee may write through: node `arg` of call `call`; `param` is the
  // followed callee's parameter ("USR#index"), empty when the callee is not followed.
  struct Binding {
    int arg;
    int call;
    std::string param;
    std::string callee;
  };
  // A write to state that workers share: a member, a static or a global (`synced`: an atomic,
  // a mutex or another synchronization object, which workers may share).
  struct SharedWrite {
    int node;
    std::string what;
    bool synced;
  };

  struct MemberWrite {
    std::string usr;
    int node;
    std::string what;
    bool store = false;  // a plain store (`=`, atomic store()) whose result nobody reads
  };

  CXTranslationUnit unit_;
  OpReport& report_;
  std::set<std::string> classes_;  // USRs of the op class and its bases in this file
  std::vector<CXCursor> class_defs_;
  std::deque<Function> queue_;
  std::set<std::string> visited_;
  std::vector<Function> functions_;
  std::vector<Node> nodes_;
  std::map<std::string, std::vector<int>> refs_;      // variable USR -> nodes naming it
  std::map<std::string, std::vector<int>> assigned_;  // variable USR -> right-hand sides
  std::set<int> write_refs_;                          // nodes naming a variable being written
  std::set<std::string> written_;                     // USRs of members/statics written
  std::vector<MemberWrite> member_writes_;
  std::vector<Binding> bindings_;
  std::set<std::string> written_params_;  // "USR#index" of parameters the code writes
  std::vector<SharedWrite> shared_writes_;
  int process_end_ = 0;  // nodes below this index are reached from Process
  Project* project_ = nullptr;
  std::set<std::string> summarized_;  // USRs of callees known from their summaries
  // Unlocked writes to statics and globals in other files, made by call `call`.
  struct ExternalRace {
    int call;
    Effect effect;
  };
  std::vector<ExternalRace> external_races_;
};
}  // namespace sluice::inspect::internal
