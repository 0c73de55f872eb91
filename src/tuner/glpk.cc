// The GLPK wrapper: every call the tuner makes into GLPK, and the checked solve.
#include "tuner/glpk.h"

#include <glpk.h>

#include <vector>

#include "sluice/common/error.h"

namespace sluice::tuner::internal {
namespace {

const char* IntoptError(int rc) {
  switch (rc) {
    case GLP_EBOUND:
      return "a variable has incorrect bounds";
    case GLP_EROOT:
      return "no optimal basis for the root relaxation";
    case GLP_ENOPFS:
      return "no primal feasible solution";
    case GLP_ENODFS:
      return "the relaxation is unbounded";
    case GLP_EFAIL:
      return "the search failed";
    case GLP_EMIPGAP:
      return "the relative gap tolerance was reached";
    case GLP_ETMLIM:
      return "the time limit was reached";
    case GLP_ESTOP:
      return "the search was stopped";
    default:
      return "unknown error";
  }
}

int GlpkKind(ColumnKind kind) {
  switch (kind) {
    case ColumnKind::kInteger:
      return GLP_IV;
    case ColumnKind::kBinary:
      return GLP_BV;
    case ColumnKind::kContinuous:
      break;
  }
  return GLP_CV;
}

}  // namespace

void Lp::Deleter::operator()(glp_prob* lp) const { glp_delete_prob(lp); }

Lp::Lp(const std::string& name) : lp_(glp_create_prob()) {
  glp_set_prob_name(lp_.get(), name.c_str());
}

int Lp::AddColumn(const std::string& name, ColumnKind kind, double lb, double ub) {
  const int col = glp_add_cols(lp_.get(), 1);
  glp_set_col_name(lp_.get(), col, name.c_str());
  glp_set_col_kind(lp_.get(), col, GlpkKind(kind));
  glp_set_col_bnds(lp_.get(), col, lb == ub ? GLP_FX : GLP_DB, lb, ub);
  return col;
}

void Lp::SetBounds(int col, double lb, double ub) {
  glp_set_col_bnds(lp_.get(), col, GLP_DB, lb, ub);
}

void Lp::AddUpper(const Row& row, double ub) { AddRow(row, GLP_UP, 0, ub); }

void Lp::AddLower(const Row& row, double lb) { AddRow(row, GLP_LO, lb, 0); }

void Lp::AddRow(const Row& row, int type, double lb, double ub) {
  const int index = glp_add_rows(lp_.get(), 1);
  std::vector<int> ind(1);
  std::vector<double> val(1);
  for (const auto& [col, coef] : row.coefs_) {
    ind.push_back(col);
    val.push_back(coef);
  }
  glp_set_mat_row(lp_.get(), index, static_cast<int>(ind.size()) - 1, ind.data(), val.data());
  glp_set_row_bnds(lp_.get(), index, type, lb, ub);
}

void Lp::Maximize() { glp_set_obj_dir(lp_.get(), GLP_MAX); }

void Lp::Minimize() { glp_set_obj_dir(lp_.get(), GLP_MIN); }

void Lp::SetObjective(int col, double coef) { glp_set_obj_coef(lp_.get(), col, coef); }

SolveResult Lp::Solve(const std::string& what) {
  glp_iocp parm;
  glp_init_iocp(&parm);
  parm.presolve = GLP_ON;
  parm.msg_lev = GLP_MSG_OFF;
  parm.tm_lim = 10'000;  // ms; the problems have tens of variables
  parm.gmi_cuts = GLP_ON;
  parm.mir_cuts = GLP_ON;
  const int rc = glp_intopt(lp_.get(), &parm);
  if (rc == GLP_ENOPFS) return SolveResult::kInfeasible;
  const int status = glp_mip_status(lp_.get());
  if (rc != 0 && rc != GLP_ETMLIM && rc != GLP_EMIPGAP) {
    Fail("tune: GLPK failed on {}: glp_intopt returned {} ({})", what, rc, IntoptError(rc));
  }
  switch (status) {
    case GLP_OPT:
      return SolveResult::kOptimal;
    case GLP_FEAS:
      return SolveResult::kFeasible;
    case GLP_NOFEAS:
      return SolveResult::kInfeasible;
    default:
      Fail("tune: GLPK failed on {}: no solution (status {}, {})", what, status,
           rc == 0 ? "no error" : IntoptError(rc));
  }
}

double Lp::Value(int col) const { return glp_mip_col_val(lp_.get(), col); }

}  // namespace sluice::tuner::internal

namespace sluice::tuner {

void ReleaseThreadSolver() { glp_free_env(); }

}  // namespace sluice::tuner
