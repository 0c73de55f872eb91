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
};
enum class RootKind { kMember, kStatic, kGlobal, kThreadLocal, kLocal, kParam, kOther };
struct Root {
  RootKind kind = RootKind::kOther;
  CXCursor decl = clang_getNullCursor();
  int ref_node = -1;  // the node naming it
};
class OpAnalyzer {
 public:
  OpAnalyzer(CXTranslationUnit unit, CXCursor op_class, OpReport& report)
      : unit_(unit), report_(report) {
    AddClass(op_class);
  }

  // Walks the entry points and what they call, runs every pass and fills the report.
  void Run();

 private:
  // ---- classes, methods, call following

  // Adds the op class `c` and its bases defined in this file or in a project header (not the
  // public API in include/sluice/).
  void AddClass(CXCursor c);
  // The definition of method `name` of the op class or a base; null when none.
  CXCursor FindMethod(const std::string& name) const;
  // Queues function `decl` for the walk once per set of guards.
  void Queue(CXCursor decl, std::vector<std::string> guards);
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
  void CollectFields(int id, std::set<std::string>& out) const;
  void AddEvidence(Property p, int id, std::string what);

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
};
}  // namespace sluice::inspect::internal
