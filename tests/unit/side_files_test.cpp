// Side files of a model directory: which files are carried, the config.json an output gets, and a
// stream's __metadata__ entries for text and binary files.
#include <gtest/gtest.h>

#include "libst/format/checkpoint.hpp"
#include "libst/format/side_files.hpp"

namespace st {
namespace {

TEST(SideFiles, EveryNonWeightFileIsCarried) {
  for (const char* n : {"config.json", "tokenizer.model", "LICENSE", "README.md", "chat_template.json",
                        "preprocessor_config.json", "modeling_deepseek.py", "quant_model_description.json"})
    EXPECT_TRUE(is_side_file_name(n)) << n;
  for (const char* n : {"model.safetensors", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
                        "quant_model_weight_w8a8.safetensors.xxh3", "pytorch_model.bin", "pytorch_model.bin.index.json",
                        ".hidden", "quant_model_description_w8a8.json", ""})
    EXPECT_FALSE(is_side_file_name(n)) << n;
}

TEST(SideFiles, OutputConfigPatchesAndWritesTorchDtype) {
  auto out = output_config(R"({"model_type": "llama", "dtype": "bfloat16", "quantization_config": {"x": 1}})",
                           {{"quantization_config", nullptr}, {"quantize", "w8a8"}}, DType::F16, "c.json");
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out, "{\n  \"model_type\": \"llama\",\n  \"dtype\": \"float16\",\n  \"torch_dtype\": \"float16\",\n"
                  "  \"quantize\": \"w8a8\"\n}\n");
  auto bad = output_config("[1]", nlohmann::ordered_json::object(), DType::F16, "c.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().file, "c.json");
}

TEST(SideFiles, BinaryFilesTravelAsBase64InAStream) {
  Metadata m;
  const std::string binary("\x80\x00\xff", 3);
  put_side_file(m, "tokenizer.model", binary);
  put_side_file(m, "README.md", "text \xc3\xa9");
  EXPECT_EQ(m.count("st.file.tokenizer.model"), 0u);
  EXPECT_EQ(m.at("st.file64.tokenizer.model"), "gAD/");
  EXPECT_EQ(m.at("st.file.README.md"), "text \xc3\xa9");
}

}  // namespace
}  // namespace st
