// Carrying a tuned config's knobs onto the config it was tuned from (`sluice apply`), and the
// unified diff that shows the change.
#pragma once

#include <string>
#include <vector>

#include "sluice/config/document.h"

namespace sluice::config {

// One knob or stage that ApplyTuned changed.
struct AppliedChange {
  std::string stage;
  std::string what;  // "parallelism 1 -> 4", "inserted cache stage"
};

// Sets on `target` every knob (parallelism, buffer_size, deterministic) whose value differs in
// `tuned`, and inserts the cache stages `tuned` has that `target` lacks, at the same place. Every
// other stage of `tuned` must exist in `target` with the same op; otherwise throws naming it.
// `target` keeps every byte outside the changed values.
std::vector<AppliedChange> ApplyTuned(const Document& tuned, Document& target);

// A unified diff (3 lines of context) from `before` to `after`, labelled with `name`; "" when
// they are equal.
std::string UnifiedDiff(const std::string& before, const std::string& after,
                        const std::string& name);

}  // namespace sluice::config
