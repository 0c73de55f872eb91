#include "file_source.h"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "sluice/pipeline/element.h"

namespace sluice::pipeline {

ClassIndex IndexClasses(const std::vector<std::string>& names) {
  ClassIndex index;
  index.classes = names;
  std::sort(index.classes.begin(), index.classes.end());
  index.classes.erase(std::unique(index.classes.begin(), index.classes.end()), index.classes.end());
  for (const std::string& name : names) {
    index.labels.push_back(std::lower_bound(index.classes.begin(), index.classes.end(), name) -
                           index.classes.begin());
  }
  return index;
}

}  // namespace sluice::pipeline
