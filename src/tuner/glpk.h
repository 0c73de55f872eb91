// The tuner's one way into GLPK: a mixed-integer program under construction, its sparse rows, and
// the checked solve. No other file of the tuner includes <glpk.h>.
#pragma once

#include <map>
#include <memory>
#include <string>

struct glp_prob;

namespace sluice::tuner::internal {

enum class SolveResult { kOptimal, kFeasible, kInfeasible };

enum class ColumnKind { kContinuous, kInteger, kBinary };

// A sparse row under construction: coefficients by column (GLPK rejects repeated columns).
class Row {
 public:
  // Adds `coef` to column `col`'s coefficient; a column 0 (absent) or a zero is skipped.
  Row& Add(int col, double coef) {
    if (col > 0 && coef != 0) coefs_[col] += coef;
    return *this;
  }

 private:
  friend class Lp;
  std::map<int, double> coefs_;
};

// A GLPK problem, deleted with its owner.
class Lp {
 public:
  explicit Lp(const std::string& name);

  // Adds a column lb <= v <= ub (fixed where lb == ub) and returns its index.
  int AddColumn(const std::string& name, ColumnKind kind, double lb, double ub);
  // Sets column `col` to lb <= v <= ub.
  void SetBounds(int col, double lb, double ub);
  // Adds the row sum <= ub.
  void AddUpper(const Row& row, double ub);
  // Adds the row sum >= lb.
  void AddLower(const Row& row, double lb);

  void Maximize();
  void Minimize();
  void SetObjective(int col, double coef);

  // The one checking helper every solve goes through: runs glp_intopt (presolve on, branch and
  // cut) and maps its return code and status to a result; throws sluice::Error naming `what`
  // when GLPK fails.
  SolveResult Solve(const std::string& what);
  // Column `col`'s value in the last solve's integer solution.
  double Value(int col) const;

 private:
  struct Deleter {
    void operator()(glp_prob* lp) const;
  };
  void AddRow(const Row& row, int type, double lb, double ub);

  std::unique_ptr<glp_prob, Deleter> lp_;
};

}  // namespace sluice::tuner::internal
