// The report parsed as XML with libxml2 (the report is well-formed XML by contract), with XPath
// queries for structural assertions.
#pragma once

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include <memory>
#include <string>
#include <vector>

namespace sluice::report::testing {

class HtmlDom {
 public:
  // Parses `html` strictly (no network, no entity loading); ok() is false when it is not
  // well-formed.
  explicit HtmlDom(const std::string& html)
      : doc_(xmlReadMemory(html.data(), static_cast<int>(html.size()), "report.html", "UTF-8",
                           XML_PARSE_NONET),
             xmlFreeDoc) {}

  bool ok() const { return doc_ != nullptr; }

  // Number of nodes `xpath` selects.
  size_t Count(const std::string& xpath) const { return Select(xpath).size(); }

  // The text content of every node `xpath` selects, in document order.
  std::vector<std::string> Texts(const std::string& xpath) const {
    std::vector<std::string> out;
    for (xmlNodePtr node : Select(xpath)) {
      xmlChar* content = xmlNodeGetContent(node);
      out.emplace_back(content ? reinterpret_cast<const char*>(content) : "");
      xmlFree(content);
    }
    return out;
  }

  // All text content of the nodes `xpath` selects, joined.
  std::string Text(const std::string& xpath) const {
    std::string s;
    for (const std::string& t : Texts(xpath)) s += t;
    return s;
  }

 private:
  std::vector<xmlNodePtr> Select(const std::string& xpath) const {
    std::vector<xmlNodePtr> nodes;
    if (!doc_) return nodes;
    std::unique_ptr<xmlXPathContext, decltype(&xmlXPathFreeContext)> ctx(
        xmlXPathNewContext(doc_.get()), xmlXPathFreeContext);
    std::unique_ptr<xmlXPathObject, decltype(&xmlXPathFreeObject)> result(
        xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(xpath.c_str()), ctx.get()),
        xmlXPathFreeObject);
    if (result && result->nodesetval) {
      for (int i = 0; i < result->nodesetval->nodeNr; ++i) {
        nodes.push_back(result->nodesetval->nodeTab[i]);
      }
    }
    return nodes;
  }

  std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)> doc_;
};

}  // namespace sluice::report::testing
