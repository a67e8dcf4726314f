// bin/common's JSON text: the top level and deep containers indented, small ones on one line.
#include "bin/common/json.hpp"

#include <gtest/gtest.h>

namespace {

using oj = nlohmann::ordered_json;

TEST(JsonText, FlatDocumentOneMemberPerLine) {
  oj j;
  j["model"] = "m";
  j["perplexity"] = 9.5;
  j["shape"] = {2, 3};
  EXPECT_EQ(st::cli::json_text(j), "{\n  \"model\": \"m\",\n  \"perplexity\": 9.5,\n  \"shape\": [2, 3]\n}\n");
}

TEST(JsonText, RowsOnOneLineDeepContainersIndented) {
  oj j;
  j["tensors"] = oj::array({oj{{"name", "a"}, {"shape", {1, 2}}}, oj{{"name", "b"}, {"shape", oj::array()}}});
  j["empty"] = oj::object();
  j["n"] = 3u;
  EXPECT_EQ(st::cli::json_text(j),
            "{\n"
            "  \"tensors\": [\n"
            "    {\"name\": \"a\", \"shape\": [1, 2]},\n"
            "    {\"name\": \"b\", \"shape\": []}\n"
            "  ],\n"
            "  \"empty\": {},\n"
            "  \"n\": 3\n"
            "}\n");
  EXPECT_EQ(st::cli::json_text(oj::array()), "[]\n");
  EXPECT_EQ(st::cli::json_text(oj("x")), "\"x\"\n");
}

}  // namespace
