// The report in a real browser: headless Chromium (Debian's `chromium`) loads it from a file,
// its DOM holds every section and the bottleneck's name, and Chromium's network log shows that
// the page requested nothing over the network. Skipped only where chromium is not installed.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/report/report.h"
#include "tests/common/files.h"
#include "tests/common/harness.h"
#include "tests/report/synthetic_trace.h"

namespace sluice::report {
namespace {

namespace fs = std::filesystem;
using test_util::ReadFile;
using ::testing::HasSubstr;

// The chromium binary: $SLUICE_CHROMIUM, else `chromium` or `chromium-browser` on the PATH.
std::string FindChromium() {
  if (const char* env = std::getenv("SLUICE_CHROMIUM"); env && *env) return env;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    for (const char* name : {"chromium", "chromium-browser"}) {
      const fs::path candidate = fs::path(dir) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
  }
  return "";
}

struct BrowserRun {
  int status = -1;
  std::string dom;
  size_t net_events = 0;
  // URLs of requests made on behalf of the page (not Chromium's own background traffic) whose
  // scheme is not file:, data:, about: or blob:.
  std::vector<std::string> page_requests;
};

// Chromium's net log: JSON, possibly missing its closing brackets when the browser exits early.
nlohmann::json ParseNetLog(const std::string& text) {
  for (const char* tail : {"", "]}", "{}]}"}) {
    auto j = nlohmann::json::parse(text + tail, nullptr, false);
    if (!j.is_discarded()) return j;
  }
  return nlohmann::json();
}

// Loads `html` in headless Chromium, dumping the DOM after load with network logging on.
BrowserRun Load(const std::string& chromium, const fs::path& html, const fs::path& work,
                const std::string& extra_args = "") {
  BrowserRun run;
  const fs::path net_log = work / "net.json";
  const fs::path dom = work / "dom.html";
  const std::string command = fmt::format(
      "timeout 120 '{}' --headless --no-sandbox --disable-gpu --no-first-run {} "
      "--user-data-dir='{}' --log-net-log='{}' --dump-dom 'file://{}' >'{}' 2>'{}'",
      chromium, extra_args, (work / "profile").string(), net_log.string(),
      fs::absolute(html).string(), dom.string(), (work / "stderr.txt").string());
  run.status = test_util::RunShell(command, work).status;
  run.dom = ReadFile(dom);
  const nlohmann::json log = ParseNetLog(ReadFile(net_log));
  if (!log.is_object() || !log.contains("events")) return run;
  const int start_job = log.at("constants").at("logEventTypes").at("URL_REQUEST_START_JOB");
  for (const nlohmann::json& e : log.at("events")) {
    ++run.net_events;
    // The job's begin event carries the request; its end event only the result.
    if (e.value("type", -1) != start_job || !e.contains("params")) continue;
    const nlohmann::json& p = e.at("params");
    if (!p.contains("url")) continue;
    const std::string url = p.value("url", "");
    // Chromium's own requests (component updates, account checks) have no initiating origin;
    // the page's carry its file:// origin ("null") and network isolation key.
    const bool from_page =
        p.value("initiator", "") != "not an origin" ||
        p.value("network_isolation_key", "").find("file://") != std::string::npos;
    const bool local = url.starts_with("file:") || url.starts_with("data:") ||
                       url.starts_with("about:") || url.starts_with("blob:");
    if (from_page && !local) run.page_requests.push_back(url);
  }
  return run;
}

class BrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = FindChromium();
    if (chromium_.empty()) {
      GTEST_SKIP() << "chromium is not installed (scripts/bootstrap.sh installs it)";
    }
    work_ = tmp_.path();
    ReportInput in;
    in.run.trace = testing::BuildTrace(testing::ImageLikeSpec());
    in.run.origin = "prof/trace.json";
    in.run.analysis = analyzer::Analyze(in.run.trace);
    in.plan = tuner::Tune(in.run.analysis, in.run.trace.pipelines[0]);
    bottleneck_ = in.run.analysis.Bottleneck().stage;
    html_ = Render(in);
  }
  std::string chromium_;
  test_util::TempDir tmp_{"sluice_browser_test"};
  fs::path work_;
  std::string html_;
  std::string bottleneck_;
};

TEST_F(BrowserTest, DomHoldsEverySectionAndTheBottleneckWithNoNetworkRequest) {
  const fs::path path = work_ / "report.html";
  WriteReport(html_, path);
  const BrowserRun run = Load(chromium_, path, work_);
  ASSERT_EQ(run.status, 0) << ReadFile(work_ / "stderr.txt");
  ASSERT_THAT(run.dom, HasSubstr("</html>"));
  for (const char* id : kSectionIds) {
    EXPECT_THAT(run.dom, HasSubstr(fmt::format("<section id=\"{}\"", id))) << id;
  }
  ASSERT_EQ(bottleneck_, "decode");
  EXPECT_THAT(run.dom, HasSubstr("<span class=\"name\">'decode'</span>"));
  EXPECT_THAT(run.dom, HasSubstr("<svg"));  // the inline SVG survived HTML parsing
  EXPECT_GT(run.net_events, 0u) << "no network log was written";
  EXPECT_TRUE(run.page_requests.empty()) << "the page requested " << run.page_requests.front();
}

// The check above can fail: a copy of the report with one external image is caught.
TEST_F(BrowserTest, ARequestThePageMakesIsDetected) {
  std::string html = html_;
  html.insert(html.rfind("</body>"), "<img src=\"http://127.0.0.1:9/x.png\" alt=\"\"/>");
  const fs::path path = work_ / "report_with_image.html";
  WriteReport(html, path);
  const BrowserRun run = Load(chromium_, path, work_);
  ASSERT_EQ(run.status, 0) << ReadFile(work_ / "stderr.txt");
  EXPECT_THAT(run.page_requests, ::testing::Contains("http://127.0.0.1:9/x.png"));
}

}  // namespace
}  // namespace sluice::report

namespace sluice::report {
namespace {

// Laid out by the browser in a 1400-pixel-wide window, nothing sticks out of its section (a wide
// table scrolls inside its box) and the page needs no horizontal scrolling. A script added to a
// copy of the report measures the layout and writes what it finds into the DOM.
TEST_F(BrowserTest, EverySectionFitsA1400PixelWindow) {
  std::string html = html_;
  const std::string script = R"(<script>
document.addEventListener('DOMContentLoaded', () => {
  const out = [];
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth) out.push('page ' + page.scrollWidth + ' > ' + page.clientWidth);
  for (const s of document.querySelectorAll('section')) {
    const right = s.getBoundingClientRect().right;
    for (const el of s.querySelectorAll('table, figure, pre, svg, .scroll, dl')) {
      if (el.closest('.scroll') && !el.classList.contains('scroll')) continue;
      const r = el.getBoundingClientRect().right;
      if (r > right + 1) out.push(s.id + ' ' + el.tagName + (el.id ? '#' + el.id : '') + ' ' + Math.round(r) + ' > ' + Math.round(right));
    }
  }
  const d = document.createElement('div');
  d.id = 'overflow-check';
  d.textContent = out.length ? out.join('; ') : 'none';
  document.body.appendChild(d);
});
</script>)";
  html.insert(html.rfind("</body>"), script);
  const fs::path path = work_ / "report_measured.html";
  WriteReport(html, path);
  const BrowserRun run = Load(chromium_, path, work_, "--window-size=1400,1000");
  ASSERT_EQ(run.status, 0) << ReadFile(work_ / "stderr.txt");
  const size_t at = run.dom.find("id=\"overflow-check\">");
  ASSERT_NE(at, std::string::npos) << "the measuring script did not run";
  const size_t from = run.dom.find('>', at) + 1;
  EXPECT_EQ(run.dom.substr(from, run.dom.find('<', from) - from), "none");
}

}  // namespace
}  // namespace sluice::report
