// The warning sink: the default text on stderr, a replacement, and restoring the default.
#include "sluice/common/log.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(WarningSinkTest, DefaultWritesOneLineToStderr) {
  ::testing::internal::CaptureStderr();
  Warn("stage '{}': {} threads", "decode", 4);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "sluice: warning: stage 'decode': 4 threads\n");
}

TEST(WarningSinkTest, AReplacementReceivesTheMessageAndTheDefaultComesBack) {
  std::vector<std::string> got;
  const WarningSink previous =
      SetWarningSink([&](std::string_view message) { got.emplace_back(message); });
  EXPECT_FALSE(previous);  // the default
  ::testing::internal::CaptureStderr();
  Warn("one");
  Warn("{} and {}", "two", "three");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_THAT(got, ::testing::ElementsAre("one", "two and three"));
  EXPECT_TRUE(SetWarningSink(nullptr));  // gives back the replacement
  ::testing::internal::CaptureStderr();
  Warn("four");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "sluice: warning: four\n");
}

}  // namespace
}  // namespace sluice
